"""`python -m sdk prune`: filter pruning by feature-map clustering or L1 norm, to an SDK checkpoint."""
from pathlib import Path

from ..deps import require
from ..errors import SDKError
from .common import print_json_last, print_table


def add_pruning_args(p):
    p.add_argument("--criterion", choices=("fmc", "l1"), default="fmc",
                   help="fmc: feature-map clustering (needs --data); l1: filter L1 norm")
    p.add_argument("--round", type=int, default=0, dest="round_to",
                   help="keep a multiple of this many channels per layer (e.g. 8; default: exact)")
    p.add_argument("--stats-images", type=int, default=64, help="training images for the feature-map statistics")
    p.add_argument("--seed", type=int, default=0, help="K-means++ seed")


def add_arguments(p):
    p.add_argument("--weights", required=True, help="official YOLOv7 .pt or SDK checkpoint")
    p.add_argument("-o", "--output", required=True, help="pruned SDK checkpoint (.pt)")
    p.add_argument("--level", type=float, default=0.5, help="share of filters removed in every layer, in [0, 1)")
    p.add_argument("--layer", nargs="*", default=[], metavar="NAME=RATIO",
                   help="per-layer ratios (local pruning), e.g. model.12=0.3 40=0.6")
    p.add_argument("--local", action="store_true",
                   help="per-layer ratios from the clustering, averaging --level (fmc only)")
    add_pruning_args(p)
    p.add_argument("--data", default=None, help="labelled training images (YOLO, COCO json, VOC) for fmc")
    p.add_argument("--split", default="train")
    p.add_argument("--imgsz", type=int, default=416, help="input size for statistics and GFLOPs")
    p.add_argument("--onnx", default=None, help="also export the pruned model to this .onnx")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args):
    require("torch", "pruning")
    from ..models.checkpoint import load_checkpoint, save_checkpoint
    from ..prune.api import make_criterion, prune_model
    from ..prune.plan import check_level, parse_layer_ratios, prunable_layers

    check_level(args.level)
    if not str(args.output).endswith(".pt"):
        raise SDKError(f"--output: got '{args.output}', expected a path ending in .pt")
    if args.onnx and not str(args.onnx).endswith(".onnx"):
        raise SDKError(f"--onnx: got '{args.onnx}', expected a path ending in .onnx")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.weights)
    ratios = parse_layer_ratios(args.layer, prunable_layers(model))
    data = None
    if args.criterion == "fmc":
        if not args.data:
            raise SDKError("--data: got nothing, expected labelled training images for --criterion fmc")
        from ..data.datasets import load_dataset

        data = load_dataset(args.data, names=list(model.names), split=args.split)
    crit = make_criterion(args.criterion, model, data, args.imgsz, args.stats_images, args.seed)
    pruned, report = prune_model(model, crit, args.level, ratios, args.local, args.round_to, args.imgsz,
                                 inplace=True)
    save_checkpoint(pruned, args.output, pruning={k: v for k, v in report.items() if k != "layers"},
                    source=Path(args.weights).name)
    report["output"] = str(args.output)
    if args.onnx:
        from ..export.onnx_export import export_onnx

        _, exp = export_onnx(pruned, args.onnx, imgsz=args.imgsz, source=Path(args.output).name)
        report.update(onnx=str(args.onnx), onnx_mb=exp["size_mb"])
    rows = [[n, a, b] for n, (a, b) in report["layers"].items() if a != b]
    print_table(rows, ["layer", "channels", "kept"])
    print_table([["params", report["params_before"], report["params"]],
                 [f"GFLOPs @{args.imgsz}", f"{report['gflops_before']:.3f}", f"{report['gflops']:.3f}"]],
                ["", "before", "after"])
    print_json_last(report)
    return 0

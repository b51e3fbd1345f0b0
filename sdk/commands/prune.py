"""`python -m sdk prune`: filter pruning by feature-map clustering or L1 norm, to an SDK checkpoint.

One-shot by default (cut to --level at once; fine-tune afterwards with `train` or `distill`). With --gradual,
pruning and fine-tuning are one run: the cubic schedule raises the level over the fine-tune steps, cutting
channels for real at each event (`sdk.prune.gradual`); -o gets the final (best) pruned model.
"""
import sys
import sys

from ..deps import require
from ..errors import SDKError
from . import args as groups
from .common import print_json_last, print_table


def add_arguments(p):
    p.add_argument("--weights", required=True, help="official YOLOv7 .pt or SDK checkpoint")
    p.add_argument("-o", "--output", required=True, help="pruned SDK checkpoint (.pt)")
    p.add_argument("--level", type=groups.FRACTION, default=0.5,
                   help="share of filters removed in every layer, in [0, 1)")
    p.add_argument("--layer", nargs="*", default=[], metavar="NAME=RATIO",
                   help="per-layer ratios (local pruning), e.g. model.12=0.3 40=0.6")
    p.add_argument("--local", action="store_true",
                   help="per-layer ratios from the clustering, averaging --level (fmc only)")
    groups.add_pruning(p)
    p.add_argument("--data", default=None, help="labelled training images (YOLO, COCO json, VOC) for fmc")
    p.add_argument("--split", default="train")
    p.add_argument("--recal-images", type=groups.OPTIONAL_COUNT, default=64,
                   help="training images (from --data) for re-estimating BatchNorm statistics after the cut, "
                        "or after each event of --gradual (0: skip)")
    groups.add_imgsz(p, help="input size for statistics and GFLOPs")
    p.add_argument("--onnx", default=None, help="also export the pruned model to this .onnx")
    groups.add_threads(p, None, "torch CPU threads")
    add_gradual_args(p)


def add_gradual_args(p):
    g = p.add_argument_group("gradual pruning (--gradual): the cubic schedule over fine-tuning steps")
    g.add_argument("--gradual", action="store_true",
                   help="prune gradually while fine-tuning on --data (instead of one-shot)")
    g.add_argument("--prune-updates", type=groups.COUNT, default=10, help="pruning events (n in the cubic schedule)")
    g.add_argument("--prune-begin", type=groups.PROBABILITY, default=0.0,
                   help="first event, as a fraction of the steps (t0)")
    g.add_argument("--prune-end", type=groups.PROBABILITY, default=0.6,
                   help="last event, as a fraction of the steps; the rest fine-tunes the final width")
    groups.add_train_data(g, train=False)
    groups.add_finetune(g, imgsz=False)
    g.add_argument("--out-dir", default=None, help="folder for the fine-tune's best.pt and last.pt")


def check_gradual_args(args):
    """Cheap checks first: a wrong flag should not cost a model load."""
    groups.recipe_from_args(args)
    if args.layer or args.local:
        raise SDKError("--gradual: got --layer/--local, expected level pruning (the same --level in every layer)")
    if not args.out_dir:
        raise SDKError("--out-dir: got nothing, expected a folder for the fine-tune checkpoints of --gradual")
    if not args.data:
        raise SDKError("--data: got nothing, expected labelled training images for --gradual (it fine-tunes)")
    if args.level <= 0:
        raise SDKError(f"--level: got {args.level}, expected a ratio in (0, 1) for --gradual")


def run(args):
    require("torch", "pruning")
    from ..prune.api import prune_checkpoint, prune_gradually

    if args.gradual:
        check_gradual_args(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.gradual:
        log = (lambda m: print(m, file=sys.stderr, flush=True))
        res = prune_gradually(args.weights, args.data, args.out_dir, groups.recipe_from_args(args), args.output,
                              criterion=args.criterion, level=args.level, updates=args.prune_updates,
                              begin=args.prune_begin, end=args.prune_end, round_to=args.round_to,
                              stats_images=args.stats_images, seed=args.seed, recal_images=args.recal_images,
                              split=args.split, val_data=args.val_data, val_split=args.val_split,
                              validate=not args.no_val, onnx=args.onnx, log=log)
        report = res.report
        print_table([[e["step"], f"{e['target']:.3f}", f"{e['filter_sparsity']:.3f}", f"{e['params']:,}"]
                     for e in report["events"]], ["step", "scheduled level", "filter sparsity", "params"])
    else:
        res = prune_checkpoint(args.weights, args.output, criterion=args.criterion, level=args.level,
                               data=args.data, split=args.split, layer_ratios=args.layer, local=args.local,
                               round_to=args.round_to, stats_images=args.stats_images, seed=args.seed,
                               recal_images=args.recal_images, imgsz=args.imgsz, onnx=args.onnx)
        report = res.report
        if args.onnx and report["params"] < report["params_before"]:
            # one-shot pruning without fine-tuning loses most of the mAP (0.002 at 50 % on the shared model)
            print(f"warning: {args.onnx} is pruned but not fine-tuned, so expect a large mAP loss; fine-tune it "
                  f"first: python -m sdk train --weights {args.output} --data <train images> --epochs 20 "
                  f"(or prune --gradual), then export", file=sys.stderr)
            report["warning"] = "pruned, not fine-tuned"
        print_table([[n, a, b] for n, (a, b) in report["layers"].items() if a != b], ["layer", "channels", "kept"])
    imgsz = report["imgsz"]
    print_table([["params", report["params_before"], report["params"]],
                 [f"GFLOPs @{imgsz}", f"{report['gflops_before']:.3f}", f"{report['gflops']:.3f}"]],
                ["", "before", "after"])
    print_json_last(report)
    return 0

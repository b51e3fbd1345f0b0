"""`python -m sdk prune`: filter pruning by feature-map clustering or L1 norm, to an SDK checkpoint.

One-shot by default (cut to --level at once; fine-tune afterwards with `train` or `distill`). With --gradual,
pruning and fine-tuning are one run: the cubic schedule raises the level over the fine-tune steps, cutting
channels for real at each event (`sdk.prune.gradual`); -o gets the final (best) pruned model.
"""
import sys
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
    p.add_argument("--recal-images", type=int, default=64,
                   help="training images (from --data) for re-estimating BatchNorm statistics after the cut, "
                        "or after each event of --gradual (0: skip)")
    p.add_argument("--imgsz", type=int, default=416, help="input size for statistics and GFLOPs")
    p.add_argument("--onnx", default=None, help="also export the pruned model to this .onnx")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_gradual_args(p)


def add_gradual_args(p):
    from .train import add_data_args, add_finetune_args

    g = p.add_argument_group("gradual pruning (--gradual): the cubic schedule over fine-tuning steps")
    g.add_argument("--gradual", action="store_true",
                   help="prune gradually while fine-tuning on --data (instead of one-shot)")
    g.add_argument("--prune-updates", type=int, default=10, help="pruning events (n in the cubic schedule)")
    g.add_argument("--prune-begin", type=float, default=0.0, help="first event, as a fraction of the steps (t0)")
    g.add_argument("--prune-end", type=float, default=0.6,
                   help="last event, as a fraction of the steps; the rest fine-tunes the final width")
    add_data_args(g, train=False)
    add_finetune_args(g, imgsz=False)
    g.add_argument("--out-dir", default=None, help="folder for the fine-tune's best.pt and last.pt")


def check_gradual_args(args):
    """Cheap checks first: a wrong flag should not cost a model load."""
    from .train import check_budget, parse_hyp

    check_budget(args)
    parse_hyp(args.hyp)
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
    from ..models.checkpoint import load_checkpoint, save_checkpoint
    from ..prune.api import make_criterion, prune_model
    from ..prune.plan import check_level, parse_layer_ratios, prunable_layers

    check_level(args.level)
    if args.gradual:
        check_gradual_args(args)
    if not str(args.output).endswith(".pt"):
        raise SDKError(f"--output: got '{args.output}', expected a path ending in .pt")
    if args.onnx and not str(args.onnx).endswith(".onnx"):
        raise SDKError(f"--onnx: got '{args.onnx}', expected a path ending in .onnx")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.weights)
    ratios = parse_layer_ratios(args.layer, prunable_layers(model))
    if args.gradual:
        return run_gradual(args, model)
    data = None
    if args.criterion == "fmc":
        if not args.data:
            raise SDKError("--data: got nothing, expected labelled training images for --criterion fmc")
        from ..data.datasets import load_dataset

        data = load_dataset(args.data, names=list(model.names), split=args.split)
    crit = make_criterion(args.criterion, model, data, args.imgsz, args.stats_images, args.seed)
    pruned, report = prune_model(model, crit, args.level, ratios, args.local, args.round_to, args.imgsz,
                                 inplace=True)
    cut = report["params"] < report["params_before"]
    if cut and data is None and args.data and args.recal_images > 0:
        from ..data.datasets import load_dataset

        data = load_dataset(args.data, names=list(model.names), split=args.split)
    if cut and data is not None and args.recal_images > 0:  # the cut changed what every BatchNorm sees
        from ..prune.recalibrate import recalibrate_batchnorm

        recalibrate_batchnorm(pruned, data, args.imgsz, args.recal_images)
        report["recal_images"] = min(args.recal_images, len(data))
    save_checkpoint(pruned, args.output, pruning={k: v for k, v in report.items() if k != "layers"},
                    source=Path(args.weights).name)
    report["output"] = str(args.output)
    if args.onnx:
        from ..export.onnx_export import export_onnx

        _, exp = export_onnx(pruned, args.onnx, imgsz=args.imgsz, source=Path(args.output).name)
        report.update(onnx=str(args.onnx), onnx_mb=exp["size_mb"])
        if cut:  # one-shot pruning without fine-tuning loses most of the mAP (0.002 at 50 % on the shared model)
            print(f"warning: {args.onnx} is pruned but not fine-tuned, so expect a large mAP loss; fine-tune it "
                  f"first: python -m sdk train --weights {args.output} --data <train images> --epochs 20 "
                  f"(or prune --gradual), then export", file=sys.stderr)
            report["warning"] = "pruned, not fine-tuned"
    rows = [[n, a, b] for n, (a, b) in report["layers"].items() if a != b]
    print_table(rows, ["layer", "channels", "kept"])
    print_table([["params", report["params_before"], report["params"]],
                 [f"GFLOPs @{args.imgsz}", f"{report['gflops_before']:.3f}", f"{report['gflops']:.3f}"]],
                ["", "before", "after"])
    print_json_last(report)
    return 0


def run_gradual(args, model):
    import sys

    from ..models.checkpoint import save_checkpoint
    from ..prune.api import make_criterion
    from ..prune.gradual import StructuredGradualPruning, schedule_for
    from ..prune.measure import count_gflops, count_params
    from ..prune.recalibrate import recalibrate_batchnorm
    from .train import load_data, make_trainer

    train_ds, val_ds = load_data(args, model)
    before = {"params": count_params(model), "gflops": count_gflops(model, args.imgsz)}
    log = (lambda m: print(m, file=sys.stderr, flush=True))

    def criterion_fn(m):  # scored on the model as it is at each event
        return make_criterion(args.criterion, m, train_ds, args.imgsz, args.stats_images, args.seed, progress=False)

    recal = (lambda m: recalibrate_batchnorm(m, train_ds, args.imgsz, args.recal_images)) \
        if args.recal_images > 0 else None
    trainer = make_trainer(args, model, train_ds, val_ds)
    batches = -(-len(trainer.train_data) // trainer.batch_size)
    steps = trainer.epochs * -(-batches // trainer.accumulate)  # optimizer steps, as the trainer counts them
    schedule = schedule_for(steps, args.level, args.prune_updates, args.prune_end, args.prune_begin)
    gp = StructuredGradualPruning.for_model(model, schedule, criterion_fn, round_to=args.round_to,
                                            recalibrate=recal, log=log)
    trainer.step_callbacks.append(gp)
    res = trainer.fit()
    if gp.current < args.level - 1e-9:  # cannot happen with schedule_for; guards a changed budget
        raise SDKError(f"--gradual: reached level {gp.current}, expected {args.level}")
    pruned = trainer.best_model()
    report = {"criterion": args.criterion, "level": args.level, "gradual": True, "round_to": args.round_to,
              "schedule": {"total_steps": steps, "begin_step": schedule.begin_step, "updates": schedule.num_updates,
                           "frequency": schedule.frequency, "end_step": schedule.end_step},
              "events": gp.history, "params_before": before["params"], "params": count_params(pruned),
              "gflops_before": before["gflops"], "gflops": count_gflops(pruned, args.imgsz), "imgsz": args.imgsz,
              "layers": {n: [w, gp.targets(args.level)[n]] for n, w in gp.base_widths.items()},
              "finetune": {k: res[k] for k in ("epochs", "steps", "seconds", "best_epoch", "history")
                           if k in res}}
    for k in ("best_map50", "best_map50_95", "final_map50", "final_map50_95"):
        if k in res:
            report[k] = res[k]
    save_checkpoint(pruned, args.output, pruning={k: v for k, v in report.items() if k not in ("layers", "finetune")},
                    source=Path(args.weights).name)
    report["output"] = str(args.output)
    if args.onnx:
        from ..export.onnx_export import export_onnx

        _, exp = export_onnx(pruned, args.onnx, imgsz=args.imgsz, source=Path(args.output).name)
        report.update(onnx=str(args.onnx), onnx_mb=exp["size_mb"])
    print_table([[e["step"], f"{e['target']:.3f}", f"{e['filter_sparsity']:.3f}", f"{e['params']:,}"]
                 for e in gp.history], ["step", "scheduled level", "filter sparsity", "params"])
    print_table([["params", report["params_before"], report["params"]],
                 [f"GFLOPs @{args.imgsz}", f"{report['gflops_before']:.3f}", f"{report['gflops']:.3f}"]],
                ["", "before", "after"])
    print_json_last(report)
    return 0

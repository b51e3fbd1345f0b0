"""`python -m sdk prune-sweep`: pruning levels x criteria, fine-tuned with one budget, the trade-off table.

Writes to --out-dir: prune_sweep.md, prune_sweep.json, map_vs_params.png, map_vs_latency.png (atomically),
plus checkpoints/<model>/best.pt and onnx/<model>.onnx for every row.
"""
import sys

from ..deps import require
from . import args as groups
from .common import print_json_last, print_table


def add_arguments(p):
    p.add_argument("--weights", required=True, help="official YOLOv7 .pt or SDK checkpoint (the unpruned model)")
    p.add_argument("--data", required=True, help="training data (statistics and fine-tuning): YOLO, COCO, VOC")
    p.add_argument("--split", default="train")
    p.add_argument("--val-data", default=None, help="validation data (default: --data with --val-split)")
    p.add_argument("--val-split", default="val")
    p.add_argument("--levels", default="0,0.5,0.6,0.7,0.8,0.9", help="comma-separated ratios in [0, 1)")
    p.add_argument("--criteria", default="fmc,l1", help="comma-separated: fmc, l1")
    p.add_argument("--epochs", type=groups.integer(0, 10**5), default=10,
                   help="fine-tune epochs per model (0: no fine-tune)")
    p.add_argument("--batch-size", type=groups.integer(1, 4096), default=8)
    groups.add_imgsz(p)
    p.add_argument("--lr", type=groups.POSITIVE, default=None, help="fine-tune learning rate (default hyp lr0 0.01)")
    p.add_argument("--warmup-epochs", type=groups.NON_NEGATIVE, default=1.0)
    p.add_argument("--finetune-unpruned", action="store_true",
                   help="fine-tune the unpruned model too (default: level 0 is the checkpoint as given)")
    p.add_argument("--hyp", nargs="*", default=[], metavar="KEY=VALUE",
                   help="fine-tune hyp overrides, e.g. mosaic=0 (see python -m sdk train)")
    p.add_argument("--max-images", type=groups.COUNT, default=None, help="use the first N training images only")
    p.add_argument("--max-val-images", type=groups.COUNT, default=None, help="score on the first N val images only")
    p.add_argument("--bench-runs", type=groups.COUNT, default=30, help="timed onnxruntime runs per model")
    p.add_argument("--out-dir", required=True)
    groups.add_threads(p, None, "torch CPU threads (1 avoids thread thrashing on a busy machine)")
    groups.add_pruning(p)


def run(args):
    require("torch", "pruning")
    from ..data.datasets import load_dataset
    from ..errors import SDKError
    from ..models.checkpoint import load_checkpoint
    from ..prune.criteria import CRITERIA
    from ..experiments.prune_sweep import COLUMNS, parse_levels, run_sweep, table_rows, write_outputs
    from ..train.recipe import parse_hyp

    levels = parse_levels(args.levels)
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    bad = [c for c in criteria if c not in CRITERIA]
    if bad or not criteria:
        raise SDKError(f"--criteria: got '{args.criteria}', expected a comma-separated subset of "
                       f"{', '.join(CRITERIA)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.weights)
    names = list(model.names)
    train = load_dataset(args.data, names=names, split=args.split)
    val = load_dataset(args.val_data or args.data, names=names, split=args.val_split)
    result = run_sweep(model, train, val, args.out_dir, levels, criteria, epochs=args.epochs,
                       batch_size=args.batch_size, imgsz=args.imgsz, lr=args.lr, warmup_epochs=args.warmup_epochs,
                       hyp=parse_hyp(args.hyp), round_to=args.round_to, stats_images=args.stats_images,
                       max_train_images=args.max_images, max_val_images=args.max_val_images,
                       bench_runs=args.bench_runs, seed=args.seed, finetune_unpruned=args.finetune_unpruned,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    result["outputs"] = write_outputs(result, args.out_dir)
    print_table(table_rows(result), [h for _, h in COLUMNS])
    print_json_last(result)
    return 0

"""`python -m sdk train`: fine-tune a checkpoint (pruned or not) or train from a cfg, on the CPU."""
import sys
from pathlib import Path

from ..deps import require
from ..errors import SDKError
from .common import print_json_last, print_table


def add_arguments(p):
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", help="checkpoint to fine-tune: official YOLOv7 .pt or SDK checkpoint (pruned too)")
    src.add_argument("--cfg", help="model cfg yaml (official YOLOv7 format) to train from scratch")
    p.add_argument("--names", default=None, help="class names for --cfg, comma-separated (default: 0..nc-1)")
    add_data_args(p)
    add_finetune_args(p)
    add_run_args(p)
    p.add_argument("--onnx", default=None, help="also export best.pt to this ONNX (class names from the data)")


def add_data_args(p, train=True):
    """Training and validation data (shared by train, distill and prune --gradual, which has its own --data)."""
    if train:
        p.add_argument("--data", required=True, help="training data: YOLO images folder or dataset root, data "
                                                     "yaml, COCO json or Pascal VOC folder")
        p.add_argument("--split", default="train", help="split of --data to train on (dataset roots, yaml, VOC)")
    p.add_argument("--val-data", default=None, help="validation data (default: --data with --val-split)")
    p.add_argument("--val-split", default="val")
    p.add_argument("--no-val", action="store_true", help="skip validation (best.pt = last weights)")
    p.add_argument("--max-images", type=int, default=None, help="train on the first N images only")
    p.add_argument("--max-val-images", type=int, default=None)


def add_finetune_args(p, epochs=10, imgsz=True):
    """The fine-tune budget and recipe (shared by train, distill and prune --gradual)."""
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=8)
    if imgsz:
        p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (default hyp lr0 0.01)")
    p.add_argument("--warmup-epochs", type=float, default=None, help="warm-up epochs (default hyp: 3)")
    p.add_argument("--nominal-batch", type=int, default=None,
                   help="accumulate gradients to this many images per step (default: step every batch)")
    p.add_argument("--hyp", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override hyp.scratch.tiny values, e.g. mosaic=0.5 fliplr=0")
    p.add_argument("--no-augment", action="store_true", help="plain letterbox, no mosaic/flip/HSV")


def add_run_args(p, out_required=True, seed=True, resume=True):
    p.add_argument("--out-dir", required=out_required, help="folder for best.pt and last.pt")
    if resume:
        p.add_argument("--resume", default=None,
                       help="last.pt of an interrupted run: continues it (same settings; --weights not needed)")
    if seed:
        p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def check_budget(args):
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            raise SDKError(f"{flag}: got {value}, expected at least 1")


def load_data(args, model):
    """(train, val or None) datasets from the shared data arguments, with the model's class names."""
    from ..data.datasets import load_dataset
    from ..train.heads import adapt_to_dataset

    rebuilt = adapt_to_dataset(model, args.data, args.split)  # a dataset of other classes: a head for them
    if rebuilt:
        print(rebuilt, file=sys.stderr)
    val = None if args.no_val else (args.val_data or args.data)
    train_ds = load_dataset(args.data, names=list(model.names), split=args.split)
    val_ds = load_dataset(val, names=list(model.names), split=args.val_split) if val else None
    return train_ds, val_ds


def make_trainer(args, model, train_ds, val_ds, loss_hooks=(), step_callbacks=(), resume=None):
    """A Trainer from the shared arguments (train, distill and prune --gradual build theirs the same way)."""
    from ..train.trainer import Trainer

    return Trainer(model, train_ds, val_ds, epochs=args.epochs, batch_size=args.batch_size, imgsz=args.imgsz,
                   lr=args.lr, hyp=parse_hyp(args.hyp), out_dir=args.out_dir, nominal_batch=args.nominal_batch,
                   warmup_epochs=args.warmup_epochs, seed=args.seed, max_train_images=args.max_images,
                   max_val_images=args.max_val_images, augment=not args.no_augment, resume=resume,
                   threads=args.threads, loss_hooks=loss_hooks, step_callbacks=step_callbacks)


def print_results(res, extra_columns=()):
    """The per-epoch table (plus any extra history columns, e.g. distillation losses) and the JSON line."""
    cols = [k for k in extra_columns if any(k in r for r in res["history"])]
    rows = [[r["epoch"], f"{r.get('train_loss', 0):.4f}", *(f"{r.get(k, float('nan')):.4f}" for k in cols),
             f"{r.get('map50', float('nan')):.4f}", f"{r.get('map50_95', float('nan')):.4f}"]
            for r in res["history"]]
    print_table(rows, ["epoch", "train loss", *cols, "mAP@.5", "mAP@.5:.95"])
    print(f"best: epoch {res['best_epoch']} -> {res.get('best', '')}")
    print_json_last(res)


def parse_hyp(items):
    from ..train.hyp import HYP_TINY

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in HYP_TINY:
            raise SDKError(f"--hyp {item}: expected KEY=VALUE with KEY one of {', '.join(HYP_TINY)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise SDKError(f"--hyp {item}: '{value}' is not a number, expected KEY=NUMBER")
    return out


def model_from_cfg(path, names=None):
    import yaml

    from ..models.yolo import YOLO

    p = Path(path)
    if not p.is_file():
        raise SDKError(f"--cfg {path}: file not found, expected a YOLOv7 model cfg yaml")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise SDKError(f"--cfg {path}: not valid yaml ({str(e).splitlines()[0]}), expected a YOLOv7 model cfg")
    if not isinstance(cfg, dict):
        raise SDKError(f"--cfg {path}: got {type(cfg).__name__}, expected a YOLOv7 model cfg mapping")
    names = [n.strip() for n in names.split(",")] if names else None
    if names and len(names) != cfg.get("nc"):
        raise SDKError(f"--names: got {len(names)} names, expected nc = {cfg.get('nc')} from the cfg")
    return YOLO(cfg, names=names)


def run(args):
    check_budget(args)
    parse_hyp(args.hyp)
    require("torch", "training")
    from ..models.checkpoint import load_checkpoint

    if not (args.weights or args.cfg or args.resume):
        raise SDKError("--weights/--cfg: got neither, expected a checkpoint to fine-tune, a cfg to train from, "
                       "or --resume last.pt")
    if args.weights or args.resume and not args.cfg:
        model = load_checkpoint(args.weights or args.resume)[0]  # resuming: the run's own architecture
    else:
        model = model_from_cfg(args.cfg, args.names)
    train_ds, val_ds = load_data(args, model)
    res = make_trainer(args, model, train_ds, val_ds, resume=args.resume).fit()
    if args.onnx and res.get("best"):
        from ..export.onnx_export import export_onnx

        res["onnx"] = str(export_onnx(load_checkpoint(res["best"])[0], args.onnx, imgsz=args.imgsz,
                                      source=Path(res["best"]).name)[0])
    print_results(res)
    return 0

"""`python -m sdk train`: fine-tune a checkpoint (pruned or not) or train from a cfg, on the CPU."""
from ..deps import require
from ..errors import SDKError
from . import args as groups
from .common import print_results


def add_arguments(p):
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", help="checkpoint to fine-tune: official YOLOv7 .pt or SDK checkpoint (pruned too)")
    src.add_argument("--cfg", help="model cfg yaml (official YOLOv7 format) to train from scratch")
    p.add_argument("--names", default=None, help="class names for --cfg, comma-separated (default: 0..nc-1)")
    groups.add_train_data(p)
    groups.add_finetune(p)
    groups.add_run(p)
    p.add_argument("--onnx", default=None, help="also export best.pt to this ONNX (class names from the data)")


def run(args):
    recipe = groups.recipe_from_args(args)  # bad --hyp fails before torch loads
    require("torch", "training")
    from ..models.checkpoint import load_checkpoint
    from ..train.recipe import make_trainer, model_from_cfg

    if not (args.weights or args.cfg or args.resume):
        raise SDKError("--weights/--cfg: got neither, expected a checkpoint to fine-tune, a cfg to train from, "
                       "or --resume last.pt")
    if args.weights or args.resume and not args.cfg:
        model = load_checkpoint(args.weights or args.resume)[0]  # resuming: the run's own architecture
    else:
        names = [n.strip() for n in args.names.split(",")] if args.names else None
        model = model_from_cfg(args.cfg, names)
    train_ds, val_ds = groups.train_val_from_args(args, model)
    res = make_trainer(model, train_ds, val_ds, recipe, out_dir=args.out_dir, resume=args.resume).fit()
    if args.onnx and res.get("best"):
        from pathlib import Path

        from ..export.onnx_export import export_onnx

        res["onnx"] = str(export_onnx(load_checkpoint(res["best"])[0], args.onnx, imgsz=recipe.imgsz,
                                      source=Path(res["best"]).name)[0])
    print_results(res)
    return 0

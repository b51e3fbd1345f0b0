"""`python -m sdk train`: fine-tune a checkpoint (pruned or not) or train from a cfg, on the CPU."""
from ..deps import require
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


def run(args):
    from ..train.api import fine_tune

    recipe = groups.recipe_from_args(args)  # bad --hyp fails before torch loads
    require("torch", "training")
    names = [n.strip() for n in args.names.split(",")] if args.names else None
    res = fine_tune(args.weights, args.data, recipe, args.out_dir, split=args.split, val_data=args.val_data,
                    val_split=args.val_split, validate=not args.no_val, cfg=args.cfg, names=names,
                    resume=args.resume)
    print_results(res.to_dict())
    return 0

"""`python -m sdk distill`: fine-tune a (pruned) student with a teacher's outputs as extra targets.

The same run as `python -m sdk train --weights STUDENT` (data, budget, checkpoints, resume), plus
`sdk.train.distill.OutputDistillation(teacher)` as a loss hook (`sdk.train.api.distill`): on every batch the
frozen teacher (e.g. the unpruned model) is run and the student is pulled towards its objectness, class scores
and confident boxes.
"""
from ..deps import require
from . import args as groups
from .common import print_results

KD_COLUMNS = ("train_kd_obj", "train_kd_cls", "train_kd_box")


def add_arguments(p):
    p.add_argument("--weights", default=None,
                   help="the student to fine-tune: SDK checkpoint (e.g. from python -m sdk prune) or official .pt")
    p.add_argument("--teacher", required=True,
                   help="the teacher: official YOLOv7 .pt or SDK checkpoint with the student's head (classes, "
                        "anchors), e.g. the unpruned model")
    groups.add_train_data(p)
    groups.add_finetune(p)
    groups.add_run(p)
    g = p.add_argument_group("distillation")
    g.add_argument("--kd-weight", type=groups.POSITIVE, default=1.0, help="gain on the whole distillation loss")
    g.add_argument("--temperature", type=groups.POSITIVE, default=1.0,
                   help="softening of the teacher's scores (T^2-scaled)")
    g.add_argument("--obj-gain", type=groups.NON_NEGATIVE, default=1.0, help="objectness KL gain")
    g.add_argument("--cls-gain", type=groups.NON_NEGATIVE, default=1.0,
                   help="class KL gain (weighted by teacher objectness)")
    g.add_argument("--box-gain", type=groups.NON_NEGATIVE, default=0.05, help="box L2 gain where the teacher is confident")
    g.add_argument("--box-conf", type=groups.PROBABILITY, default=0.5, help="teacher confidence for the box term")


def run(args):
    from ..train.api import DistillConfig, distill

    recipe = groups.recipe_from_args(args)
    kd = DistillConfig(weight=args.kd_weight, temperature=args.temperature, obj_gain=args.obj_gain,
                       cls_gain=args.cls_gain, box_gain=args.box_gain, box_conf=args.box_conf)
    require("torch", "distillation")
    res = distill(args.weights, args.teacher, args.data, recipe, args.out_dir, kd, split=args.split,
                  val_data=args.val_data, val_split=args.val_split, validate=not args.no_val, resume=args.resume)
    print_results(res.to_dict(), KD_COLUMNS)
    return 0

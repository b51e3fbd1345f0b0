"""`python -m sdk distill`: fine-tune a (pruned) student with a teacher's outputs as extra targets.

The same run as `python -m sdk train --weights STUDENT` (data, budget, checkpoints, resume), plus
`sdk.distill.OutputDistillation(teacher)` as a loss hook: on every batch the frozen teacher (e.g. the unpruned
model) is run and the student is pulled towards its objectness, class scores and confident boxes.
"""
from ..deps import require
from ..errors import SDKError
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


def check_teacher(teacher, student, path):
    """Distillation compares the raw head maps cell by cell: the heads must be alike."""
    import torch

    ts, ss = teacher.detect, student.detect
    if ts.nc != ss.nc:
        raise SDKError(f"--teacher {path}: has {ts.nc} classes ({', '.join(map(str, teacher.names))}), expected "
                       f"the student's {ss.nc} ({', '.join(map(str, student.names))})")
    if (ts.nl, ts.na) != (ss.nl, ss.na) or not torch.allclose(ts.anchors, ss.anchors) or \
            list(teacher.stride) != list(student.stride):
        raise SDKError(f"--teacher {path}: its head has {ts.nl} levels x {ts.na} anchors (strides "
                       f"{[int(s) for s in teacher.stride]}), expected the student's {ss.nl} x {ss.na} with the "
                       f"same anchors and strides")


def run(args):
    recipe = groups.recipe_from_args(args)
    require("torch", "distillation")
    from ..distill import OutputDistillation
    from ..models.checkpoint import load_checkpoint
    from ..train.recipe import make_trainer

    if not (args.weights or args.resume):
        raise SDKError("--weights: got nothing, expected the student checkpoint (or --resume last.pt)")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # before the teacher runs
    student = load_checkpoint(args.weights or args.resume)[0]  # resuming: the run's own architecture
    teacher = load_checkpoint(args.teacher)[0]
    check_teacher(teacher, student, args.teacher)
    names_before = list(student.names)
    train_ds, val_ds = groups.train_val_from_args(args, student)  # may rebuild the head for the data's classes
    if list(student.names) != names_before and list(teacher.names) != list(student.names):
        raise SDKError(f"--teacher {args.teacher}: has classes {', '.join(map(str, teacher.names))}, expected the "
                       f"student's {', '.join(map(str, student.names))} (fine-tune the teacher on --data first)")
    kd = OutputDistillation(teacher, weight=args.kd_weight, obj_gain=args.obj_gain, cls_gain=args.cls_gain,
                            box_gain=args.box_gain, temperature=args.temperature, box_conf=args.box_conf)
    res = make_trainer(student, train_ds, val_ds, recipe, out_dir=args.out_dir, resume=args.resume,
                       loss_hooks=[kd]).fit()
    res["distillation"] = {"teacher": str(args.teacher), "weight": args.kd_weight, "temperature": args.temperature,
                           "obj_gain": args.obj_gain, "cls_gain": args.cls_gain, "box_gain": args.box_gain,
                           "box_conf": args.box_conf}
    print_results(res, KD_COLUMNS)
    return 0

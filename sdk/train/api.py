"""Training jobs as calls: fine-tune (or train from a cfg) and distill, with plain values in and a typed result
out. `python -m sdk train` and `python -m sdk distill` are these calls with flags mapped onto them.

    from sdk.train.api import fine_tune
    from sdk.train.recipe import FinetuneRecipe
    result = fine_tune("yolov7-tiny.pt", "data/pennfudan", FinetuneRecipe(epochs=10), out_dir="runs/ft")
    print(result.best, result.best_map50)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SDKError
from .recipe import FinetuneRecipe, load_train_val, make_trainer, model_from_cfg


@dataclass
class TrainResult:
    """What a training run produced: the checkpoints, the best epoch's mAP, the per-epoch history."""
    best: str | None
    last: str | None
    best_epoch: int
    history: list
    seconds: float
    best_map50: float | None = None
    best_map50_95: float | None = None
    summary: dict = field(default_factory=dict)  # everything the trainer reports (the CLI's JSON line)

    @classmethod
    def from_fit(cls, res: dict) -> "TrainResult":
        return cls(best=res.get("best"), last=res.get("last"), best_epoch=res["best_epoch"], history=res["history"],
                   seconds=res["seconds"], best_map50=res.get("best_map50"), best_map50_95=res.get("best_map50_95"),
                   summary=res)

    def to_dict(self) -> dict:
        return dict(self.summary)


def _model(weights=None, cfg=None, names=None, resume=None):
    from ..models.checkpoint import load_checkpoint

    if not (weights or cfg or resume):
        raise SDKError("weights/cfg: got neither, expected a checkpoint to fine-tune, a cfg to train from, "
                       "or resume last.pt")
    if weights or resume and not cfg:
        return load_checkpoint(weights or resume)[0]  # resuming: the run's own architecture
    return model_from_cfg(cfg, names)


def fine_tune(weights: str | Path | None, data, recipe: FinetuneRecipe | None = None, out_dir: str | Path | None = None,
              split: str = "train", val_data=None, val_split: str = "val", validate: bool = True, cfg=None,
              names=None, resume=None, model=None) -> TrainResult:
    """Fine-tune a checkpoint (pruned or not) or train a `cfg` from scratch on `data`; returns the result.
    `model` (a loaded module) replaces `weights`."""
    from ..deps import require

    require("torch", "training")
    recipe = recipe or FinetuneRecipe()
    model = model if model is not None else _model(weights, cfg, names, resume)
    train, val = load_train_val(model, data, split, val_data, val_split, validate)
    return TrainResult.from_fit(make_trainer(model, train, val, recipe, out_dir=out_dir, resume=resume).fit())


@dataclass
class DistillConfig:
    """The distillation loss (`sdk.train.distill.OutputDistillation`): gains, temperature, box confidence."""
    weight: float = 1.0
    temperature: float = 1.0
    obj_gain: float = 1.0
    cls_gain: float = 1.0
    box_gain: float = 0.05
    box_conf: float = 0.5

    def __post_init__(self):
        for name in ("weight", "temperature"):
            if not getattr(self, name) > 0:
                raise SDKError(f"{'kd_weight' if name == 'weight' else name}: got {getattr(self, name)}, "
                               f"expected a positive number")
        for name in ("obj_gain", "cls_gain", "box_gain"):
            if getattr(self, name) < 0:
                raise SDKError(f"{name}: got {getattr(self, name)}, expected 0 or more")


def distill(student: str | Path | None, teacher: str | Path, data, recipe: FinetuneRecipe | None = None,
            out_dir: str | Path | None = None, kd: DistillConfig | None = None, split: str = "train",
            val_data=None, val_split: str = "val", validate: bool = True, resume=None) -> TrainResult:
    """Fine-tune `student` with `teacher`'s outputs as extra targets (the same run as `fine_tune` plus the
    distillation loss hook); returns the result with the distillation settings in its summary."""
    from ..deps import require
    from ..models.checkpoint import load_checkpoint
    from .distill import OutputDistillation, check_teacher

    require("torch", "distillation")
    recipe, kd = recipe or FinetuneRecipe(), kd or DistillConfig()
    if not (student or resume):
        raise SDKError("weights: got nothing, expected the student checkpoint (or resume last.pt)")
    if recipe.threads:
        import torch

        torch.set_num_threads(recipe.threads)  # before the teacher runs
    student_model = load_checkpoint(student or resume)[0]  # resuming: the run's own architecture
    teacher_model = load_checkpoint(teacher)[0]
    check_teacher(teacher_model, student_model, teacher)
    train, val = load_train_val(student_model, data, split, val_data, val_split, validate)
    hook = OutputDistillation(teacher_model, weight=kd.weight, obj_gain=kd.obj_gain, cls_gain=kd.cls_gain,
                              box_gain=kd.box_gain, temperature=kd.temperature, box_conf=kd.box_conf)
    res = make_trainer(student_model, train, val, recipe, out_dir=out_dir, resume=resume, loss_hooks=[hook]).fit()
    res["distillation"] = {"teacher": str(teacher), "weight": kd.weight, "temperature": kd.temperature,
                           "obj_gain": kd.obj_gain, "cls_gain": kd.cls_gain, "box_gain": kd.box_gain,
                           "box_conf": kd.box_conf}
    return TrainResult.from_fit(res)

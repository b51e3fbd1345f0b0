"""A fine-tune budget and recipe as plain values, and the few steps every training job shares (train, distill,
qat, prune --gradual, the pruning tables): the model from a cfg, the train/val data, the Trainer.

    from sdk.train.recipe import FinetuneRecipe, load_train_val, make_trainer
    recipe = FinetuneRecipe(epochs=10, imgsz=416, hyp=parse_hyp(["mosaic=0"]))
    train, val = load_train_val(model, "data/pennfudan")
    results = make_trainer(model, train, val, recipe, out_dir="runs/ft").fit()
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import SDKError


@dataclass
class FinetuneRecipe:
    """What a fine-tune run does (the `--epochs ... --no-augment` flags of every training command)."""
    epochs: int = 10
    batch_size: int = 8
    imgsz: int = 416
    lr: float | None = None  # None: hyp lr0 (0.01)
    warmup_epochs: float | None = None  # None: hyp (3)
    nominal_batch: int | None = None  # accumulate gradients to this many images per step
    hyp: dict = field(default_factory=dict)  # hyp.scratch.tiny overrides
    augment: bool = True
    seed: int = 0
    threads: int | None = None  # torch CPU threads
    max_images: int | None = None
    max_val_images: int | None = None
    # fine-tune with another activation, e.g. "ReLU": the weights start from the checkpoint's (sdk.models.yolo)
    activation: str | None = None

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise SDKError(f"{name}: got {getattr(self, name)}, expected at least 1")


def parse_hyp(items: Iterable[str]) -> dict:
    """['mosaic=0', 'fliplr=0.5'] -> {'mosaic': 0.0, 'fliplr': 0.5}; keys must be hyp.scratch.tiny's."""
    from .hyp import HYP_TINY

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in HYP_TINY:
            raise SDKError(f"hyp {item}: expected KEY=VALUE with KEY one of {', '.join(HYP_TINY)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise SDKError(f"hyp {item}: '{value}' is not a number, expected KEY=NUMBER") from None
    return out


def model_from_cfg(path: str | Path, names: Sequence[str] | None = None):
    """A fresh YOLO model from an official YOLOv7 cfg yaml (class names: `names`, else 0..nc-1)."""
    from ..models.yolo import YOLO
    from ..yamlfile import read_yaml

    cfg = read_yaml(path, f"cfg {path}", "a YOLOv7 model cfg yaml")
    if not isinstance(cfg, dict):
        raise SDKError(f"cfg {path}: got {type(cfg).__name__}, expected a YOLOv7 model cfg mapping")
    names = list(names) if names else None
    if names and len(names) != cfg.get("nc"):
        raise SDKError(f"names: got {len(names)} names, expected nc = {cfg.get('nc')} from the cfg")
    return YOLO(cfg, names=names)


def load_train_val(model, data, split: str = "train", val_data=None, val_split: str = "val",
                   validate: bool = True):
    """(train, val or None) datasets with the model's class names; val defaults to `data`'s `val_split`.
    Data of classes the model lacks first gets the model a head for them (`sdk.train.heads`, said on stderr)."""
    import sys

    from ..data.datasets import load_dataset
    from .heads import adapt_to_dataset

    rebuilt = adapt_to_dataset(model, data, split)
    if rebuilt:
        print(rebuilt, file=sys.stderr)
    names = list(model.names)
    train = load_dataset(data, names=names, split=split)
    val_source = (val_data or data) if validate else None
    val = load_dataset(val_source, names=names, split=val_split) if val_source else None
    return train, val


def make_trainer(model, train, val, recipe: FinetuneRecipe, out_dir=None, resume=None, loss_hooks=(),
                 step_callbacks=(), trainer_class=None):
    """The Trainer for `recipe` (distill adds a loss hook, gradual pruning a step callback)."""
    from .trainer import Trainer

    cls = trainer_class or Trainer
    if recipe.activation:
        from ..models.yolo import with_activation

        with_activation(model, recipe.activation)
    return cls(model, train, val, epochs=recipe.epochs, batch_size=recipe.batch_size, imgsz=recipe.imgsz,
               lr=recipe.lr, hyp=recipe.hyp, out_dir=out_dir, nominal_batch=recipe.nominal_batch,
               warmup_epochs=recipe.warmup_epochs, seed=recipe.seed, max_train_images=recipe.max_images,
               max_val_images=recipe.max_val_images, augment=recipe.augment, resume=resume, threads=recipe.threads,
               loss_hooks=loss_hooks, step_callbacks=step_callbacks)

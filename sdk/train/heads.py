"""The detection head for a dataset's classes: fine-tuning a checkpoint on data of other classes rebuilds the
head's output convs for the new class count (every other weight kept) and starts their biases from the prior
the official training uses (YOLOv7 `Model._initialize_biases`)."""
from __future__ import annotations

import math
from typing import List, Sequence

from ..errors import SDKError


def checkpoint_anchors(path: str) -> List[list]:
    """Anchors (pixels, per level, smallest stride first) from a checkpoint's cfg, as `--anchors` takes them."""
    from ..models.checkpoint import load_checkpoint  # noqa: PLC0415 - torch

    model, _ = load_checkpoint(path)
    anchors = model.yaml.get("anchors")
    if not isinstance(anchors, list):
        raise SDKError(f"--anchors {path}: the checkpoint's cfg has no anchor list, expected a YOLO checkpoint")
    return [[float(v) for v in level] for level in anchors]

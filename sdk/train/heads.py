"""The detection head for a dataset's classes: fine-tuning a checkpoint on data of other classes rebuilds the
head's output convs for the new class count (every other weight kept) and starts their biases from the prior
the official training uses (YOLOv7 `Model._initialize_biases`)."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

from ..errors import SDKError


def checkpoint_anchors(path: str) -> List[list]:
    """Anchors (pixels, per level, smallest stride first) from a checkpoint's cfg, as `--anchors` takes them."""
    from ..models.checkpoint import load_checkpoint  # noqa: PLC0415 - torch

    model, _ = load_checkpoint(path)
    anchors = model.yaml.get("anchors")
    if not isinstance(anchors, list):
        raise SDKError(f"anchors {path}: the checkpoint's cfg has no anchor list, expected a YOLO checkpoint")
    return [[float(v) for v in level] for level in anchors]


def objectness_prior(stride: float) -> float:
    """Official `_initialize_biases`: about 8 objects per 640x640 image, spread over the level's cells."""
    return math.log(8 / (640 / float(stride)) ** 2)


def class_prior(nc: int) -> float:
    """Official `_initialize_biases`: class probability 0.6 / (nc - 0.99) (cls bias for nc == 1 is log(60))."""
    return math.log(0.6 / (nc - 0.99))


def data_class_names(spec: str, split: str = "train") -> Optional[list]:
    """The class names a dataset declares (VOC xml names, COCO categories, data yaml names), or None for YOLO
    txt folders without names, whose class indices are taken to be the model's classes."""
    from ..data.datasets import load_dataset  # noqa: PLC0415

    ds = load_dataset(str(spec), names=None, split=split)
    if ds.layout == "yolo" and list(ds.names) == [str(i) for i in range(len(ds.names))]:
        return None
    return list(ds.names)


def needs_new_head(model_names: Sequence[str], data_names: Optional[Sequence[str]]) -> bool:
    """A dataset whose classes are all model classes is scored by name on the model's head; any other class
    needs a head built for the dataset's classes."""
    return bool(data_names) and not all(n in list(model_names) for n in data_names)


def rebuild_head(model, names: Sequence[str]) -> str:
    """Replace the detection layer's output convs (in place) with ones for `names`, keep every other weight,
    and return one line saying what was rebuilt.

    Box rows (x, y, w, h of each anchor) keep their trained weights: box regression does not depend on the
    class. Objectness and class rows start fresh, their biases at the official prior."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    names = [str(n) for n in names]
    nc = len(names)
    if nc < 1:
        raise SDKError("dataset classes: got none, expected at least one class name")
    old = model.detect
    old_nc, old_names = old.nc, list(model.names)
    anchors_px = model.yaml["anchors"]
    new = type(old)(nc, anchors_px, [conv.in_channels for conv in old.m])
    for attr in ("i", "f", "type"):
        setattr(new, attr, getattr(old, attr))
    new.stride = old.stride.clone()
    new.anchors.copy_(old.anchors)
    new.anchor_grid.copy_(old.anchor_grid)
    na = old.na
    with torch.no_grad():
        for i, (src, dst) in enumerate(zip(old.m, new.m)):
            w_old = src.weight.view(na, old.no, -1)
            w_new = dst.weight.view(na, new.no, -1)
            w_new[:, :4] = w_old[:, :4]
            b_old, b_new = src.bias.view(na, old.no), dst.bias.view(na, new.no)
            b_new[:, :4] = b_old[:, :4]
            b_new[:, 4] += objectness_prior(float(new.stride[i]))
            b_new[:, 5:] += class_prior(nc)
            if old.implicit:
                new.ia[i].implicit.copy_(old.ia[i].implicit)
                m_old = old.im[i].implicit.view(na, old.no)
                m_new = new.im[i].implicit.view(na, new.no)
                m_new[:, :4] = m_old[:, :4]
    new.fused = old.fused
    if old.fused:  # implicit layers already folded into the old convs: the new ones start without them
        for im in getattr(new, "im", []):
            nn.init.ones_(im.implicit)
        for ia in getattr(new, "ia", []):
            nn.init.zeros_(ia.implicit)
    new.train(old.training)
    model.model[-1] = new
    model.yaml["nc"] = nc
    model.names = names
    convs = f"{len(new.m)} output convs {old.m[0].out_channels}->{new.m[0].out_channels} channels"
    return (f"head: rebuilt layer {new.i} ({type(new).__name__}) for {nc} dataset class{'es' if nc > 1 else ''} "
            f"({', '.join(names[:8])}{' ...' if nc > 8 else ''}) instead of the model's {old_nc} "
            f"({', '.join(old_names[:8])}{' ...' if old_nc > 8 else ''}): {convs}, box rows kept, objectness and "
            f"class rows new with the prior biases; every other weight kept")


def adapt_to_dataset(model, spec: str, split: str = "train") -> Optional[str]:
    """Rebuild `model`'s head (in place) when the dataset at `spec` has classes the model lacks; returns the
    one-line report, or None when the head already fits."""
    names = data_class_names(spec, split)
    if not needs_new_head(model.names, names):
        return None
    return rebuild_head(model, names)

"""Structural pruning through Torch-Pruning's DependencyGraph, then the real widths written back into the cfg.

Cutting a conv's output channels also cuts its BatchNorm, the matching input channels of every consumer
(through Concat, MaxPool and Upsample), and the ImplicitA vectors in front of the detection convs; the
dependency graph finds all of them. The detection convs' outputs are never cut.
"""
import numpy as np

from ..deps import require
from ..errors import SDKError
from .plan import prunable_layers


def _implicit_params(model):
    """ImplicitA/M live as bare (1, C, 1, 1) parameters: tell Torch-Pruning to cut them on dim 1."""
    from ..models.common import ImplicitA, ImplicitM

    return [(m.implicit, 1) for m in model.modules() if isinstance(m, (ImplicitA, ImplicitM))]


def dependency_graph(model, imgsz=256):
    import torch

    tp = require("torch_pruning", "structural pruning")
    was_training = model.training
    model.eval()  # trace without touching BatchNorm running statistics
    try:
        with torch.enable_grad():
            dg = tp.DependencyGraph().build_dependency(
                model, example_inputs=torch.zeros(1, 3, imgsz, imgsz),
                unwrapped_parameters=_implicit_params(model), verbose=False)
    finally:
        model.train(was_training)
    return tp, dg


def prune_channels(model, keep, imgsz=256):
    """Keep only `keep[name]` (sorted output-channel indices) of each named Conv layer; in place.

    Returns the model with `model.yaml` holding the new widths.
    """
    layers = prunable_layers(model)
    unknown = [n for n in keep if n not in layers]
    if unknown:
        raise SDKError(f"layer {unknown[0]}: not a prunable Conv layer, expected one of "
                       f"{', '.join(list(layers)[:5])}, ...")
    # Torch-Pruning traces through autograd: frozen parameters (an EMA copy) must take part in the trace, and
    # the parameters it rebuilds come back trainable, so restore each one's flag by name afterwards.
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        _cut(model, layers, keep, imgsz)
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(n not in frozen)
    write_widths_to_cfg(model)
    return model


def _cut(model, layers, keep, imgsz):
    tp, dg = dependency_graph(model, imgsz)
    for name, idxs in keep.items():
        conv = layers[name].conv
        c = conv.out_channels
        idxs = np.asarray(idxs, np.int64)
        if len(idxs) == 0 or idxs.min() < 0 or idxs.max() >= c or len(np.unique(idxs)) != len(idxs):
            raise SDKError(f"layer {name}: keep indices {idxs[:8].tolist()}... do not fit its {c} channels, "
                           f"expected 1..{c} distinct indices in [0, {c})")
        drop = sorted(set(range(c)) - set(idxs.tolist()))
        if not drop:
            continue
        group = dg.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=drop)
        if not dg.check_pruning_group(group):
            raise SDKError(f"layer {name}: Torch-Pruning refused to cut {len(drop)} of {c} channels")
        group.prune()


def write_widths_to_cfg(model):
    """Put each Conv's real output width into `model.yaml` (width_multiple 1 keeps them exact), so
    `sdk.models.checkpoint.load_checkpoint` rebuilds the pruned architecture."""
    cfg = model.yaml
    nb = len(cfg["backbone"])
    if cfg.get("width_multiple", 1.0) != 1.0:
        cfg["width_multiple"] = 1.0
    for name, layer in prunable_layers(model).items():
        i = int(name.split(".")[1])
        section, j = (cfg["backbone"], i) if i < nb else (cfg["head"], i - nb)
        entry = list(section[j])
        args = list(entry[3])
        args[0] = int(layer.conv.out_channels)
        entry[3] = args
        section[j] = entry
    return cfg

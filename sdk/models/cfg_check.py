"""Bounds for a model cfg that came from a file, checked before anything is built from it.

A cfg inside a checkpoint is data an attacker controls: a repeat count of 1e8 or a depth multiplier of 1e9 makes
`parse_model` build modules for minutes, a width of 1e6 channels allocates GBs. The bounds are far above any
YOLOv7/v5-family model (yolov7-e6e has 130 layers, 1280 channels, repeat counts below 10) and far below harm.
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import SDKError

MAX_LAYERS = 1024
MAX_REPEATS = 64
MAX_CHANNELS = 8192
MAX_CLASSES = 10_000
MAX_MULTIPLIER = 4.0
MAX_ARGS = 16
MAX_ANCHOR_LEVELS = 8


def _fail(origin, where: str, got: Any, expected: str):
    text = repr(got)
    raise SDKError(f"checkpoint {origin}: cfg {where}: got {text[:40]}{'...' if len(text) > 40 else ''}, "
                   f"expected {expected}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _check_arg(origin, where, a, depth=0):
    if a is None or isinstance(a, bool) or (_is_number(a) and abs(a) <= 1e6):
        return
    if isinstance(a, str) and len(a) <= 64:
        return
    if isinstance(a, (list, tuple)) and depth < 2 and len(a) <= 64:
        for x in a:
            _check_arg(origin, where, x, depth + 1)
        return
    _fail(origin, where, a, "a number, a short string or a short list of them")


def check_cfg(cfg: Any, origin: Any = "checkpoint") -> None:
    """Raise SDKError naming the first out-of-bounds entry; the cfg is left unchanged."""
    from .yolo import CHANNEL_MODULES, MODULES  # the names parse_model knows

    if not isinstance(cfg, dict):
        _fail(origin, "", type(cfg).__name__, "a dict")
    for key in ("nc", "anchors", "backbone", "head"):
        if key not in cfg:
            _fail(origin, f"key '{key}'", "missing", "a YOLOv7 cfg with nc, anchors, backbone and head")
    nc = cfg["nc"]
    if not _is_int(nc) or not 1 <= nc <= MAX_CLASSES:
        _fail(origin, "nc", nc, f"an int in [1, {MAX_CLASSES}]")
    for key in ("depth_multiple", "width_multiple"):
        v = cfg.get(key, 1.0)
        if not _is_number(v) or not 0 < v <= MAX_MULTIPLIER:
            _fail(origin, key, v, f"a number in (0, {MAX_MULTIPLIER:g}]")
    anchors = cfg["anchors"]
    if _is_int(anchors):
        if not 1 <= anchors <= 16:
            _fail(origin, "anchors", anchors, "an anchor count in [1, 16] or a list of anchor lists")
    elif not (isinstance(anchors, list) and 1 <= len(anchors) <= MAX_ANCHOR_LEVELS and all(
            isinstance(a, list) and 2 <= len(a) <= 32 and len(a) % 2 == 0 and
            all(_is_number(v) and 0 < v < 1e5 for v in a) for a in anchors)
            and len({len(a) for a in anchors}) == 1):
        _fail(origin, "anchors", anchors, f"at most {MAX_ANCHOR_LEVELS} lists of positive (w, h) pairs, "
                                          "all of one length")
    layers = cfg["backbone"], cfg["head"]
    if not all(isinstance(part, list) for part in layers):
        _fail(origin, "backbone/head", type(layers[0]).__name__, "lists of layers")
    layers = layers[0] + layers[1]
    if not 1 <= len(layers) <= MAX_LAYERS:
        _fail(origin, "layer count", len(layers), f"1 to {MAX_LAYERS} layers")
    gd = cfg.get("depth_multiple", 1.0)
    gw = cfg.get("width_multiple", 1.0)
    for i, layer in enumerate(layers):
        where = f"layer {i}"
        if not isinstance(layer, (list, tuple)) or len(layer) != 4:
            _fail(origin, where, layer, "[from, number, module, args]")
        f, n, name, args = layer
        refs = [f] if _is_int(f) else f
        if not isinstance(refs, list) or not 1 <= len(refs) <= 16 or \
                not all(_is_int(x) and (x == -1 if i == 0 else -i <= x < i) for x in refs):
            _fail(origin, f"{where} 'from'", f, "-1 or earlier layer indices")
        if not _is_int(n) or not 1 <= n <= MAX_REPEATS or (n > 1 and round(n * gd) > MAX_REPEATS):
            _fail(origin, f"{where} repeat count", n, f"an int in [1, {MAX_REPEATS}] (after depth_multiple)")
        if not isinstance(name, str) or name not in MODULES:
            _fail(origin, f"{where} module", name, f"one of {', '.join(MODULES)}")
        if not isinstance(args, list) or len(args) > MAX_ARGS:
            _fail(origin, f"{where} args", args, f"a list of at most {MAX_ARGS} values")
        _check_arg(origin, f"{where} args", args)
        if MODULES[name] in CHANNEL_MODULES:
            c2 = args[0] if args else None
            if not _is_int(c2) or not 1 <= c2 <= MAX_CHANNELS or c2 * gw > MAX_CHANNELS:
                _fail(origin, f"{where} channels", c2, f"an int in [1, {MAX_CHANNELS}] (after width_multiple)")
            for j, bound in ((1, 15), (2, 8)):  # kernel size, stride
                if len(args) > j and not (_is_int(args[j]) and 1 <= args[j] <= bound):
                    _fail(origin, f"{where} {'kernel' if j == 1 else 'stride'}", args[j], f"an int in [1, {bound}]")
        if name == "nn.Upsample" and len(args) > 1 and not (_is_number(args[1]) and 0 < args[1] <= 4):
            _fail(origin, f"{where} scale factor", args[1], "a number in (0, 4]")
    if layers[-1][2] not in ("Detect", "IDetect"):
        _fail(origin, "last layer", layers[-1][2], "Detect or IDetect")


def check_names(names: Any, nc: int, origin: Any = "checkpoint") -> list[str] | None:
    """Class names as a list of nc short strings (None when the file has none)."""
    if names is None:
        return None
    if isinstance(names, dict):  # {index: name}, as later YOLO versions store them
        names = [names.get(i) for i in range(len(names))]
    if not isinstance(names, (list, tuple)) or len(names) != nc or \
            not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names):
        _fail(origin, "names", names, f"{nc} class names (strings)")
    return list(names)

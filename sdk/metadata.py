"""Pre/post-processing facts stored in the model file itself (ONNX `metadata_props`), so runners need no side file."""
import json
import math
from dataclasses import asdict, dataclass, field, fields

from .errors import SDKError

MAX_SIDE = 8192  # input sides beyond this are not a detector's (and would allocate GBs per frame)
MAX_CLASSES = 100_000
RESIZE_MODES = ("letterbox", "center_crop", "stretch")


@dataclass
class ModelMetadata:
    names: list = field(default_factory=list)
    imgsz: tuple = (640, 640)  # (height, width) the model was exported for
    stride: int = 32
    letterbox_color: tuple = (114, 114, 114)
    channel_order: str = "RGB"  # what the network expects; frames arrive BGR from OpenCV
    scale: float = 1 / 255.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    output_format: str = "yolo"  # (N, boxes, 5+nc): cx, cy, w, h (input pixels), objectness, class scores
    # other layouts: sdk.layouts.LAYOUTS; raw level maps decode with these anchors (per level, w h pairs, pixels)
    anchors: list = field(default_factory=list)
    task: str = "detect"
    input_name: str = "images"
    output_name: str = "output"
    precision: str = "fp32"
    source: str = ""
    # YOLO cfg layer indices per block ({"backbone": [...], "neck": [...], "head": [...]}); ONNX node names
    # carry the layer index as "model.N", so precision plans can select layers by block.
    blocks: dict = field(default_factory=dict)
    # How a frame becomes the input: detectors letterbox; classifiers usually centre-crop (ImageNet) or stretch.
    resize: str = "letterbox"
    crop_fraction: float = 0.875  # centre crop: resize the short side to size / crop_fraction, then crop

    PREFIX = "sdk."

    def to_props(self):
        """Flat string key/values for onnx `metadata_props`; values are JSON."""
        return {self.PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props, what="model"):
        """Read from a `{key: str}` mapping; unknown keys are ignored, missing keys keep defaults.

        Values come from a file someone else may have written: each is checked (type, finite, bounded) and a
        bad one is a one-line error naming `what` and the key.
        """
        known = {f.name for f in fields(cls)}
        kw = {}
        for key, raw in props.items():
            name = key[len(cls.PREFIX):] if key.startswith(cls.PREFIX) else None
            if name in known:
                try:
                    kw[name] = json.loads(raw)
                except (TypeError, ValueError):
                    kw[name] = raw
        for name in ("imgsz", "letterbox_color", "mean", "std"):
            if name in kw and isinstance(kw[name], list):
                kw[name] = tuple(kw[name])
        meta = cls(**kw)
        meta.validate(what, given=kw)
        return meta

    def validate(self, what="model", given=None):
        """Raise a one-line SDKError for the first value a runner cannot use safely; returns self.

        `given` (the keys actually read) limits the check to them, so defaults are never blamed.
        """
        for name, check, expected in _CHECKS:
            if given is not None and name not in given:
                continue
            value = getattr(self, name)
            if not check(value):
                shown = json.dumps(value, default=str)
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                raise SDKError(f"{what}: metadata {self.PREFIX}{name} got {shown}, expected {expected}")
        return self

    @property
    def has_sdk_props(self):
        return bool(self.names)

    def to_json(self):
        return asdict(self)


def _is_int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_num(v, lo, hi, open_lo=False):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v <= hi
    return ok and (v > lo if open_lo else v >= lo)


def _seq(v, n, item):
    return isinstance(v, (list, tuple)) and len(v) == n and all(item(x) for x in v)


def _names(v):
    return isinstance(v, (list, tuple)) and len(v) <= MAX_CLASSES and \
        all(isinstance(n, str) and 0 < len(n) <= 200 for n in v)


def _blocks(v):
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(ix, list) and
                                       all(_is_int(i, 0, 100_000) for i in ix) for k, ix in v.items())


def _text(v):
    return isinstance(v, str) and len(v) <= 1000


# (field, check, what is expected): every key a runner, pre- or post-processor reads from the file
_CHECKS = (
    ("names", _names, f"a JSON list of 1..{MAX_CLASSES} class names (strings)"),
    ("imgsz", lambda v: _seq(v, 2, lambda x: _is_int(x, 1, MAX_SIDE)), f"[height, width] integers in 1..{MAX_SIDE}"),
    ("stride", lambda v: _is_int(v, 1, 1024), "an integer in 1..1024"),
    ("letterbox_color", lambda v: _seq(v, 3, lambda x: _is_int(x, 0, 255)), "3 integers in 0..255"),
    ("channel_order", lambda v: isinstance(v, str) and v.upper() in ("RGB", "BGR"), "\"RGB\" or \"BGR\""),
    ("scale", lambda v: _is_num(v, 0, 1e4, open_lo=True), "a finite number in (0, 10000]"),
    ("mean", lambda v: _seq(v, 3, lambda x: _is_num(x, -1e4, 1e4)), "3 finite numbers in [-10000, 10000]"),
    ("std", lambda v: _seq(v, 3, lambda x: _is_num(x, 1e-6, 1e4)), "3 finite numbers in [1e-6, 10000]"),
    ("output_format", _text, "a string"),
    ("task", _text, "a string"),
    ("input_name", _text, "a string (the input tensor's name)"),
    ("output_name", _text, "a string (the output tensor's name)"),
    ("precision", _text, "a string"),
    ("source", _text, "a string"),
    ("blocks", _blocks, "a JSON object of block name -> list of layer indices"),
    ("resize", lambda v: v in RESIZE_MODES, " or ".join(RESIZE_MODES)),
    ("crop_fraction", lambda v: _is_num(v, 0, 1, open_lo=True), "a number in (0, 1]"),
)


def check_input_dtype(meta, dtype, what="model"):
    """An integer input (uint8/int64) takes raw pixels: scaling them by 1/255 first would feed it 0s and 1s."""
    import numpy as np  # noqa: PLC0415

    dtype = np.dtype(dtype)
    if dtype.kind not in "iub":
        return
    if dtype.kind == "b" or float(meta.scale) != 1.0 or any(meta.mean) or any(s != 1 for s in meta.std):
        raise SDKError(f"{what}: input is {dtype.name} but metadata scale {meta.scale:.4g}, mean {list(meta.mean)}, "
                       f"std {list(meta.std)} make fractions of it, expected a float input or scale 1, mean 0, std 1")


def check_yolo_output(pred, num_classes, what="model"):
    """The raw `(1, boxes, 5 + nc)` output of a YOLO-format model, before post-processing trusts it."""
    import numpy as np  # noqa: PLC0415

    shape = tuple(getattr(pred, "shape", ()))
    want = 5 + num_classes if num_classes else None
    if len(shape) != 3 or shape[0] < 1 or (want is not None and shape[2] != want) or (want is None and shape[2] < 6):
        raise SDKError(f"{what}: output has shape {shape}, expected (1, boxes, {want or '5+classes'}) "
                       f"(cx, cy, w, h, objectness, {num_classes or 'n'} class scores per box)")
    if not np.isfinite(pred).all():
        bad = int((~np.isfinite(pred)).any(axis=-1).sum())
        raise SDKError(f"{what}: output has NaN or infinite values in {bad} of {shape[1]} boxes, expected finite "
                       f"numbers (a broken or mis-converted model)")

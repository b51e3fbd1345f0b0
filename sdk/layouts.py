"""Output layouts of YOLO-family detectors from other exporters: recognised from the graph, decoded to the SDK's
canonical `(B, N, 5 + nc)` rows (cx, cy, w, h in input pixels, objectness, class scores), which the existing
post-processing (confidence filter, NMS, boxes back to the image) takes unchanged.

Layouts (names are what `--layout` takes and what `sdk.output_format` stores):
  yolo          (B, N, 5+nc): official YOLOv7 `export.py --grid`, YOLOv5/YOLOv7 Ultralytics exports, the SDK's own
  anchor-free   (B, 4+nc, N) or (B, N, 4+nc), no objectness: Ultralytics YOLOv8 / YOLO11
  nms-ort       (n, 7): batch, x0, y0, x1, y1, class, score: official `export.py --end2end` for onnxruntime
  efficientnms  num_dets, det_boxes, det_scores, det_classes: TensorRT EfficientNMS (`--end2end` for TensorRT)
  raw           per-level maps (B, na, ny, nx, 5+nc) or (B, na*(5+nc), ny, nx), not decoded: `export.py` without
                --grid; decoded here with anchors from `--anchors` or the checkpoint's cfg

Runtime path: numpy only (no torch). Decoding NMS-inside layouts to the canonical rows (objectness = the graph's
score, a one-hot class) lets the usual NMS run again; it keeps the graph's boxes as long as `--iou` is not below
the graph's own IoU threshold.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from .errors import SDKError

LAYOUTS = ("yolo", "anchor-free", "nms-ort", "efficientnms", "raw")
ALIASES = {"yolov5": "yolo", "yolov7": "yolo", "grid": "yolo", "yolov8": "anchor-free", "yolo11": "anchor-free",
           "end2end": "nms-ort", "ort-nms": "nms-ort", "trt-nms": "efficientnms", "levels": "raw"}
NMS_INSIDE = ("nms-ort", "efficientnms")
LEVEL_STRIDES = ((8, 16, 32), (8, 16, 32, 64), (16, 32), (8, 16))  # P3-P5, P3-P6, and two-level tiny heads
# EfficientNMS_TRT output names: the plugin's own (TensorRT samples) and YOLOv7 export.py's
EFFICIENT_NMS_NAMES = {"num": ("num_dets", "num_detections"), "boxes": ("det_boxes", "detection_boxes"),
                       "scores": ("det_scores", "detection_scores"),
                       "classes": ("det_classes", "detection_classes")}


@dataclass
class ModelOptions:
    """What the user says about a model that its file does not (None = from the file, else the YOLO default)."""

    layout: Optional[str] = None
    names: Optional[list] = None
    anchors: Optional[list] = None  # per level [w0, h0, w1, h1, ...] in input pixels, smallest stride first
    imgsz: Optional[tuple] = None  # (h, w) for inputs whose size is dynamic in the graph
    channel_order: Optional[str] = None  # "RGB" (YOLO) or "BGR"
    scale: Optional[float] = None  # pixel multiplier: 1/255 (YOLO float inputs), 1 for uint8 inputs

    def __post_init__(self):
        if self.layout is not None:
            self.layout = canonical_layout(self.layout)
        if self.channel_order is not None and self.channel_order.upper() not in ("RGB", "BGR"):
            raise SDKError(f"channel order: got '{self.channel_order}', expected RGB or BGR")


@dataclass
class Layout:
    """A recognised output layout: which outputs carry what, and why we think so."""

    name: str
    reason: str
    outputs: tuple  # output names read, in the order decode uses them
    nc: Optional[int] = None  # None: the graph does not say (NMS inside)
    channels_first: bool = False  # anchor-free (B, 4+nc, N)
    anchors: list = field(default_factory=list)  # raw: per level, pixels
    imgsz: tuple = (0, 0)

    @property
    def nms_inside(self) -> bool:
        return self.name in NMS_INSIDE

    def decode(self, out: Mapping[str, np.ndarray], batch: int = 1) -> np.ndarray:
        """Model outputs `{name: array}` -> canonical float32 `(B, N, 5 + nc)` rows."""
        if self.name == "yolo":
            return np.asarray(out[self.outputs[0]], np.float32)
        if self.name == "anchor-free":
            return _from_anchor_free(np.asarray(out[self.outputs[0]], np.float32), self.channels_first)
        if self.name == "nms-ort":
            return _from_nms_rows(np.asarray(out[self.outputs[0]], np.float32), batch, self.classes_width())
        if self.name == "efficientnms":
            return _from_efficient_nms([np.asarray(out[n]) for n in self.outputs], self.classes_width())
        return _from_raw([np.asarray(out[n], np.float32) for n in self.outputs], self.anchors, self.imgsz,
                         self.nc)

    def classes_width(self) -> int:
        return self.nc or 1


def canonical_layout(name: str) -> str:
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in LAYOUTS:
        raise SDKError(f"layout: got '{name}', expected one of {', '.join(LAYOUTS)}")
    return key


def describe_outputs(outputs: Sequence) -> str:
    return ", ".join(f"{o.name} {_fmt(o.shape)}" for o in outputs)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) and d >= 0 else "?" for d in shape) + ")"


def _known(d) -> bool:
    return isinstance(d, int) and d > 0


def cells(imgsz: tuple, strides: Sequence[int]) -> int:
    h, w = imgsz
    return sum(math.ceil(h / s) * math.ceil(w / s) for s in strides)


def _count_reason(n: int, imgsz: tuple):
    """('yolo' | 'anchor-free', why) when N matches 3 anchors or 1 point per cell of the usual stride sets."""
    if not (imgsz and all(_known(d) for d in imgsz) and _known(n)):
        return None
    for strides in LEVEL_STRIDES:
        c = cells(imgsz, strides)
        s = "/".join(map(str, strides))
        if n == 3 * c:
            return "yolo", f"{n} rows = 3 anchors x {c} cells at strides {s} of {imgsz[0]}x{imgsz[1]}"
        if n == c:
            return "anchor-free", f"{n} rows = 1 point x {c} cells at strides {s} of {imgsz[0]}x{imgsz[1]}"
    return None


def recognise(outputs: Sequence, imgsz: tuple, forced: Optional[str] = None, nc: Optional[int] = None,
              anchors: Optional[list] = None, require_anchors: bool = True) -> Layout:
    """The layout of a model from its output specs (`.name`, `.shape`, `.dtype`), its input size (h, w), an
    optional forced layout name, the class count when known (names) and anchors (raw maps; without them a raw
    layout is still recognised when `require_anchors` is False, but cannot decode)."""
    forced = canonical_layout(forced) if forced else None
    found = _recognise(list(outputs), tuple(imgsz), forced, nc)
    if found is None:
        what = f"layout '{forced}'" if forced else "the known layouts"
        raise SDKError(f"model outputs: got {describe_outputs(outputs) or 'none'}, expected {what} "
                       f"({', '.join(LAYOUTS)}; see docs/models.md, or pass --layout)")
    if found.name == "raw" and (anchors or require_anchors):
        found.anchors = _check_anchors(anchors, len(found.outputs))
        found.imgsz = tuple(imgsz)
    if nc is not None and found.nc is not None and nc != found.nc:
        raise SDKError(f"class names: got {nc}, expected {found.nc} (the model's {found.name} outputs carry "
                       f"{found.nc} classes)")
    if found.nc is None and nc is not None:
        found.nc = nc
    return found


def _recognise(outputs, imgsz, forced, nc):
    by_name = {o.name: o for o in outputs}
    if forced in (None, "efficientnms"):
        picked = {}
        for role, names in EFFICIENT_NMS_NAMES.items():
            picked[role] = next((n for n in names if n in by_name), None)
        if all(picked.values()):
            names = tuple(picked[r] for r in ("num", "boxes", "scores", "classes"))
            return Layout("efficientnms", f"outputs named {', '.join(names)} (TensorRT EfficientNMS)", names, nc)
        if forced and len(outputs) == 4:  # names differ: take them by rank / last dimension
            ranks = sorted(outputs, key=lambda o: (len(o.shape), o.shape[-1] == 4))
            num, a, b, boxes = ranks[0], ranks[1], ranks[2], ranks[3]
            scores, classes = (a, b) if np.dtype(a.dtype).kind == "f" else (b, a)
            return Layout("efficientnms", "--layout efficientnms (outputs taken by rank)",
                          (num.name, boxes.name, scores.name, classes.name), nc)
    rank2 = [o for o in outputs if len(o.shape) == 2 and o.shape[-1] == 7]
    if forced in (None, "nms-ort") and rank2:
        o = rank2[0]
        return Layout("nms-ort", f"output {o.name} {_fmt(o.shape)}: rows of batch, x0, y0, x1, y1, class, score "
                                 f"(NMS inside the graph, official --end2end for onnxruntime)", (o.name,), nc)
    rank3 = [o for o in outputs if len(o.shape) == 3 and np.dtype(o.dtype).kind == "f"]
    if forced in (None, "yolo", "anchor-free") and rank3:
        got = _rank3(rank3[0], imgsz, forced, nc)
        if got is not None:
            return got
    maps = [o for o in outputs if len(o.shape) in (4, 5)]
    if forced in (None, "raw") and maps:
        return _raw(maps, nc)
    return None


def _rank3(o, imgsz, forced, nc):
    _, a, b = o.shape
    if _known(a) and _known(b) and a < b:  # channels first: only the anchor-free heads export that way
        if forced == "yolo":
            return None
        return Layout("anchor-free", f"output {o.name} {_fmt(o.shape)}: {a} channels x {b} points, channels "
                                     f"first (4 box + {a - 4} class scores, no objectness)", (o.name,), a - 4,
                      channels_first=True)
    counted = _count_reason(a, imgsz)
    if forced:
        name = forced
        why = f"--layout {forced}"
    elif counted:
        name, why = counted
    elif nc is not None and _known(b) and b in (5 + nc, 4 + nc):
        name = "yolo" if b == 5 + nc else "anchor-free"
        why = f"{b} columns = {'5' if name == 'yolo' else '4'} + {nc} classes from the names given"
    else:
        return None
    if not _known(b):
        return None
    k = b - (5 if name == "yolo" else 4)
    if k < 1:
        return None
    what = ("cx, cy, w, h, objectness and class scores" if name == "yolo" else "cx, cy, w, h and class scores")
    return Layout(name, f"output {o.name} {_fmt(o.shape)}: {why}; columns {what}", (o.name,), k)


def _raw(maps, nc):
    sized = []
    for o in maps:
        if len(o.shape) == 5:
            _, na, ny, nx, no = o.shape
        else:
            _, c, ny, nx = o.shape
            na, no = 3, (c // 3 if _known(c) and c % 3 == 0 else None)
        if not all(_known(d) for d in (na, ny, nx, no)) or no < 6:
            return None
        sized.append((ny * nx, o, na, no))
    sized.sort(key=lambda t: -t[0])  # largest map = smallest stride first, the order anchors are listed in
    nos = {no for _, _, _, no in sized}
    if len(nos) != 1:
        return None
    no = nos.pop()
    shapes = ", ".join(_fmt(o.shape) for _, o, _, _ in sized)
    return Layout("raw", f"{len(sized)} per-level maps {shapes}: {sized[0][2]} anchors x (5 + {no - 5}) "
                         f"channels, not decoded (export.py without --grid)", tuple(o.name for _, o, _, _ in sized),
                  no - 5)


def _check_anchors(anchors, levels):
    if not anchors:
        raise SDKError(f"anchors: got none, expected {levels} levels of anchor (w, h) pairs for a model whose "
                       f"outputs are raw level maps (--anchors 10,13,16,30,33,23/30,61,... or the checkpoint; or "
                       f"write them into the file: python -m sdk inspect MODEL --anchors ... --write-metadata OUT.onnx)")
    if len(anchors) != levels or any(len(a) % 2 or not a for a in anchors):
        raise SDKError(f"anchors: got {len(anchors)} levels ({anchors}), expected {levels} levels of (w, h) "
                       f"pairs")
    return [[float(v) for v in a] for a in anchors]


# ---- decoders -----------------------------------------------------------------------------------------------
def _from_anchor_free(x, channels_first):
    if channels_first:
        x = x.transpose(0, 2, 1)
    boxes, scores = x[..., :4], x[..., 4:]
    best = scores.max(-1, keepdims=True)
    # objectness = the best class score and class scores relative to it: obj x cls gives back the scores
    rel = scores / np.maximum(best, 1e-12)
    return np.concatenate([boxes, best, rel], -1).astype(np.float32)


def _one_hot_rows(boxes_xyxy, scores, classes, width):
    n = len(scores)
    rows = np.zeros((n, 5 + width), np.float32)
    rows[:, 0] = (boxes_xyxy[:, 0] + boxes_xyxy[:, 2]) / 2
    rows[:, 1] = (boxes_xyxy[:, 1] + boxes_xyxy[:, 3]) / 2
    rows[:, 2] = boxes_xyxy[:, 2] - boxes_xyxy[:, 0]
    rows[:, 3] = boxes_xyxy[:, 3] - boxes_xyxy[:, 1]
    rows[:, 4] = scores
    cls = np.clip(classes.astype(np.int64), 0, width - 1)
    rows[np.arange(n), 5 + cls] = 1.0
    return rows


def _stack(per_image, width):
    n = max((len(r) for r in per_image), default=0)
    out = np.zeros((len(per_image), n, 5 + width), np.float32)
    for i, r in enumerate(per_image):
        out[i, :len(r)] = r
    return out


def _from_nms_rows(x, batch, width):
    x = x.reshape(-1, 7)
    return _stack([_one_hot_rows(x[x[:, 0] == b, 1:5], x[x[:, 0] == b, 6], x[x[:, 0] == b, 5], width)
                   for b in range(batch)], width)


def _from_efficient_nms(arrays, width):
    num, boxes, scores, classes = arrays
    num = num.reshape(len(boxes), -1)[:, 0].astype(np.int64)
    return _stack([_one_hot_rows(boxes[b, :k].astype(np.float32), scores[b, :k].astype(np.float32), classes[b, :k],
                                 width) for b, k in enumerate(num)], width)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _from_raw(maps, anchors, imgsz, nc):
    z = []
    for level, m in enumerate(maps):
        if m.ndim == 4:  # (B, na*no, ny, nx): the convs' outputs before the head's view/permute
            b, c, ny, nx = m.shape
            m = m.reshape(b, 3, c // 3, ny, nx).transpose(0, 1, 3, 4, 2)
        b, na, ny, nx, no = m.shape
        stride = imgsz[0] / ny
        a = np.asarray(anchors[level], np.float32).reshape(-1, 2)
        if len(a) != na:
            raise SDKError(f"anchors: got {len(a)} pairs for level {level}, expected {na} (the map has {na} "
                           f"anchors)")
        y = _sigmoid(m)
        yv, xv = np.meshgrid(np.arange(ny, dtype=np.float32), np.arange(nx, dtype=np.float32), indexing="ij")
        grid = np.stack((xv, yv), -1)[None, None]
        xy = (y[..., 0:2] * 2.0 - 0.5 + grid) * stride
        wh = (y[..., 2:4] * 2.0) ** 2 * a.reshape(1, na, 1, 1, 2)
        z.append(np.concatenate([xy, wh, y[..., 4:]], -1).reshape(b, -1, no))
    return np.concatenate(z, 1).astype(np.float32)


# ---- what the user says: names, anchors -------------------------------------------------------------------
def parse_names(value) -> list:
    """Class names from a comma-separated list, a text file (one name a line) or a data yaml (`names:`)."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value)
    p = Path(text)
    if p.suffix.lower() in (".yaml", ".yml"):
        from .yamlfile import read_yaml  # noqa: PLC0415

        data = read_yaml(p, f"names {text}", "a data yaml with 'names:'")
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if not isinstance(names, list) or not names:
            raise SDKError(f"names {text}: got no 'names' list, expected a data yaml with names: [...]")
        return [str(n) for n in names]
    if p.is_file():
        names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise SDKError(f"names {text}: got no names, expected a comma list, a text file or a data yaml")
    return names


def parse_anchors(value) -> list:
    """`10,13,16,30,33,23/30,61,62,45,59,119/...` (levels split by '/' or ';'), a cfg yaml with `anchors:`."""
    if isinstance(value, (list, tuple)):
        return [[float(v) for v in level] for level in value]
    text = str(value)
    p = Path(text)
    if p.suffix.lower() in (".yaml", ".yml") and p.is_file():
        from .yamlfile import read_yaml  # noqa: PLC0415

        data = read_yaml(p, f"anchors {text}", "a model cfg yaml with 'anchors:'")
        anchors = data.get("anchors") if isinstance(data, dict) else None
        if not isinstance(anchors, list):
            raise SDKError(f"anchors {text}: got no 'anchors' list, expected a model cfg yaml")
        return parse_anchors(anchors)
    try:
        levels = [[float(v) for v in part.split(",") if v.strip()] for part in text.replace(";", "/").split("/")]
    except ValueError:
        raise SDKError(f"anchors {text}: got non-numbers, expected w,h pairs per level split by '/' "
                       f"(e.g. 10,13,16,30,33,23/30,61,62,45,59,119/116,90,156,198,373,326) or a cfg yaml")
    if not levels or any(not lv or len(lv) % 2 for lv in levels):
        raise SDKError(f"anchors {text}: got {levels}, expected w,h pairs per level split by '/'")
    return levels


_SAID = set()


def say_once(message: str) -> None:
    """A note about a default taken, on stderr once per process (defaults are never presented as facts)."""
    if message not in _SAID:
        _SAID.add(message)
        print(message, file=sys.stderr)


# ---- a model's metadata: the file's SDK metadata where it has it, else the graph, the flags and YOLO defaults ----
COCO_CLASSES = 80  # the class count official exporters default to; only assumed (and said) when nothing says it


@dataclass
class ResolvedModel:
    meta: object  # sdk.metadata.ModelMetadata, complete
    layout: Layout
    nhwc: bool  # the input is (B, H, W, 3) rather than (B, 3, H, W)
    notes: list  # defaults taken, for the user (stderr once)
    foreign: bool  # the file has no SDK metadata
    channels: int = 3  # 4: an NHWC byte input's RGBX, the X ignored (sdk.quant.byte_input)

    def feed(self, x: np.ndarray) -> np.ndarray:
        """The model's input array for a network input `(B, 3, H, W)`; an NHWC model's own `(B, H, W, C)` (what
        the Preprocessor gives a byte-input model) passes as it is. An RGBX input gets X = 255 (opaque)."""
        if not self.nhwc or (x.shape[-1] == self.channels and x.shape[1] != 3):
            return x
        if self.channels == 4:
            out = np.full((x.shape[0], x.shape[2], x.shape[3], 4), 255, x.dtype)
            out[..., :3] = x.transpose(0, 2, 3, 1)
            return out
        return x.transpose(0, 2, 3, 1).copy()

    def infer(self, runner, x: np.ndarray) -> np.ndarray:
        """Run `runner` on a network input (`feed` says which shapes); canonical `(B, N, 5 + nc)` rows back."""
        return self.layout.decode(runner.infer({self.meta.input_name: self.feed(x)}), batch=len(x))


def canonical_infer(runner, options: Optional[ModelOptions] = None):
    """`fn(x) -> (B, N, 5 + nc)` rows for a loaded runner of any layout (for tools that compare raw outputs)."""
    resolved = resolve_model(runner.inputs, runner.outputs, runner.metadata, options, f"model {runner.path}")
    return lambda x: resolved.infer(runner, x)


class _Spec:
    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, tuple(shape), np.dtype(dtype)


def onnx_specs(proto) -> tuple:
    """(inputs, outputs) of an onnx ModelProto as specs with name, shape (None for dynamic) and numpy dtype;
    initializers listed as inputs (old exporters) are skipped."""
    from onnx import helper  # noqa: PLC0415 - onnx is a runtime dependency, imported on use

    inits = {i.name for i in proto.graph.initializer}

    def spec(v):
        t = v.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
        try:
            dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        except (KeyError, ValueError, TypeError):
            dtype = np.float32
        return _Spec(v.name, shape, dtype)

    return ([spec(v) for v in proto.graph.input if v.name not in inits], [spec(v) for v in proto.graph.output])


def resolve_model(inputs: Sequence, outputs: Sequence, meta, options: Optional[ModelOptions] = None,
                  what: str = "model", require_anchors: bool = True) -> ResolvedModel:
    """Complete metadata and the output layout of a model from its input/output specs, the metadata its file
    carries (`sdk.metadata.ModelMetadata`, possibly empty) and what the user said (`ModelOptions`)."""
    from dataclasses import replace  # noqa: PLC0415

    options = options or ModelOptions()
    has = bool(meta.names)
    notes = []
    if not inputs:
        raise SDKError(f"{what}: got no inputs, expected one image input")
    spec = inputs[0]
    shape = tuple(spec.shape)
    if len(shape) != 4:
        raise SDKError(f"{what} input '{spec.name}': got shape {_fmt(shape)}, expected (B, 3, H, W) or (B, H, W, 3)")
    # (B, H, W, 4) uint8: RGBX bytes, a 4th channel the model ignores (quantize --uint8-input, sdk.quant.byte_input)
    rgbx = np.dtype(spec.dtype) == np.uint8 and shape[3] == 4 and shape[1] not in (3, 4)
    nhwc = rgbx or (shape[1] != 3 and shape[3] == 3)
    hw = tuple(shape[1:3] if nhwc else shape[2:4])
    static = all(_known(d) for d in hw)
    if options.imgsz:
        imgsz = tuple(int(v) for v in options.imgsz)
        if static and imgsz != hw:
            raise SDKError(f"imgsz: got {imgsz[0]}x{imgsz[1]}, expected {hw[0]}x{hw[1]} (the input '{spec.name}' "
                           f"is fixed at that size)")
    elif static:
        imgsz = hw
    elif has:
        imgsz = tuple(meta.imgsz)
    else:
        raise SDKError(f"{what} input '{spec.name}': got a dynamic size {_fmt(shape)}, expected --imgsz to say the "
                       f"size to run it at (or write it into the file: python -m sdk inspect MODEL --imgsz N "
                       f"--write-metadata OUT.onnx)")
    names = list(options.names) if options.names else (list(meta.names) if has else None)
    from_meta = not options.layout and has and meta.output_format in LAYOUTS
    forced = options.layout or (meta.output_format if from_meta else None)
    anchors = options.anchors or (list(meta.anchors) if getattr(meta, "anchors", None) else None)
    layout = recognise(outputs, imgsz, forced, len(names) if names else None, anchors, require_anchors)
    if layout.name == "raw" and not layout.anchors:
        notes.append("raw level maps decode only with anchors: pass --anchors (w,h pairs per level, or the .pt)")
    if from_meta:
        layout.reason = layout.reason.replace(f"--layout {forced}", f"SDK metadata sdk.output_format={forced}")
    if names is None:
        nc = layout.nc
        if nc is None:
            nc = COCO_CLASSES
            notes.append(f"the graph does not give the class count (NMS inside): assuming {nc} classes; pass --names")
        layout.nc = nc
        names = [f"class{i}" for i in range(nc)]
        notes.append(f"no class names in the file: using class0..class{nc - 1} (pass --names, or write them into "
                     f"the file with 'python -m sdk inspect MODEL --names ... --write-metadata OUT.onnx')")
    if layout.nc is not None and len(names) < layout.nc:
        raise SDKError(f"names: got {len(names)} names, expected {layout.nc} (the model's classes)")
    scale = options.scale
    if scale is None:
        scale = 1.0 if np.dtype(spec.dtype) == np.uint8 else (meta.scale if has else 1 / 255.0)
    channel = (options.channel_order or (meta.channel_order if has else "RGB")).upper()
    full = replace(meta, names=names, imgsz=imgsz, input_name=spec.name, output_name=layout.outputs[0],
                   output_format=layout.name, anchors=list(layout.anchors), scale=float(scale),
                   channel_order=channel)
    if not has:
        full.stride = 32
        notes.append(f"no SDK metadata in the file: {layout.name} layout ({layout.reason}); YOLO pre-processing: "
                     f"letterbox {imgsz[0]}x{imgsz[1]} pad 114, {channel}, pixels x {scale:.6g}")
    return ResolvedModel(full, layout, nhwc, notes, not has, channels=4 if rgbx else 3)


def onnx_metadata(proto, options: Optional[ModelOptions] = None, what: str = "model",
                  require_anchors: bool = True) -> ResolvedModel:
    """Metadata and layout of an ONNX ModelProto (SDK metadata_props where present, else recognised)."""
    from .metadata import ModelMetadata  # noqa: PLC0415

    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    inputs, outputs = onnx_specs(proto)
    return resolve_model(inputs, outputs, meta, options, what, require_anchors)


def init_trt_plugins(trt, logger) -> bool:
    """Register TensorRT's plugin library (EfficientNMS_TRT and friends) before deserializing an engine that
    may use them; Polygraphy's engine loaders do the same (`trt.init_libnvinfer_plugins(logger, "")`)."""
    init = getattr(trt, "init_libnvinfer_plugins", None)
    return bool(init(logger, "")) if init is not None else False


def decode_nodes(proto) -> set:
    """Names of the nodes after the last convolutions (decode, score maths, NMS): no Conv is downstream of them.
    They carry box coordinates in input pixels, which 8 bits cannot hold, so quantizers keep them float. Found
    from the graph alone, since foreign exporters name nodes in their own way."""
    consumers = {}
    for n in proto.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    reaches_conv = {}

    def reaches(node):  # iterative DFS: graphs have thousands of nodes
        stack = [(node, False)]
        while stack:
            n, done = stack.pop()
            key = id(n)
            if key in reaches_conv and not done:
                continue
            users = [u for t in n.output for u in consumers.get(t, [])]
            if done:
                reaches_conv[key] = any(u.op_type == "Conv" or reaches_conv.get(id(u), False) for u in users)
                continue
            reaches_conv.setdefault(key, False)
            stack.append((n, True))
            stack.extend((u, False) for u in users if id(u) not in reaches_conv)
        return reaches_conv[id(node)]

    return {n.name for n in proto.graph.node if n.op_type != "Conv" and not reaches(n)}

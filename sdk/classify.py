"""Image classification through the same runners as detection: `Classifier('m.onnx')(bgr) -> Classification`.

The model file carries its pre-processing (`sdk.metadata.ModelMetadata` with task='classify': input size,
channel order, scale/mean/std, and output_format 'logits' or 'probs'), plus two classification keys in the
same `metadata_props`: `sdk.resize` ('center_crop' - the ImageNet recipe: resize the short side to
size / crop_fraction, take the centre; 'stretch' - resize to the input, as Keras' image_dataset_from_directory
does; 'letterbox' - keep the aspect ratio and pad) and `sdk.crop_fraction`.

Folder-per-class data (ImageNet style, root/class_name/*.jpg) is scored with `evaluate_folder` (top-1/top-5).
"""
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data.images import is_image, list_images, read_image
from .errors import SDKError
from .metadata import ModelMetadata
from .preprocess import letterbox
from .runners import load_runner

RESIZE_MODES = ("center_crop", "stretch", "letterbox")
OUTPUT_FORMATS = ("logits", "probs")


def classify_metadata(names, imgsz, output_format="logits", channel_order="RGB", scale=1 / 255.0,
                      mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), source="", precision="fp32"):
    if output_format not in OUTPUT_FORMATS:
        raise SDKError(f"classifier output format: got '{output_format}', expected one of {', '.join(OUTPUT_FORMATS)}")
    return ModelMetadata(names=list(names), imgsz=tuple(imgsz), stride=1, channel_order=channel_order, scale=scale,
                         mean=tuple(mean), std=tuple(std), output_format=output_format, task="classify",
                         input_name="images", output_name="output", source=source, precision=precision)


def set_classify_props(proto, meta, resize="center_crop", crop_fraction=0.875):
    """Write the metadata and the resize keys into an ONNX ModelProto's `metadata_props` (replacing sdk.* keys)."""
    if resize not in RESIZE_MODES:
        raise SDKError(f"classifier resize: got '{resize}', expected one of {', '.join(RESIZE_MODES)}")
    if not 0 < crop_fraction <= 1:
        raise SDKError(f"classifier crop fraction: got {crop_fraction}, expected a value in (0, 1]")
    keep = [p for p in proto.metadata_props if not p.key.startswith(ModelMetadata.PREFIX)]
    del proto.metadata_props[:]
    props = {**meta.to_props(), "sdk.resize": json.dumps(resize), "sdk.crop_fraction": json.dumps(crop_fraction)}
    for p in keep:
        proto.metadata_props.add(key=p.key, value=p.value)
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    return proto


def classify_extras(runner):
    """How the runner's model wants frames resized (`sdk.resize`, `sdk.crop_fraction` in its metadata)."""
    return {"resize": runner.metadata.resize, "crop_fraction": runner.metadata.crop_fraction}


class ClassifyPreprocessor:
    """BGR frame -> (1, 3, H, W) network input; returns (x, None) like the detector's Preprocessor."""

    def __init__(self, meta, resize="center_crop", crop_fraction=0.875, dtype=np.float32):
        if resize not in RESIZE_MODES:
            raise SDKError(f"model resize mode: got '{resize}', expected one of {', '.join(RESIZE_MODES)}")
        self.shape = tuple(meta.imgsz)
        self.resize, self.crop_fraction = resize, float(crop_fraction)
        self.color = tuple(meta.letterbox_color)
        self.rgb = meta.channel_order.upper() == "RGB"
        self.scale = float(meta.scale)
        self.mean = np.asarray(meta.mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(meta.std, np.float32).reshape(3, 1, 1)
        self.dtype = dtype

    def resized(self, bgr):
        h, w = self.shape
        if self.resize == "letterbox":
            return letterbox(bgr, self.shape, self.color)[0]
        if self.resize == "stretch":
            return cv2.resize(bgr, (w, h), interpolation=_interp(bgr.shape[:2], self.shape))
        # centre crop: short side to size / crop_fraction, then the central h x w
        h0, w0 = bgr.shape[:2]
        r = max(h, w) / self.crop_fraction / min(h0, w0)
        nh, nw = max(h, round(h0 * r)), max(w, round(w0 * r))
        img = cv2.resize(bgr, (nw, nh), interpolation=_interp((h0, w0), (nh, nw)))
        top, left = (nh - h) // 2, (nw - w) // 2
        return img[top:top + h, left:left + w]

    def __call__(self, bgr):
        img = self.resized(bgr)
        if self.rgb:
            img = img[:, :, ::-1]
        x = img.transpose(2, 0, 1).astype(np.float32) * self.scale
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x[None], dtype=self.dtype), None

    def fingerprint(self):
        return {"imgsz": list(self.shape), "resize": self.resize, "crop_fraction": self.crop_fraction,
                "rgb": self.rgb, "scale": self.scale, "mean": self.mean.ravel().tolist(),
                "std": self.std.ravel().tolist()}


def _interp(src_hw, dst_hw):
    return cv2.INTER_AREA if dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1] else cv2.INTER_LINEAR


def softmax(logits):
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@dataclass
class Classification:
    class_ids: np.ndarray  # top-k, best first
    scores: np.ndarray  # probabilities
    names: tuple

    @property
    def top1(self):
        return self.names[int(self.class_ids[0])]

    def to_json(self):
        return [{"class": self.names[int(c)], "class_id": int(c), "score": round(float(s), 5)}
                for c, s in zip(self.class_ids, self.scores)]


class Classifier:
    """`Classifier('m.onnx', topk=5)(bgr) -> Classification`; any Runner (onnxruntime, TensorRT)."""

    def __init__(self, model, backend="auto", topk=5, runner=None, **runner_kw):
        if runner is None:
            runner, self.backend_reason = load_runner(model, backend, **runner_kw)
        else:
            self.backend_reason = "runner given"
        self.runner, self.meta = runner, runner.metadata
        if self.meta.task != "classify" or not self.meta.names:
            raise SDKError(f"model {model}: got task '{self.meta.task}' with {len(self.meta.names)} class names, "
                           f"expected a classifier exported with SDK metadata (task 'classify', class names)")
        extras = classify_extras(runner)
        self.pre = ClassifyPreprocessor(self.meta, extras["resize"], extras["crop_fraction"], runner.input.dtype)
        self.names = tuple(self.meta.names)
        if topk < 1:
            raise SDKError(f"topk: got {topk}, expected at least 1")
        self.topk = min(int(topk), len(self.names))
        self.output_name = runner.outputs[0].name
        self.last_timing = {}

    def infer_raw(self, x):
        return self.runner.infer({self.runner.input.name: x})[self.output_name]

    def probabilities(self, raw):
        raw = np.asarray(raw, np.float32).reshape(raw.shape[0], -1)
        if raw.shape[1] != len(self.names):
            raise SDKError(f"model {self.runner.path} output: got {raw.shape[1]} scores, expected one per class "
                           f"({len(self.names)})")
        return raw if self.meta.output_format == "probs" else softmax(raw)

    def __call__(self, bgr):
        t0 = time.perf_counter()
        x, _ = self.pre(bgr)
        t1 = time.perf_counter()
        raw = self.infer_raw(x)
        t2 = time.perf_counter()
        probs = self.probabilities(raw)[0]
        ids = np.argsort(-probs, kind="stable")[: self.topk]
        t3 = time.perf_counter()
        self.last_timing = {"pre_ms": (t1 - t0) * 1e3, "infer_ms": (t2 - t1) * 1e3, "post_ms": (t3 - t2) * 1e3}
        return Classification(ids, probs[ids], self.names)

    def close(self):
        self.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def folder_dataset(root, names=None, what="source"):
    """[(image path, class index)] from root/class_name/*.jpg; classes are the model's names when given."""
    root = Path(root)
    if not root.is_dir():
        raise SDKError(f"{what} {root}: not a folder, expected a folder with one sub-folder of images per class")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and any(is_image(f) for f in os.listdir(p)))
    if not folders:
        raise SDKError(f"{what} {root}: no class sub-folders with images, expected root/<class name>/*.jpg")
    names = list(names) if names else folders
    unknown = [f for f in folders if f not in names]
    if unknown:
        raise SDKError(f"{what} {root}: got class folder '{unknown[0]}', expected folders named after the model's "
                       f"classes ({', '.join(names[:10])})")
    return [(p, names.index(f)) for f in folders for p in list_images(root / f, what)]


def evaluate_folder(classifier, root, progress=False):
    """Top-1 / top-5 accuracy on folder-per-class data, with per-class top-1."""
    from .progress import progress_bar

    samples = folder_dataset(root, classifier.names)
    k = min(5, len(classifier.names))
    top1 = topk = 0
    per_class = {}
    for path, label in progress_bar(samples, desc="classify", disable=not progress):
        probs = classifier.probabilities(classifier.infer_raw(classifier.pre(read_image(path))[0]))[0]
        order = np.argsort(-probs, kind="stable")
        hit1 = int(order[0] == label)
        top1 += hit1
        topk += int(label in order[:k])
        seen, hits = per_class.get(classifier.names[label], (0, 0))
        per_class[classifier.names[label]] = (seen + 1, hits + hit1)
    n = len(samples)
    return {"images": n, "top1": top1 / n, f"top{k}": topk / n,
            "per_class_top1": {c: h / s for c, (s, h) in per_class.items()}}


def person_crops(dataset, out_root, max_images=None, min_side=32, seed=0):
    """A two-class folder dataset from detection labels: out_root/{person,background}/*.jpg.

    Person crops are the labelled boxes (non-crowd, both sides >= min_side); for each, one background crop of the
    same size (or half) at a random place that overlaps no labelled box. Small real data for classifier tests and demos.
    Returns {class: count}.
    """
    rng = np.random.default_rng(seed)
    out_root = Path(out_root)
    for c in ("person", "background"):
        (out_root / c).mkdir(parents=True, exist_ok=True)
    counts = {"person": 0, "background": 0}
    for sample in dataset.samples[:max_images]:
        img = read_image(sample.path)
        h, w = img.shape[:2]
        boxes = np.asarray(sample.boxes, np.float64).reshape(-1, 4)
        for j, (box, crowd) in enumerate(zip(boxes, sample.crowd)):
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            bw, bh = x1 - x0, y1 - y0
            if crowd or min(bw, bh) < min_side:
                continue
            cv2.imwrite(str(out_root / "person" / f"{sample.image_id}_{j}.jpg"), img[y0:y1, x0:x1])
            counts["person"] += 1
            for k in range(60):  # a free spot of the same size (then half the size), if the image has one
                cw, ch = (bw, bh) if k < 30 else (bw // 2, bh // 2)
                bx, by = int(rng.integers(0, max(1, w - cw))), int(rng.integers(0, max(1, h - ch)))
                if bx + cw <= w and by + ch <= h and not _overlaps((bx, by, bx + cw, by + ch), boxes):
                    cv2.imwrite(str(out_root / "background" / f"{sample.image_id}_{j}.jpg"),
                                img[by:by + ch, bx:bx + cw])
                    counts["background"] += 1
                    break
    return counts


def _overlaps(box, boxes):
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return bool(np.any((ix > 0) & (iy > 0)))

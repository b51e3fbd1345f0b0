"""`Classifier('m.onnx')(bgr) -> Classification` through the same runners as detection."""
import time
from dataclasses import dataclass

import numpy as np

from ..errors import SDKError
from ..runners import load_runner
from .metadata import classify_extras
from .preprocess import ClassifyPreprocessor


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

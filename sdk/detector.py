"""The high-level detector: runner + letterbox pre-processing + NMS post-processing, with timings.

Any YOLO-family model runs: the output layout is recognised from the graph (sdk.layouts) and decoded to the
canonical rows the post-processing takes; what the file does not say comes from `ModelOptions` or defaults,
each said once on stderr."""
import time

from .layouts import ModelOptions, resolve_model, say_once
from .metadata import check_input_dtype, check_yolo_output
from .postprocess import postprocess
from .preprocess import Preprocessor
from .runners import load_runner


class Detector:
    """`Detector('m.onnx')(bgr_image) -> Detections`. Works with any Runner (onnxruntime, TensorRT)."""

    def __init__(self, model, backend="auto", conf=0.25, iou=0.45, max_det=300, classes=None, runner=None,
                 options: ModelOptions = None, resize: str = "area", **runner_kw):
        """`resize`: the letterbox's shrink, sdk.preprocess.RESIZES ("area-pyramid" for real-time large frames);
        `runner_kw` go to the backend's runner (threads, spin for onnxruntime)."""
        if runner is None:
            runner, self.backend_reason = load_runner(model, backend, **runner_kw)
        else:
            self.backend_reason = "runner given"
        self.runner = runner
        resolved = resolve_model(runner.inputs, runner.outputs, runner.metadata, options, f"model {model or runner.path}")
        for note in resolved.notes:
            say_once(f"{model or runner.path}: {note}")
        self.resolved = resolved
        self.meta, self.layout, self.nhwc = resolved.meta, resolved.layout, resolved.nhwc
        check_input_dtype(self.meta, runner.input.dtype, f"model {model or runner.path}")
        self.pre = Preprocessor(self.meta, dtype=runner.input.dtype, resize=resize, nhwc=self.nhwc,
                                channels=resolved.channels)
        self.names = tuple(self.meta.names)
        self.conf, self.iou, self.max_det, self.classes = conf, iou, max_det, classes
        self.output_name = self.meta.output_name
        self.last_timing = {}

    def infer_raw(self, x):
        """Network input (`self.pre`'s, or `(B, 3, H, W)`) -> canonical `(B, N, 5 + nc)` rows, whatever the
        model's layout."""
        return self.resolved.infer(self.runner, x)

    def __call__(self, bgr):
        t0 = time.perf_counter()
        x, lb = self.pre(bgr)
        t1 = time.perf_counter()
        pred = self.infer_raw(x)
        t2 = time.perf_counter()
        check_yolo_output(pred, len(self.names), f"model {self.runner.path}")  # before NMS trusts the file
        dets = self.postprocess(pred[0], lb)
        t3 = time.perf_counter()
        self.last_timing = {"pre_ms": (t1 - t0) * 1e3, "infer_ms": (t2 - t1) * 1e3, "post_ms": (t3 - t2) * 1e3}
        return dets

    def postprocess(self, pred, letterbox):
        """One image's raw output `(boxes, 5+nc)` -> Detections in original-frame pixels (the settings above)."""
        return postprocess(pred, letterbox, self.names, self.conf, self.iou, self.max_det, self.classes)

    @property
    def batch_size(self):
        """Frames per inference: an int for a fixed-batch model, None when the batch dimension is dynamic."""
        dim = self.runner.input.shape[0] if self.runner.input.shape else 1
        return dim if isinstance(dim, int) and dim > 0 else getattr(self.runner, "max_batch", None)

    def close(self):
        self.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

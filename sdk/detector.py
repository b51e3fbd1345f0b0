"""The high-level detector: runner + letterbox pre-processing + NMS post-processing, with timings."""
import time

from .errors import SDKError
from .metadata import check_input_dtype, check_yolo_output
from .postprocess import postprocess
from .preprocess import Preprocessor
from .runners import load_runner


class Detector:
    """`Detector('m.onnx')(bgr_image) -> Detections`. Works with any Runner (onnxruntime, TensorRT)."""

    def __init__(self, model, backend="auto", conf=0.25, iou=0.45, max_det=300, classes=None, runner=None,
                 **runner_kw):
        if runner is None:
            runner, self.backend_reason = load_runner(model, backend, **runner_kw)
        else:
            self.backend_reason = "runner given"
        self.runner = runner
        self.meta = runner.metadata
        if not self.meta.has_sdk_props:
            raise SDKError(f"model {model}: no SDK metadata (class names, input size) in the file, expected a model "
                           f"exported with 'python -m sdk export' or an engine built by build_engine")
        check_input_dtype(self.meta, runner.input.dtype, f"model {model}")
        self.pre = Preprocessor(self.meta, dtype=runner.input.dtype)
        self.names = tuple(self.meta.names)
        self.conf, self.iou, self.max_det, self.classes = conf, iou, max_det, classes
        self.output_name = self.runner.outputs[0].name
        self.last_timing = {}

    def infer_raw(self, x):
        return self.runner.infer({self.runner.input.name: x})[self.output_name]

    def __call__(self, bgr):
        t0 = time.perf_counter()
        x, lb = self.pre(bgr)
        t1 = time.perf_counter()
        pred = self.infer_raw(x)
        t2 = time.perf_counter()
        if self.meta.output_format == "yolo":  # a file's claims are checked before NMS trusts them
            check_yolo_output(pred, len(self.names), f"model {self.runner.path}")
        dets = postprocess(pred[0], lb, self.names, self.conf, self.iou, self.max_det, self.classes)
        t3 = time.perf_counter()
        self.last_timing = {"pre_ms": (t1 - t0) * 1e3, "infer_ms": (t2 - t1) * 1e3, "post_ms": (t3 - t2) * 1e3}
        return dets

    def close(self):
        self.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

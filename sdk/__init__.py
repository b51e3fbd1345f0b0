"""Edge detector deployment SDK: export, TensorRT engines, INT8, pruning and real-time detection.

The runtime path (runners, pre/post-processing, detector, evaluation) needs only numpy, OpenCV, onnx and
onnxruntime; torch, TensorFlow and TensorRT are imported lazily by the jobs that need them. Attributes below are
resolved on first use so `import sdk` stays light.
"""
import importlib

__version__ = "0.1.0"

_LAZY = {"Detector": "sdk.detector", "Detections": "sdk.detections", "Detection": "sdk.detections",
         "SDKError": "sdk.errors", "load_runner": "sdk.runners", "load_dataset": "sdk.data.datasets"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdk' has no attribute '{name}'")


__all__ = [*_LAZY, "__version__"]

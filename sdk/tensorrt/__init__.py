"""TensorRT engines: build (FP32/FP16/INT8, per-layer precision, DLA), inspect, and the engine sidecar.

Nothing here imports tensorrt at import time; `build_engine` raises a one-line error without it.
"""
from .api import NOT_INSTALLED


def build_engine(*args, **kwargs):
    """See sdk.tensorrt.builder.build_engine."""
    from .builder import build_engine as _build  # noqa: PLC0415 - keeps `import sdk.tensorrt` light

    return _build(*args, **kwargs)


__all__ = ["build_engine", "NOT_INSTALLED"]

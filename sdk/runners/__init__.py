"""Backends behind one Runner interface. Each backend imports its runtime lazily."""
import importlib.util
from pathlib import Path

from ..errors import SDKError
from .base import Runner, TensorSpec

ENGINE_SUFFIXES = (".engine", ".trt", ".plan")
ONNX_SUFFIXES = (".onnx",)
BACKENDS = ("auto", "ort", "trt")  # the --backend / backend= vocabulary


def tensorrt_available():
    return importlib.util.find_spec("tensorrt") is not None


def choose_backend(model, backend="auto"):
    """Pick the backend for a model file; returns (backend, reason)."""
    if str(model).lower().startswith("triton://"):
        if backend not in ("auto", "triton"):
            raise SDKError(f"model {model}: got --backend {backend} with a triton:// URL, expected --backend auto "
                           f"(the server's model config picks its backend)")
        return "triton", "a triton:// URL runs on that Triton server"
    suffix = Path(model).suffix.lower()
    if suffix not in ENGINE_SUFFIXES + ONNX_SUFFIXES:
        raise SDKError(f"model {model}: unknown file type '{suffix or '(none)'}', expected an ONNX model (.onnx) "
                       f"or a TensorRT engine ({', '.join(ENGINE_SUFFIXES)})")
    if suffix in ENGINE_SUFFIXES:
        if backend == "ort":
            raise SDKError(f"model {model}: got a TensorRT engine with --backend ort, expected an .onnx model "
                           f"for onnxruntime (or --backend trt)")
        return "trt", "a TensorRT engine runs on TensorRT"
    if backend == "trt":
        raise SDKError(f"model {model}: got an ONNX model with --backend trt, expected a TensorRT engine; build "
                       f"one with: build_engine --onnx {model} -o {Path(model).with_suffix('.engine')}")
    if backend == "auto" and tensorrt_available():
        engine = Path(model).with_suffix(".engine")
        if engine.is_file():
            return "trt", f"TensorRT is installed and {engine} exists beside the ONNX model"
        return "ort", (f"TensorRT is installed but no engine {engine} exists (build it with build_engine); "
                       f"using onnxruntime")
    if backend == "auto":
        return "ort", "TensorRT is not installed here; using onnxruntime"
    return "ort", "requested onnxruntime"


def load_runner(model, backend="auto", **kw):
    """Open a model with the right backend; returns a loaded Runner and the reason for the choice."""
    if str(model).lower().startswith("triton://"):
        from .triton import TritonRunner  # noqa: PLC0415

        reason = choose_backend(model, backend)[1]
        return TritonRunner(str(model)).load(), reason  # onnxruntime's threads: the server's own setting
    if not Path(model).is_file():
        raise SDKError(f"model {model}: file not found, expected an .onnx model or a TensorRT engine")
    kind, reason = choose_backend(model, backend)
    if kind == "trt":
        from .tensorrt import TensorRTRunner  # noqa: PLC0415

        path = model if Path(model).suffix.lower() in ENGINE_SUFFIXES else str(Path(model).with_suffix(".engine"))
        return TensorRTRunner(path, **kw).load(), reason
    from .onnxruntime import OnnxRuntimeRunner  # noqa: PLC0415

    return OnnxRuntimeRunner(model, **kw).load(), reason


__all__ = ["BACKENDS", "Runner", "TensorSpec", "load_runner", "choose_backend", "tensorrt_available"]

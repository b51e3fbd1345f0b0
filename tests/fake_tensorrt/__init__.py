"""Faithful fakes of TensorRT (8.5-like and 10-like) and of the CUDA memory modules, for tests on machines
without TensorRT or a GPU. Tests put them in sys.modules with `install(monkeypatch, ...)`. A fake never stands
in for a result: the engines they "build" run the ONNX through onnxruntime on the CPU."""
import sys

from .device import DEVICE
from .fake_cuda import cuda_modules
from .fake_trt import make_tensorrt

FLAVOURS = ("8.5", "10.3")


def install(monkeypatch, flavour="8.5", cuda="cuda-python"):
    """Make `import tensorrt` (and cuda-python or pycuda) resolve to fresh fakes for one test."""
    DEVICE.reset()
    trt = make_tensorrt(flavour)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart", "pycuda", "pycuda.driver"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name, mod in cuda_modules(cuda).items():
        monkeypatch.setitem(sys.modules, name, mod)
    if cuda == "pycuda":  # make cuda-python unimportable, so the SDK falls back to pycuda
        monkeypatch.setitem(sys.modules, "cuda", None)
        monkeypatch.setitem(sys.modules, "cuda.bindings", None)
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
        monkeypatch.setitem(sys.modules, "cuda.cudart", None)
    return trt


__all__ = ["install", "make_tensorrt", "cuda_modules", "DEVICE", "FLAVOURS"]

"""Fakes of TensorRT (8.5, 8.6 and 10.3, split as the real API is: versions.py) and of the CUDA memory modules,
for tests on machines without TensorRT or a GPU. Tests put them in sys.modules with `install(monkeypatch, ...)`;
a subprocess (or the self-test driven by a test) uses `install_globally`. A fake never stands in for a result:
the engines they "build" run the ONNX through onnxruntime on the CPU."""
import sys

from .device import DEVICE
from .fake_cuda import cuda_modules
from .fake_trt import make_tensorrt
from .versions import FLAVOURS, VERSIONS

_CUDA_NAMES = ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart", "pycuda", "pycuda.driver")


def _modules(flavour, cuda):
    DEVICE.reset()
    mods = {"tensorrt": make_tensorrt(flavour), **cuda_modules(cuda)}
    if cuda == "pycuda":  # make cuda-python unimportable, so the SDK falls back to pycuda
        mods.update({"cuda": None, "cuda.bindings": None, "cuda.bindings.runtime": None, "cuda.cudart": None})
    return mods


def install(monkeypatch, flavour="8.5", cuda="cuda-python"):
    """Make `import tensorrt` (and cuda-python or pycuda) resolve to fresh fakes for one test."""
    for name in _CUDA_NAMES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    mods = _modules(flavour, cuda)
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return mods["tensorrt"]


def install_globally(flavour="10.3", cuda="cuda-python"):
    """The same for a whole process (a subprocess started by a test)."""
    for name in _CUDA_NAMES:
        sys.modules.pop(name, None)
    mods = _modules(flavour, cuda)
    sys.modules.update(mods)
    return mods["tensorrt"]


__all__ = ["install", "install_globally", "make_tensorrt", "cuda_modules", "DEVICE", "FLAVOURS", "VERSIONS"]

"""Import optional dependencies with a clear message when they are missing."""
import importlib

from .errors import MissingDependency

HINTS = {
    "torch": ("pip install torch==2.13.0 && pip install -e '.[torch]'"),
    "tensorrt": ("TensorRT ships with JetPack on a Jetson; on x86 use the onnxruntime backend "
                 "(--backend ort) or run on a Jetson"),
    "tf2onnx": "pip install -e '.[tf]'",
    "tensorflow": "pip install -e '.[tf]'",
    "torch_pruning": "pip install -e '.[torch]'",
    "matplotlib": "pip install -e '.[dev]'",
    "pycocotools": "pip install -e '.[dev]'",
}


def require(module, purpose):
    try:
        return importlib.import_module(module)
    except ImportError:
        hint = HINTS.get(module.split(".")[0], f"pip install {module}")
        raise MissingDependency(module.split(".")[0], purpose, hint) from None

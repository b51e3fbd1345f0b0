"""Load official YOLOv7 checkpoints safely, and save/load the SDK's own checkpoint format.

Official `.pt` files pickle the whole `models.yolo.Model`. Instead of importing the YOLOv7 repository, we unpickle
with an allow-list: the official classes and `torch.nn` modules map to an inert stand-in that only records its
attributes, tensors are rebuilt by torch's own loader, and any other global is refused. Nothing named by the
pickle is executed. The SDK's own format is a plain dict of tensors and built-in types, readable with
`torch.load(weights_only=True)`.
"""
import io
import pickle
import zipfile
from pathlib import Path

import torch

from ..errors import SDKError
from ..fileio import atomic_path
from .yolo import YOLO

SDK_FORMAT = "sdk-yolo-v1"


class StandIn:
    """Inert replacement for a pickled module object: keeps its state, runs nothing."""

    _qualname = "?"

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"_state": state})


_standins = {}


def _standin(module, name):
    key = f"{module}.{name}"
    if key not in _standins:
        _standins[key] = type(name, (StandIn,), {"_qualname": key})
    return _standins[key]


# Modules whose classes become inert stand-ins (state is kept, no code runs).
_STANDIN_MODULES = ("models.yolo", "models.common", "models.experimental", "torch.nn.modules.")
# Plain functions and types that rebuild data; each is harmless for any arguments.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("builtins", "set"), ("__builtin__", "set"), ("builtins", "dict"),
    ("_codecs", "encode"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"), ("torch", "float16"),
    ("torch", "float32"), ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if any(module == m or module.startswith(m) for m in _STANDIN_MODULES if m.endswith(".")) or \
                module in _STANDIN_MODULES:
            return _standin(module, name)
        if (module, name) in _SAFE_GLOBALS:
            if module == "__builtin__":
                module = "builtins"
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global '{module}.{name}' (not on the allow-list)")


class _RestrictedPickleModule:
    """What `torch.load(pickle_module=...)` needs: an Unpickler class (torch wraps it for storages)."""

    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError
    __name__ = "sdk_restricted_pickle"

    @staticmethod
    def load(f, **kw):
        return RestrictedUnpickler(f, **kw).load()


def _collect_state(obj, prefix, out):
    """Walk a stand-in module tree and gather parameters and buffers as a state dict."""
    for key in ("_parameters", "_buffers"):
        for name, t in (getattr(obj, key, None) or {}).items():
            if t is not None:
                out[prefix + name] = t.detach().clone() if isinstance(t, torch.Tensor) else t
    for name, child in (getattr(obj, "_modules", None) or {}).items():
        if child is not None:
            _collect_state(child, f"{prefix}{name}.", out)
    return out


def _torch_load(path, **kw):
    try:
        return torch.load(path, map_location="cpu", **kw)
    except pickle.UnpicklingError as e:
        if "refusing to load" in str(e):
            raise SDKError(f"checkpoint {path}: {e}; expected an official YOLOv7 checkpoint or an SDK checkpoint")
        raise SDKError(f"checkpoint {path}: cannot read it ({e}), expected a PyTorch .pt checkpoint")
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, AttributeError, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SDKError(f"checkpoint {path}: cannot read it ({msg}), expected a PyTorch .pt checkpoint")


def _is_sdk_checkpoint(path):
    try:
        with zipfile.ZipFile(path) as z:
            pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
            return SDK_FORMAT.encode() in z.read(pkl)
    except (zipfile.BadZipFile, StopIteration, OSError):
        return False


def load_checkpoint(path, fuse=False):
    """Load an official YOLOv7 or SDK checkpoint into a YOLO model (eval mode, float32).

    Returns (model, info) where info holds 'source' ('official' or 'sdk') and any extra fields kept.
    """
    path = Path(path)
    if not path.is_file():
        raise SDKError(f"checkpoint {path}: file not found, expected a .pt checkpoint")
    if _is_sdk_checkpoint(path):
        ckpt = _torch_load(path, weights_only=True)
        cfg, state, names = ckpt["cfg"], ckpt["state_dict"], ckpt.get("names")
        info = {"source": "sdk", **{k: v for k, v in ckpt.items() if k not in ("cfg", "state_dict")}}
    else:
        ckpt = _torch_load(path, weights_only=False, pickle_module=_RestrictedPickleModule)
        if not isinstance(ckpt, dict) or not any(isinstance(ckpt.get(k), StandIn) for k in ("ema", "model")):
            raise SDKError(f"checkpoint {path}: no 'model' or 'ema' entry, expected an official YOLOv7 "
                           f"checkpoint (a dict with the pickled model) or an SDK checkpoint")
        obj = ckpt.get("ema") if isinstance(ckpt.get("ema"), StandIn) else ckpt["model"]
        cfg = getattr(obj, "yaml", None)
        if not isinstance(cfg, dict):
            raise SDKError(f"checkpoint {path}: the model carries no cfg ('yaml' attribute), expected a "
                           f"checkpoint written by the official train.py")
        state = _collect_state(obj, "", {})
        names = getattr(obj, "names", None)
        info = {"source": "official", "epoch": ckpt.get("epoch")}
    model = build_from_state(cfg, state, names, path)
    if fuse:
        model.fuse()
    return model, info


def build_from_state(cfg, state, names, origin="checkpoint"):
    model = YOLO(cfg, names=names)
    state = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in state.items()}
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if mismatched or missing:
        detail = (f"shape mismatch at {mismatched[0]}: {tuple(state[mismatched[0]].shape)} vs "
                  f"{tuple(own[mismatched[0]].shape)}") if mismatched else f"missing {missing[0]}"
        raise SDKError(f"checkpoint {origin}: weights do not fit its cfg ({detail}), expected weights "
                       f"matching the cfg")
    model.load_state_dict(state, strict=False)
    return model.float().eval()


def save_checkpoint(model, path, **extra):
    """Write the SDK format atomically: cfg (built-in types), names and a float state dict."""
    payload = {"format": SDK_FORMAT, "cfg": model.yaml, "names": list(model.names),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_path(path, "checkpoint") as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)

"""Load official YOLOv7 checkpoints safely, and save/load the SDK's own checkpoint format.

Official `.pt` files pickle the whole `models.yolo.Model`. Instead of importing the YOLOv7 repository (or calling
`torch.load`), `safe_pickle` reads the zip archive with an allow-list: the official classes and `torch.nn` modules
map to inert stand-ins that only record their attributes, tensors are copied out of size-checked storages, and any
other global is refused. Nothing named by the pickle is executed, and nothing outside this load can be changed by
it. The cfg found inside is bounded (`cfg_check`) and the network built on the meta device before any weight is
allocated. The SDK's own format is a plain dict of tensors and built-in types (also readable with
`torch.load(weights_only=True)`), read by the same reader.
"""
import io
import pickle
import zipfile
import zlib
from pathlib import Path

import torch

from ..errors import SDKError
from ..fileio import atomic_path
from .cfg_check import check_cfg, check_names
from .safe_pickle import CheckpointFormatError, StandIn, safe_load
from .yolo import YOLO

SDK_FORMAT = "sdk-yolo-v1"


def _collect_state(root, out, max_modules=100_000):
    """Walk a stand-in module tree (iteratively, each object once: a module may contain itself) and gather
    parameters and buffers as a state dict."""
    seen, stack = set(), [("", root)]
    while stack:
        prefix, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > max_modules:
            raise CheckpointFormatError(f"more than {max_modules} modules in the pickled model")
        for key in ("_parameters", "_buffers"):
            tensors = getattr(obj, key, None) or {}
            if not isinstance(tensors, dict):
                raise CheckpointFormatError(f"{prefix or 'model'}.{key} is not a dict")
            for name, t in tensors.items():
                if isinstance(t, torch.Tensor):
                    out[f"{prefix}{name}"] = t
        children = getattr(obj, "_modules", None) or {}
        if not isinstance(children, dict):
            raise CheckpointFormatError(f"{prefix or 'model'}._modules is not a dict")
        stack.extend((f"{prefix}{name}.", child) for name, child in reversed(children.items())
                     if isinstance(child, StandIn) and isinstance(name, str))
    return out


def _short(e: BaseException) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return msg if len(msg) <= 120 else msg[:117] + "..."


def _read(path: Path):
    try:
        return safe_load(path)
    except CheckpointFormatError as e:
        what = _short(e) if str(e).startswith("refusing") else f"cannot read it ({_short(e)})"
        raise SDKError(f"checkpoint {path}: {what}; expected an official YOLOv7 or SDK checkpoint")
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError, AttributeError, KeyError,
            IndexError, RuntimeError, OSError, RecursionError, MemoryError, zlib.error, NotImplementedError) as e:
        raise SDKError(f"checkpoint {path}: cannot read it ({_short(e)}), expected a PyTorch .pt checkpoint")


def load_checkpoint(path, fuse=False):
    """Load an official YOLOv7 or SDK checkpoint into a YOLO model (eval mode, float32).

    Returns (model, info) where info holds 'source' ('official' or 'sdk') and any extra fields kept.
    """
    path = Path(path)
    if not path.is_file():
        raise SDKError(f"checkpoint {path}: file not found, expected a .pt checkpoint")
    ckpt = _read(path)
    if not isinstance(ckpt, dict):
        raise SDKError(f"checkpoint {path}: got a pickled {type(ckpt).__name__}, expected a dict (an official "
                       f"YOLOv7 or SDK checkpoint)")
    if ckpt.get("format") == SDK_FORMAT:
        cfg, state, names = ckpt.get("cfg"), ckpt.get("state_dict"), ckpt.get("names")
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise SDKError(f"checkpoint {path}: 'state_dict' is not a dict of tensors, expected an SDK checkpoint")
        info = {"source": "sdk", **{k: v for k, v in ckpt.items() if k not in ("cfg", "state_dict")}}
    else:
        obj = next((ckpt.get(k) for k in ("ema", "model") if isinstance(ckpt.get(k), StandIn)), None)
        if obj is None:
            raise SDKError(f"checkpoint {path}: no 'model' or 'ema' entry, expected an official YOLOv7 "
                           f"checkpoint (a dict with the pickled model) or an SDK checkpoint")
        cfg = getattr(obj, "yaml", None)
        try:
            state = _collect_state(obj, {})
        except CheckpointFormatError as e:
            raise SDKError(f"checkpoint {path}: {_short(e)}, expected a pickled YOLOv7 module tree")
        names = getattr(obj, "names", None)
        epoch = ckpt.get("epoch")
        info = {"source": "official", "epoch": epoch if isinstance(epoch, int) else None}
    if not isinstance(cfg, dict):
        raise SDKError(f"checkpoint {path}: the model carries no cfg dict ('yaml'), expected a checkpoint "
                       f"written by the official train.py or the SDK")
    model = build_from_state(cfg, state, names, path)
    if fuse:
        model.fuse()
    return model, info


def read_checkpoint_object(path) -> object:
    """The unpickled checkpoint (module objects as inert stand-ins), for tools that look inside the file."""
    return _read(Path(path))


def build_from_state(cfg, state, names, origin="checkpoint"):
    """A YOLO model from a cfg and weights that came from a file: the cfg is bounded and the network is first
    built on the meta device (no memory), so a hostile cfg cannot allocate or run for long before its weights are
    found not to fit."""
    check_cfg(cfg, origin)
    names = check_names(names, cfg["nc"], origin)
    shapes = _meta_shapes(cfg, names, origin)
    _check_fits(shapes, state, origin)
    model = YOLO(cfg, names=names)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k in shapes}
    model.load_state_dict(state, strict=False)
    return model.float().eval()


MAX_ACTIVATIONS = 200_000_000  # elements summed over every layer's output at the 256x256 probe (800 MB)


def _meta_shapes(cfg, names, origin):
    """Build the network on the meta device: parameter shapes and activation sizes without allocating."""
    sizes = []
    try:
        with torch.device("meta"):
            model = YOLO(cfg, names=names)
            hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()) if
                                             isinstance(out, torch.Tensor) else None) for m in model.model]
            model._backbone_features(torch.zeros(1, 3, 256, 256))
            for h in hooks:
                h.remove()
    except SDKError:
        raise
    except (ValueError, TypeError, RuntimeError, IndexError, KeyError, ZeroDivisionError, AttributeError) as e:
        raise SDKError(f"checkpoint {origin}: its cfg does not build a network ({_short(e)}), expected a "
                       f"YOLOv7-family cfg")
    if sum(sizes) > MAX_ACTIVATIONS:
        raise SDKError(f"checkpoint {origin}: its cfg needs {sum(sizes) / 1e6:.0f} M activations for a 256x256 "
                       f"image, expected at most {MAX_ACTIVATIONS / 1e6:.0f} M")
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_fits(shapes, state, origin):
    mismatched = [k for k, v in state.items() if k in shapes and shapes[k] != tuple(v.shape)]
    missing = [k for k in shapes if k not in state and not k.endswith("num_batches_tracked")]
    if mismatched or missing:
        k = (mismatched or missing)[0]
        detail = (f"shape mismatch at {k[:60]}: {tuple(state[k].shape)} vs {shapes[k]}" if mismatched
                  else f"{len(missing)} tensors missing, first {k[:60]}")
        raise SDKError(f"checkpoint {origin}: weights do not fit its cfg ({detail}), expected weights matching "
                       f"the cfg")


def save_checkpoint(model, path, **extra):
    """Write the SDK format atomically: cfg (built-in types), names and a float state dict."""
    payload = {"format": SDK_FORMAT, "cfg": model.yaml, "names": list(model.names),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_path(path, "checkpoint") as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)

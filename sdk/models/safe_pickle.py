"""Read a PyTorch zip checkpoint without `torch.load`: a restricted unpickler over a size-checked zip.

Why not `torch.load(pickle_module=...)`: its unpickler hands the pickle the real `torch._utils._rebuild_*`
function objects, which a pickle can mutate with BUILD (state set on the function, visible to the whole process),
its legacy (non-zip) path runs torch's source-patch machinery (it can write `<name>.patch` files), and it has no
bound on decompressed size. Here every global the pickle may name is either an immutable built-in type or a
stand-in owned by this reader (slots only, no state can be set on it), storages are read from zip entries whose
declared sizes are checked before any byte is read, and nothing else is reachable. Legacy non-zip checkpoints
(torch < 1.6) are refused: re-save them with a current torch (`torch.save(torch.load(f), f2)`) in a trusted
environment.
"""
from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import _codecs
import numpy as np
import torch

# A checkpoint of a YOLO-family detector is tens of MB; these bounds stop zip bombs and absurd tensors early.
MAX_TOTAL_BYTES = 2 << 30  # all zip entries together, as declared in the archive
MAX_PICKLE_BYTES = 64 << 20  # data.pkl itself

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class CheckpointFormatError(pickle.UnpicklingError):
    """The file is not a checkpoint this reader accepts; the message says what was found."""


class _Frozen:
    """Base of every object the pickle can reach: no __dict__, and BUILD (set state) is refused."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise CheckpointFormatError(f"refusing to set state on {type(self).__name__}")

    def __reduce__(self):  # never re-pickled
        raise TypeError(f"{type(self).__name__} is not picklable")


class _StorageType(_Frozen):
    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: torch.dtype):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __setattr__(self, key, value):
        raise CheckpointFormatError("refusing to modify a storage type")


class _Storage(_Frozen):
    """One storage read from the archive: a flat tensor of its dtype."""

    __slots__ = ("flat",)

    def __init__(self, flat: torch.Tensor):
        object.__setattr__(self, "flat", flat)

    def __setattr__(self, key, value):
        raise CheckpointFormatError("refusing to modify a storage")


def _int_tuple(value, what: str) -> tuple:
    if not isinstance(value, (tuple, list, torch.Size)) or len(value) > 8 or \
            not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 40) for v in value):
        raise CheckpointFormatError(f"{what}: got {str(value)[:40]}, expected a short tuple of non-negative ints")
    return tuple(value)


class _RebuildTensor(_Frozen):
    """Stand-in for `torch._utils._rebuild_tensor_v2`: a bounds-checked copy out of a storage, nothing else."""

    __slots__ = ()

    def __call__(self, storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                 metadata=None):
        if not isinstance(storage, _Storage):
            raise CheckpointFormatError("tensor rebuild: the storage is not one read from the archive")
        if not isinstance(storage_offset, int) or storage_offset < 0:
            raise CheckpointFormatError(f"tensor rebuild: offset {storage_offset!r} is not a non-negative int")
        size, stride = _int_tuple(size, "tensor size"), _int_tuple(stride, "tensor stride")
        if len(size) != len(stride):
            raise CheckpointFormatError("tensor rebuild: size and stride differ in length")
        numel = 1
        for s in size:
            numel *= s
        extent = storage_offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if numel else 0
        # No view may reach past its storage or hold more elements than it (no stride-0 expansion to GBs).
        if extent > storage.flat.numel() or numel > storage.flat.numel():
            raise CheckpointFormatError(f"tensor rebuild: a {size} view does not fit its storage of "
                                        f"{storage.flat.numel()} elements")
        return storage.flat.as_strided(size, stride, storage_offset).clone()


class _RebuildParameter(_Frozen):
    """Stand-in for `torch._utils._rebuild_parameter[_with_state]`: parameters are read as plain tensors."""

    __slots__ = ()

    def __call__(self, data, requires_grad=False, backward_hooks=None, state=None):
        if not isinstance(data, torch.Tensor):
            raise CheckpointFormatError("parameter rebuild: its data is not a tensor")
        return data


class _StandInMeta(type):
    """Classes of pickled modules: attributes of the class itself cannot be changed by the pickle."""

    def __setattr__(cls, key, value):
        raise CheckpointFormatError(f"refusing to modify class {cls.__name__}")


class StandIn(metaclass=_StandInMeta):
    """Inert replacement for a pickled module object (models.yolo.Model, nn.Conv2d ...): keeps its state,
    has no methods beyond that, runs nothing."""

    _qualname = "?"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise CheckpointFormatError(f"{self._qualname}: state is not a dict of names")
        self.__dict__.update(state)


# Modules whose classes become inert stand-ins (state is kept, no code runs).
_STANDIN_MODULES = ("models.yolo", "models.common", "models.experimental")
_STANDIN_PREFIXES = ("torch.nn.modules.",)
# Immutable built-in types and C functions; each only builds data, for any arguments.
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict, ("builtins", "set"): set,
    ("__builtin__", "set"): set, ("builtins", "dict"): dict, ("builtins", "list"): list,
    ("builtins", "tuple"): tuple, ("torch", "Size"): torch.Size, ("_codecs", "encode"): _codecs.encode,
    # numpy arrays in the official checkpoint's training fields; C functions and immutable C types
    ("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
    **{(m, f): getattr(np._core.multiarray if hasattr(np, "_core") else np.core.multiarray, f)
       for m in ("numpy.core.multiarray", "numpy._core.multiarray") for f in ("_reconstruct", "scalar")},
    **{("torch", str(dt).split(".")[1]): dt for dt in (torch.float16, torch.float32, torch.float64, torch.bfloat16,
                                                       torch.int64, torch.int32, torch.uint8, torch.bool)},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allow-list above; storages come from `storages` (key -> _Storage) when given."""

    def __init__(self, file, storages=None):
        super().__init__(file)
        self._storages = storages
        self._standins: dict[str, type] = {}  # per load: nothing one file does survives into the next
        self._rebuild_tensor, self._rebuild_parameter = _RebuildTensor(), _RebuildParameter()

    def find_class(self, module, name):
        if module in _STANDIN_MODULES or module.startswith(_STANDIN_PREFIXES):
            key = f"{module}.{name}"
            if key not in self._standins:
                self._standins[key] = _StandInMeta(name, (StandIn,), {"_qualname": key})
            return self._standins[key]
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return self._rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise CheckpointFormatError(f"refusing to load global '{module}.{name}' (not on the allow-list)")

    def persistent_load(self, pid):
        # torch's zip format: ('storage', storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)):
            raise CheckpointFormatError(f"persistent id {str(pid)[:40]} is not a torch storage reference")
        if self._storages is None or pid[2] not in self._storages:
            raise CheckpointFormatError(f"storage '{pid[2][:20]}' is not in the archive")
        storage = self._storages[pid[2]]
        if storage.flat.dtype != pid[1].dtype:
            storage = _Storage(storage.flat.view(torch.uint8).view(pid[1].dtype))
        return storage


class _LazyStorages(dict):
    """key -> _Storage, read from the zip only when the pickle refers to it."""

    def __init__(self, zf: zipfile.ZipFile, prefix: str, infos: dict):
        super().__init__()
        self._zf, self._prefix, self._infos = zf, prefix, infos

    def __contains__(self, key):
        return super().__contains__(key) or f"{self._prefix}data/{key}" in self._infos

    def __getitem__(self, key):
        if not super().__contains__(key):
            raw = bytearray(self._zf.read(self._infos[f"{self._prefix}data/{key}"]))
            self[key] = _Storage(torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8))
        return super().__getitem__(key)


def _open_archive(path: Path, max_bytes: int):
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] == b"\x80":  # a bare pickle: torch < 1.6 legacy format
            raise CheckpointFormatError("it is a legacy (torch < 1.6, non-zip) checkpoint, which is not read; "
                                        "re-save it with torch >= 1.6")
        raise CheckpointFormatError("not a zip archive")
    infos = {i.filename: i for i in zf.infolist()}
    total = sum(i.file_size for i in infos.values())
    if total > max_bytes:
        zf.close()
        raise CheckpointFormatError(f"the archive declares {total / 2**20:.0f} MiB uncompressed, more than the "
                                    f"{max_bytes / 2**20:.0f} MiB allowed")
    pkls = [n for n in infos if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        zf.close()
        raise CheckpointFormatError("no single <name>/data.pkl in the archive")
    if infos[pkls[0]].file_size > MAX_PICKLE_BYTES:
        zf.close()
        raise CheckpointFormatError(f"data.pkl declares {infos[pkls[0]].file_size / 2**20:.0f} MiB, more than "
                                    f"the {MAX_PICKLE_BYTES >> 20} MiB allowed")
    return zf, infos, pkls[0]


def read_pickle_bytes(path: str | Path, max_bytes: int = MAX_TOTAL_BYTES) -> bytes:
    """The archive's data.pkl, size-checked (to look at the pickle without unpickling it)."""
    zf, infos, pkl = _open_archive(Path(path), max_bytes)
    with zf:
        return zf.read(infos[pkl])


def safe_load(path: str | Path, max_bytes: int = MAX_TOTAL_BYTES) -> Any:
    """Unpickle a torch zip checkpoint with the restricted unpickler. Raises CheckpointFormatError (a
    pickle.UnpicklingError), zipfile/OS errors, or EOFError for truncated data."""
    import io

    zf, infos, pkl = _open_archive(Path(path), max_bytes)
    with zf:
        prefix = pkl[: -len("data.pkl")]
        data = zf.read(infos[pkl])
        return RestrictedUnpickler(io.BytesIO(data), storages=_LazyStorages(zf, prefix, infos)).load()

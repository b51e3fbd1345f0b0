"""Atomic file writes: outputs appear whole or not at all (no half-written engines, caches or models)."""
import contextlib
import os
import tempfile
from pathlib import Path

from .errors import SDKError


def _file_mode():
    """What open() would give a new file (mkstemp makes 0600, which would hide outputs from other users)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def ensure_parent(path, what="output"):
    """Create the parent folder of `path`, with a one-line error when it cannot be written."""
    parent = Path(path).expanduser().resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SDKError(f"{what} {path}: cannot create folder {parent} ({e.strerror}), expected a writable location")
    if not os.access(parent, os.W_OK):
        raise SDKError(f"{what} {path}: folder {parent} is not writable, expected a writable location")
    return parent


def temp_beside(path, what="output", suffix=".part"):
    """A new empty temporary file in the folder of `path` (same filesystem, so the final rename is atomic).

    `suffix` lets writers that pick a format by extension (video, ONNX tools) see the right one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=ensure_parent(path, what))
    os.close(fd)
    os.chmod(tmp, FILE_MODE)
    return Path(tmp)


def discard(tmp):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path, what="output", suffix=".part"):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    tmp = temp_beside(path, what, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_bytes_atomic(path, data, what="output"):
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path, text, what="output"):
    with atomic_path(path, what) as tmp:
        tmp.write_text(text)

"""Atomic file writes: outputs appear whole or not at all (no half-written engines, caches or models)."""
import contextlib
import errno
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
    try:
        parent = Path(path).expanduser().resolve().parent
    except RuntimeError:  # Python 3.11: a symlink loop
        raise SDKError(f"{what} {path}: a symlink loop in the path, expected a writable location") from None
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


# errno values that mean "this output cannot be written here" rather than a bug
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}


def write_failed(path, e, what="output"):
    """The one-line error for an output that could not be written (a full disk, a file-size limit, ...)."""
    reason = e.strerror or type(e).__name__
    hint = {errno.ENOSPC: "free space on its filesystem", errno.EDQUOT: "disk quota left",
            errno.EFBIG: "a file size within the limit (ulimit -f)"}.get(e.errno, "a writable location")
    return SDKError(f"{what} {path}: cannot write it ({reason}), expected {hint}; nothing was written")


def sync_file(path):
    """Flush a finished file to the disk, so a full disk or an I/O error shows now rather than after the rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, what="output", suffix=".part"):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    Any exception (a signal raised into the command included) removes the temporary file; a failed write
    (ENOSPC, EFBIG, ...) becomes a one-line error naming `path`.
    """
    tmp = temp_beside(path, what, suffix)
    try:
        yield tmp
        if not tmp.exists():
            raise SDKError(f"{what} {path}: the writer produced no file, expected it to write {tmp.name}")
        sync_file(tmp)
        os.replace(tmp, path)
    except OSError as e:
        discard(tmp)
        if e.errno in WRITE_ERRNOS and e.filename in (None, str(tmp), str(path)):  # not an input's error
            raise write_failed(path, e, what) from e
        raise
    except BaseException:
        discard(tmp)
        raise


def check_written(ok, path, what="output"):
    """For writers that report failure by a return value (cv2.imwrite): False is an error, not a skipped file."""
    if not ok:
        raise write_failed(path, OSError(errno.EIO, "the writer reported a failure (disk full?)"), what)


def write_bytes_atomic(path, data, what="output"):
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path, text, what="output"):
    with atomic_path(path, what) as tmp:
        tmp.write_text(text)

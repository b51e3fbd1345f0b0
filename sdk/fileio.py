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
    return SDKError(f"{what} {path}: cannot write it ({reason}), expected {hint}")


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


def check_video_file(path, frames, what="video output", shown=None):
    """A finished video must open and hold its frames: OpenCV's writer reports no write errors, so a full disk
    would otherwise leave a truncated, unplayable file (no moov atom) that looks like a success."""
    import cv2  # noqa: PLC0415

    if frames <= 0:
        return
    cap = cv2.VideoCapture(str(path))
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
        # count <= 0: the backend cannot tell (GStreamer); the first and the last frame must then decode. An AVI
        # cut short still opens and counts its frames from the header, so the last frame is read in any case.
        ok = cap.isOpened() and (count <= 0 or count >= 0.9 * frames) and cap.read()[0]
        if ok and frames > 1:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
            ok = cap.read()[0]
    finally:
        cap.release()
    if not ok:
        raise SDKError(f"{what} {shown or path}: the written file is truncated or unplayable ({frames} frames sent), expected "
                       f"free space and a working encoder; nothing was kept")


def write_bytes_atomic(path, data, what="output"):
    with atomic_path(path, what) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path, text, what="output"):
    with atomic_path(path, what) as tmp:
        tmp.write_text(text)

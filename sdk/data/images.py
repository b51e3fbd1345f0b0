"""Reading images and resolving image sources (a file, a folder, a glob)."""
import errno
import fnmatch
import glob
import os
import re
from pathlib import Path

import cv2
import numpy as np

from ..errors import SDKError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts")
MAX_IMAGE_BYTES = 512 * 2**20  # a larger "image" is not a camera frame or a photo
MAX_IMAGE_PIXELS = 2**27  # 134 Mpx: decoding more (a decompression bomb) would take GBs
MAX_LISTED = 1_000_000  # folder entries a glob may visit before it is refused


def is_image(path):
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_video(path):
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def read_image(path):
    """BGR uint8 image, or a one-line error naming the file."""
    return decode_image(path, cv2.IMREAD_COLOR)


def decode_image(path, flags=cv2.IMREAD_COLOR):
    """Decode one image file with a one-line error for every way it can fail (missing, a folder, empty, a symlink
    loop, not an image, too large)."""
    path = str(path)
    expected = f"expected an image file ({', '.join(IMAGE_SUFFIXES)})"
    try:
        st = os.stat(path)
    except OSError as e:
        reason = "a symlink loop or a broken symlink" if os.path.islink(path) else \
            "file not found" if e.errno == errno.ENOENT else f"cannot read it ({e.strerror})"
        raise SDKError(f"image {path}: {reason}, {expected}") from None
    if not os.path.isfile(path):
        raise SDKError(f"image {path}: is a folder or a device, {expected}")
    if st.st_size == 0:
        raise SDKError(f"image {path}: the file is empty (0 bytes), {expected}")
    if st.st_size > MAX_IMAGE_BYTES:
        raise SDKError(f"image {path}: {st.st_size / 2**20:.0f} MB, expected an image under "
                       f"{MAX_IMAGE_BYTES // 2**20} MB")
    try:
        buf = np.fromfile(path, np.uint8)
        img = cv2.imdecode(buf, flags)
    except OSError as e:
        raise SDKError(f"image {path}: cannot read it ({e.strerror}), {expected}") from None
    except cv2.error:  # OpenCV refuses images above its pixel limit (CV_IO_MAX_IMAGE_PIXELS) this way
        img = None
    if img is None:
        raise SDKError(f"image {path}: cannot decode it, {expected}")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise SDKError(f"image {path}: {img.shape[1]}x{img.shape[0]} pixels, expected at most {MAX_IMAGE_PIXELS}")
    return img


def list_images(source, what="images"):
    """Sorted image paths of a file, a folder or a glob; an error when there are none.

    A folder named `x.png` is skipped (a broken symlink is not: reading it says what is wrong). Recursive globs (`**`)
    follow symlinked folders once each, so a symlink loop cannot make them run forever.
    """
    source = str(source)
    if os.path.isdir(source):
        paths = sorted(str(p) for p in Path(source).iterdir() if is_image(p) and not p.is_dir())
    elif any(c in source for c in "*?["):
        found = _recursive_glob(source, what) if "**" in source else glob.glob(source)
        paths = sorted(p for p in found if is_image(p) and os.path.isfile(p))
    elif os.path.isfile(source):
        if not is_image(source):
            raise SDKError(f"{what} {source}: not an image file, expected one of {', '.join(IMAGE_SUFFIXES)}")
        paths = [source]
    elif os.path.islink(source):
        raise SDKError(f"{what} {source}: a broken symlink or a symlink loop, expected an image, a folder or a glob")
    else:
        raise SDKError(f"{what} {source}: no such file or folder, expected an image, a folder of images or a glob")
    if not paths:
        raise SDKError(f"{what} {source}: contains no images, expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    return paths


def _recursive_glob(pattern, what):
    """glob.glob(pattern, recursive=True) without its endless descent into symlink loops.

    The walk starts at the pattern's literal prefix, visits every real folder once (by device and inode) and
    matches whole paths with the glob rules (`**` any folders, `*`/`?`/`[..]` within one name).
    """
    parts = pattern.split(os.sep)
    literal = []
    for part in parts:
        if glob.has_magic(part):
            break
        literal.append(part)
    root = os.sep.join(literal) or ("." if not pattern.startswith(os.sep) else os.sep)
    regex = _glob_regex(pattern if literal or pattern.startswith(os.sep) else os.path.join(".", pattern))
    seen, out, visited = set(), [], 0
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        visited += len(dirs) + len(files)
        if visited > MAX_LISTED:
            raise SDKError(f"{what} {pattern}: matches more than {MAX_LISTED} entries, expected a narrower glob")
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # glob skips hidden names too
        out += [p for p in (os.path.join(folder, f) for f in files if not f.startswith(".")) if regex.match(p)]
    return out


def _glob_regex(pattern):
    out, i = [], 0
    sep = re.escape(os.sep)
    while i < len(pattern):
        if pattern.startswith("**" + os.sep, i):
            out.append(f"(?:[^{sep}]*{sep})*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"[^{sep}]*")
            i += 1
        elif pattern[i] == "?":
            out.append(f"[^{sep}]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2:]:
            j = pattern.index("]", i + 2) + 1
            out.append(fnmatch.translate(pattern[i:j])[4:-3])  # "(?s:[..])\Z" -> "[..]"
            i = j
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


"""Reading images and resolving image sources (a file, a folder, a glob)."""
import glob
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import SDKError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts")


def is_image(path):
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_video(path):
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def read_image(path):
    """BGR uint8 image, or a one-line error naming the file."""
    if not os.path.isfile(path):
        raise SDKError(f"image {path}: file not found, expected a readable image file")
    img = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise SDKError(f"image {path}: cannot decode it, expected an image file ({', '.join(IMAGE_SUFFIXES)})")
    return img


def list_images(source, what="--source"):
    """Sorted image paths of a file, a folder or a glob; an error when there are none."""
    source = str(source)
    if os.path.isdir(source):
        paths = sorted(str(p) for p in Path(source).iterdir() if is_image(p))
    elif any(c in source for c in "*?["):
        paths = sorted(p for p in glob.glob(source, recursive=True) if is_image(p))
    elif os.path.isfile(source):
        if not is_image(source):
            raise SDKError(f"{what} {source}: not an image file, expected one of {', '.join(IMAGE_SUFFIXES)}")
        paths = [source]
    else:
        raise SDKError(f"{what} {source}: no such file or folder, expected an image, a folder of images or a glob")
    if not paths:
        raise SDKError(f"{what} {source}: contains no images, expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    return paths

"""Calibration data: images pre-processed exactly as at inference time.

`ImageCalibrationReader` implements onnxruntime's `CalibrationDataReader` protocol (`get_next()` returns
`{input_name: array}` or None, `rewind()`), and is also a plain iterable of those dicts, so onnxruntime's
`quantize_static` and the TensorRT calibrators consume the same batches. Using the SDK's `Preprocessor` here
is the point: a calibration/inference pre-processing mismatch is the most reported cause of bad INT8 accuracy.
"""
import hashlib
import json
import os
import random

import numpy as np

from sdk.data.images import is_image, list_images, read_image
from sdk.errors import SDKError
from sdk.preprocess import Preprocessor
from sdk.progress import progress_bar


def calibration_images(source, count=None, seed=0, what="--calib-images"):
    """Image paths for calibration from a folder/glob/file or any labelled dataset (YOLO, COCO json, VOC).

    With `count`, a seeded random sample of that many; asking for more images than exist is an error.
    """
    source = str(source)
    if os.path.isdir(source) and not os.listdir(source):
        raise SDKError(f"{what} {source}: the folder is empty, expected images or a labelled dataset")
    if source.lower().endswith((".json", ".yaml", ".yml")) or (
            os.path.isdir(source) and not any(is_image(p) for p in os.listdir(source))):
        from sdk.data.datasets import load_dataset

        paths = load_dataset(source).image_paths()
    else:
        paths = list_images(source, what)
    if count is not None:
        if count > len(paths):
            raise SDKError(f"{what} {source}: got {len(paths)} images, expected at least {count} "
                           f"(lower the count or add images)")
        paths = sorted(random.Random(seed).sample(paths, count))
    return paths


class ImageCalibrationReader:
    """Batches of pre-processed images for a model whose metadata gives the input size and normalisation."""

    def __init__(self, paths, meta, batch_size=1, input_name=None, max_batches=None, progress=True):
        if not paths:
            raise SDKError("calibration images: got none, expected at least one image")
        self.paths = list(paths)
        self.meta = meta
        self.pre = Preprocessor(meta)
        self.batch_size = int(batch_size)
        self.input_name = input_name or meta.input_name
        n = len(self.paths) // self.batch_size
        if n == 0:
            raise SDKError(f"calibration images: got {len(self.paths)}, expected at least one batch of "
                           f"{self.batch_size}")
        self.num_batches = min(n, max_batches) if max_batches else n
        self.progress = progress
        self._it = None

    def batches(self):
        """Yield `(batch_size, 3, H, W)` float32 arrays."""
        bar = progress_bar(total=self.num_batches, desc="calibration", disable=not self.progress)
        try:
            for b in range(self.num_batches):
                chunk = self.paths[b * self.batch_size:(b + 1) * self.batch_size]
                yield np.concatenate([self.pre(read_image(p))[0] for p in chunk], axis=0)
                bar.update(1)
        finally:
            bar.close()

    def __iter__(self):
        for batch in self.batches():
            yield {self.input_name: batch}

    def __len__(self):
        return self.num_batches

    # onnxruntime CalibrationDataReader protocol
    def get_next(self):
        if self._it is None:
            self._it = iter(self)
        return next(self._it, None)

    def rewind(self):
        self._it = None

    def fingerprint(self):
        """Identity of this calibration set: which images, in which batches, through which pre-processing."""
        h = hashlib.sha256()
        h.update(json.dumps({"pre": self.pre.fingerprint(), "batch_size": self.batch_size,
                             "num_batches": self.num_batches}, sort_keys=True).encode())
        for p in self.paths[: self.num_batches * self.batch_size]:
            h.update(os.path.basename(p).encode())
            h.update(str(os.path.getsize(p)).encode())
        return h.hexdigest()

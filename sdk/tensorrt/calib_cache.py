"""INT8 calibration cache keyed by a fingerprint, so a stale cache is refused, never silently reused.

The cache file itself stays in TensorRT's own format (usable by trtexec --calib); the fingerprint lives beside
it in `<cache>.json`: ONNX sha256, pre-processing, calibration image list + batching, batch size, calibrator
and TensorRT version, plus the cache's own sha256. When a build reuses a cache without calibration images, the
image-list part cannot be compared and is reported as not checked.
"""
import hashlib
import json
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_bytes_atomic, write_text_atomic

KEYS = ("onnx_sha256", "preprocess", "images", "batch_size", "calibrator", "tensorrt")


def fingerprint(onnx_sha256, preprocess, images, batch_size, calibrator, tensorrt):
    return {"onnx_sha256": onnx_sha256, "preprocess": preprocess, "images": images, "batch_size": batch_size,
            "calibrator": calibrator, "tensorrt": str(tensorrt)}


class CalibrationCache:
    def __init__(self, path, fp):
        self.path = Path(path) if path else None
        self.fingerprint = fp
        self.reused = False
        self.written = False

    @property
    def meta_path(self):
        return Path(str(self.path) + ".json")

    def load(self):
        """Cache bytes when a matching cache exists, None when there is none; a stale cache is an error."""
        if self.path is None or not self.path.is_file():
            return None
        fix = f"delete {self.path} (and {self.meta_path.name}) or pass another --calib-cache to recalibrate"
        if not self.meta_path.is_file():
            raise SDKError(f"calibration cache {self.path}: no fingerprint file {self.meta_path.name}, expected a "
                           f"cache written by build_engine; {fix}")
        try:
            stored = json.loads(self.meta_path.read_text())
        except ValueError:
            raise SDKError(f"calibration cache {self.path}: fingerprint file is not JSON, expected build_engine's; "
                           f"{fix}") from None
        data = self.path.read_bytes()
        if stored.get("cache_sha256") != hashlib.sha256(data).hexdigest():
            raise SDKError(f"calibration cache {self.path}: contents changed since it was written (sha256 "
                           f"mismatch), expected the cache its fingerprint describes; {fix}")
        stale = [k for k in KEYS if self.fingerprint.get(k) is not None and stored.get(k) != self.fingerprint[k]]
        if stale:
            raise SDKError(f"calibration cache {self.path}: stale, it was made for a different "
                           f"{', '.join(stale)}; expected a cache for this model and calibration set; {fix}")
        self.reused = True
        return data

    def save(self, data):
        if self.path is None:
            return
        data = bytes(data)
        write_bytes_atomic(self.path, data, "calibration cache")
        record = {**self.fingerprint, "cache_sha256": hashlib.sha256(data).hexdigest()}
        write_text_atomic(self.meta_path, json.dumps(record, indent=1, sort_keys=True), "calibration cache")
        self.written = True

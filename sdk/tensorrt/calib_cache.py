"""INT8 calibration cache keyed by a fingerprint, so a stale cache is refused, never silently reused.

The cache file itself stays in TensorRT's own format (usable by trtexec --calib); the fingerprint lives beside
it in `<cache>.json`: ONNX sha256, pre-processing, calibration image list + batching, batch size, calibrator
and TensorRT version, plus the cache's own sha256. When a build reuses a cache without calibration images, the
image-list part cannot be compared and is reported as not checked.

A cache written by `python -m sdk quantize --trt-cache` carries a fingerprint too (ONNX sha256 and
pre-processing; no batching, since TensorRT never reads its images), so build_engine accepts it. Every cache's
header line `TRT-<NV_TENSORRT_VERSION>-<algorithm>` is checked against this TensorRT and calibrator before the
build: TensorRT ignores a cache whose header does not match and calibrates again (or fails without images).
"""
import hashlib
import json
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_bytes_atomic, write_text_atomic

KEYS = ("onnx_sha256", "preprocess", "images", "batch_size", "calibrator", "tensorrt")
ALGORITHMS = {"entropy": "EntropyCalibration2", "minmax": "MinMaxCalibration"}


def header_version(version):
    """NV_TENSORRT_VERSION as the cache header writes it (NvInferVersion.h): major*1000 + minor*100 + patch before
    TensorRT 10 (8.5.2 -> 8502), major*10000 + minor*100 + patch from 10 (10.3.0 -> 100300). Accepts a version
    string ('10.3.0.26', '8.6') or the number itself."""
    if isinstance(version, int) or str(version).isdigit():
        return int(version)
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in str(version).split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def cache_header(version, calibrator="entropy"):
    return f"TRT-{header_version(version)}-{ALGORITHMS[calibrator]}"


def fingerprint(onnx_sha256, preprocess, images, batch_size, calibrator, tensorrt):
    return {"onnx_sha256": onnx_sha256, "preprocess": preprocess, "images": images, "batch_size": batch_size,
            "calibrator": calibrator, "tensorrt": None if tensorrt is None else str(tensorrt)}


class CalibrationCache:
    def __init__(self, path, fp, calibrator=None, tensorrt=None):
        self.path = Path(path) if path else None
        self.fingerprint = fp
        self.header = cache_header(tensorrt, calibrator) if calibrator and tensorrt else None
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
        stale = [k for k in KEYS if self.fingerprint.get(k) is not None and stored.get(k) is not None
                 and stored.get(k) != self.fingerprint[k]]
        if stored.get("onnx_sha256") is None:
            stale.insert(0, "onnx_sha256")  # a fingerprint must at least say which model it is for
        if stale:
            raise SDKError(f"calibration cache {self.path}: stale, it was made for a different "
                           f"{', '.join(stale)}; expected a cache for this model and calibration set; {fix}")
        head = data.split(b"\n", 1)[0].decode(errors="replace").strip()
        if self.header and head != self.header:
            raise SDKError(f"calibration cache {self.path}: header {head[:60]}, expected {self.header} (this "
                           f"TensorRT and calibrator; TensorRT would ignore it); {fix}, or rerun 'python -m sdk "
                           f"quantize --trt-cache' with --trt-version {self.header.split('-')[1]}")
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

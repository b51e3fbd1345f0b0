"""Calibration ranges -> a TensorRT calibration cache (text), so a Jetson build can skip calibration.

Format (what IInt8EntropyCalibrator2.writeCalibrationCache emits): a header line
`TRT-<version>-EntropyCalibration2`, then one `<tensor name>: <scale>` line per tensor, where scale is
amax / 127 as the 8 hex digits of its big-endian float32 bits (0.0111 -> 3c3604b4). <version> is TensorRT's
NV_TENSORRT_VERSION: major*1000 + minor*100 + patch before 10 (8502 = TensorRT 8.5.2, JetPack 5.1; 8602 = 8.6.2,
JetPack 6.0), major*10000 + minor*100 + patch from 10 (100300 = 10.3.0, JetPack 6.1/6.2); TensorRT ignores a
cache whose header names another version or algorithm, and then calibrates again. With `model=`, a fingerprint
`<cache>.json` is written beside it so build_engine accepts the cache for that model (sdk/tensorrt/calib_cache.py).
"""
import re
import struct

from ..errors import SDKError
from ..fileio import write_text_atomic
from ..tensorrt.calib_cache import header_version  # noqa: F401 - re-exported: the quantize side's name for it

DEFAULT_TRT_VERSION = 8502
ALGORITHM = "EntropyCalibration2"
_LINE_RE = re.compile(r"^(.+): ([0-9a-fA-F]{8})$")


def scale_to_hex(scale):
    return struct.pack(">f", float(scale)).hex()


def hex_to_scale(text):
    return struct.unpack(">f", bytes.fromhex(text))[0]


def amax_scales(ranges):
    """{tensor: (low, high)} -> {tensor: amax/127}, symmetric as TensorRT INT8 is. All-zero tensors get the
    smallest positive scale so TensorRT never divides by zero."""
    out = {}
    for name, (low, high) in ranges.items():
        amax = max(abs(float(low)), abs(float(high)))
        out[name] = amax / 127.0 if amax > 0 else 1e-8
    return out


def format_cache(scales, trt_version=DEFAULT_TRT_VERSION, algorithm=ALGORITHM):
    lines = [f"TRT-{int(trt_version)}-{algorithm}"]
    lines += [f"{name}: {scale_to_hex(s)}" for name, s in scales.items()]
    return "\n".join(lines) + "\n"


def write_cache(path, ranges, trt_version=DEFAULT_TRT_VERSION, model=None):
    """Write a TensorRT calibration cache for `ranges` ({tensor name: (low, high)}); returns the scale count.
    `trt_version` is NV_TENSORRT_VERSION (8502, 100300) or a version string ('10.3'). With `model` (the FP32 ONNX
    the ranges came from) the fingerprint build_engine checks is written too."""
    from ..tensorrt.calib_cache import CalibrationCache, fingerprint

    scales = amax_scales(ranges)
    text = format_cache(scales, header_version(trt_version))
    if model is None:
        write_text_atomic(path, text, "trt_cache")
        return len(scales)
    import hashlib

    from ..metadata import ModelMetadata
    from ..preprocess import Preprocessor
    from .layers import load_model

    m = load_model(model)
    meta = ModelMetadata.from_props({p.key: p.value for p in m.metadata_props})
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    # images / batch size / TensorRT version are not what TensorRT checks for a cache it is given: left None
    fp = {**fingerprint(sha, Preprocessor(meta).fingerprint(), None, None, "entropy", None),
          "source": "python -m sdk quantize --trt-cache"}
    CalibrationCache(path, fp).save(text.encode())
    return len(scales)


def read_cache(path):
    """(header, {tensor: scale}) from a cache written by TensorRT or by `write_cache`."""
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        raise SDKError(f"TensorRT calibration cache {path}: cannot read it ({e.strerror}), expected a cache file")
    if not lines or not lines[0].startswith("TRT-"):
        raise SDKError(f"TensorRT calibration cache {path}: got header '{lines[0][:40] if lines else ''}', "
                       f"expected 'TRT-<version>-<algorithm>'")
    scales = {}
    for line in lines[1:]:
        m = _LINE_RE.match(line.strip())
        if not m:
            raise SDKError(f"TensorRT calibration cache {path}: got line '{line[:60]}', expected 'name: 8 hex'")
        scales[m.group(1)] = hex_to_scale(m.group(2))
    return lines[0], scales

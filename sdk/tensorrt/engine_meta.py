"""The engine sidecar `m.engine.json`: what the engine was built with and for, so the runner can refuse an
engine from another TensorRT or GPU (TensorRT engines are not portable) and the Detector gets class names,
input size and pre-processing without the ONNX."""
import hashlib
import json
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_text_atomic
from ..metadata import ModelMetadata

FORMAT = 1


def sidecar_path(engine_path):
    return Path(str(engine_path) + ".json")


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_sidecar(engine_path, record):
    record = {"format": FORMAT, **record}
    write_text_atomic(sidecar_path(engine_path), json.dumps(record, indent=1, default=str), "engine metadata")
    return record


def read_sidecar(engine_path):
    """The sidecar dict, or None when the engine has none (e.g. built with trtexec)."""
    p = sidecar_path(engine_path)
    if not p.is_file():
        return None
    try:
        record = json.loads(p.read_text())
    except ValueError as e:
        raise SDKError(f"engine metadata {p}: not valid JSON ({e}), expected the file build_engine writes; "
                       f"rebuild the engine")
    if not isinstance(record, dict) or "tensorrt" not in record:
        raise SDKError(f"engine metadata {p}: got {type(record).__name__} without 'tensorrt', expected the file "
                       f"build_engine writes; rebuild the engine")
    return record


def metadata_of(record, what="engine metadata"):
    """The ModelMetadata in a sidecar, each value checked as the ONNX metadata is: a sidecar is a file anyone can
    edit, and a bad value (imgsz 0, NaN mean) would otherwise surface as a wrong box or a crash mid-run."""
    section = record.get("metadata") or {}
    if not isinstance(section, dict):
        raise SDKError(f"{what}: metadata got {type(section).__name__}, expected an object of model metadata; "
                       f"rebuild the engine")
    kw = {k: tuple(v) if k in ("imgsz", "letterbox_color", "mean", "std") and isinstance(v, list) else v
          for k, v in section.items() if k in ModelMetadata.__dataclass_fields__}
    try:
        meta = ModelMetadata(**kw)
    except (TypeError, ValueError) as e:
        raise SDKError(f"{what}: metadata got {e}, expected the values build_engine writes; rebuild the engine")
    return meta.validate(what, given=kw)


def check_compatible(engine_path, record, trt_version, device):
    """Refuse an engine built for another TensorRT version or GPU, with the command that fixes it."""
    onnx = record.get("onnx") or "model.onnx"
    rebuild = f"rebuild it here with: build_engine --onnx {onnx} -o {engine_path}"
    if str(record.get("tensorrt")) != str(trt_version):
        raise SDKError(f"engine {engine_path}: built with TensorRT {record.get('tensorrt')}, this machine has "
                       f"TensorRT {trt_version}; expected the same version ({rebuild})")
    built = record.get("device") or {}
    if device and built and (built.get("name") != device.get("name") or
                             built.get("compute_capability") != device.get("compute_capability")):
        raise SDKError(f"engine {engine_path}: built for {built.get('name')} (compute {built.get('compute_capability')}), "
                       f"this GPU is {device.get('name')} (compute {device.get('compute_capability')}); expected the "
                       f"same GPU ({rebuild})")
    # Every Orin module reports "Orin", compute 8.7: AGX, NX and Nano differ in SMs, memory and DLA cores, and
    # an engine's tactics (and its DLA layers) are chosen for the board it was built on.
    differ = [k for k in ("multiprocessors", "memory_gb", "dla_cores")
              if built.get(k) is not None and device.get(k) is not None and built[k] != device[k]]
    if device and built and differ:
        raise SDKError(f"engine {engine_path}: built for {built.get('name')} ({_board(built)}), this GPU "
                       f"is {device.get('name')} ({_board(device)}); expected the same board ({rebuild})")


def _board(d):
    return f"{d.get('multiprocessors')} SMs, {d.get('memory_gb')} GB, {d.get('dla_cores')} DLA cores"

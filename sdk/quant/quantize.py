"""INT8 post-training quantization with onnxruntime: calibrate once, then QDQ-quantize the layers a precision plan
marks int8 (per-channel int8 weights), leaving every other node in float.

Calibration ranges are computed once per (model, images, method) and saved as onnxruntime's JSON tensor-range
cache, so sensitivity sweeps re-quantize in about a second per variant instead of re-running the images.
"""
import contextlib
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SDKError
from ..fileio import atomic_path, temp_beside, discard
from ..precision.plan import PrecisionPlan, precision_counts
from .layers import check_float_model, load_model, metadata_of, onnx_layers

METHODS = ("entropy", "minmax", "percentile")
ENTROPY_BINS = 512
ACTIVATION_TYPES = ("u8", "s8")
# Conv carries the arithmetic; quantizing LeakyRelu/MaxPool/Concat/Resize too lets int8 tensors flow between
# convs, so onnxruntime's QDQ fusion drops the Dequantize->Quantize pairs around them (scripts/bench_int8.py:
# 2.2-2.5x the official FP32 against 1.7x for Conv-only u8s8, docs/int8.md).
DEFAULT_OP_TYPES = ("Conv", "LeakyRelu", "MaxPool", "Concat", "Resize")


@dataclass
class QuantConfig:
    method: str = "entropy"
    activations: str = "u8"
    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple = DEFAULT_OP_TYPES
    fmt: str = "qdq"  # qdq | qoperator (the latter only for baselines: it cannot carry a mixed plan to TensorRT)
    percentile: float = 99.999
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise SDKError(f"--calib-method: got '{self.method}', expected one of {', '.join(METHODS)}")
        if self.activations not in ACTIVATION_TYPES:
            raise SDKError(f"--activations: got '{self.activations}', expected u8 or s8")
        if self.fmt not in ("qdq", "qoperator"):
            raise SDKError(f"quantization format: got '{self.fmt}', expected qdq or qoperator")


@contextlib.contextmanager
def _quiet_ort_warnings():
    """onnxruntime.quantization logs its 'consider pre-processing' advice through the root logger: hold the root
    level at ERROR while it runs and give the caller's level back after (never change the application's logging)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(max(before, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(before)


def _q():
    from ..deps import require

    return require("onnxruntime.quantization", "INT8 quantization")


def _method(q, name):
    return {"entropy": q.CalibrationMethod.Entropy, "minmax": q.CalibrationMethod.MinMax,
            "percentile": q.CalibrationMethod.Percentile}[name]


def calibrate(model_path, reader, method="minmax", cache_path=None, percentile=99.999):
    """Run the calibration images through `model_path` and save every float tensor's range to `cache_path`
    (onnxruntime's JSON range cache). Returns {tensor: (low, high)}."""
    import tempfile

    q = _q()
    QuantConfig(method=method)  # validates the name
    check_float_model(load_model(model_path), model_path)
    extra = {"percentile": percentile} if method == "percentile" else {}
    if method == "entropy":
        # onnxruntime's defaults (128 histogram bins, 128 quantized bins) leave the KL search a single candidate,
        # the full min..max range, i.e. plain minmax; a finer histogram gives it thresholds to choose from.
        extra = {"num_bins": ENTROPY_BINS, "num_quantized_bins": 128}
    with _quiet_ort_warnings(), tempfile.TemporaryDirectory(prefix="sdk-calib-") as tmp:
        calibrator = q.create_calibrator(Path(model_path), None, augmented_model_path=os.path.join(tmp, "aug.onnx"),
                                         calibrate_method=_method(q, method), extra_options=extra)
        # onnxruntime prints its calibration progress on stdout; commands keep stdout for the table + JSON
        with contextlib.redirect_stdout(sys.stderr):
            calibrator.collect_data(reader)
            data = calibrator.compute_data()
        del calibrator
    if cache_path:
        tmp = temp_beside(cache_path, "calibration cache", ".json")
        try:
            q.save_tensors_data(data, tmp)
            os.replace(tmp, cache_path)
        except BaseException:
            discard(tmp)
            raise
    return tensor_ranges(data)


def tensor_ranges(data):
    return {name: (float(_scalar(td.range_value[0])), float(_scalar(td.range_value[1])))
            for name, td in data.data.items()}


def _scalar(v):
    import numpy as np

    return np.asarray(v).reshape(-1)[0]


def load_ranges(cache_path):
    return tensor_ranges(_q().load_tensors_data(cache_path))


def detect_layer_index(meta):
    head = (meta.blocks or {}).get("head") or []
    return max(head) if head else None


def plan_int8_nodes(model, plan, config):
    """(int8 node names, resolved {node: precision}, layers). The detection layer's decode (grid/anchor maths in
    input pixels) always stays float: 8 bits cannot hold box coordinates up to the image size."""
    layers = onnx_layers(model)
    resolved = plan.resolve(layers)
    det = detect_layer_index(metadata_of(model))
    decode = {layer.name for layer in layers
              if det is not None and f"model.{det}/" in layer.name and layer.op_type != "Conv"}
    if det is None:  # a model from another exporter: its decode is whatever follows the last convs
        from ..layouts import decode_nodes

        decode = decode_nodes(model)
    ops = {o.lower() for o in config.op_types}
    int8 = [layer.name for layer in layers
            if resolved[layer.name] == "int8" and layer.name not in decode and layer.op_type.lower() in ops]
    return int8, resolved, layers


def quantize(model_path, output, ranges_cache, plan=None, config=None, method=None, extra_metadata=None):
    """Quantize `model_path` into `output` (atomically) using a range cache from `calibrate`. Returns a report."""
    q = _q()
    config = config or QuantConfig(method=method or "minmax")
    plan = plan or PrecisionPlan(default="int8")
    model = load_model(model_path)
    check_float_model(model, model_path)
    int8, resolved, layers = plan_int8_nodes(model, plan, config)
    if not int8:
        raise SDKError(f"precision plan {plan.to_dict()}: selects no quantizable layer "
                       f"({', '.join(config.op_types)}), expected at least one int8 layer")
    act = q.QuantType.QUInt8 if config.activations == "u8" else q.QuantType.QInt8
    fmt = q.QuantFormat.QDQ if config.fmt == "qdq" else q.QuantFormat.QOperator
    with _quiet_ort_warnings(), atomic_path(output, "INT8 ONNX output", suffix=".onnx") as tmp:
        q.quantize_static(str(model_path), str(tmp), None, quant_format=fmt, op_types_to_quantize=list(config.op_types),
                          per_channel=config.per_channel, reduce_range=config.reduce_range, activation_type=act,
                          weight_type=q.QuantType.QInt8, nodes_to_quantize=int8,
                          calibrate_method=_method(q, config.method), calibration_cache_path=str(ranges_cache),
                          extra_options=dict(config.extra))
        _stamp_metadata(tmp, model, plan, config, int8, extra_metadata)
    counts = precision_counts(resolved)
    return {"output": str(output), "size_mb": round(os.path.getsize(output) / 2**20, 2), "int8_nodes": len(int8),
            "layers": len(layers), "plan_precisions": counts, "config": _config_json(config), "plan": plan.to_dict()}


def _config_json(config):
    d = asdict(config)
    d["op_types"] = list(d["op_types"])
    return d


def _stamp_metadata(path, source_model, plan, config, int8, extra):
    """Carry the SDK metadata over and record how the model was quantized (precision int8)."""
    import onnx

    m = onnx.load(str(path))
    props = {p.key: p.value for p in source_model.metadata_props}
    props["sdk.precision"] = json.dumps("int8")
    props["sdk.quantization"] = json.dumps({"plan": plan.to_dict(), "config": _config_json(config),
                                            "int8_nodes": len(int8), **(extra or {})})
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(path))

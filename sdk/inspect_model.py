"""What the SDK sees in a model file (the library side of `python -m sdk inspect`), and writing the SDK metadata
into a copy of a foreign ONNX model so later commands need no flags."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .errors import SDKError
from .layouts import ModelOptions, ResolvedModel, onnx_specs, resolve_model
from .runners import ENGINE_SUFFIXES

QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger"}


def _load_onnx(path):
    import onnx  # noqa: PLC0415

    if not Path(path).is_file():
        raise SDKError(f"model {path}: file not found, expected an .onnx model or a TensorRT engine")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as e:  # DecodeError and friends for files that are not ONNX
        raise SDKError(f"model {path}: not a readable ONNX model ({type(e).__name__}), expected an .onnx file")


def _constants(proto):
    """name -> numpy value of initializers and Constant nodes (for reading NMS thresholds)."""
    from onnx import numpy_helper  # noqa: PLC0415

    values = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].HasField("t"):
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return values


def nms_settings(proto) -> Optional[str]:
    """The NMS a graph carries, with its thresholds where they are constants."""
    consts = _constants(proto)
    for n in proto.graph.node:
        if n.op_type == "NonMaxSuppression":
            vals = [consts.get(name) for name in list(n.input)[2:5]]
            labels = ("max boxes per class", "IoU", "score threshold")
            parts = [f"{lab} {float(np.asarray(v).reshape(-1)[0]):g}" for lab, v in zip(labels, vals) if v is not None]
            return "NonMaxSuppression: " + (", ".join(parts) or "thresholds computed in the graph")
        if n.op_type.startswith("EfficientNMS"):
            attrs = {a.name: (a.f if a.type == 1 else a.i) for a in n.attribute if a.type in (1, 2)}
            keys = ("max_output_boxes", "iou_threshold", "score_threshold")
            return f"{n.op_type}: " + ", ".join(f"{k} {attrs[k]:g}" for k in keys if k in attrs)
    return None


def onnx_precision(proto, meta) -> str:
    if meta.names and meta.precision:
        return meta.precision
    ops = {n.op_type for n in proto.graph.node}
    if ops & QUANT_OPS:
        return "int8"
    if any(i.data_type == 10 for i in proto.graph.initializer):  # TensorProto.FLOAT16
        return "fp16"
    return "fp32"


def _spec_dict(s):
    return {"name": s.name, "shape": "(" + ", ".join("?" if d is None else str(d) for d in s.shape) + ")",
            "dtype": str(np.dtype(s.dtype))}


def inspect_model(path: str, options: Optional[ModelOptions] = None) -> dict:
    """A JSON-able report: inputs, outputs, layout and why, classes, precision, SDK metadata, notes."""
    from .metadata import ModelMetadata  # noqa: PLC0415

    path = str(path)
    options = options or ModelOptions()
    if Path(path).suffix.lower() in ENGINE_SUFFIXES:
        from .runners.tensorrt import TensorRTRunner  # noqa: PLC0415 - needs TensorRT

        with TensorRTRunner(path) as runner:
            inputs, outputs, meta = runner.inputs, runner.outputs, runner.metadata
            precision = (runner.record or {}).get("precision", "unknown (no build_engine sidecar)")
        kind, nms = "engine", None
    else:
        proto = _load_onnx(path)
        inputs, outputs = onnx_specs(proto)
        meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
        precision, nms, kind = onnx_precision(proto, meta), nms_settings(proto), "onnx"
    r: ResolvedModel = resolve_model(inputs, outputs, meta, options, f"model {path}", require_anchors=False)
    m = r.meta
    names_from = "--names" if options.names else ("file" if meta.names else "default: not in the file")
    return {"model": path, "kind": kind, "precision": precision, "inputs": [_spec_dict(s) for s in inputs],
            "outputs": [_spec_dict(s) for s in outputs], "layout": r.layout.name, "reason": r.layout.reason,
            "nms": nms, "names": list(m.names), "names_from": names_from, "imgsz": list(m.imgsz),
            "channel_order": m.channel_order, "scale": m.scale, "anchors": list(m.anchors),
            "sdk_metadata": bool(meta.names), "foreign": r.foreign, "notes": r.notes,
            "metadata": m.to_json()}


def write_metadata(src: str, out: str, options: Optional[ModelOptions] = None) -> Path:
    """Copy an ONNX model to `out` with complete SDK metadata (atomically); the graph is untouched."""
    import onnx  # noqa: PLC0415

    from .fileio import atomic_path  # noqa: PLC0415
    from .metadata import ModelMetadata  # noqa: PLC0415

    if Path(src).suffix.lower() in ENGINE_SUFFIXES:
        raise SDKError(f"write_metadata: got engine {src}, expected an ONNX model (write the metadata into the "
                       f"ONNX, then build the engine from it with build_engine)")
    if not str(out).lower().endswith(".onnx"):
        raise SDKError(f"write_metadata: got '{out}', expected a path ending in .onnx")
    if Path(out).resolve() == Path(src).resolve():
        raise SDKError(f"write_metadata: got the input file {src}, expected a new path (the original is kept)")
    proto = _load_onnx(src)
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    inputs, outputs = onnx_specs(proto)
    r = resolve_model(inputs, outputs, meta, options, f"model {src}")
    full = r.meta
    full.precision = onnx_precision(proto, meta)
    full.source = full.source or f"{Path(src).name} (metadata written by 'python -m sdk inspect')"
    keep = {p.key: p.value for p in proto.metadata_props if not p.key.startswith(ModelMetadata.PREFIX)}
    del proto.metadata_props[:]
    for k, v in {**keep, **full.to_props()}.items():
        proto.metadata_props.add(key=k, value=v)
    with atomic_path(out, "write_metadata", suffix=".onnx") as tmp:
        onnx.save(proto, str(tmp))
    return Path(out)

"""TensorRT's rules for a Q/DQ (explicitly quantized) ONNX, checked before parsing so the error names the node and
the rule instead of a parser assertion (and so `python -m sdk quantize --target trt` can prove its output).

Each rule names its source; onnx-tensorrt's `QuantDequantLinearHelper` (onnxOpImporters.cpp / builtin_op_importers
on 8.x) and TensorRT's Developer Guide, "Working with Quantized Types / Explicit Quantization":
- symmetric: every zero point is 0 ("Non-zero zero point is not supported"; asymmetric only on DLA).
- int8: the quantized type is INT8; UINT8 is DLA-only ("TensorRT only allows FP8, INT8, INT4 ... quantization").
- dq-input-int8: DequantizeLinear reads an 8-bit tensor; an INT32 bias DequantizeLinear (onnxruntime's quantized
  biases) is refused ("input has type Int32 but must have type ... Int8"): biases stay float.
- scale-constant: the scale is a build-time constant (an initializer or Constant; 8.x "The scale tensor is required
  to be an initializer").
- scale-positive: scales are finite and > 0 (NvInfer.h IQuantizeLayer/IDequantizeLayer: positive scale).
- per-axis-count: per-axis scales count the quantized axis ("The number of scales is not equal to the number of
  output channels").
- per-tensor-activations: activations quantize per tensor; per-channel only for constant weights.
- weights-axis-0: convolution weights quantize per output channel, axis 0 (K).
"""
from typing import List, NamedTuple

import numpy as np

from ..errors import SDKError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_INT8, _UINT8, _INT32 = 3, 2, 6
_TYPE_NAMES = {1: "float", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16"}


class Violation(NamedTuple):
    node: str
    op_type: str
    rule: str
    detail: str


def _constants(model):
    from onnx import helper, numpy_helper  # noqa: PLC0415 - runtime dependency of build_engine

    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute:
            value = helper.get_attribute_value(n.attribute[0])
            if hasattr(value, "dims"):
                out[n.output[0]] = numpy_helper.to_array(value)
    return out


def _elem_types(model):
    types = {t.name: t.data_type for t in model.graph.initializer}
    for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        types.setdefault(v.name, v.type.tensor_type.elem_type)
    return types


def check_qdq(model) -> List[Violation]:
    """Every Q/DQ node that breaks one of TensorRT's rules (module docstring), in graph order."""
    consts = _constants(model)
    types = _elem_types(model)
    weights = {t.name for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1}
    out = []
    for n in model.graph.node:
        if n.op_type not in QDQ_OPS:
            continue

        def bad(rule, detail, n=n):
            out.append(Violation(n.name, n.op_type, rule, detail))
        scale = consts.get(n.input[1]) if len(n.input) > 1 else None
        if scale is None:
            bad("scale-constant", f"scale '{n.input[1] if len(n.input) > 1 else ''}' is not a constant")
            continue
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            bad("scale-positive", f"scale has values <= 0 or not finite (min {float(np.min(scale)):.3g})")
        if len(n.input) > 2 and n.input[2]:
            zp = consts.get(n.input[2])
            zp_type = types.get(n.input[2])
            if zp_type is not None and zp_type != _INT8:
                bad("int8", f"zero point is {_TYPE_NAMES.get(zp_type, zp_type)}, expected int8 (uint8 is DLA-only)")
            if zp is not None and np.any(zp != 0):
                bad("symmetric", f"zero point is not 0 (got {int(np.ravel(zp)[0])}): TensorRT quantizes "
                                 f"symmetrically")
        data = n.input[0]
        if n.op_type == "DequantizeLinear":
            in_type = types.get(data)
            if in_type is None and data in producers and producers[data].op_type == "QuantizeLinear":
                in_type = _INT8
            if in_type not in (None, _INT8, _UINT8):
                bad("dq-input-int8", f"input '{data}' is {_TYPE_NAMES.get(in_type, in_type)}, expected int8 "
                                     f"(keep biases float)")
        if scale.size > 1:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            source = data if data in weights else None
            q = producers.get(data)
            if source is None and q is not None and q.op_type == "QuantizeLinear" and q.input[0] in weights:
                source = q.input[0]  # Q -> DQ on float weights (pytorch-quantization's export)
            if source is None:
                bad("per-tensor-activations", f"per-channel scales ({scale.size}) on activation '{data}', "
                                              f"expected one scale")
                continue
            dims = consts[source].shape
            if axis < 0:
                axis += len(dims)
            if not 0 <= axis < len(dims) or dims[axis] != scale.size:
                bad("per-axis-count", f"{scale.size} scales for axis {axis} of '{source}' {tuple(dims)}")
            dq_out = n.output[0]
            feeds_conv_weight = dq_out in conv_weights or any(
                m.op_type == "DequantizeLinear" and m.input[0] == dq_out and m.output[0] in conv_weights
                for m in model.graph.node)
            if feeds_conv_weight and axis != 0:
                bad("weights-axis-0", f"convolution weights quantized on axis {axis}, expected axis 0 (output "
                                      f"channels)")
    return out


def require_tensorrt_qdq(model, path) -> None:
    """Raise a one-line error naming the first node that breaks a rule (and how many do)."""
    bad = check_qdq(model)
    if bad:
        v = bad[0]
        more = f"; {len(bad)} Q/DQ nodes break rules" if len(bad) > 1 else ""
        raise SDKError(f"onnx {path}: node '{v.node}' ({v.op_type}) breaks TensorRT's Q/DQ rule '{v.rule}': "
                       f"{v.detail}{more}; expected a Q/DQ ONNX TensorRT can parse ('python -m sdk quantize "
                       f"--target trt' writes one)")

"""The TensorRT target of the precision plan: an explicitly quantized (Q/DQ) ONNX that TensorRT parses and fuses,
from the same calibration ranges and plan file as the CPU (onnxruntime) target.

What TensorRT needs, and onnxruntime's CPU QDQ form (u8 activations, zero points, INT32 bias DQ) does not give
(sdk/tensorrt/qdq_rules.py names the rules and their sources):
- int8 everywhere, symmetric: scale = amax / 127, zero point 0 (int8);
- weights per output channel (axis 0), int8 initializers behind a DequantizeLinear; biases stay float;
- placement TensorRT fuses (Developer Guide, "Q/DQ Layer-Placement Recommendations"): a Q/DQ pair on the inputs of
  each int8 Conv, none on its output (TensorRT fuses conv + activation and carries int8 on); the inputs of an int8
  Concat or (residual) Add get Q/DQ pairs sharing one scale with each other (and with the Concat's output), so
  TensorRT concatenates/adds in int8 instead of requantizing each branch;
- the detection layer's decode (grid/anchor maths in input pixels) left float.
Hand-written rather than onnxruntime's quantize_static: its QDQ placement quantizes op outputs and cannot tie
Concat/Add inputs to one scale, which is exactly what TensorRT's fusions need.
"""
import json
import os

import numpy as np

from ..errors import SDKError
from ..fileio import atomic_path
from ..precision.plan import PrecisionPlan, precision_counts

TARGET = "trt"
_SHARED_SCALE_OPS = ("Concat", "Add")
_MIN_OPSET = 13  # per-axis QuantizeLinear/DequantizeLinear


def _layers(model):
    from .layers import onnx_layers  # noqa: PLC0415 - the plan's view of ONNX nodes, shared with the CPU target

    return onnx_layers(model)


def _decode_nodes(model, meta):
    head = (meta.blocks or {}).get("head") or []
    if not head:
        return set()
    det = max(head)
    return {n.name for n in model.graph.node if f"model.{det}/" in n.name and n.op_type != "Conv"}


def _input_range(meta):
    lo = (0.0 * meta.scale - max(meta.mean)) / min(meta.std)
    hi = (255.0 * meta.scale - min(meta.mean)) / min(meta.std)
    return lo, hi


class _Groups:
    """Union-find over tensor names: tensors in one group share one scale."""

    def __init__(self):
        self.parent = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, names):
        names = list(names)
        for other in names[1:]:
            self.parent[self.find(other)] = self.find(names[0])


def plan_qdq(model, plan, ranges):
    """(int8 node names, {tensor: consumers to rewire}, {tensor: scale}, resolved plan, layers)."""
    from .layers import metadata_of  # noqa: PLC0415

    meta = metadata_of(model)
    layers = _layers(model)
    resolved = plan.resolve(layers)
    decode = _decode_nodes(model, meta)
    int8 = {name for name, p in resolved.items() if p == "int8" and name not in decode}
    inits = {t.name for t in model.graph.initializer}
    ranges = dict(ranges)
    for i in model.graph.input:
        ranges.setdefault(i.name, _input_range(meta))
    wire, groups = {}, _Groups()
    for n in model.graph.node:
        if n.name not in int8:
            continue
        if n.op_type == "Conv":
            acts = [n.input[0]]
        elif n.op_type in _SHARED_SCALE_OPS:
            acts = [x for x in n.input if x and x not in inits]
            groups.union(acts + ([n.output[0]] if n.op_type == "Concat" else []))
        else:
            continue
        for x in acts:
            if x in ranges and x not in inits:
                wire.setdefault(x, set()).add(n.name)
    amax = {}
    for x in set(wire) | set(groups.parent):
        if x in ranges:
            root = groups.find(x)
            lo, hi = ranges[x]
            amax[root] = max(amax.get(root, 0.0), abs(float(lo)), abs(float(hi)))
    scales = {x: max(amax.get(groups.find(x), 0.0), 1e-6) / 127.0 for x in wire}
    return int8, wire, scales, resolved, layers


def quantize_weights(w):
    """Per-output-channel symmetric int8: (int8 weights, float32 scales of shape (K,))."""
    w = np.asarray(w, np.float32)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = (np.maximum(amax, 1e-8) / 127.0).astype(np.float32)
    q = np.clip(np.round(w / scale.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, scale


def to_tensorrt_qdq(model, plan, ranges):
    """A new ModelProto: `model` with TensorRT-placed Q/DQ for the plan's int8 layers; returns (model, stats)."""
    import onnx  # noqa: PLC0415
    from onnx import helper, numpy_helper  # noqa: PLC0415

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < _MIN_OPSET:
        raise SDKError(f"model: got opset {opset}, expected {_MIN_OPSET} or later (per-channel Q/DQ; re-export "
                       f"with 'python -m sdk export')")
    int8, wire, scales, resolved, layers = plan_qdq(model, plan, ranges)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    new_inits, qdq_nodes, weight_users = [], 0, {}
    for n in g.node:
        for x in n.input[1:2]:
            weight_users[x] = weight_users.get(x, 0) + 1

    def qdq_pair(x):
        nonlocal qdq_nodes
        s, z = f"{x}_scale", f"{x}_zero_point"
        new_inits.append(numpy_helper.from_array(np.array(scales[x], np.float32), s))
        new_inits.append(numpy_helper.from_array(np.array(0, np.int8), z))
        qdq_nodes += 2
        return [helper.make_node("QuantizeLinear", [x, s, z], [f"{x}_quantized"], name=f"{x}_QuantizeLinear"),
                helper.make_node("DequantizeLinear", [f"{x}_quantized", s, z], [f"{x}_dequantized"],
                                 name=f"{x}_DequantizeLinear")]

    nodes = []
    for i in g.input:
        if i.name in wire:
            nodes += qdq_pair(i.name)
    quantized_convs, dropped = 0, set()
    for n in g.node:
        node = onnx.NodeProto()
        node.CopyFrom(n)
        if n.name in int8 and n.op_type == "Conv" and n.input[0] in wire and len(n.input) > 1 and \
                n.input[1] in inits:
            w = n.input[1]
            q, ws = quantize_weights(numpy_helper.to_array(inits[w]))
            base = f"{n.name}_weight"
            new_inits += [numpy_helper.from_array(q, f"{base}_quantized"),
                          numpy_helper.from_array(ws, f"{base}_scale"),
                          numpy_helper.from_array(np.zeros(ws.shape, np.int8), f"{base}_zero_point")]
            nodes.append(helper.make_node("DequantizeLinear", [f"{base}_quantized", f"{base}_scale",
                                                               f"{base}_zero_point"], [f"{base}_dequantized"],
                                          name=f"{base}_DequantizeLinear", axis=0))
            qdq_nodes += 1
            node.input[1] = f"{base}_dequantized"
            weight_users[w] -= 1
            if weight_users[w] == 0:
                dropped.add(w)
            quantized_convs += 1
        for k, x in enumerate(node.input):
            if x in wire and n.name in wire[x]:
                node.input[k] = f"{x}_dequantized"
        nodes.append(node)
        for o in n.output:
            if o in wire:
                nodes += qdq_pair(o)
    del g.node[:]
    g.node.extend(nodes)
    keep = [t for t in g.initializer if t.name not in dropped]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    shared = {}
    for x, s in scales.items():
        shared.setdefault(round(float(s), 12), []).append(x)
    stats = {"int8_convs": quantized_convs, "qdq_nodes": qdq_nodes, "quantized_tensors": len(wire),
             "shared_scale_groups": sum(1 for v in shared.values() if len(v) > 1),
             "layers": len(layers), "plan_precisions": precision_counts(resolved), "int8_nodes": len(int8)}
    return out, stats


def quantize_for_tensorrt(model_path, output, ranges, plan=None, extra_metadata=None):
    """Write the TensorRT-target Q/DQ ONNX of `model_path` (atomically) from calibration `ranges`
    ({tensor: (low, high)}, from sdk.quant.quantize.calibrate) and a precision plan; returns a report."""
    import onnx  # noqa: PLC0415

    from ..tensorrt.qdq_rules import check_qdq  # noqa: PLC0415
    from .layers import check_float_model, load_model  # noqa: PLC0415

    plan = plan or PrecisionPlan(default="int8")
    model = load_model(model_path)
    check_float_model(model, model_path)
    qmodel, stats = to_tensorrt_qdq(model, plan, ranges)
    if stats["int8_convs"] == 0:
        raise SDKError(f"precision plan {plan.to_dict()}: selects no convolution for int8, expected at least one "
                       f"(TensorRT target)")
    broken = check_qdq(qmodel)
    if broken:  # our own output must pass TensorRT's rules: a bug here, never the user's input
        raise SDKError(f"TensorRT target: node {broken[0].node} breaks rule {broken[0].rule} ({broken[0].detail}), "
                       f"expected none")
    props = {p.key: p.value for p in model.metadata_props}
    props["sdk.precision"] = json.dumps("int8")
    props["sdk.quantization"] = json.dumps({"target": TARGET, "plan": plan.to_dict(),
                                            "scheme": "int8 symmetric, zero point 0; weights per channel (axis 0); "
                                                      "float biases; Concat/Add inputs share one scale; decode float",
                                            **{k: stats[k] for k in ("int8_convs", "qdq_nodes")},
                                            **(extra_metadata or {})})
    del qmodel.metadata_props[:]
    for k, v in props.items():
        qmodel.metadata_props.add(key=k, value=v)
    with atomic_path(output, "INT8 ONNX output", suffix=".onnx") as tmp:
        onnx.save(qmodel, str(tmp))
    return {"output": str(output), "target": TARGET, "size_mb": round(os.path.getsize(output) / 2**20, 2),
            "plan": plan.to_dict(), "tensorrt_rules_broken": 0, **stats}

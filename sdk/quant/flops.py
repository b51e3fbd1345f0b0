"""Per-node FLOPs from ONNX shapes: what the 'heaviest K layers' plan selector ranks by (and the shape and
attribute readers the graph rewrites share)."""
import numpy as np


def tensor_shapes(model):
    """{tensor name: shape tuple} for every tensor whose shape onnx shape inference can tell."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def node_attr(node, name, default=None):
    """An attribute of an onnx node as a Python value (int, float, list of ints, ...), or `default`."""
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def node_flops(node, shapes):
    """Multiply-adds counted as 2 FLOPs for Conv/Gemm/MatMul; one per output element for everything else."""
    out = shapes.get(node.output[0]) if node.output else None
    if out is None:
        return 0.0
    out_elems = float(np.prod(out)) if out else 1.0
    if node.op_type in ("Conv", "ConvTranspose") and len(node.input) > 1 and node.input[1] in shapes:
        w = shapes[node.input[1]]  # (Cout, Cin/groups, kh, kw)
        return 2.0 * out_elems * float(np.prod(w[1:]))
    if node.op_type == "QLinearConv" and len(node.input) > 3 and node.input[3] in shapes:  # QOperator INT8
        return 2.0 * out_elems * float(np.prod(shapes[node.input[3]][1:]))
    if node.op_type in ("MatMul", "Gemm") and len(node.input) > 1 and node.input[1] in shapes:
        return 2.0 * out_elems * float(shapes[node.input[1]][0])
    return out_elems


def model_flops(model):
    """{node name: FLOPs} for every node of an ONNX ModelProto (batch 1 when the batch is dynamic)."""
    shapes = tensor_shapes(model)
    return {n.name: node_flops(n, shapes) for n in model.graph.node}


def model_gflops(path):
    """GFLOPs of one inference of the ONNX model at `path` (its Conv/Gemm/MatMul multiply-adds x2 plus one per
    output element elsewhere; an INT8 model's Quantize/DequantizeLinear nodes are not counted: the same arithmetic
    as its FP32 source)."""
    import onnx

    model = onnx.load(str(path))
    flops = model_flops(model)
    return sum(flops[n.name] for n in model.graph.node
               if n.op_type not in ("QuantizeLinear", "DequantizeLinear")) / 1e9

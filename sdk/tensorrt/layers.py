"""TensorRT network layers as sdk.precision LayerInfo, and per-layer precision set from a PrecisionPlan.

The ONNX parser names each TensorRT layer after its ONNX node ('/model.77/m.0/Conv'), so the cfg layer index
(model.N) and from it the block (backbone / neck / head, from the ONNX metadata 'blocks') come from the name.
FLOPs (for 'heaviest' overrides) are computed from the ONNX graph for Conv nodes only, which is where YOLO's
compute is; other layers count 0.
"""
from ..precision.plan import LayerInfo, block_of
from .api import trt_dtype

# Layers whose precision means nothing to set (weights, shapes, plumbing) are not offered to the plan.
_SKIP_TYPES = {"CONSTANT", "SHAPE", "IDENTITY", "ASSERTION", "CONDITION", "FILL"}


def _type_name(layer):
    return getattr(layer.type, "name", None) or str(layer.type).split(".")[-1]  # pybind11 enums have .name


def _float_outputs(trt, layer):
    floats = (trt.float32, trt.float16)
    return [j for j in range(layer.num_outputs) if layer.get_output(j).dtype in floats]


def network_layers(trt, network, blocks=None, flops=None):
    """[(LayerInfo, ILayer)] for the layers a precision plan may address."""
    out = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        kind = _type_name(layer)
        if kind in _SKIP_TYPES or not _float_outputs(trt, layer):
            continue
        info = LayerInfo(layer.name, kind, float((flops or {}).get(layer.name, 0.0)), block_of(layer.name, blocks))
        out.append((info, layer))
    return out


def onnx_conv_flops(onnx_model):
    """{node name: multiply-add FLOPs x2} for Conv nodes, from shape-inferred output sizes."""
    import onnx  # noqa: PLC0415 - runtime dependency, imported when a plan needs it

    inferred = onnx.shape_inference.infer_shapes(onnx_model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    weights = {t.name: list(t.dims) for t in onnx_model.graph.initializer}
    flops = {}
    for node in onnx_model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        out = shapes.get(node.output[0])
        w = weights[node.input[1]]  # (Cout, Cin/groups, kh, kw)
        if not out or len(out) != 4 or not all(out):
            continue
        per_output = 1
        for d in w[1:]:
            per_output *= d
        flops[node.name] = 2.0 * out[1] * out[2] * out[3] * per_output
    return flops


def apply_precisions(trt, pairs, requested):
    """Set layer precision (and output types for float precisions) for the layers the plan overrides.

    INT8 outputs are left to TensorRT: forcing an INT8 output type needs a dynamic range TensorRT may not have.
    Returns {layer name: precision} as set.
    """
    applied = {}
    for info, layer in pairs:
        precision = requested.get(info.name)
        if precision is None:
            continue
        dtype = trt_dtype(trt, precision)
        layer.precision = dtype
        if precision != "int8":
            for j in _float_outputs(trt, layer):
                layer.set_output_type(j, dtype)
        applied[info.name] = precision
    return applied

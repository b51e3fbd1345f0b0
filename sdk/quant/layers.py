"""ONNX nodes -> precision-plan layers: name, op type, FLOPs, and the YOLO block (backbone/neck/head) from the
model's 'sdk.blocks' metadata and the 'model.N' index in the node name."""
from ..errors import SDKError
from ..metadata import ModelMetadata
from ..precision.plan import LayerInfo, block_of
from .flops import model_flops

# Ops that carry no computation worth a precision decision.
_SKIP_OPS = {"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "ConstantOfShape", "Range"}
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger", "MatMulInteger",
                 "QLinearMatMul", "DynamicQuantizeLinear", "QLinearAdd", "QLinearConcat"}


def load_model(path, what="model"):
    import onnx

    try:
        return onnx.load(str(path))
    except FileNotFoundError:
        raise SDKError(f"{what} {path}: file not found, expected an FP32 .onnx model")
    except Exception as e:  # onnx raises DecodeError and friends for non-ONNX files
        raise SDKError(f"{what} {path}: not a readable ONNX model ({type(e).__name__}), expected an FP32 .onnx")


def metadata_of(model):
    meta = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props})
    if meta.has_sdk_props:
        return meta
    from ..layouts import onnx_metadata  # a model from another exporter: input and layout from the graph

    try:
        return onnx_metadata(model, require_anchors=False).meta
    except SDKError:  # not recognised without flags: callers keep their own refusal
        return meta


def check_float_model(model, path, what="model"):
    """Quantizing twice compounds the error and onnxruntime would mis-handle the Q/DQ pairs: refuse it."""
    found = sorted({n.op_type for n in model.graph.node if n.op_type in QUANTIZED_OPS})
    if found:
        raise SDKError(f"{what} {path}: already quantized (has {', '.join(found)}), expected an FP32 ONNX model")


def onnx_layers(model):
    """LayerInfo for every compute node of an ONNX ModelProto, in graph order."""
    blocks = metadata_of(model).blocks
    flops = model_flops(model)
    return [LayerInfo(n.name, n.op_type, flops.get(n.name, 0.0), block_of(n.name, blocks))
            for n in model.graph.node if n.op_type not in _SKIP_OPS and n.name]

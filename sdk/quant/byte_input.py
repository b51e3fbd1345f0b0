"""An INT8 model that takes the letterboxed frame's bytes: uint8 `(B, H, W, 3)` (or RGBX `(B, H, W, 4)`, below) in
place of float `(B, 3, H, W)`.

A YOLO input is pixels x 1/255 and its first QuantizeLinear has scale 1/255 and zero point 0 (the calibrated
range of an image is [0, 1]), so quantizing the float input gives back the bytes it was made from: the float
conversion before the model and the QuantizeLinear inside it cancel. Rewritten, the input is uint8 NHWC and a
Transpose to NCHW, which onnxruntime's transpose optimizer cancels against the NHWC layout its QLinearConv uses.
Where `quantize` padded the first conv to 4 input channels (sdk.quant.pad) the input takes the 4 channels itself,
`(B, H, W, 4)` RGBX: a Pad of the innermost axis of bytes costs onnxruntime more than the rest of the input path
(4.7 ms against 0.9 ms on the AVX2 EPYC of docs/int8.md), while cv2.cvtColor(BGR2RGBA) makes the 4th channel for
free; its value does not matter, the padded weights are zero. Exact: the same integers reach the first
convolution (tests/test_byte_input.py).
"""
import numpy as np

from ..errors import SDKError

INPUT_SCALE = np.float32(1 / 255.0)  # what sdk.preprocess multiplies pixels by, and so the input's u8 scale


def check_byte_input(meta, fmt: str, form, what: str = "uint8_input") -> None:
    """Whether a model with metadata `meta`, quantized in format `fmt` to the Int8Form `form`, can take bytes: its
    input must be plain pixels x 1/255 (no mean/std), the format QDQ and the activations u8 (zero point 0).
    Cheap: callers check before calibrating."""
    if fmt != "qdq":
        raise SDKError(f"{what}: got format {fmt}, expected qdq")
    if form.activations != "u8":
        raise SDKError(f"{what}: got {form.activations} activations (form for {form.target}), expected u8: the "
                       f"bytes are the quantized input only with zero point 0")
    plain = not any(meta.mean) and all(v == 1 for v in meta.std)
    if not plain or np.float32(meta.scale) != INPUT_SCALE or meta.channel_order.upper() not in ("RGB", "BGR"):
        raise SDKError(f"{what}: got input pre-processing scale {meta.scale:.6g}, mean {list(meta.mean)}, std "
                       f"{list(meta.std)}, expected pixels x 1/255 with mean 0 and std 1 (a YOLO input)")


def byte_input(model, what: str = "uint8_input") -> dict:
    """Rewrite the INT8 QDQ `model` (onnx ModelProto, in place) to take uint8 `(B, H, W, 3)` RGB bytes, or
    `(B, H, W, 4)` RGBX where its first conv was padded to 4 channels.

    Its input must be float `(B, 3, H, W)` and reach a QuantizeLinear of scale 1/255, zero point uint8 0, either
    directly or through the 4th-channel Pad of sdk.quant.pad; anything else is an SDKError naming `what`. Returns
    {"input": name, "shape": new shape}. The caller updates the metadata's pixel scale to 1."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if len(graph.input) != 1:
        raise SDKError(f"{what}: got a model with {len(graph.input)} inputs, expected one image input")
    inp = graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in inp.type.tensor_type.shape.dim]
    if inp.type.tensor_type.elem_type != TensorProto.FLOAT or len(dims) != 4 or dims[1] != 3:
        raise SDKError(f"{what}: got input '{inp.name}' of shape {dims}, expected a float (B, 3, H, W) image input")
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chain = consumers.get(inp.name, [])
    pad = None
    init = {t.name: t for t in graph.initializer}
    if len(chain) == 1 and chain[0].op_type == "Pad":
        pad = chain[0]
        pads = numpy_helper.to_array(init[pad.input[1]]).tolist() if pad.input[1] in init else None
        if pads != [0, 0, 0, 0, 0, 1, 0, 0] or (len(pad.input) > 2 and pad.input[2]):
            raise SDKError(f"{what}: input '{inp.name}' is padded by {pads}, expected the zero 4th channel of "
                           f"sdk.quant.pad ([0, 0, 0, 0, 0, 1, 0, 0])")
        chain = consumers.get(pad.output[0], [])
    if len(chain) != 1 or chain[0].op_type != "QuantizeLinear":
        found = ", ".join(n.op_type for n in chain) or "nothing"
        raise SDKError(f"{what}: input '{inp.name}' feeds {found}, expected one QuantizeLinear (the int8 first "
                       f"layer of a model from 'python -m sdk quantize')")
    quant = chain[0]
    scale = numpy_helper.to_array(init[quant.input[1]]) if quant.input[1] in init else None
    zero = numpy_helper.to_array(init[quant.input[2]]) if len(quant.input) > 2 and quant.input[2] in init else None
    if scale is None or zero is None or scale.size != 1 or zero.dtype != np.uint8 or int(zero.ravel()[0]) != 0 \
            or np.float32(scale.ravel()[0]) != INPUT_SCALE:
        got = f"scale {scale.ravel().tolist() if scale is not None else '?'}, zero point " \
              f"{zero.ravel().tolist() if zero is not None else '?'} ({zero.dtype if zero is not None else '?'})"
        raise SDKError(f"{what}: input quantization {got}, expected scale 1/255 and zero point uint8 0 (inputs of "
                       f"pixels x 1/255 calibrated on images)")
    nchw = inp.name + "_nchw"
    shape = [dims[0], dims[2], dims[3], 4 if pad is not None else 3]
    graph.input.remove(inp)
    graph.input.insert(0, helper.make_tensor_value_info(inp.name, TensorProto.UINT8, shape))
    for node in consumers.get(quant.output[0], []):
        node.input[:] = [nchw if name == quant.output[0] else name for name in node.input]
    stale = {quant.output[0]}  # tensors gone, or changed type (float -> uint8)
    for node in (quant, pad):
        if node is not None:
            stale.update(node.output)
            graph.node.remove(node)
    graph.node.insert(0, helper.make_node("Transpose", [inp.name], [nchw], perm=[0, 3, 1, 2],
                                          name=inp.name + "_to_nchw"))
    for vi in [v for v in graph.value_info if v.name in stale]:
        graph.value_info.remove(vi)
    used = {name for node in graph.node for name in node.input}
    unused = {pad.input[1]} - used if pad is not None else set()
    for t in [t for t in graph.initializer if t.name in unused]:
        graph.initializer.remove(t)
    return {"input": inp.name, "shape": shape}

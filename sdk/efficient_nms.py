"""NMS inside a TensorRT engine: append TensorRT's EfficientNMS_TRT plugin to an SDK-exported ONNX.

The SDK's graph ends in `(1, N, 5 + nc)` decoded rows (cx, cy, w, h in input pixels, objectness, class scores).
This adds the score maths the host post-processing does (objectness x class score; objectness alone for one
class, as sdk.postprocess) and one EfficientNMS_TRT node, whose outputs are the end-to-end layout TensorRT
users know (YOLOv7 `export.py --end2end`, TensorRT's samples) and sdk.layouts reads as `efficientnms`:
`num_dets (1, 1) int32, det_boxes (1, K, 4) float32 x1y1x2y2, det_scores (1, K) float32, det_classes (1, K)
int32`. The TensorRT ONNX parser builds any node it has no importer for from the plugin registry by op type and
the `plugin_version` attribute (onnx-tensorrt builtin_op_importers.cpp, the plugin fallback), so the node needs
no custom domain support; the plugin's attributes are those of TensorRT's EfficientNMS plugin README
(background_class, box_coding, iou_threshold, max_output_boxes, score_activation, score_threshold).

Only TensorRT runs the result (onnxruntime has no EfficientNMS kernel): it is tested here on its graph and on
the part before the plugin, which onnxruntime runs; on hardware only through the Jetson self-test.
"""
from .errors import SDKError

OUTPUTS = ("num_dets", "det_boxes", "det_scores", "det_classes")


def add_efficient_nms(src, dst, conf=0.25, iou=0.45, max_det=100):
    """Write `dst`: the ONNX at `src` with EfficientNMS_TRT on its decoded output. Returns a small report."""
    import json

    import onnx
    from onnx import TensorProto, helper

    from .fileio import atomic_path

    if not 0.0 <= conf <= 1.0:
        raise SDKError(f"conf: got {conf}, expected a score between 0 and 1")
    if not 0.0 < iou <= 1.0:
        raise SDKError(f"iou: got {iou}, expected an IoU in (0, 1]")
    if not 1 <= max_det <= 4096:
        raise SDKError(f"max_det: got {max_det}, expected 1..4096 (EfficientNMS keeps at most 4096 boxes)")
    model = onnx.load(str(src))
    g = model.graph
    if any(n.op_type == "EfficientNMS_TRT" for n in g.node):
        raise SDKError(f"model {src}: already has EfficientNMS_TRT, expected an SDK export without NMS")
    out = g.output[0]
    dims = [d.dim_value for d in out.type.tensor_type.shape.dim]
    if len(dims) != 3 or dims[2] < 6:
        raise SDKError(f"model {src}: output {out.name} has shape {dims}, expected (batch, boxes, 5 + classes) "
                       f"decoded rows as 'python -m sdk export' writes")
    nc = dims[2] - 5

    def const(name, values):
        t = helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
        g.initializer.append(t)
        return name

    row = out.name
    axes = const("nms/axes", [2])
    nodes = [helper.make_node("Slice", [row, const("nms/b0", [0]), const("nms/b1", [4]), axes], ["nms/boxes"],
                              name="nms/boxes"),
             helper.make_node("Slice", [row, const("nms/o0", [4]), const("nms/o1", [5]), axes], ["nms/obj"],
                              name="nms/obj")]
    if nc == 1:  # one class: the class score carries no information (sdk.postprocess does the same)
        scores = "nms/obj"
    else:
        nodes += [helper.make_node("Slice", [row, const("nms/c0", [5]), const("nms/c1", [5 + nc]), axes],
                                   ["nms/cls"], name="nms/cls"),
                  helper.make_node("Mul", ["nms/obj", "nms/cls"], ["nms/scores"], name="nms/scores")]
        scores = "nms/scores"
    nodes.append(helper.make_node(
        "EfficientNMS_TRT", ["nms/boxes", scores], list(OUTPUTS), name="nms/EfficientNMS_TRT", domain="TRT",
        background_class=-1, box_coding=1,  # 1: boxes as (cx, cy, w, h), what the decode produces
        iou_threshold=float(iou), max_output_boxes=int(max_det), plugin_version="1", score_activation=0,
        score_threshold=float(conf)))
    g.node.extend(nodes)
    batch = dims[0] or 1
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("num_dets", TensorProto.INT32, [batch, 1]),
                     helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, [batch, max_det, 4]),
                     helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, [batch, max_det]),
                     helper.make_tensor_value_info("det_classes", TensorProto.INT32, [batch, max_det])])
    if not any(o.domain == "TRT" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("TRT", 1))
    props = {p.key: p for p in model.metadata_props}
    for key, value in (("sdk.output_format", json.dumps("efficientnms")),
                       ("sdk.nms", json.dumps({"conf": conf, "iou": iou, "max_det": max_det}))):
        if key in props:
            props[key].value = value
        else:
            model.metadata_props.add(key=key, value=value)
    with atomic_path(dst, "end-to-end ONNX output", suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return {"output": str(dst), "classes": nc, "conf": conf, "iou": iou, "max_det": max_det, "outputs": list(OUTPUTS)}

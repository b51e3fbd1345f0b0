"""EfficientNMS_TRT appended to the SDK export: the graph TensorRT's parser reads (plugin node, attributes,
end-to-end outputs) and, run by onnxruntime, the part before the plugin gives the boxes and scores the host
post-processing uses. The plugin itself runs only in TensorRT (Jetson self-test)."""
import json

import numpy as np
import onnx
import pytest
from onnx import helper

from sdk.data.images import list_images, read_image
from sdk.efficient_nms import OUTPUTS, add_efficient_nms
from sdk.errors import SDKError
from sdk.preprocess import Preprocessor
from sdk.runners.onnxruntime import OnnxRuntimeRunner
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, onnx_model):
    out = tmp_path_factory.mktemp("nms") / "m-nms.onnx"
    rep = add_efficient_nms(onnx_model, out, conf=0.3, iou=0.5, max_det=50)
    return out, rep


def test_plugin_node_and_end_to_end_outputs(e2e):
    out, rep = e2e
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    nms = [n for n in m.graph.node if n.op_type == "EfficientNMS_TRT"]
    assert len(nms) == 1 and list(nms[0].output) == list(OUTPUTS)
    attrs = {a.name: helper.get_attribute_value(a) for a in nms[0].attribute}
    assert attrs["plugin_version"] == b"1" and attrs["box_coding"] == 1 and attrs["background_class"] == -1
    assert attrs["max_output_boxes"] == 50 and np.isclose(attrs["iou_threshold"], 0.5)
    assert np.isclose(attrs["score_threshold"], 0.3) and attrs["score_activation"] == 0
    outs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output}
    assert outs == {"num_dets": [1, 1], "det_boxes": [1, 50, 4], "det_scores": [1, 50], "det_classes": [1, 50]}
    props = {p.key: p.value for p in m.metadata_props}
    assert json.loads(props["sdk.output_format"]) == "efficientnms" and json.loads(props["sdk.names"]) == ["person"]
    assert rep["classes"] == 1


def test_plugin_inputs_are_the_rows_the_host_nms_sees(e2e, onnx_model, val_images, tmp_path):
    out, _ = e2e
    m = onnx.load(str(out))
    plugin = next(n for n in m.graph.node if n.op_type == "EfficientNMS_TRT")
    m.graph.node.remove(plugin)
    del m.graph.output[:]
    m.graph.output.extend([helper.make_empty_tensor_value_info(t) for t in plugin.input])
    head = tmp_path / "head.onnx"
    onnx.save(m, str(head))
    full, cut = OnnxRuntimeRunner(onnx_model).load(), OnnxRuntimeRunner(head).load()
    x, _ = Preprocessor(full.metadata)(read_image(list_images(val_images)[0]))
    rows = full.infer(x)[full.outputs[0].name]
    got = cut.infer(x)
    np.testing.assert_array_equal(got["nms/boxes"], rows[..., :4])  # (cx, cy, w, h): box_coding 1
    np.testing.assert_array_equal(got[plugin.input[1]], rows[..., 4:5])  # one class: objectness is the score
    assert (rows[..., 4] > 0.3).sum() > 0  # the plugin would have boxes to keep


def test_bad_parameters_and_double_nms_are_refused(e2e, onnx_model, tmp_path):
    out, _ = e2e
    with pytest.raises(SDKError, match="iou: got 0"):
        add_efficient_nms(onnx_model, tmp_path / "x.onnx", iou=0.0)
    with pytest.raises(SDKError, match="already has EfficientNMS_TRT"):
        add_efficient_nms(out, tmp_path / "y.onnx")
    assert not list(tmp_path.iterdir())


def test_export_writes_the_trt_nms_model(tmp_path, checkpoint):
    out, nms = tmp_path / "m.onnx", tmp_path / "m-nms.onnx"
    run_cli("export", "--weights", checkpoint, "--imgsz", "320", "-o", out, "--trt-nms", nms, "--trt-nms-max-det",
            "20", check=True)
    outs = [o.name for o in onnx.load(str(nms)).graph.output]
    assert outs == list(OUTPUTS) and out.is_file()

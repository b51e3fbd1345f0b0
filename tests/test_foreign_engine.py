"""An engine with NMS inside (TensorRT EfficientNMS outputs num_dets, det_boxes, det_scores, det_classes) from
another exporter, without a build_engine sidecar, on the fake TensorRT: the runner registers TensorRT's plugin
library before deserializing (without it the engine does not load, as on TensorRT), the Detector recognises the
layout and scores like the SDK's own export. A fake proves the calls, not TensorRT's numbers."""
import pytest

from sdk.data.datasets import load_dataset
from sdk.detector import Detector
from sdk.errors import SDKError
from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU, evaluate
from sdk.layouts import ModelOptions
from sdk.runners.tensorrt import TensorRTRunner
from tests.fake_tensorrt import install
from tests.fake_tensorrt.fixtures import calls
from tests.fake_tensorrt.plugins import plugin_engine, with_plugins

pytest.importorskip("torch", reason="building the NMS graph needs the torch extra")


@pytest.fixture(scope="module")
def nms_onnx(tmp_path_factory, checkpoint):
    from scripts.bench_layouts import export_foreign

    return export_foreign(checkpoint, "efficientnms", tmp_path_factory.mktemp("enms") / "enms.onnx", imgsz=416)


@pytest.mark.parametrize("flavour", ["8.5", "10.3"])
def test_efficientnms_engine_runs_and_scores(monkeypatch, nms_onnx, onnx_model, val_images, tmp_path, flavour):
    trt = with_plugins(install(monkeypatch, flavour))
    engine = plugin_engine(trt, nms_onnx, tmp_path / "yolov7-nms.engine")
    ds = load_dataset(str(val_images))
    with Detector(str(engine), runner=TensorRTRunner(engine).load(), conf=EVAL_CONF, iou=EVAL_IOU,
                  options=ModelOptions(names=["person"])) as det:
        assert det.layout.name == "efficientnms" and det.names == ("person",)
        got = evaluate(det, ds, progress=False)["map50"]
    assert calls(trt, "init_libnvinfer_plugins") == [("init_libnvinfer_plugins", "")]
    with Detector(str(onnx_model), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU) as ref:
        want = evaluate(ref, ds, progress=False)["map50"]
    assert want > 0.7 and abs(got - want) <= 0.005, (got, want)


def test_without_the_plugin_library_the_engine_does_not_load(monkeypatch, nms_onnx, tmp_path):
    trt = with_plugins(install(monkeypatch, "10.3"))
    engine = plugin_engine(trt, nms_onnx, tmp_path / "m.engine")
    monkeypatch.setattr("sdk.layouts.init_trt_plugins", lambda trt, logger: False)
    with pytest.raises(SDKError, match="cannot deserialize it"):
        TensorRTRunner(engine).load()

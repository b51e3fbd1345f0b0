"""TensorRTRunner on the fake TensorRT 8.5 (binding and named-tensor paths) and 10.3 (named tensors only), with
fake cuda-python and pycuda memory: outputs equal onnxruntime's, buffers are freed, and engines built for
another TensorRT or GPU are refused with a message to rebuild."""
import json

import numpy as np
import pytest

from sdk.data.images import list_images, read_image
from sdk.detector import Detector
from sdk.errors import SDKError
from sdk.runners import load_runner
from sdk.runners.onnxruntime import OnnxRuntimeRunner
from sdk.runners.tensorrt import TensorRTRunner
from sdk.tensorrt import build_engine
from tests.fake_tensorrt import DEVICE, install
from tests.fake_tensorrt.fixtures import calls, trt, trt10  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def frames(val_images):
    return [read_image(p) for p in list_images(str(val_images))[:3]]


def _engine(onnx_model, tmp_path, name="m.engine", **kw):
    out = tmp_path / name
    build_engine(onnx_model, out, precision=kw.pop("precision", "fp16"), progress=False, **kw)
    return out


@pytest.mark.parametrize("flavour, api, executed", [("8.5", "bindings", "execute_async_v2"),
                                                    ("8.5", "auto", "execute_async_v3"),
                                                    ("10.3", "auto", "execute_async_v3"),
                                                    ("10.3", "tensors", "execute_async_v3")])
@pytest.mark.parametrize("cuda", ["cuda-python", "pycuda"])
def test_execution_paths_match_onnxruntime(monkeypatch, onnx_model, tmp_path, frames, flavour, api, executed, cuda):
    fake = install(monkeypatch, flavour, cuda)
    engine = _engine(onnx_model, tmp_path)
    det_trt = Detector(str(engine), runner=TensorRTRunner(engine, api=api).load(), conf=0.25)
    det_ort = Detector(str(onnx_model), runner=OnnxRuntimeRunner(onnx_model).load(), conf=0.25)
    assert det_trt.names == ("person",) and det_trt.runner.metadata.imgsz == (416, 416)
    assert det_trt.runner.api == ("bindings" if api == "bindings" else "tensors")
    assert det_trt.runner.memory.name == cuda
    found = 0
    for frame in frames:
        a, b = det_trt(frame), det_ort(frame)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        found += len(a)
    assert found > 0  # real people detected in real images
    assert [c[0] for c in calls(fake, "IExecutionContext.execute")] == [f"IExecutionContext.{executed}"] * 3
    if executed.endswith("v3"):
        assert {c[1] for c in calls(fake, "IExecutionContext.set_tensor_address")} == {"images", "output"}
    assert [c[0] for c in DEVICE.log].count("sync") >= 3  # one stream synchronised per frame
    assert "memcpy_async" in {c[0] for c in DEVICE.log}
    det_trt.close()
    assert DEVICE.device == {} and (cuda == "pycuda" or DEVICE.host == {})  # everything freed


def test_bindings_are_gone_on_tensorrt_10(trt10, onnx_model, tmp_path):
    engine = _engine(onnx_model, tmp_path)
    with pytest.raises(SDKError, match="has no binding API"):
        TensorRTRunner(engine, api="bindings").load()


def test_load_runner_and_detector_pick_the_engine(trt, onnx_model, tmp_path, frames):
    engine = _engine(onnx_model, tmp_path)
    runner, reason = load_runner(str(engine), threads=2)  # onnxruntime options are accepted and ignored
    assert isinstance(runner, TensorRTRunner) and "TensorRT engine" in reason
    assert runner.describe().startswith(f"TensorRT {trt.__version__} (fp16, tensors API")
    runner.close()
    with Detector(str(engine)) as det:
        assert len(det(frames[0])) > 0


def test_input_validation_is_one_line(trt, onnx_model, tmp_path):
    with TensorRTRunner(_engine(onnx_model, tmp_path)) as r:
        with pytest.raises(SDKError, match=r"input 'images': got shape \(1, 3, 320, 320\), expected \(1, 3, 416"):
            r.infer(np.zeros((1, 3, 320, 320), np.float32))
        with pytest.raises(SDKError, match="got dtype float64"):
            r.infer(np.zeros((1, 3, 416, 416)))


def test_engine_from_another_tensorrt_is_refused(monkeypatch, onnx_model, tmp_path):
    install(monkeypatch, "8.5")
    engine = _engine(onnx_model, tmp_path)
    install(monkeypatch, "10.3")  # JetPack upgraded under the engine
    with pytest.raises(SDKError, match=r"built with TensorRT 8\.5\.2\.2, this machine has TensorRT 10\.3\.0\.26.*"
                                       r"rebuild it here with: build_engine --onnx"):
        TensorRTRunner(engine).load()
    # without the sidecar TensorRT itself refuses the plan; the message still says to rebuild
    (tmp_path / "m.engine.json").unlink()
    with pytest.raises(SDKError, match="cannot deserialize it.*rebuild it with build_engine"):
        TensorRTRunner(engine).load()


def test_engine_for_another_gpu_is_refused(trt, onnx_model, tmp_path):
    engine = _engine(onnx_model, tmp_path)
    side = tmp_path / "m.engine.json"
    record = json.loads(side.read_text())
    record["device"] = {"name": "Xavier", "compute_capability": "7.2"}
    side.write_text(json.dumps(record))
    with pytest.raises(SDKError, match=r"built for Xavier \(compute 7.2\), this GPU is Orin \(fake\) \(compute 8.7\)"):
        TensorRTRunner(engine).load()


def test_engine_without_sidecar_needs_metadata(trt, onnx_model, tmp_path):
    engine = _engine(onnx_model, tmp_path)
    (tmp_path / "m.engine.json").unlink()
    runner = TensorRTRunner(engine).load()  # a foreign (trtexec) engine still runs ...
    assert runner.infer(np.zeros((1, 3, 416, 416), np.float32))["output"].shape == (1, 10647, 6)
    # ... and the Detector too (issue 15): layout and input size from the engine, names class0.. unless given
    det = Detector(str(engine), runner=runner)
    assert det.layout.name == "yolo" and det.names == ("class0",) and det.meta.imgsz == (416, 416)
    runner.close()



@pytest.mark.parametrize("field, value, expected", [("imgsz", [0, 416], "imgsz got"), ("std", [0, 1, 1], "std got"),
                                                    ("names", "person", "names got"),
                                                    ("bogus_section", None, "got str")])
def test_edited_sidecar_metadata_is_checked_as_onnx_metadata_is(trt, onnx_model, tmp_path, field, value, expected):
    """The sidecar is a JSON file anyone can edit: its model metadata goes through the same value checks as
    ONNX metadata_props (issue 13), and a bad value is one line naming the sidecar, before any inference."""
    engine = _engine(onnx_model, tmp_path)
    side = tmp_path / "m.engine.json"
    record = json.loads(side.read_text())
    if field == "bogus_section":
        record["metadata"] = "not an object"
    else:
        record["metadata"][field] = value
    side.write_text(json.dumps(record))
    with pytest.raises(SDKError, match=rf"engine metadata .*m\.engine\.json: metadata.*{expected}") as e:
        TensorRTRunner(engine).load()
    assert "\n" not in str(e.value)

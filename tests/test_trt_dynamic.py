"""Issue 16 item 5: a dynamic-batch ONNX builds with an optimization profile (and an INT8 calibration profile),
the profile lands in the sidecar, and the runner reports the batch as None and sets the shape per call.
rule: dynamic inputs need a profile ("Network has dynamic or shape inputs, but no optimization profile has been
defined"), calibration of a dynamic input needs IBuilderConfig.set_calibration_profile (NvInfer.h), and
setInputShape refuses shapes outside the profile (tests/fake_tensorrt/fake_trt.py)."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sdk.errors import SDKError
from sdk.metadata import ModelMetadata
from sdk.runners.onnxruntime import OnnxRuntimeRunner
from sdk.runners.tensorrt import TensorRTRunner
from sdk.tensorrt import build_engine
from tests.fake_tensorrt.fixtures import calls, trt  # noqa: F401 - fixture

QUIET = {"progress": False}


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory):
    """A small conv net with a dynamic batch and SDK metadata (32x32 input), as `export --dynamic-batch` writes."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (4, 3, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"], name="/model.0/conv/Conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["output"], name="/model.0/act/Relu")], "dyn",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4, 32, 32])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    for k, v in ModelMetadata(names=["person"], imgsz=(32, 32)).to_props().items():
        m.metadata_props.add(key=k, value=v)
    out = tmp_path_factory.mktemp("dyn") / "dyn.onnx"
    onnx.save(m, str(out))
    return out


def test_dynamic_batch_builds_with_a_profile_and_runs_per_call(trt, dynamic_onnx, tmp_path):
    engine = tmp_path / "d.engine"
    report = build_engine(dynamic_onnx, engine, precision="fp16", max_batch=6, opt_batch=4, **QUIET)
    assert report["profiles"] == [{"images": {"min": [1, 3, 32, 32], "opt": [4, 3, 32, 32], "max": [6, 3, 32, 32]}}]
    assert json.loads((tmp_path / "d.engine.json").read_text())["profiles"] == report["profiles"]
    rng = np.random.default_rng(1)
    with TensorRTRunner(engine) as r, OnnxRuntimeRunner(dynamic_onnx) as ref:
        assert r.inputs[0].shape == (None, 3, 32, 32) == ref.inputs[0].shape  # as the onnxruntime runner says
        for batch in (3, 1, 6):
            x = rng.random((batch, 3, 32, 32), dtype=np.float32)
            np.testing.assert_allclose(r.infer(x)["output"], ref.infer(x)["output"], rtol=1e-5, atol=1e-5)
        with pytest.raises(SDKError, match=r"got shape \(7, 3, 32, 32\), expected \(1, 3, 32, 32\) to \(6, 3, 32, "
                                           r"32\).*--max-batch 7"):
            r.infer(np.zeros((7, 3, 32, 32), np.float32))
    shapes = [c[2] for c in calls(trt, "IExecutionContext.set_input_shape") if c[0].endswith("set_input_shape")]
    assert (3, 3, 32, 32) in shapes and (1, 3, 32, 32) in shapes


def test_dynamic_int8_calibrates_with_a_calibration_profile(trt, dynamic_onnx, val_images, tmp_path):
    report = build_engine(dynamic_onnx, tmp_path / "q.engine", precision="int8", calib_images=str(val_images),
                          calib_batch_size=4, calib_batches=2, **QUIET)
    assert report["calibration_profile"] == {"input": "images", "shape": [4, 3, 32, 32]}
    assert [r["images"].shape for r in trt.CALIBRATION_READS] == [(4, 3, 32, 32)] * 2  # all 8 images read
    assert report["calibration"]["images"] == 8


def test_static_onnx_refuses_batch_flags(trt, dynamic_onnx, onnx_model, tmp_path):
    with pytest.raises(SDKError, match=r"max_batch: got 4, expected 1 .*static batch.*--dynamic-batch"):
        build_engine(onnx_model, tmp_path / "s.engine", precision="fp16", max_batch=4, **QUIET)
    with pytest.raises(SDKError, match="expected min <= opt <= max"):
        build_engine(dynamic_onnx, tmp_path / "b.engine", precision="fp16", min_batch=4, max_batch=2, **QUIET)

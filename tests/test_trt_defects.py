"""Issue 16's TensorRT defects, each against the fake rule (tests/fake_tensorrt, rule comments name the source)
that made it visible: calibration volume, the pycuda context stack, Myelin region names, and the smaller ones
(timing cache refusal, TF32, plugins, calibrator pointers, cache headers, DLA core, Orin models, INT8 fallback).
A fake proves calls, never a result: what only hardware shows is listed in docs/tensorrt.md."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from calibrators.data_reader import ImageCalibrationReader, calibration_images
from calibrators.tensorrt import make_calibrator
from sdk.errors import SDKError
from sdk.metadata import ModelMetadata
from sdk.runners.tensorrt import TensorRTRunner
from sdk.tensorrt import build_engine
from sdk.tensorrt.inspector import layer_precisions, layer_regions
from sdk.tensorrt.memory import cuda_memory
from tests.conftest import REPO
from tests.fake_tensorrt import DEVICE, install
from tests.fake_tensorrt.device import ORIN_NANO_8GB
from tests.fake_tensorrt.fixtures import calls, trt, trt10, trt85  # noqa: F401 - fixtures

QUIET = {"progress": False}
META = ModelMetadata(names=["person"], imgsz=(416, 416))


# ---- 1. calibration volume -------------------------------------------------------------------------------------
def test_calibration_reads_every_image_it_reports(trt, onnx_model, val_images, tmp_path):
    """rule: explicit batch reads one input volume per get_batch (NvInfer.h getBatchSize: implicit batch only)."""
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_images=str(val_images),
                          calib_batches=3, **QUIET)
    reads = trt.CALIBRATION_READS
    info = report["calibration"]
    assert info["batch_size"] == 1 and info["images"] == 3 == len(reads)  # the ONNX input is (1, 3, 416, 416)
    reader = ImageCalibrationReader(calibration_images(str(val_images)), META, 1, max_batches=3, progress=False)
    for got, want in zip(reads, reader.batches()):
        np.testing.assert_array_equal(got["images"], want)  # exactly the images served, each read by TensorRT
    assert sum(r["images"].shape[0] for r in reads) == info["batches_served"] * info["batch_size"]


def test_calibration_batch_that_is_not_the_input_shape_is_refused(trt85, onnx_model, val_images, tmp_path):
    with pytest.raises(SDKError, match=r"calib_batch_size: got 8, expected 1 .*\(1, 3, 416, 416\)"):
        build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_images=str(val_images),
                     calib_batch_size=8, **QUIET)
    assert not calls(trt85, "Builder.build_serialized_network")


def test_default_calibration_uses_up_to_256_images(trt10, onnx_model, val_images, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_images=str(val_images), **QUIET)
    available = len(calibration_images(str(val_images)))
    assert report["calibration"]["images"] == min(256, available) == len(trt10.CALIBRATION_READS)


def test_one_device_pointer_per_calibrator_input(trt):
    """rule: getBatch fills one pointer per network input (NvInfer.h IInt8Calibrator::getBatch)."""
    rng = np.random.default_rng(0)
    batches = [{"a": rng.random((1, 3, 4, 4), np.float32), "b": rng.random((1, 2), np.float32)} for _ in range(2)]

    class TwoInputs:
        batch_size = 1

        def batches(self):
            return iter(batches)
    with cuda_memory() as memory:
        calib = make_calibrator("entropy", TwoInputs(), memory, trt=trt)
        for want in batches:
            ptrs = calib.get_batch(["a", "b"])
            assert len(ptrs) == 2 and ptrs[0] != ptrs[1]
            for name, ptr in zip(["a", "b"], ptrs):
                got = DEVICE.read(ptr, want[name].nbytes).view(np.float32).reshape(want[name].shape)
                np.testing.assert_array_equal(got, want[name])
        assert calib.get_batch(["a", "b"]) is None
        calib.check()
        calib.free()


# ---- 3. pycuda context stack --------------------------------------------------------------------------------
CHILD = """
import sys
import numpy as np
from tests.fake_tensorrt import install_globally
install_globally(sys.argv[1], sys.argv[2])
from sdk.errors import SDKError
from sdk.runners.tensorrt import TensorRTRunner
from sdk.tensorrt import build_engine
onnx, engine, case = sys.argv[3], sys.argv[4], sys.argv[5]
if case == "error":
    try:
        build_engine(onnx, engine, precision="int8", progress=False)  # no calibration data: fails mid-build
    except SDKError as e:
        print("error:", e, file=sys.stderr)
        sys.exit(1)
build_engine(onnx, engine, precision="fp16", progress=False)
runner = TensorRTRunner(engine).load()  # left open on purpose: the atexit guard must pop the context
runner.infer(np.zeros((1, 3, 416, 416), np.float32))
print("ok")
"""


@pytest.mark.parametrize("flavour, cuda, case, rc", [("8.5", "pycuda", "ok", 0), ("10.3", "pycuda", "error", 1),
                                                    ("10.3", "cuda-python", "ok", 0)])
def test_process_exits_cleanly(onnx_model, tmp_path, flavour, cuda, case, rc):
    """rule: pycuda aborts at module cleanup when the context stack is not empty (fake_cuda.py, pycuda)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", CHILD, flavour, cuda, str(onnx_model), str(tmp_path / "m.engine"),
                           case], capture_output=True, text=True, cwd=str(REPO), env=env, timeout=300)
    assert proc.returncode == rc, proc.stderr[-2000:]
    assert "PyCUDA ERROR" not in proc.stderr


def test_pycuda_context_has_one_owner(monkeypatch):
    fake = install(monkeypatch, "8.5", "pycuda")
    driver = sys.modules["pycuda.driver"]
    a, b = cuda_memory(), cuda_memory()
    assert a.name == "pycuda" and len(driver.CONTEXT_STACK) == 1  # pushed once, not once per cuda_memory()
    a.close()
    assert len(driver.CONTEXT_STACK) == 1  # b still uses it
    with b:
        b.device_free(b.device_alloc(16))
    assert driver.CONTEXT_STACK == []
    b.close()  # closing twice is harmless
    assert fake.__version__.startswith("8.5")


# ---- 4. fused regions in the inspector --------------------------------------------------------------------------
NET = ["/model.76/Conv", "/model.77/m.0/Conv", "/model.77/Reshape", "/model.77/Transpose", "/model.77/Sigmoid",
       "/model.77/Mul", "/model.77/Add", "/model.77/Concat"]
FP16 = "Channel major FP16 format where channel % 8 == 0"


def test_foreign_node_region_resolves_by_network_order():
    info = {"Layers": [
        {"Name": "/model.77/m.0/Conv", "Inputs": [{"Format/Datatype": FP16}]},
        {"Name": "{ForeignNode[/model.77/Reshape.../model.77/Add]}", "LayerType": "Myelin",
         "Inputs": [{"Format/Datatype": "Row major linear FP32"}]}]}
    got = layer_precisions(json.dumps(info), NET)
    assert got["/model.77/Transpose"] == got["/model.77/Mul"] == got["/model.77/Add"] == "fp32"
    assert got["/model.77/Concat"] is None and got["/model.77/m.0/Conv"] == "fp16"
    regions = layer_regions(json.dumps(info), NET)
    assert regions["/model.77/Sigmoid"] == "{ForeignNode[/model.77/Reshape.../model.77/Add]}"


def test_myelin_kernels_resolve_by_metadata():
    info = {"Layers": [
        {"Name": "__myl_ReshTranSigm_myl0_0", "LayerType": "kgen", "Inputs": [{"Format/Datatype": "Half"}],
         "Metadata": "[ONNX Layer: /model.77/Reshape]\x1f[ONNX Layer: /model.77/Transpose]\x1f"
                     "[ONNX Layer: /model.77/Sigmoid]"},
        {"Name": "__myl_Mul_myl0_1", "LayerType": "kgen", "Inputs": [{"Format/Datatype": "Half"}],
         "Metadata": "[ONNX Layer: /model.77/Mul | some property]"}]}
    got = layer_precisions(info, NET)
    assert [got[n] for n in NET[2:6]] == ["fp16"] * 4 and got["/model.77/Add"] is None


def test_strict_passes_on_decode_overrides_inside_myelin(trt, onnx_model, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", layer_precision=["model.77*:fp32"],
                          strict=True, **QUIET)
    regions = [r for r in report["overrides"] if r.get("region")]
    assert regions and all(r["applied"] and r["engine"] == "fp32" for r in report["overrides"])
    style = "__myl_" if trt.__version__.startswith("10") else "{ForeignNode["
    assert all(r["region"].startswith(style) for r in regions)


# ---- 6. the smaller ones -------------------------------------------------------------------------------------
def test_foreign_timing_cache_is_reported_and_the_build_continues(monkeypatch, onnx_model, tmp_path, capsys):
    cache = tmp_path / "m.timing"
    install(monkeypatch, "8.5")
    build_engine(onnx_model, tmp_path / "a.engine", precision="fp16", timing_cache=str(cache), **QUIET)
    fake = install(monkeypatch, "10.3")  # another TensorRT: setTimingCache returns false
    report = build_engine(onnx_model, tmp_path / "b.engine", precision="fp16", timing_cache=str(cache), **QUIET)
    assert ("IBuilderConfig.set_timing_cache", False) in fake.CALLS
    assert report["timing_cache"]["refused"] is True and (tmp_path / "b.engine").is_file()
    assert "timing cache" in capsys.readouterr().err
    assert json.loads(cache.read_bytes()[10:])["version"] == fake.__version__  # a fresh cache for this TensorRT


@pytest.mark.parametrize("tf32", [False, True])
def test_tf32_is_cleared_for_fp32_unless_asked(trt, onnx_model, tmp_path, tf32):
    """rule: BuilderFlag.TF32 is on by default (NvInfer.h)."""
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="fp32", tf32=tf32, **QUIET)
    assert (("IBuilderConfig.clear_flag", "TF32") in trt.CALLS) is not tf32
    assert ("TF32" in report["flags"]) is tf32
    trt.CALLS.clear()
    build_engine(onnx_model, tmp_path / "h.engine", precision="fp16", **QUIET)
    assert ("IBuilderConfig.clear_flag", "TF32") not in trt.CALLS  # fp16 builds leave TensorRT's default


@pytest.fixture(scope="module")
def nms_model(onnx_model, tmp_path_factory):
    """The shared model with an EfficientNMS_TRT plugin node on its output (as plugin-NMS exporters write)."""
    from onnx import TensorProto, helper

    m = onnx.load(str(onnx_model))
    outs = [("num_dets", TensorProto.INT32, [1, 1]), ("det_boxes", TensorProto.FLOAT, [1, 100, 4]),
            ("det_scores", TensorProto.FLOAT, [1, 100]), ("det_classes", TensorProto.INT32, [1, 100])]
    m.graph.node.append(helper.make_node("EfficientNMS_TRT", ["output", "output"], [o[0] for o in outs],
                                         name="/nms/EfficientNMS_TRT", max_output_boxes=100, plugin_version="1"))
    del m.graph.output[:]
    m.graph.output.extend([helper.make_tensor_value_info(*o) for o in outs])
    out = tmp_path_factory.mktemp("nms") / "nms.onnx"
    onnx.save(m, str(out))
    return out


def test_plugins_are_registered_before_parsing_and_deserializing(monkeypatch, nms_model, tmp_path):
    fake = install(monkeypatch, "8.6")
    build_engine(nms_model, tmp_path / "m.engine", precision="fp16", **QUIET)
    assert calls(fake, "init_libnvinfer_plugins")
    fresh = install(monkeypatch, "8.6")  # a new process: the plugin registry starts empty
    runner = TensorRTRunner(tmp_path / "m.engine").load()
    assert calls(fresh, "init_libnvinfer_plugins") and [s.name for s in runner.outputs][0] == "num_dets"
    runner.close()


def test_engine_runs_on_the_dla_core_it_was_built_for(trt, onnx_model, tmp_path):
    build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", dla_core=1, gpu_fallback=True, **QUIET)
    with TensorRTRunner(tmp_path / "m.engine") as runner:
        assert ("Runtime.DLA_core", 1) in trt.CALLS and runner.engine._dla_core == 1


def test_engine_from_another_orin_module_is_refused(trt, onnx_model, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", **QUIET)
    assert report["device"]["multiprocessors"] == 16 and report["device"]["dla_cores"] == 2
    DEVICE.props = dict(ORIN_NANO_8GB)  # same name and compute capability: an Orin Nano
    trt.num_dla_cores = 0
    with pytest.raises(SDKError, match=r"built for Orin \(fake\) .*16 SMs.*this GPU .*8 SMs.*rebuild it here"):
        TensorRTRunner(tmp_path / "m.engine").load()


def test_cache_header_is_checked_against_this_tensorrt(trt10, onnx_model, tmp_path):
    from sdk.quant.trt_cache import header_version, write_cache

    assert header_version("10.3.0.26") == 100300 and header_version("8.5.2.2") == 8502
    assert header_version("8.6") == 8600 and header_version(100300) == 100300
    cache = tmp_path / "q.cache"
    write_cache(cache, {"images": (0.0, 1.0)}, 8502, model=onnx_model)
    with pytest.raises(SDKError, match=r"TRT-8502-EntropyCalibration2.*expected TRT-100300-EntropyCalibration2"):
        build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_cache=str(cache), **QUIET)


def test_int8_without_scales_falls_back_with_a_warning(trt10, onnx_model, tmp_path, capsys):
    """rule: tensors without scales fall back to float with a warning, not an error (TensorRT build log)."""
    from sdk.quant.trt_cache import write_cache

    cache = tmp_path / "q.cache"
    write_cache(cache, {"images": (0.0, 1.0)}, 100300, model=onnx_model)  # a scale for one tensor only
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_cache=str(cache), **QUIET)
    assert report["calibration"]["cache_reused"] and not calls(trt10, "calibrator.get_batch")
    assert report["layer_precisions"].get("int8", 0) <= 2 and report["warnings"]
    assert "INT8" in capsys.readouterr().err
    with pytest.raises(SDKError, match="strict: got [0-9]+ of [0-9]+ convolutions in INT8"):
        build_engine(onnx_model, tmp_path / "s.engine", precision="int8", calib_cache=str(cache), strict=True,
                     **QUIET)

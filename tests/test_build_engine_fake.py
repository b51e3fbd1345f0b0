"""build_engine against the fake TensorRT 8.5 and 10.3 (tests/fake_tensorrt): flags, constraints, per-layer
overrides, calibration, Q/DQ, DLA, timing cache, --strict and the sidecar. The fakes record the calls the real
API would receive; the engine they build runs the ONNX through onnxruntime."""
import json

import numpy as np
import pytest

from sdk.errors import SDKError
from sdk.precision import layer_index
from sdk.tensorrt import build_engine
from sdk.tensorrt.builder import parse_size
from tests.fake_tensorrt.fixtures import calls, flags_set, trt, trt10, trt85  # noqa: F401 - fixtures

QUIET = {"progress": False}


def _int8(val_images, tmp_path, **kw):
    return {"calib_images": str(val_images), "calib_batches": 2,
            "calib_cache": str(tmp_path / "m.calib"), **kw}


@pytest.mark.parametrize("precision, expected", [("fp32", set()), ("fp16", {"FP16"}), ("int8", {"INT8"}),
                                                 ("best", {"FP16", "INT8"})])
def test_flags_for_each_precision(trt, onnx_model, val_images, tmp_path, precision, expected):
    kw = _int8(val_images, tmp_path) if "INT8" in expected else {}
    report = build_engine(onnx_model, tmp_path / "m.engine", precision=precision, workspace="2G", **kw, **QUIET)
    assert flags_set(trt) == expected
    assert [f for f in report["flags"] if f != "TF32"] == sorted(expected, key=["FP16", "INT8"].index)
    assert ("TF32" in report["flags"]) is (precision != "fp32")  # TensorRT's default, cleared for fp32
    # network creation flags differ by version: EXPLICIT_BATCH on 8.x, nothing on 10
    assert calls(trt, "Builder.create_network") == [("Builder.create_network", 0 if trt.__version__.startswith("10") else 1)]
    assert ("IBuilderConfig.set_memory_pool_limit", "WORKSPACE", 2 << 30) in trt.CALLS
    assert ("IBuilderConfig.profiling_verbosity", trt.ProfilingVerbosity.DETAILED) in trt.CALLS
    calibrated = [c for c in calls(trt, "IBuilderConfig.int8_calibrator") if c[1] is not None]
    assert len(calibrated) == (1 if "INT8" in expected else 0)
    counts = report["layer_precisions"]
    top = {"fp32": "fp32", "fp16": "fp16", "int8": "int8", "best": "int8"}[precision]
    assert max(counts, key=counts.get) == top
    assert (tmp_path / "m.engine").stat().st_size > 1_000_000


@pytest.mark.parametrize("constraints, flag", [("obey", "OBEY_PRECISION_CONSTRAINTS"),
                                               ("prefer", "PREFER_PRECISION_CONSTRAINTS"), ("none", None)])
def test_constraint_flag_only_with_overrides(trt, onnx_model, tmp_path, constraints, flag):
    build_engine(onnx_model, tmp_path / "a.engine", precision="fp16", precision_constraints=constraints, **QUIET)
    assert flags_set(trt) == {"FP16"}  # no override: no constraint flag
    trt.CALLS.clear()
    report = build_engine(onnx_model, tmp_path / "b.engine", precision="fp16", precision_constraints=constraints,
                          layer_precision=["model.77*:fp32"], **QUIET)
    assert flags_set(trt) == {"FP16"} | ({flag} if flag else set())
    applied = report["overrides_applied"].split("/")
    # without constraints TensorRT may ignore the requested precisions (the fake does)
    assert (applied[0] == applied[1]) == (flag is not None), report["overrides_applied"]


def test_overrides_touch_matching_layers_only(trt, onnx_model, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="fp16",
                          layer_precision=["model.77*:fp32", "/model.0/conv/Conv:fp32"], **QUIET)
    touched = {c[1] for c in calls(trt, "ILayer.precision")}
    assert "/model.0/conv/Conv" in touched
    assert all(n == "/model.0/conv/Conv" or "/model.77/" in n for n in touched)
    assert not any(n.startswith("/model.1/") for n in touched)
    outputs = {c[1] for c in calls(trt, "ILayer.set_output_type")}
    assert outputs == touched  # fp32 overrides pin the output type too
    rows = {r["layer"]: r for r in report["overrides"]}
    assert set(rows) == touched and all(r["applied"] and r["engine"] == "fp32" for r in rows.values())
    assert report["layer_precisions"]["fp16"] > 50  # everything else stays fp16


def test_block_and_op_overrides(trt85, onnx_model, val_images, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="int8",
                          layer_precision=["block:head:fp16", "op:CONCATENATION:fp32"],
                          **_int8(val_images, tmp_path), **QUIET)
    rows = report["overrides"]
    assert rows and all(r["applied"] for r in rows)
    precisions = {r["requested"] for r in rows}
    assert precisions == {"fp16", "fp32"}
    head = {layer_index(r["layer"]) for r in rows if r["requested"] == "fp16"}
    assert head == {74, 75, 76, 77}  # the head block from the ONNX metadata (CONCATENATION layers are fp32)
    assert flags_set(trt85) == {"FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"}  # fp16 kernels enabled for the head


def test_heaviest_uses_conv_flops(trt10, onnx_model, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", layer_precision=["heaviest:3:fp32"],
                          **QUIET)
    rows = report["overrides"]
    assert len(rows) == 3 and all(r["layer"].endswith("/Conv") for r in rows)


@pytest.mark.parametrize("spec, needles", [("model.99*:fp32", ["model.99*", "matches no layer", "/model."]),
                                           ("block:tail:fp16", ["tail", "backbone", "head"]),
                                           ("op:Softmax:fp16", ["Softmax", "CONVOLUTION"])])
def test_unmatched_override_is_an_error(trt, onnx_model, tmp_path, spec, needles):
    with pytest.raises(SDKError) as e:
        build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", layer_precision=[spec], **QUIET)
    for n in needles:
        assert n in str(e.value)
    assert not (tmp_path / "m.engine").exists()
    assert not calls(trt, "Builder.build_serialized_network")


def test_strict_fails_and_writes_nothing_when_overrides_are_ignored(trt, onnx_model, tmp_path):
    out = tmp_path / "m.engine"
    with pytest.raises(SDKError, match="strict: layer .* got fp16 in the engine, expected fp32"):
        build_engine(onnx_model, out, precision="fp16", layer_precision=["model.77*:fp32"],
                     precision_constraints="none", strict=True, **QUIET)
    assert not out.exists() and not list(tmp_path.iterdir())
    build_engine(onnx_model, out, precision="fp16", layer_precision=["/model.77/m.0/Conv:fp32"], strict=True,
                 **QUIET)
    assert out.exists()


def test_plan_file_and_cli_specs_combine(trt85, onnx_model, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("default: fp16\nconstraints: prefer\noverrides:\n  - {block: head, precision: fp32}\n")
    report = build_engine(onnx_model, tmp_path / "m.engine", precision_plan=str(plan),
                          layer_precision=["/model.77/m.0/Conv:fp16"], **QUIET)
    assert report["precision"] == "fp16" and report["plan"]["constraints"] == "prefer"
    rows = {r["layer"]: r["requested"] for r in report["overrides"]}
    assert rows["/model.77/m.0/Conv"] == "fp16" and rows["/model.77/m.1/Conv"] == "fp32"  # later entries win
    assert "PREFER_PRECISION_CONSTRAINTS" in flags_set(trt85)


def test_explicit_quantization_builds_without_calibrator(trt, qdq_model, val_images, tmp_path):
    report = build_engine(qdq_model, tmp_path / "q.engine", precision="fp16", calib_images=str(val_images),
                          **QUIET)
    assert report["explicit_quantization"] is True
    assert flags_set(trt) == {"FP16", "INT8"}
    assert not calls(trt, "IBuilderConfig.int8_calibrator") and not calls(trt, "calibrator.")
    assert report["layer_precisions"].get("int8", 0) >= 50  # the quantized convolutions


def test_int8_without_calibration_data_is_an_error(trt, onnx_model, tmp_path):
    with pytest.raises(SDKError, match="no --calib-images and no calibration cache"):
        build_engine(onnx_model, tmp_path / "m.engine", precision="int8", **QUIET)


def test_dla_settings(trt, onnx_model, tmp_path):
    build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", dla_core=1, gpu_fallback=True, **QUIET)
    assert ("IBuilderConfig.default_device_type", trt.DeviceType.DLA) in trt.CALLS
    assert ("IBuilderConfig.DLA_core", 1) in trt.CALLS
    assert "GPU_FALLBACK" in flags_set(trt)
    trt.num_dla_cores = 0  # an Orin Nano
    with pytest.raises(SDKError, match="dla_core: got 0, expected a core below 0"):
        build_engine(onnx_model, tmp_path / "n.engine", precision="fp16", dla_core=0, **QUIET)


def test_timing_cache_is_written_and_reused(trt, onnx_model, tmp_path):
    cache = tmp_path / "m.timing"
    build_engine(onnx_model, tmp_path / "a.engine", precision="fp16", timing_cache=str(cache), **QUIET)
    first = cache.read_bytes()
    assert calls(trt, "IBuilderConfig.create_timing_cache") == [("IBuilderConfig.create_timing_cache", 0)]
    build_engine(onnx_model, tmp_path / "b.engine", precision="fp16", timing_cache=str(cache), **QUIET)
    assert calls(trt, "IBuilderConfig.create_timing_cache")[-1] == ("IBuilderConfig.create_timing_cache",
                                                                   len(first))
    assert json.loads(cache.read_bytes()[10:])["n"] > json.loads(first[10:])["n"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_progress_monitor_only_on_tensorrt_10(trt, onnx_model, tmp_path):
    build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", progress=True)
    monitors = calls(trt, "IBuilderConfig.progress_monitor")
    if hasattr(trt, "IProgressMonitor"):
        assert len(monitors) == 1 and monitors[0][1].phases == ["Building engine"]
    else:
        assert monitors == []


def test_sidecar_records_the_build(trt, onnx_model, tmp_path):
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", layer_precision=["model.77*:fp32"],
                          **QUIET)
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["tensorrt"] == trt.__version__
    assert side["device"] == {"name": "Orin (fake)", "compute_capability": "8.7", "multiprocessors": 16,
                              "memory_gb": 64.0, "dla_cores": 2}
    assert side["onnx_sha256"] == report["onnx_sha256"] and len(side["onnx_sha256"]) == 64
    assert side["input_shape"] == [1, 3, 416, 416] and side["names"] == ["person"]
    assert side["metadata"]["imgsz"] == [416, 416] and side["metadata"]["blocks"]["head"] == [74, 75, 76, 77]
    assert side["plan"]["overrides"] == [{"name": "model.77*", "precision": "fp32"}]


def test_parse_size():
    assert parse_size("2G") == 2 << 30 and parse_size("512M") == 512 << 20 and parse_size("1024") == 1024
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
    with pytest.raises(SDKError):
        parse_size("lots")


@pytest.fixture(scope="module")
def qdq_model(onnx_model, val_images, tmp_path_factory):
    """The shared model quantized to Q/DQ by onnxruntime with the SDK's calibration reader (2 images), configured
    the way TensorRT needs it (symmetric, float biases): onnxruntime's defaults are refused (test_trt_qdq.py)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.metadata import ModelMetadata

    props = {p.key: p.value for p in onnx.load(str(onnx_model), load_external_data=False).metadata_props}
    reader = ImageCalibrationReader(calibration_images(val_images, 2), ModelMetadata.from_props(props), 1,
                                    progress=False)
    out = tmp_path_factory.mktemp("qdq") / "qdq.onnx"
    quantize_static(str(onnx_model), str(out), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out)).graph.node)
    return out


def test_engine_outputs_match_onnxruntime(trt, onnx_model, tmp_path):
    """Guard on the fake itself: its engine must compute what the ONNX computes."""
    from sdk.runners.onnxruntime import OnnxRuntimeRunner
    from sdk.runners.tensorrt import TensorRTRunner

    build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", **QUIET)
    x = np.random.default_rng(0).random((1, 3, 416, 416), dtype=np.float32)
    with TensorRTRunner(tmp_path / "m.engine") as r, OnnxRuntimeRunner(onnx_model) as ref:
        np.testing.assert_allclose(r.infer(x)["output"], ref.infer(x)["output"], rtol=1e-4, atol=1e-3)


def test_parser_errors_are_one_line(trt85, onnx_model, tmp_path, monkeypatch):
    """TensorRT 8.x's ONNX parser needs an explicit-batch network; if that ever regressed the user would see
    the parser's own message, on one line."""
    from sdk.tensorrt import api

    monkeypatch.setattr(api, "network_flags", lambda trt: 0)
    with pytest.raises(SDKError, match=r"onnx .*: TensorRT's ONNX parser failed \(Network must have the "
                                       r"Explicit Batch flag set\)"):
        build_engine(onnx_model, tmp_path / "m.engine", precision="fp16", **QUIET)

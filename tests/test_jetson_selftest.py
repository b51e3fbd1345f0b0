"""deploy/jetson/selftest (issue 16, "proof on hardware"): driven here with the fake TensorRT (tests/fake_tensorrt),
which proves that every check runs, calls what it should and reports pass / fail / skip with measured values; a
fake proves calls, never a result, so what the checks measure means something only on a GPU with real TensorRT
(the `jetson`-marked test at the end, skipped here). Each failure test reintroduces one defect (or one misbehaving
part) and expects its check, and only its check, to fail with exit status 1."""
import contextlib
import io
import json
import sys

import numpy as np
import pytest

from deploy.jetson.selftest import CHECKS, detect_platform, main
from tests.conftest import assert_one_line_error, run_cli
from tests.fake_tensorrt import install
from tests.fake_tensorrt.fixtures import calls
from tests.test_trt_dynamic import dynamic_onnx  # noqa: F401 - fixture: a small dynamic-batch model

FLAVOUR = "10.3"
CHILD = ("import sys; from tests.fake_tensorrt import install_globally; install_globally(sys.argv[1], sys.argv[2]); "
         "{prelude}from deploy.jetson.exit_check import main; sys.exit(main(sys.argv[3:]))")


def fake_launcher(flavour=FLAVOUR, prelude=""):
    """The clean-exit child with the fake TensorRT (and the fake CUDA backend it is asked for) installed."""
    return lambda cuda: [sys.executable, "-c", CHILD.format(prelude=prelude), flavour, cuda]


def run_selftest(argv, launcher=None, root="/"):
    """main() in this process (the fake is in sys.modules): (exit status, stdout lines, the JSON report)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main([str(a) for a in argv], launcher=launcher or fake_launcher(), root=root)
    lines = out.getvalue().strip().splitlines()
    return rc, lines, json.loads(lines[-1])


def by_check(report):
    return {c["check"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def full_run(onnx_model, dynamic_onnx, val_images, pennfudan, tmp_path_factory):  # noqa: F811
    """Every check once, on the fake TensorRT 10.3 with cuda-python: (rc, stdout lines, report, the fake)."""
    with pytest.MonkeyPatch.context() as mp:
        trt = install(mp, FLAVOUR)
        rc, lines, report = run_selftest(
            ["--onnx", onnx_model, "--calib-images", val_images, "--calib-count", 3, "--dynamic-onnx", dynamic_onnx,
             "--max-batch", 3, "--data", pennfudan, "--images", 3, "--runs", 2,
             "--workdir", tmp_path_factory.mktemp("selftest")])
    return rc, lines, report, trt


def test_every_check_has_a_status_in_one_table_and_one_json_line(full_run):
    rc, lines, report, trt = full_run
    assert rc == 0 and report["ok"] and report["failed"] == []
    assert [c["check"] for c in report["checks"]] == list(CHECKS)
    assert {c["status"] for c in report["checks"]} == {"pass"}, [(c["check"], c["detail"]) for c in report["checks"]]
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(CHECKS) and lines[-1].startswith("{") and len(lines) == len(table) + 2
    for cid, line in zip(CHECKS, table[2:]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == cid and cells[2] == by_check(report)[cid]["status"]
        assert cells[3], cid  # every check shows what it measured
    v = report["versions"]
    assert v["tensorrt"] == trt.__version__ and v["gpu"] == "Orin (fake)" and v["compute"] == "8.7"
    assert v["platform"] == detect_platform()["platform"] and v["sdk_revision"]
    assert set(v) >= {"cuda_runtime", "cuda_driver", "driver", "python", "sdk"}
    assert lines[0].startswith("TensorRT self-test: ") and f"TensorRT {trt.__version__}" in lines[0]


def test_each_check_measured_what_the_fake_recorded(full_run):
    _, _, report, trt = full_run
    c = {k: v["measured"] for k, v in by_check(report).items()}
    # 1: every requested image was read by (fake) TensorRT, one input volume per batch
    assert c["int8-calibration"]["requested_images"] == c["int8-calibration"]["consumed_images"] == 3
    assert len(trt.CALIBRATION_READS) == 3 and c["int8-calibration"]["batch_volume"] == 3 * 416 * 416
    # 2: the TensorRT-target Q/DQ ONNX passed the rules and was parsed and built without a calibrator
    assert c["qdq-trt-target"]["rules_broken"] == 0 and c["qdq-trt-target"]["explicit"] is True
    assert any(str(x[1]).endswith("-trt-qdq.onnx") for x in calls(trt, "OnnxParser.parse_from_file"))
    # 3: both children exited 0 with the backend they were asked for
    assert c["exit-pycuda"]["cuda"] == "pycuda" and c["exit-cuda-python"]["cuda"] == "cuda-python"
    assert c["exit-pycuda"]["rc"] == 0 == c["exit-cuda-python"]["rc"]
    # 4: the overrides inside the fused decode region were read back
    done, total = map(int, c["layer-precisions"]["overrides_applied"].split("/"))
    assert done == total > 0 and c["layer-precisions"]["in_regions"] > 0
    # 5: the profile went into the engine and batches of 2 and 3 were set and run
    assert c["dynamic-batch"]["engine_profile"] == "1/3/3" and c["dynamic-batch"]["batch_sizes"] == "1,2,3"
    shapes = {x[2] for x in calls(trt, "IExecutionContext.set_input_shape") if x[0].endswith("set_input_shape")}
    assert {(1, 3, 32, 32), (2, 3, 32, 32), (3, 3, 32, 32)} <= shapes
    # 6: TF32 cleared, timing cache accepted, plugins registered, DLA core set at run time
    assert c["fp32-no-tf32"]["tf32_flag"] == "cleared" and ("IBuilderConfig.clear_flag", "TF32") in trt.CALLS
    assert c["timing-cache"]["second_build"].startswith("loaded") and c["timing-cache"]["cache_bytes"] > 0
    assert calls(trt, "init_libnvinfer_plugins") and c["plugins"]["outputs"][0] == "num_dets"
    assert ("Runtime.DLA_core", 0) in trt.CALLS and c["dla"]["dla_core"] == 0
    # mAP: the fake computes the ONNX in FP32, so each engine equals onnxruntime (plumbing, not accuracy)
    assert all(c[f"map-{p}"]["map50"] == c[f"map-{p}"]["ort_map50"] > 0 for p in ("fp32", "fp16", "int8"))


def test_missing_inputs_and_hardware_are_skips_with_reasons(monkeypatch, onnx_model, val_images, tmp_path):
    trt = install(monkeypatch, FLAVOUR)
    trt.num_dla_cores = 0  # an Orin Nano / x86 GPU
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("NVIDIA Jetson Orin Nano Developer Kit\x00")
    rc, lines, report = run_selftest(["--onnx", onnx_model, "--calib-images", val_images,
                                      "--only", "dla,dynamic-batch,map-fp32"], root=root)
    got = by_check(report)
    assert rc == 0 and list(got) == ["gpu", "dynamic-batch", "dla", "map-fp32"]
    assert got["dla"]["status"] == got["dynamic-batch"]["status"] == got["map-fp32"]["status"] == "skip"
    assert "no DLA" in got["dla"]["detail"] and "--dynamic-onnx" in got["dynamic-batch"]["detail"]
    assert "--data" in got["map-fp32"]["detail"]
    v = report["versions"]
    assert (v["platform"], v["l4t"], v["jetpack"], v["model"]) == ("Jetson", "36.4.0", "6.1/6.2",
                                                                   "NVIDIA Jetson Orin Nano Developer Kit")
    assert "Jetson NVIDIA Jetson Orin Nano" in lines[0] and "JetPack 6.1/6.2" in lines[0]


def test_platform_off_a_jetson(monkeypatch, tmp_path):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert detect_platform(tmp_path) == {"platform": "x86 GPU", "machine": "x86_64"}
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert detect_platform(tmp_path)["platform"] == "aarch64 GPU"  # an SBSA server is not a Jetson
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/compatible").write_text("nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00")
    assert detect_platform(tmp_path)["platform"] == "Jetson"  # a device tree without nv_tegra_release (a container)


# ---- each check fails when its defect comes back ----------------------------------------------------------------
def _only(check, onnx_model, val_images, tmp_path, extra=(), **kw):
    return run_selftest(["--onnx", onnx_model, "--calib-images", val_images, "--calib-count", 3, "--only", check,
                         "--workdir", tmp_path, *extra], **kw)


def _failed_alone(rc, report, check):
    assert rc == 1 and not report["ok"] and report["failed"] == [check], report["failed"]
    return by_check(report)[check]


def test_calibrator_serving_fewer_images_fails(monkeypatch, onnx_model, val_images, tmp_path):
    from calibrators.tensorrt import _CalibratorLogic

    install(monkeypatch, FLAVOUR)
    serve = _CalibratorLogic.get_batch
    monkeypatch.setattr(_CalibratorLogic, "get_batch",
                        lambda self, names, *a: None if self.batches_served >= 1 else serve(self, names, *a))
    rc, _, report = _only("int8-calibration", onnx_model, val_images, tmp_path)
    row = _failed_alone(rc, report, "int8-calibration")
    assert row["measured"]["consumed_images"] == 1 and "took 1 of the 3" in row["detail"]


def test_calibration_batches_bigger_than_the_input_fail(monkeypatch, onnx_model, val_images, tmp_path):
    """Defect 1 as it was: batches of 8 for a (1, 3, 416, 416) input; TensorRT reads the first image of each."""
    from sdk.tensorrt import builder

    trt = install(monkeypatch, "8.5")
    monkeypatch.setattr(builder, "_calibration_shape", lambda network, profiles, size: ("images", (8, 3, 416, 416)))
    rc, _, report = _only("int8-calibration", onnx_model, val_images, tmp_path)
    row = _failed_alone(rc, report, "int8-calibration")
    assert row["measured"]["batch_volume"] == 8 * row["measured"]["input_volume"] and "first image" in row["detail"]
    assert [r["images"].shape for r in trt.CALIBRATION_READS] == [(1, 3, 416, 416)] * 3  # what the fake read


def test_qdq_onnx_the_checker_rejects_fails(monkeypatch, onnx_model, val_images, tmp_path):
    from onnx import numpy_helper

    from sdk.quant import trt_target

    trt = install(monkeypatch, FLAVOUR)
    convert = trt_target.to_tensorrt_qdq

    def asymmetric(model, plan, ranges):  # an activation zero point of 3: onnx-tensorrt's "Non-zero zero point"
        out, stats = convert(model, plan, ranges)
        zp = next(t for t in out.graph.initializer if t.name.endswith("_zero_point") and not t.dims)
        zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), zp.name))
        return out, stats
    monkeypatch.setattr(trt_target, "to_tensorrt_qdq", asymmetric)
    rc, _, report = _only("qdq-trt-target", onnx_model, val_images, tmp_path)
    row = _failed_alone(rc, report, "qdq-trt-target")
    assert "symmetric" in row["detail"] and not calls(trt, "OnnxParser")  # refused before any parse


def _old_builder(defect, monkeypatch):
    """Put one of the builder's old behaviours back (the ones issue 16 fixed)."""
    import sdk.tensorrt
    from sdk.tensorrt import builder, inspector

    if defect == "tf32":  # TF32 left on for fp32 builds
        build = sdk.tensorrt.build_engine
        monkeypatch.setattr(sdk.tensorrt, "build_engine", lambda *a, **kw: build(*a, **{**kw, "tf32": True}))
    elif defect == "no-profile":  # a dynamic-batch ONNX built without an optimization profile
        monkeypatch.setattr(builder, "_add_profiles", lambda trt, b, config, network, args: ({}, None))
    elif defect == "regions":  # layers inside Myelin / ForeignNode regions not found

        def by_name_only(info, names):
            inside = inspector.layer_regions(info, names)
            return {n: None if n in inside else p for n, p in inspector.layer_precisions(info, names).items()}
        monkeypatch.setattr(builder, "layer_precisions", by_name_only)


@pytest.mark.parametrize("defect, check, needle", [
    ("tf32", "fp32-no-tf32", "TF32 was left on"),
    ("no-profile", "dynamic-batch", "returned no engine"),
    ("regions", "layer-precisions", "engine not found"),
])
def test_old_builder_behaviour_fails_its_check(monkeypatch, onnx_model, dynamic_onnx, val_images, tmp_path,  # noqa: F811
                                               defect, check, needle):
    trt = install(monkeypatch, "8.6")
    _old_builder(defect, monkeypatch)
    rc, _, report = _only(check, onnx_model, val_images, tmp_path, extra=["--dynamic-onnx", dynamic_onnx])
    row = _failed_alone(rc, report, check)
    assert needle in row["detail"], row
    if defect == "no-profile":  # what (fake) TensorRT logged
        assert any("no optimization profile" in str(c[1]) for c in calls(trt, "build_error"))


def test_context_left_pushed_fails_the_pycuda_exit_check(monkeypatch, onnx_model, val_images, tmp_path):
    """Defect 3 as it was: the SDK never pops pycuda's context, so (fake) pycuda aborts the child at exit."""
    install(monkeypatch, FLAVOUR)
    leak = "from sdk.tensorrt.memory import _PycudaContext; _PycudaContext._pop = lambda self: None; "
    rc, _, report = _only("exit-pycuda", onnx_model, val_images, tmp_path, launcher=fake_launcher(prelude=leak))
    row = _failed_alone(rc, report, "exit-pycuda")
    assert "context stack" in row["measured"]["abort_text"] and "SIGABRT" in row["detail"]


def test_missing_backend_is_a_skip(monkeypatch, onnx_model, val_images, tmp_path):
    install(monkeypatch, FLAVOUR)
    no_pycuda = "sys.modules['pycuda'] = sys.modules['pycuda.driver'] = None; "  # cuda-python only (pip wheels)
    rc, _, report = _only("exit-pycuda", onnx_model, val_images, tmp_path, launcher=fake_launcher(prelude=no_pycuda))
    row = by_check(report)["exit-pycuda"]
    assert rc == 0 and row["status"] == "skip" and "pycuda is not installed" in row["detail"]


# ---- bad input and no TensorRT: one line, exit 1 ----------------------------------------------------------------
@pytest.mark.parametrize("args, needles", [
    (["--onnx", "missing.onnx"], ("--onnx missing.onnx", "file not found")),
    (["--only", "nonsense"], ("--only", "got 'nonsense'")),
    ([], ("selftest: TensorRT is not installed here", "expected a Jetson with JetPack or an NVIDIA GPU")),
])
def test_bad_input_is_one_line(onnx_model, val_images, args, needles):
    base = {"--onnx": onnx_model, "--calib-images": val_images}
    base.update(dict(zip(args[::2], args[1::2])))
    proc = run_cli(*[x for kv in base.items() for x in kv], module="deploy.jetson.selftest")
    assert_one_line_error(proc, *needles)
    assert proc.stdout == ""


# ---- the real thing ---------------------------------------------------------------------------------------------
@pytest.mark.jetson
def test_selftest_passes_on_hardware(onnx_model, dynamic_onnx_model, pennfudan, tmp_path):
    """On a Jetson (or an x86 GPU with TensorRT: run the script itself there): every check passes or is skipped
    with a reason, and the checks every GPU can do pass."""
    proc = run_cli("--onnx", onnx_model, "--dynamic-onnx", dynamic_onnx_model, "--calib-images",
                   pennfudan / "images" / "train", "--data", pennfudan, "--images", 50, "--runs", 20, "--workdir",
                   tmp_path, module="deploy.jetson.selftest", timeout=3600)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    got = by_check(report)
    assert proc.returncode == 0 and report["ok"], [(k, v["detail"]) for k, v in got.items() if v["status"] == "fail"]
    assert list(got) == list(CHECKS)
    must = ["gpu", "fp32-no-tf32", "timing-cache", "layer-precisions", "int8-calibration", "qdq-trt-target",
            "dynamic-batch", "plugins", "map-fp32", "map-fp16", "map-int8"]
    assert all(got[k]["status"] == "pass" for k in must), {k: got[k]["detail"] for k in must}
    assert "pass" in (got["exit-pycuda"]["status"], got["exit-cuda-python"]["status"])

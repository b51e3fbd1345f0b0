"""Jetson deployment: doctor (on a fake device tree), selftest (driven with the fake TensorRT here; the real run
is the `jetson`-marked test), the systemd unit's command line, and the real-hardware checks."""
import json
import os

import pytest

from deploy.jetson.doctor import Doctor
from deploy.jetson.selftest import run_selftest
from tests.conftest import REPO, assert_one_line_error, run_cli
from tests.fake_tensorrt.fixtures import trt10, trt85  # noqa: F401 - fixtures


def _device_tree(root, release="# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64",
                 mem_kb=3_900_000, swap_kb=0):
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(release + "\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("NVIDIA Jetson Orin Nano Developer Kit\x00")
    (root / "proc/meminfo").write_text(f"MemTotal:       {mem_kb} kB\nMemAvailable:   {mem_kb // 2} kB\n"
                                       f"SwapTotal:      {swap_kb} kB\n")
    (root / "dev").mkdir()
    (root / "dev/video0").write_text("")
    return root


def _commands(outputs):
    return lambda cmd: outputs.get(cmd[0])


def test_doctor_on_a_jetson_reports_versions_and_fixes(trt85, tmp_path):
    root = _device_tree(tmp_path)
    doc = Doctor(root, run=_commands({"nvpmodel": "NV Power Mode: 15W\n0",
                                      "jetson_clocks": "cpu0: Online=1 Governor=schedutil MinFreq=115200 "
                                                       "MaxFreq=1510400 CurrentFreq=729600",
                                      "nvcc": "Cuda compilation tools, release 11.4, V11.4.315"}))
    rows = {r["check"]: r for r in doc.all()}
    assert rows["L4T / JetPack"]["status"] == "ok"
    assert rows["L4T / JetPack"]["found"].startswith("L4T 35.3.1 = JetPack 5.1.1 (TensorRT 8.5)")
    assert "Orin Nano" in rows["L4T / JetPack"]["found"]
    assert rows["TensorRT (python)"] == {"check": "TensorRT (python)", "status": "ok", "found": "8.5.2.2", "fix": ""}
    assert rows["CUDA"] == {"check": "CUDA", "status": "ok", "found": "11.4", "fix": ""}
    assert rows["CUDA memory (cuda-python / pycuda)"]["status"] == "ok"
    assert rows["Power mode"]["status"] == "warn" and "nvpmodel -m 0" in rows["Power mode"]["fix"]
    assert rows["Clocks"]["status"] == "warn" and "jetson_clocks" in rows["Clocks"]["fix"]
    assert rows["Cameras"] == {"check": "Cameras", "status": "ok", "found": "video0", "fix": ""}
    mem = rows["Memory + swap"]
    assert mem["status"] == "warn" and "3808 MiB RAM" in mem["found"] and "swapfile" in mem["fix"]


def test_doctor_flags_old_jetpack_and_missing_tensorrt(tmp_path):
    root = _device_tree(tmp_path, release="# R32 (release), REVISION: 7.1", mem_kb=16_000_000, swap_kb=8_000_000)

    def no_tensorrt(name):
        if name.startswith(("tensorrt", "cuda", "pycuda")):
            raise ImportError(name)
        return __import__(name)
    rows = {r["check"]: r for r in Doctor(root, run=_commands({}), import_module=no_tensorrt).all()}
    assert rows["L4T / JetPack"]["status"] == "warn" and "upgrade to JetPack 5.1" in rows["L4T / JetPack"]["fix"]
    assert rows["TensorRT (python)"]["status"] == "fail" and "python3-libnvinfer" in rows["TensorRT (python)"]["fix"]
    assert rows["CUDA memory (cuda-python / pycuda)"]["status"] == "fail"
    assert rows["Memory + swap"]["status"] == "ok"


def test_doctor_script_here_says_not_a_jetson():
    proc = run_cli("--root", "/", module="deploy.jetson.doctor")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "L4T / JetPack" in report["failed"] and not report["ok"]
    assert os.access(REPO / "deploy/jetson/doctor", os.X_OK) and os.access(REPO / "deploy/jetson/selftest", os.X_OK)


def test_selftest_without_tensorrt_is_one_line(onnx_model, pennfudan):
    """Off a GPU machine (no TensorRT importable) the self-test stops with one line; it no longer insists on a
    Jetson (an x86 GPU box with the TensorRT wheels runs it too)."""
    proc = run_cli("--onnx", onnx_model, "--data", pennfudan, "--calib-images", pennfudan / "images" / "train",
                   module="deploy.jetson.selftest")
    line = assert_one_line_error(proc, "selftest", "expected a Jetson")
    assert "TensorRT" in line


def test_selftest_plumbing_with_the_fake(trt10, onnx_model, pennfudan, tmp_path):
    """The fake engine computes the ONNX in FP32, so every row must equal onnxruntime's mAP: this proves the
    build -> sidecar -> runner -> eval path, not TensorRT's accuracy (that is the jetson-marked test)."""
    rows = run_selftest(onnx_model, pennfudan, tmp_path, calib_images=str(pennfudan / "images" / "train"),
                        precisions=("fp32", "int8"), images=6, runs=2, calib_batches=2,
                        layer_precision=["block:head:fp16"], progress=False)
    assert [r["precision"] for r in rows] == ["fp32", "fp32", "int8"]
    ref = rows[0]
    assert ref["model"] == "onnxruntime (reference)" and 0.5 < ref["map50"] <= 1.0
    for row in rows[1:]:
        assert row["model"] == f"TensorRT {trt10.__version__} on Orin (fake)"
        assert row["map50"] == ref["map50"] and row["map50_95"] == ref["map50_95"]
    assert rows[2]["overrides"].split("/")[0] == rows[2]["overrides"].split("/")[1] != "0"
    assert "int8:" in rows[2]["layers"] and "fp16:" in rows[2]["layers"]
    assert (tmp_path / f"{onnx_model.stem}-int8.calib").is_file() and (tmp_path / "selftest.timing").is_file()


def test_container_recipe_starts_from_jetpack():
    # (the systemd unit's command line is parsed with the sample's parser in tests/test_web_security.py)
    assert "FROM nvcr.io/nvidia/l4t-jetpack:" in (REPO / "deploy/container/Dockerfile").read_text()


@pytest.mark.jetson
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_real_engine_matches_onnxruntime_map(onnx_model, pennfudan, tmp_path, precision):
    """On a Jetson: a real engine builds, reports its layer precisions, and keeps mAP close to onnxruntime."""
    rows = run_selftest(onnx_model, pennfudan, tmp_path, calib_images=str(pennfudan / "images" / "train"),
                        precisions=(precision,), images=50, runs=20, progress=False)
    ref, eng = rows
    assert eng["map50"] >= ref["map50"] - (0.01 if precision == "fp16" else 0.03), rows
    assert eng["fps"] > 0 and precision in eng["layers"]


def test_doctor_says_cuda_is_usable_only_when_a_gpu_answers(trt85, tmp_path):
    import types

    root = _device_tree(tmp_path)
    rows = {r["check"]: r for r in Doctor(root, run=_commands({"nvcc": "release 11.4"})).all()}
    assert rows["GPU answers"]["status"] == "ok" and "cuda-python" in rows["GPU answers"]["found"]

    dead = types.SimpleNamespace(cudaGetDeviceProperties=lambda i: (100, None))  # cudaErrorNoDevice

    def no_gpu(name):
        if name == "cuda.bindings.runtime":
            return dead
        return __import__(name)
    rows = {r["check"]: r for r in Doctor(root, run=_commands({"nvcc": "release 11.4"}), import_module=no_gpu).all()}
    assert rows["CUDA"]["status"] == "ok"  # the toolkit is there ...
    assert rows["GPU answers"]["status"] == "fail" and "returned 100" in rows["GPU answers"]["found"]  # ... no GPU


def test_sdk_doctor_shows_cameras_and_gstreamer_off_a_jetson():
    p = run_cli("doctor")
    checks = {r["check"]: r for r in json.loads(p.stdout.strip().splitlines()[-1])["checks"]}
    assert "Cameras" in checks and "GStreamer (rtsp:// outputs)" in checks
    assert "OpenCV GStreamer (CSI cameras)" in checks
    assert "GPU answers" not in checks or checks["GPU answers"]["status"] != "ok"  # no GPU on this machine

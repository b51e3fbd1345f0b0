"""build_engine without TensorRT (this machine): --help works, a build is one clear line; bad input is one line."""
import importlib.util

import pytest

from tests.conftest import assert_one_line_error, run_cli

NOT_INSTALLED = "TensorRT is not installed here; use the onnxruntime backend or run on a Jetson"


def test_help_works_without_tensorrt():
    for proc in (run_cli("build", "--help"), run_cli("--help", module="sdk.commands.build")):
        assert proc.returncode == 0, proc.stderr
        for flag in ("--onnx", "--calib-images", "--layer-precision", "--precision-constraints", "--dla-core",
                     "--timing-cache", "--strict"):
            assert flag in proc.stdout


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_build_says_tensorrt_is_missing(onnx_model, tmp_path):
    out = tmp_path / "m.engine"
    proc = run_cli("build", "--onnx", onnx_model, "-o", out, "--precision", "fp16")
    line = assert_one_line_error(proc)
    assert line == f"error: {NOT_INSTALLED}"
    assert not out.exists()
    # the console script entry point behaves the same
    proc = run_cli("--onnx", onnx_model, "-o", out, module="sdk.commands.build")
    assert assert_one_line_error(proc) == f"error: {NOT_INSTALLED}"


@pytest.mark.parametrize("args, needles", [
    (["--workspace", "2X"], ["--workspace", "2X", "2G"]),
    (["-o", "{tmp}/m.onnx"], ["--output", ".engine"]),
    (["--gpu-fallback"], ["--gpu-fallback", "--dla-core"]),
    (["--precision", "fp32", "--dla-core", "0"], ["--dla-core", "fp32"]),
    (["--layer-precision", "model.77*"], ["--layer-precision", "PATTERN:PRECISION"]),
    (["--layer-precision", "model.77*:fp64"], ["fp64", "fp32, fp16, int8"]),
])
def test_bad_input_is_one_line(onnx_model, tmp_path, args, needles):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    base = ["--onnx", onnx_model] + ([] if "-o" in args else ["-o", tmp_path / "m.engine"])
    proc = run_cli("build", *base, *args)
    assert_one_line_error(proc, *needles)


def test_missing_onnx_is_one_line(tmp_path):
    proc = run_cli("build", "--onnx", tmp_path / "nope.onnx", "-o", tmp_path / "m.engine")
    assert_one_line_error(proc, "--onnx", "nope.onnx", "file not found")

"""The command line's one vocabulary: every numeric flag checked before anything loads (one line, exit 1), the
calibration spellings of build / quantize / qat / classify, library parameter names reported as flags, and the
library below sdk/commands never importing argparse or the commands."""
import ast
import logging
from pathlib import Path

import pytest

from sdk.cli import main

from .conftest import REPO, assert_one_line_error, run_cli

M = "missing-model.onnx"  # never opened: the value checks come first


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# The cases of issue 13 (NaN, negative, out of range, a thread count that crashed onnxruntime) and their kin.
BAD_VALUES = [
    (["detect", "--model", M, "--source", "x", "--conf", "nan"], "--conf: got nan"),
    (["eval", "--model", M, "--data", "x", "--iou", "-1"], "--iou: got -1.0"),
    (["detect", "--model", M, "--source", "x", "--max-det", "-5"], "--max-det: got -5"),
    (["eval", "--model", M, "--data", "x", "--conf", "2"], "--conf: got 2.0"),
    (["export", "--weights", "w.pt", "-o", "m.onnx", "--imgsz", "-5"], "--imgsz: got -5"),
    (["export", "--weights", "w.pt", "-o", "m.onnx", "--imgsz", "0"], "--imgsz: got 0"),
    (["bench", "--model", M, "--threads", "100000"], "--threads: got 100000"),
    (["bench", "--model", M, "--runs", "0"], "--runs: got 0"),
    (["detect", "--model", M, "--source", "x", "--conf", "inf"], "--conf: got inf"),
    (["train", "--weights", "w.pt", "--data", "d", "--out-dir", "o", "--lr", "nan"], "--lr: got nan"),
    (["train", "--weights", "w.pt", "--data", "d", "--out-dir", "o", "--imgsz", "0"], "--imgsz: got 0"),
    (["train", "--weights", "w.pt", "--data", "d", "--out-dir", "o", "--threads", "0"], "--threads: got 0"),
    (["prune", "--weights", "w.pt", "-o", "p.pt", "--level", "nan"], "--level: got nan"),
    (["prune", "--weights", "w.pt", "-o", "p.pt", "--stats-images", "-1"], "--stats-images: got -1"),
    (["quantize", "--model", M, "--calib", "c", "-o", "q.onnx", "--calib-count", "abc"], "--calib-count: got 'abc'"),
    (["quantize", "--model", M, "--calib", "c", "-o", "q.onnx", "--threads", "-2"], "--threads: got -2"),
    (["qat", "--weights", "w.pt", "--data", "d", "--out-dir", "o", "-o", "q.onnx", "--percentile", "0"],
     "--percentile: got 0.0"),
    (["qat", "--weights", "w.pt", "--data", "d", "--out-dir", "o", "-o", "q.onnx", "--calib-images", "0"],
     "--calib-images: got 0"),
    (["distill", "--weights", "s.pt", "--teacher", "t.pt", "--data", "d", "--out-dir", "o", "--box-conf", "1.5"],
     "--box-conf: got 1.5"),
    (["mixed", "--model", M, "--calib", "c", "--data", "d", "--out-dir", "o", "--max-drop", "-1"],
     "--max-drop: got -1.0"),
    (["classify", "--model", M, "--source", "s", "--topk", "0"], "--topk: got 0"),
    (["build", "--onnx", M, "-o", "m.engine", "--calib-batch-size", "0"], "--calib-batch-size: got 0"),
    (["quantize", "--model", M, "--calib", "c", "-o", "q.onnx", "--trt-version", "abc"], "--trt-version: got 'abc'"),
    (["quantize", "--model", M, "--calib", "c", "-o", "q.onnx", "--trt-version", "7.0"], "--trt-version: got 7000"),
]


@pytest.mark.parametrize("argv, needle", BAD_VALUES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_VALUES])
def test_bad_numeric_values_are_one_line_errors(capsys, argv, needle):
    code, err = _cli(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1, err
    assert needle in lines[0] and "expected" in lines[0], lines[0]
    assert "Traceback" not in err and M not in err  # refused before the model was looked at


def test_the_real_process_exits_1_with_one_line(tmp_path):
    p = run_cli("bench", "--model", tmp_path / "m.onnx", "--threads", "100000")
    assert_one_line_error(p, "--threads: got 100000", "[1, ")
    p = run_cli("export", "--weights", tmp_path / "w.pt", "-o", tmp_path / "m.onnx", "--imgsz", "0")
    assert_one_line_error(p, "--imgsz: got 0")
    assert not list(tmp_path.iterdir())


def test_command_line_shape_errors_stay_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "--onnx", M, "-o", "m.engine", "--calibrator", "kl"])
    assert e.value.code == 2 and "invalid choice: 'kl'" in capsys.readouterr().err


def test_calibration_vocabulary_and_older_spellings():
    from sdk.commands import build, classify, qat, quantize
    from sdk.commands.args import CommandParser

    def parse(module, argv):
        p = CommandParser()
        module.add_arguments(p)
        return p.parse_args(argv)

    # one name: --calib PATH, --calib-count N, --calib-method METHOD; the old spellings land on the same values
    a = parse(build, ["--onnx", M, "-o", "m.engine", "--calib-images", "imgs", "--calibrator", "minmax"])
    b = parse(build, ["--onnx", M, "-o", "m.engine", "--calib", "imgs", "--calib-method", "minmax"])
    assert (a.calib, a.calib_method) == (b.calib, b.calib_method) == ("imgs", "minmax")
    c = parse(classify, ["--model", M, "--source", "s", "--calib-images", "imgs", "--calib-count", "8"])
    assert (c.calib, c.calib_count, c.calib_method) == ("imgs", 8, "minmax")
    q = parse(qat, ["--weights", "w", "--data", "d", "--out-dir", "o", "-o", "q.onnx", "--calib-images", "16",
                    "--calib-method", "max"])
    assert (q.calib_count, q.calib_method) == (16, "minmax")  # 'max' is minmax's older name
    z = parse(quantize, ["--model", M, "--calib", "imgs", "-o", "q.onnx"])
    assert (z.calib, z.calib_count, z.calib_method, z.threads) == ("imgs", 32, "entropy", 2)


def test_library_errors_name_parameters_and_the_cli_names_flags(capsys):
    from sdk.errors import SDKError
    from sdk.prune.gradual import schedule_for

    with pytest.raises(SDKError, match=r"^prune_updates: got 10"):
        schedule_for(8, 0.5, updates=10, end=1.0)
    pytest.importorskip("torch")
    code, err = _cli(capsys, "train", "--cfg", "missing.yaml", "--data", "d", "--out-dir", "o")
    assert code == 1 and err.splitlines()[-1] == ("error: --cfg missing.yaml: file not found, expected a YOLOv7 "
                                                  "model cfg yaml"), err
    from sdk.commands.args import name_flags

    flags = {"prune_begin": "--prune-begin", "prune_end": "--prune-end", "data": "--data"}
    assert name_flags("prune_begin/prune_end: got 1/2", flags) == "--prune-begin/--prune-end: got 1/2"
    assert name_flags("data /x: empty", flags) == "--data /x: empty"
    assert name_flags("model /x: missing", flags) == "model /x: missing"  # not a flag of this command
    assert name_flags("TensorRT is not installed", flags) == "TensorRT is not installed"


def test_quantization_leaves_the_root_logger_alone(onnx_model, val_images, tmp_path):
    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.quant.layers import load_model, metadata_of
    from sdk.quant.quantize import calibrate

    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.INFO)
    try:
        reader = ImageCalibrationReader(calibration_images(str(val_images), 2), metadata_of(load_model(onnx_model)))
        ranges = calibrate(str(onnx_model), reader, "minmax", str(tmp_path / "r.json"))
        assert ranges and root.level == logging.INFO
    finally:
        root.setLevel(before)


FORBIDDEN = ("argparse", "sdk.commands", "sdk.experiments")
# stream_out_gst.py is a program of its own: run by path in another interpreter (the one with GStreamer), its
# argv is the parent's private protocol, so it parses it as any entry point does
CLI_LAYER = ("sdk/commands/", "sdk/cli.py", "sdk/__main__.py", "sdk/video/stream_out_gst.py")
EXPERIMENTS = "sdk/experiments/"  # the layer above the library: it may use the library, nothing below uses it


def _imports(path):
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                yield mod
                yield from (f"{mod}.{a.name}" for a in node.names)
            else:
                yield node.module


def test_the_library_never_imports_argparse_the_commands_or_the_experiments():
    offenders = []
    for path in sorted((REPO / "sdk").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(CLI_LAYER):
            continue
        forbidden = FORBIDDEN[:2] if rel.startswith(EXPERIMENTS) else FORBIDDEN
        for name in _imports(path):
            if name and any(name == f or name.startswith(f + ".") for f in forbidden):
                offenders.append(f"{rel}: {name}")
    assert not offenders, offenders
    # the walker sees relative imports: the commands themselves are caught importing each other this way
    assert any(n == "sdk.commands.common" for n in _imports(REPO / "sdk/commands/eval.py"))


def test_commands_import_the_library_never_each_other():
    shared = {"sdk.commands.args", "sdk.commands.common", "sdk.commands"}
    offenders = []
    for path in sorted((REPO / "sdk/commands").glob("*.py")):
        if path.name in ("args.py", "common.py", "__init__.py", "camera.py", "soak.py"):
            continue  # camera/soak: the camera-pipeline API work (issue 14, the cameras branch)
        for name in _imports(path):
            if name and name.startswith("sdk.commands.") and not any(name == s or name.startswith(s + ".")
                                                                    for s in shared - {"sdk.commands"}):
                offenders.append(f"{path.name}: {name}")
    assert not offenders, offenders

"""The comparator and the report module: N models on one data loader (scores equal `eval`'s, outputs compared
with the reference, interleaved timing, spinning in runs only), tables, JSON and the machine description."""
import json
import logging

import numpy as np
import pytest

from sdk.bench import benchmark_runner, interleaved_model_bench
from sdk.compare import Comparator, compare
from sdk.data.datasets import load_dataset
from sdk.detector import Detector
from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU, evaluate
from sdk.report import describe_machine, machine, markdown_table, table_lines, write_outputs


@pytest.fixture(scope="module")
def val8(val_images):
    ds = load_dataset(str(val_images), names=["person"])
    ds.samples = ds.samples[:8]
    return ds


@pytest.fixture(scope="module")
def fp16_weights_model(onnx_model, tmp_path_factory):
    """The same network with its weights rounded to fp16 and back: a model that differs a little."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(onnx_model))
    for init in m.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32 and w.size > 16:
            init.CopyFrom(numpy_helper.from_array(w.astype(np.float16).astype(np.float32), init.name))
    out = tmp_path_factory.mktemp("fp16w") / "rounded.onnx"
    onnx.save(m, str(out))
    return out


def test_scores_equal_eval_and_outputs_are_compared_with_the_reference(onnx_model, fp16_weights_model, val8):
    with Comparator({"fp32": str(onnx_model), "again": str(onnx_model), "rounded": str(fp16_weights_model)},
                    val8, threads=1) as cmp:
        result = cmp.run(time=False, outputs=True)
        assert all(d.runner.spin == "run" for d in cmp._detectors.values())  # every session it opened
    with Detector(str(onnx_model), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU) as det:
        ref = evaluate(det, val8, progress=False)
    fp32, again, rounded = (result.row(k) for k in ("fp32", "again", "rounded"))
    assert fp32.map50 == ref["map50"] and fp32.map50_95 == ref["map50_95"]  # what `python -m sdk eval` says
    assert again.outputs["boxes_px_all"] == 0 and again.outputs["scores"] == 0 and again.map50_delta_pt == 0
    assert 0 < rounded.outputs["boxes_px"] < 2 and rounded.outputs["scores"] < 0.05
    assert abs(rounded.map50_delta_pt) < 2
    assert result.images == 8 and result.reference == "fp32" and result.spinning == "run"
    d = json.loads(json.dumps(result.to_dict()))
    assert [r["label"] for r in d["rows"]] == ["fp32", "again", "rounded"] and "timing" not in d["rows"][0]


def test_interleaved_timing_without_idle_spinning(onnx_model, fp16_weights_model):
    result = compare({"a": str(onnx_model), "b": str(fp16_weights_model), "a again": str(onnx_model)}, threads=1,
                     runs=4, rounds=2)
    a, b, a2 = result.rows
    assert a.timing["p50_ms"] > 0 and b.timing["p50_ms"] > 0 and a.speedup == 1.0
    assert a2.timing == a.timing  # the same file is timed once
    assert result.runs == 4 and result.machine["cores"] >= 1


def test_interleaved_bench_refuses_spinning_sessions(onnx_model):
    from sdk.runners.onnxruntime import OnnxRuntimeRunner

    x = np.zeros((1, 3, 416, 416), np.float32)
    quiet = benchmark_runner(str(onnx_model), threads=1)
    spinning = OnnxRuntimeRunner(str(onnx_model), threads=1).load()
    never = OnnxRuntimeRunner(str(onnx_model), threads=1, spin=False).load()
    try:
        # benchmarks: spinning within a run, stopped when it returns (onnxruntime reads back what it holds)
        so = quiet.session.get_session_options()
        assert so.get_session_config_entry("session.intra_op.allow_spinning") == "1"
        assert so.get_session_config_entry("session.force_spinning_stop") == "1"
        assert never.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert "spinning in runs only" in quiet.describe() and "no spinning" in never.describe()
        with pytest.raises(ValueError, match="spin='run'"):
            interleaved_model_bench({"quiet": (quiet, x), "spinning": (spinning, x)}, runs=1, warmup=0, rounds=1)
        both = interleaved_model_bench({"quiet": (quiet, x), "never": (never, x)}, runs=2, warmup=0, rounds=1)
        assert all(t["p50_ms"] > 0 for t in both.values())
        with pytest.raises(ValueError, match="spin: got 'always', expected None, True, False or 'run'"):
            OnnxRuntimeRunner(str(onnx_model), spin="always")
        # production sessions keep onnxruntime's default: the entry is not set at all
        with pytest.raises(RuntimeError, match="does not have configuration"):
            spinning.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    finally:
        quiet.close()
        spinning.close()
        never.close()


def test_pytorch_column_matches_the_export(checkpoint, onnx_model, val8):
    pytest.importorskip("torch")
    from sdk.models.checkpoint import load_checkpoint
    from sdk.runners.pytorch import TorchRunner

    meta = Detector(str(onnx_model), backend="ort").meta
    torch_runner = TorchRunner(load_checkpoint(checkpoint, fuse=True)[0], meta)
    with Comparator({"pytorch": torch_runner, "ort": str(onnx_model)}, val8, threads=1) as cmp:
        res = cmp.run(time=False, outputs=True)
    assert res.row("ort").outputs["boxes_px"] < 0.05 and abs(res.row("ort").map50_delta_pt) < 0.2


def test_report_tables_files_and_machine(tmp_path):
    lines = table_lines([["a", 1], ["bb", 22]], ["x", "y"])
    assert lines[0] == "| x  | y  |" and lines[1] == "|----|----|" and lines[3] == "| bb | 22 |"
    md = markdown_table([["a", 1]], ["x", "y"], title="T", note="on a machine")
    assert md == "# T\n\non a machine\n\n| x | y |\n|---|---|\n| a | 1 |\n"
    files = write_outputs(tmp_path / "out", "t", "Title", ["x"], [[1]], {"v": np.float32(0.5)},
                          lambda ax: ax.plot([0, 1], [0, 1]))
    assert json.loads(open(files["json"]).read()) == {"v": 0.5}
    assert open(files["png"], "rb").read(4) == b"\x89PNG" and "| 1 |" in open(files["markdown"]).read()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t.json", "t.md", "t.png"]  # no temporaries
    m = machine()
    assert m["cores"] >= 1 and m["onnxruntime"] and isinstance(m["cpu_flags"], list)
    assert str(m["cores"]) in describe_machine(m)
    with open("/proc/cpuinfo") as f:
        text = f.read()
    for flag in ("avx2", "avx512_vnni"):
        assert (flag in m["cpu_flags"]) == (f" {flag}" in text)  # read from the CPU, never assumed
    logging.getLogger(__name__).info(describe_machine(m))

"""`quantize` and the precision analyses end to end on the shared model: 8 calibration images, the 30 val images."""
import json

import onnx
import pytest

from tests.conftest import assert_one_line_error, run_cli

CALIB = ["--calib-count", "8", "--calib-method", "minmax"]  # entropy's KL search takes minutes on 2 cores


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory, onnx_model, train_images):
    d = tmp_path_factory.mktemp("int8")
    out, cache = d / "int8.onnx", d / "int8.cache"
    p = run_cli("quantize", "--model", onnx_model, "--calib", train_images, *CALIB, "-o", out, "--trt-cache", cache,
                check=True)
    return out, cache, json.loads(p.stdout.strip().splitlines()[-1])


def test_quantize_writes_qdq_int8_with_metadata_and_float_decode(int8_model, onnx_model, val_images):
    out, cache, report = int8_model
    m = onnx.load(str(out))
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("QuantizeLinear") > 50 and "DequantizeLinear" in ops
    props = {p.key: p.value for p in m.metadata_props}
    assert json.loads(props["sdk.precision"]) == "int8" and json.loads(props["sdk.names"]) == ["person"]
    # the box decode (grid/anchor maths in pixels) stays float: no Q/DQ node belongs to it
    decode = [n for n in m.graph.node if n.name.startswith("/model.77/") and n.op_type in ("Mul", "Pow", "Add")]
    assert decode and all(n.op_type not in ("QuantizeLinear", "DequantizeLinear") for n in decode)
    assert report["size_mb"] < 0.35 * onnx_model.stat().st_size / 2**20


def test_trt_cache_names_graph_tensors(int8_model, onnx_model):
    from sdk.quant.trt_cache import read_cache

    _, cache, report = int8_model
    header, scales = read_cache(cache)
    assert header == "TRT-8502-EntropyCalibration2" and len(scales) == report["trt_cache_tensors"]
    tensors = {o for n in onnx.load(str(onnx_model)).graph.node for o in n.output}
    assert "/model.0/act/LeakyRelu_output_0" in scales and set(scales) - {"images"} <= tensors
    assert all(0 < s < 10 for s in scales.values())


@pytest.mark.parametrize("case", ["empty", "too_few", "missing_layer", "missing_block", "quantized"])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, onnx_model, train_images, int8_model):
    out = tmp_path / "q.onnx"
    args = ["--model", onnx_model, "--calib", train_images, *CALIB]
    needle = {"empty": "--calib", "too_few": "expected at least 500", "missing_layer": "model.999",
              "missing_block": "tail", "quantized": "already quantized"}[case]
    if case == "empty":
        (tmp_path / "empty").mkdir()
        args = ["--model", onnx_model, "--calib", tmp_path / "empty", *CALIB]
    elif case == "too_few":
        args = ["--model", onnx_model, "--calib", train_images, "--calib-count", "500",
                "--calib-method", "minmax"]
    elif case == "missing_layer":
        args += ["--layer-precision", "/model.999/conv/Conv:fp32"]
    elif case == "missing_block":
        (tmp_path / "plan.yaml").write_text("default: int8\noverrides:\n  - {block: tail, precision: fp32}\n")
        args += ["--plan", tmp_path / "plan.yaml"]
    else:
        args = ["--model", int8_model[0], "--calib", train_images, *CALIB]
    p = run_cli("quantize", *args, "-o", out, "--trt-cache", tmp_path / "c.cache")
    assert_one_line_error(p, needle)
    assert sorted(x.name for x in tmp_path.iterdir() if x.is_file() and x.suffix != ".yaml") == []


def _outputs(out_dir, name):
    files = {p.suffix: p for p in out_dir.glob(f"{name}.*")}
    assert set(files) == {".md", ".json", ".png"}
    assert files[".png"].read_bytes()[:4] == b"\x89PNG"
    return json.loads(files[".json"].read_text())


def test_sensitivity_one_layer_at_a_time(tmp_path, onnx_model, train_images, val_images):
    # per block is the same machinery with block plans (and the partial table below covers those plans)
    p = run_cli("sensitivity", "--model", onnx_model, "--calib", train_images, *CALIB, "--data", val_images,
                "--level", "layer", "--limit", "1", "--out-dir", tmp_path, check=True)
    res = _outputs(tmp_path, "sensitivity")
    assert [r["unit"] for r in res["rows"]] == ["/model.0/conv/Conv"]
    assert abs(res["rows"][0]["drop_pt"]) < 3 and 0.75 < res["fp32"]["map50"] < 0.9
    assert "| /model.0/conv/Conv" in p.stdout


def test_partial_table_has_every_plan_timed_in_one_run(tmp_path, onnx_model, train_images, val_images):
    run_cli("partial", "--model", onnx_model, "--calib", train_images, *CALIB, "--data", val_images, "--runs", "5",
            "--out-dir", tmp_path, check=True)
    rows = {r["plan"]: r for r in _outputs(tmp_path, "partial")["rows"]}
    assert list(rows) == ["fp32", "int8 (all)", "backbone int8", "neck int8", "head int8", "backbone+neck int8"]
    assert rows["int8 (all)"]["size_mb"] < rows["backbone int8"]["size_mb"] < rows["fp32"]["size_mb"]
    assert rows["int8 (all)"]["speedup"] > 1.2  # ratio measured side by side, not an absolute time
    assert rows["int8 (all)"]["drop_pt"] < 1.5, rows  # 8 calibration images, 30 val images
    res = _outputs(tmp_path, "partial")
    assert 3 < res["noise_pt"] < 7  # 70 val boxes: one standard error is several points, drawn as a band
    assert (tmp_path / "partial.png").stat().st_size > 5000


def test_mixed_with_loose_budget_keeps_full_int8_and_writes_plan(tmp_path, onnx_model, train_images, val_images):
    plan = tmp_path / "plan.yaml"
    run_cli("mixed", "--model", onnx_model, "--calib", train_images, *CALIB, "--data", val_images, "--max-drop", "3",
            "--runs", "5", "--plan-out", plan, "--out-dir", tmp_path, check=True)
    res = _outputs(tmp_path, "mixed")
    assert res["greedy_fp32_layers"] == [] and res["heaviest_k"] == res["conv_layers"]
    assert "default: int8" in plan.read_text()
    assert [r["plan"] for r in res["rows"]][:3] == ["fp32", "int8 (all)", "greedy"]


def test_parity_pytorch_ort_fp32_int8(tmp_path, int8_model, onnx_model, checkpoint, val_images):
    pytest.importorskip("torch")
    run_cli("parity", "--model", onnx_model, "--int8", int8_model[0], "--weights", checkpoint, "--data", val_images,
            "--max-images", "12", "--out-dir", tmp_path, check=True)
    rows = {r["backend"]: r for r in _outputs(tmp_path, "parity")["rows"]}
    assert list(rows) == ["pytorch", "ort fp32", "ort int8"]
    assert rows["ort fp32"]["max_diff_boxes_px"] < 0.05 and rows["ort fp32"]["max_diff_scores"] < 1e-3
    assert rows["ort int8"]["max_diff_boxes_px"] > rows["ort fp32"]["max_diff_boxes_px"]
    assert abs(rows["pytorch"]["map50"] - rows["ort fp32"]["map50"]) < 0.002


def test_overflow_reports_cpu_and_layers(tmp_path, onnx_model, train_images):
    p = run_cli("overflow", "--model", onnx_model, "--calib", train_images, "--calib-count", "1",
                "--calib-method", "minmax", "--positions", "32", "--out-dir", tmp_path, check=True)
    res = _outputs(tmp_path, "overflow")
    assert len(res["rows"]) == 58 and res["rows"][0]["K"] == 27
    assert all(r["pair_observed"] <= r["pair_worst_case"] for r in res["rows"])
    assert "cpu flags:" in p.stdout
    # the verdict names the instruction path it is for, and what that means on this CPU
    assert "AVX2 u8s8 path (VPMADDUBSW" in p.stdout and res["verdict_here"]
    if res["int8_kernel"].startswith("vnni"):
        assert "none of these layers can saturate here" in res["verdict_here"]

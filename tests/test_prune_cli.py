"""`python -m sdk prune` and `prune-sweep` end to end on the real model and data, and their bad-input errors."""
import json
import pickle
import sys
import types

import pytest

torch = pytest.importorskip("torch")

from sdk.models.checkpoint import load_checkpoint  # noqa: E402

from .conftest import assert_one_line_error, run_cli  # noqa: E402


def test_prune_cli_fmc_writes_a_checkpoint_that_reloads_and_exports(checkpoint, pennfudan, tmp_path):
    out, onnx_path = tmp_path / "p.pt", tmp_path / "p.onnx"
    p = run_cli("prune", "--weights", checkpoint, "--criterion", "fmc", "--level", "0.6", "--round", "8",
                "--data", pennfudan, "--stats-images", "4", "--imgsz", "160", "-o", out, "--onnx", onnx_path)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["criterion"] == "fmc" and report["params"] < report["params_before"] / 4
    assert all(kept % 8 == 0 for _, kept in report["layers"].values())
    model, info = load_checkpoint(out)
    assert sum(x.numel() for x in model.parameters()) == report["params"]
    assert info["pruning"]["level"] == 0.6
    # an exported pruned-but-not-fine-tuned model says so, naming the fine-tune command
    assert report["warning"] == "pruned, not fine-tuned" and f"python -m sdk train --weights {out}" in p.stderr
    from sdk.detector import Detector

    with Detector(str(onnx_path)) as det:
        assert det.meta.imgsz == (160, 160) and det.names == ("person",)


def test_prune_cli_l1_with_given_layer_ratios(checkpoint, tmp_path):
    p = run_cli("prune", "--weights", checkpoint, "--criterion", "l1", "--level", "0", "--layer", "model.28=0.5",
                "--imgsz", "128", "-o", tmp_path / "p.pt")
    assert p.returncode == 0, p.stderr[-2000:]
    changed = {n: v for n, v in json.loads(p.stdout.strip().splitlines()[-1])["layers"].items() if v[0] != v[1]}
    assert changed == {"model.28": [512, 256]}


def _checkpoint_without_cfg(path):
    """An official-format checkpoint (pickled models.yolo.Model) whose model carries no 'yaml'."""
    mod = types.ModuleType("models.yolo")

    class Model:  # stands in for the official class while pickling
        pass

    Model.__module__, Model.__qualname__ = "models.yolo", "Model"
    mod.Model = Model
    sys.modules.setdefault("models", types.ModuleType("models"))
    sys.modules["models.yolo"] = mod
    try:
        obj = Model()
        obj.names = ["person"]
        torch.save({"model": obj, "epoch": 1}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    finally:
        del sys.modules["models.yolo"]
    return path


@pytest.mark.parametrize("args, needle", [
    (["--level", "1.0"], "--level: got 1.0"),
    (["--level", "-0.2"], "--level: got -0.2"),
    (["--layer", "model.300=0.5"], "--layer model.300"),
    (["--layer", "model.6=0.5"], "--layer model.6"),
    (["--criterion", "fmc"], "--data"),
])
def test_prune_cli_bad_input(checkpoint, tmp_path, args, needle):
    p = run_cli("prune", "--weights", checkpoint, "--criterion", "l1", "-o", tmp_path / "p.pt", *args)
    assert_one_line_error(p, needle)
    assert not (tmp_path / "p.pt").exists()


def test_prune_cli_checkpoint_without_cfg_and_empty_data(tmp_path, checkpoint):
    bad = _checkpoint_without_cfg(tmp_path / "nocfg.pt")
    p = run_cli("prune", "--weights", bad, "--criterion", "l1", "-o", tmp_path / "p.pt")
    assert_one_line_error(p, "nocfg.pt", "cfg")
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    p = run_cli("prune", "--weights", checkpoint, "--data", tmp_path / "images", "-o", tmp_path / "p.pt")
    assert_one_line_error(p, "--data")


def test_prune_sweep_tiny(checkpoint, pennfudan, tmp_path):
    """CI's version of the table: 2 levels x 2 criteria, one short epoch at 96 px on 4 images."""
    out = tmp_path / "sweep"
    p = run_cli("prune-sweep", "--weights", checkpoint, "--data", pennfudan, "--levels", "0,0.5",
                "--epochs", "1", "--batch-size", "4", "--imgsz", "96", "--max-images", "4", "--stats-images", "4",
                "--max-val-images", "6", "--hyp", "mosaic=0", "--bench-runs", "5", "--out-dir", out)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    rows = {r["name"]: r for r in res["rows"]}
    assert set(rows) == {"unpruned", "fmc-50", "l1-50"}
    assert rows["fmc-50"]["params"] == rows["l1-50"]["params"] <= 1.6e6 < rows["unpruned"]["params"]
    assert rows["unpruned"]["speedup"] == 1.0 and rows["fmc-50"]["latency_ms"] > 0
    assert rows["fmc-50"]["onnx_mb"] < rows["unpruned"]["onnx_mb"] / 3
    assert all(0 <= r["map50"] <= 1 and r["map50_95"] <= r["map50"] for r in rows.values())
    assert res["settings"]["val_images"] == 6 and res["settings"]["epochs"] == 1
    assert res["settings"]["hyp"] == {"mosaic": 0.0}
    md = (out / "prune_sweep.md").read_text()
    assert "| fmc-50 |" in md and "mAP@.5:.95" in md
    for png in ("map_vs_params.png", "map_vs_latency.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "prune_sweep.json").read_text())["rows"][0]["name"] == "unpruned"
    assert not list(out.glob(".*part"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("args, needle", [(["--levels", "0,1.5"], "--levels: got 1.5"),
                                          (["--criteria", "l1,magic"], "--criteria")])
def test_prune_sweep_bad_input(checkpoint, pennfudan, tmp_path, args, needle):
    p = run_cli("prune-sweep", "--weights", checkpoint, "--data", pennfudan, "--out-dir", tmp_path, *args)
    assert_one_line_error(p, needle)

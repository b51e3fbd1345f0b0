"""Structured gradual pruning (`python -m sdk prune --gradual`) on the real model and data: the level follows the
cubic schedule at every event, the end widths are the one-shot widths, the model really shrinks, exports to ONNX
and runs on onnxruntime; bad settings are one-line errors."""
import json
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from sdk.errors import SDKError  # noqa: E402
from sdk.models.checkpoint import load_checkpoint  # noqa: E402
from sdk.prune.gradual import StructuredGradualPruning, schedule_for  # noqa: E402
from sdk.prune.plan import keep_count, prunable_layers  # noqa: E402
from sdk.prune.schedule import cubic_sparsity  # noqa: E402

from .conftest import assert_one_line_error, run_cli  # noqa: E402


def test_schedule_for_spreads_the_events_over_the_budget():
    s = schedule_for(300, 0.5, updates=10, end=0.6)
    assert (s.begin_step, s.frequency, s.num_updates, s.end_step) == (0, 18, 10, 180)
    assert s(17) == 0.0 and s(18) == pytest.approx(0.5 * (1 - 0.9 ** 3)) and s(180) == s(300) == 0.5
    with pytest.raises(SDKError, match="prune_updates: got 10"):
        schedule_for(8, 0.5, updates=10, end=1.0)
    with pytest.raises(SDKError, match="prune_begin/prune_end"):
        schedule_for(100, 0.5, end=1.5)


def test_intermediate_widths_follow_the_cubic_curve(checkpoint):
    """Each event cuts every layer to keep_count(original width, s_t); the EMA copy is cut alike, the optimizer is
    rebuilt over the new parameters and 'best' is chosen again."""
    from sdk.prune.criteria import L1Norm
    from sdk.train.ema import ModelEMA

    model = load_checkpoint(checkpoint)[0].train()
    base = {n: m.conv.out_channels for n, m in prunable_layers(model).items()}
    rebuilt = []
    trainer = SimpleNamespace(model=model, ema=ModelEMA(model), best_fitness=0.5, best_epoch=3,
                              rebuild_optimizer=lambda: rebuilt.append(True))
    schedule = schedule_for(6, 0.6, updates=3, end=1.0)  # events after steps 2, 4 and 6
    cb = StructuredGradualPruning.for_model(model, schedule, lambda m: L1Norm())
    for step in range(6):
        cb(trainer, step)
        target = cubic_sparsity(step + 1, 0.6, 0.0, 0, 3, 2)
        widths = {n: m.conv.out_channels for n, m in prunable_layers(model).items()}
        assert widths == {n: keep_count(c, target) for n, c in base.items()}, step
        assert {n: m.conv.out_channels for n, m in prunable_layers(trainer.ema.ema).items()} == widths
    assert [e["step"] for e in cb.history] == [2, 4, 6] and len(rebuilt) == 3
    assert [e["target"] for e in cb.history] == pytest.approx([0.6 * (1 - (2 / 3) ** 3), 0.6 * (1 - (1 / 3) ** 3),
                                                                0.6])
    assert all(abs(e["filter_sparsity"] - e["target"]) < 0.01 for e in cb.history)
    params = [e["params"] for e in cb.history]
    assert params == sorted(params, reverse=True)
    assert trainer.best_fitness == -1.0  # earlier 'best' checkpoints have another architecture
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in trainer.ema.ema.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.zeros(1, 3, 96, 96))[0]).all()


def test_prune_gradual_cli_ends_at_the_one_shot_widths_and_exports(checkpoint, pennfudan, tmp_path):
    out, onnx_path = tmp_path / "g.pt", tmp_path / "g.onnx"
    p = run_cli("prune", "--gradual", "--weights", checkpoint, "--criterion", "fmc", "--level", "0.5",
                "--data", pennfudan, "--imgsz", "96", "--stats-images", "4", "--recal-images", "4",
                "--max-images", "4", "--max-val-images", "4", "--batch-size", "1", "--epochs", "1",
                "--prune-updates", "2", "--prune-end", "1.0", "--hyp", "mosaic=0", "--threads", "1",
                "--out-dir", tmp_path / "ft", "-o", out, "--onnx", onnx_path)
    assert p.returncode == 0, p.stderr[-2000:]
    rep = json.loads(p.stdout.strip().splitlines()[-1])
    assert [e["step"] for e in rep["events"]] == [2, 4]
    assert [e["target"] for e in rep["events"]] == pytest.approx([0.5 * (1 - 0.5 ** 3), 0.5])
    assert all(abs(e["filter_sparsity"] - e["target"]) < 0.01 for e in rep["events"])
    assert rep["params"] == 1511996 < rep["params_before"] / 3.9  # the one-shot 50 % model's size
    model, info = load_checkpoint(out)
    assert info["pruning"]["gradual"] is True
    assert {n: m.conv.out_channels for n, m in prunable_layers(model).items()} == \
        {n: kept for n, (_, kept) in rep["layers"].items()}
    assert all(kept == keep_count(width, 0.5) for width, kept in rep["layers"].values())
    from sdk.data.datasets import load_dataset
    from sdk.detector import Detector
    from sdk.evaluation.evaluate import evaluate

    with Detector(str(onnx_path), backend="ort", conf=0.001) as det:
        assert det.runner.backend == "onnxruntime" and det.meta.imgsz == (96, 96)
        r = evaluate(det, load_dataset(pennfudan, names=["person"], split="val"), progress=False)
    assert 0 <= r["map50"] <= 1 and r["images"] == 30


@pytest.mark.parametrize("args, needle", [
    (["--out-dir", "OUT", "--prune-updates", "50"], "--prune-updates: got 50"),
    ([], "--out-dir"),
    (["--out-dir", "OUT", "--local"], "--gradual"),
])
def test_prune_gradual_bad_input(checkpoint, pennfudan, tmp_path, args, needle):
    args = [str(tmp_path / "ft") if a == "OUT" else a for a in args]
    p = run_cli("prune", "--gradual", "--weights", checkpoint, "--criterion", "l1", "--data", pennfudan,
                "--max-images", "2", "--epochs", "1", "--imgsz", "96", "-o", tmp_path / "g.pt", *args)
    assert_one_line_error(p, needle)
    assert not (tmp_path / "g.pt").exists()

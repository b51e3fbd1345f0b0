"""Gradual pruning: the cubic schedule, Torch-Pruning's scheduler form, and the trainer step callback on the real
YOLOv7-tiny (masks survive optimizer steps; the sparsity reached is the sparsity the schedule asked for)."""
from types import SimpleNamespace

import pytest

from sdk.errors import SDKError
from sdk.prune.schedule import (CubicSchedule, GradualPruning, cubic_scheduler, cubic_sparsity, magnitude_masks,
                                sparsity_of)


def test_cubic_formula_endpoints_and_shape():
    s = CubicSchedule(final=0.8, initial=0.1, begin_step=10, num_updates=4, frequency=5)
    assert s(0) == s(9) == pytest.approx(0.1)  # before t0: initial
    assert s(10) == pytest.approx(0.1)
    # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 at t = t0 + dt, t0 + 2dt
    assert s(15) == pytest.approx(0.8 + (0.1 - 0.8) * (1 - 5 / 20) ** 3)
    assert s(20) == pytest.approx(0.8 + (0.1 - 0.8) * 0.5 ** 3)
    assert s(17) == s(15)  # holds between pruning events
    assert s(30) == s(1000) == pytest.approx(0.8)
    values = [s(t) for t in range(0, 40)]
    assert values == sorted(values)
    jumps = [b - a for a, b in zip(values[10::5], values[15::5]) if b > a]
    assert jumps == sorted(jumps, reverse=True)  # fast first, slow near the target
    assert [t for t in range(40) if s.is_update_step(t)] == [10, 15, 20, 25, 30]
    assert s.end_step == 30
    assert s(22) == cubic_sparsity(22, 0.8, 0.1, begin_step=10, num_updates=4, frequency=5)  # the pure function


def test_torch_pruning_scheduler_form():
    ratios = cubic_scheduler(0.5, 5)
    assert len(ratios) == 6 and ratios[0] == 0 and ratios[-1] == pytest.approx(0.5)
    assert ratios[1] == pytest.approx(0.5 * (1 - 0.8 ** 3))


@pytest.mark.parametrize("kw,needle", [({"final": 1.0}, "final sparsity"), ({"final": 0.5, "initial": -0.1},
                                       "initial sparsity"), ({"final": 0.5, "num_updates": 0}, "num_updates")])
def test_bad_schedules_are_one_line_errors(kw, needle):
    with pytest.raises(SDKError, match=needle):
        CubicSchedule(**kw)


def test_gradual_pruning_on_the_real_model_keeps_masks_through_optimizer_steps(checkpoint, pennfudan):
    torch = pytest.importorskip("torch")
    from sdk.data.datasets import load_dataset
    from sdk.models.checkpoint import load_checkpoint
    from sdk.train.augment import letterboxed, to_batch
    from sdk.train.hyp import HYP_TINY, scaled_loss_gains
    from sdk.train.loss import YoloLoss

    model = load_checkpoint(checkpoint)[0].train()
    ds = load_dataset(pennfudan, names=model.names, split="train")
    x, t = to_batch([letterboxed(s, 128) for s in ds.samples[:1]])
    x, t = torch.from_numpy(x), torch.from_numpy(t)
    loss_fn = YoloLoss(model, scaled_loss_gains(HYP_TINY, 1, 3, 128))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    schedule = CubicSchedule(final=0.6, begin_step=1, num_updates=2, frequency=2)
    cb = GradualPruning(schedule, magnitude_masks)
    trainer = SimpleNamespace(model=model, ema=None)
    for step in range(6):
        opt.zero_grad()
        loss, _ = loss_fn(model(x), t)
        loss.backward()
        opt.step()  # momentum would regrow pruned weights; the callback re-applies the masks
        cb(trainer, step)
        assert sparsity_of(model, cb.masks) == pytest.approx(schedule(step), abs=0.002)
    assert [h[0] for h in cb.history] == [3, 5]  # steps 0-2 ask for s_i = 0: nothing to prune
    assert [h[1] for h in cb.history] == pytest.approx([0.6 * (1 - 0.5 ** 3), 0.6])
    assert all(achieved == pytest.approx(target, abs=0.002) for _, target, achieved in cb.history)
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()

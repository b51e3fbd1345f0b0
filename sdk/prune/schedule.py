"""Gradual pruning: the cubic sparsity schedule of Zhu & Gupta (2017), "To prune, or not to prune".

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))**3     for t in {t0, t0 + dt, ..., t0 + n*dt}

Sparsity rises fast while the network has many redundant weights and slowly as it approaches the target, with
`dt` optimizer steps of fine-tuning between pruning events. Three pieces:

- `cubic_sparsity(...)`: the pure function.
- `cubic_scheduler(ratio, steps)`: the same curve in Torch-Pruning's `iterative_pruning_ratio_scheduler` form
  (a list of `steps + 1` ratios starting at 0), for structured (channel) pruning with `tp.pruner.*Pruner`.
- `GradualPruning(schedule, apply_fn)`: a trainer step callback `cb(trainer, step)` (see `sdk.train.trainer`)
  that asks `apply_fn(model, sparsity)` to prune whenever the schedule's target rises. `magnitude_masks` is a
  ready `apply_fn` (global unstructured L1 magnitude over conv weights) whose masks are re-applied after every
  optimizer step so momentum cannot regrow pruned weights.
"""
from dataclasses import dataclass, field

from ..errors import SDKError


def cubic_sparsity(step, final, initial=0.0, begin_step=0, num_updates=10, frequency=1):
    """Target sparsity at optimizer step `step`: `initial` before `begin_step`, `final` after the last update.

    Between, the value changes only on update steps (t0 + k*dt) and holds in between, as in the paper.
    """
    _check_fraction("initial sparsity", initial)
    _check_fraction("final sparsity", final)
    if num_updates < 1 or frequency < 1:
        raise SDKError(f"pruning schedule: got num_updates={num_updates}, frequency={frequency}, expected both >= 1")
    k = min((step - begin_step) // frequency, num_updates) if step >= begin_step else 0  # update events done
    if k == 0:
        return float(initial)  # exactly, not s_f + (s_i - s_f) * 1 with its rounding
    return float(final + (initial - final) * (1.0 - k / num_updates) ** 3)


def cubic_scheduler(pruning_ratio, steps):
    """Torch-Pruning scheduler signature: `steps + 1` ratios from 0 to `pruning_ratio` on the cubic curve."""
    return [cubic_sparsity(i, pruning_ratio, 0.0, 0, steps, 1) for i in range(steps + 1)]


@dataclass(frozen=True)
class CubicSchedule:
    final: float
    initial: float = 0.0
    begin_step: int = 0
    num_updates: int = 10
    frequency: int = 1

    def __post_init__(self):
        cubic_sparsity(self.begin_step, self.final, self.initial, self.begin_step, self.num_updates, self.frequency)

    @property
    def end_step(self):
        return self.begin_step + self.num_updates * self.frequency

    def __call__(self, step):
        return cubic_sparsity(step, self.final, self.initial, self.begin_step, self.num_updates, self.frequency)

    def is_update_step(self, step):
        return self.begin_step <= step <= self.end_step and (step - self.begin_step) % self.frequency == 0


@dataclass
class GradualPruning:
    """Step callback: prune to `schedule(step)` whenever it rises; keep returned masks applied between events.

    `apply_fn(model, sparsity)` prunes the live model and returns `{parameter name: 0/1 mask tensor}` (or None
    for structured pruning, which removes channels and needs no mask). With an EMA copy on the trainer, the
    masks are applied to it too, so the evaluated and saved weights are as sparse as the live ones.
    """
    schedule: CubicSchedule
    apply_fn: callable
    history: list = field(default_factory=list)  # [(step, target sparsity, what apply_fn reported)]
    masks: dict = field(default_factory=dict)
    current: float = 0.0

    def __call__(self, trainer, step):
        target = self.schedule(step)
        if target > self.current + 1e-9:
            masks = self.apply_fn(trainer.model, target)
            self.masks = masks or {}
            self.current = target
            self.history.append((step, target, sparsity_of(trainer.model, self.masks) if self.masks else None))
        if self.masks:
            apply_masks(trainer.model, self.masks)
            ema = getattr(getattr(trainer, "ema", None), "ema", None)
            if ema is not None:
                apply_masks(ema, self.masks)


def _check_fraction(what, value):
    if not 0.0 <= value < 1.0:
        raise SDKError(f"{what}: got {value}, expected a fraction in [0, 1)")


def prunable_weights(model):
    """Conv weights (the bulk of a YOLO/CNN's parameters); 1x1 detect-head convs included."""
    import torch

    return {f"{n}.weight": m.weight for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def magnitude_masks(model, sparsity):
    """Global unstructured magnitude pruning: zero the `sparsity` fraction of smallest |w| over all conv weights."""
    import torch

    weights = prunable_weights(model)
    if not weights:
        raise SDKError(f"gradual pruning model: got {type(model).__name__} with no Conv2d layers, expected a CNN")
    with torch.no_grad():
        flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
        k = int(sparsity * flat.numel())
        threshold = flat.kthvalue(k).values if k > 0 else flat.new_tensor(-1.0)
        masks = {n: (w.detach().abs() > threshold).to(w.dtype) for n, w in weights.items()}
    apply_masks(model, masks)
    return masks


def apply_masks(model, masks):
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            if name in params:
                params[name].mul_(mask)


def sparsity_of(model, masks):
    """Fraction of exact zeros over the masked parameters (what the model really has, not what was asked)."""
    params = dict(model.named_parameters())
    total = sum(params[n].numel() for n in masks if n in params)
    zeros = sum(int((params[n] == 0).sum()) for n in masks if n in params)
    return zeros / max(total, 1)

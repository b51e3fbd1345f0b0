"""Structured gradual pruning: the cubic schedule over fine-tuning steps, with real channel surgery at each event.

`StructuredGradualPruning` is a trainer step callback (`sdk.train.trainer`). After optimizer step t it asks the
cubic schedule (`sdk.prune.schedule.CubicSchedule`, Zhu & Gupta 2017) for the level s_t of filters removed;
when it rises, every prunable layer is cut to `keep_count(original width, s_t)` channels, chosen among the
channels it still has by the criterion (L1 on the current weights, or feature-map clustering on statistics of
the current model), through the same Torch-Pruning surgery as one-shot pruning (`sdk.prune.surgery`). The EMA
copy is cut with the same indices, the optimizer is rebuilt over the new parameters, and BatchNorm statistics
are re-estimated. The model really shrinks at every event (training gets cheaper as it goes), and the final
model has exactly the one-shot model's widths: it exports and runs like any pruned checkpoint.

Why surgery rather than soft masks: a masked model trains at full cost until the end and needs the same surgery
afterwards; cutting at each event is what the masks would converge to, at a fraction of the compute.
"""
from dataclasses import dataclass, field

from ..errors import SDKError
from .plan import keep_count, prunable_layers


def schedule_for(total_steps, level, updates=10, end=0.6, begin=0.0):
    """The cubic schedule from 0 to `level` with `updates` pruning events between `begin` and `end` (fractions
    of the `total_steps` optimizer steps), so the rest of the budget fine-tunes the final width."""
    from .schedule import CubicSchedule

    if not 0.0 <= begin < end <= 1.0:
        raise SDKError(f"prune_begin/prune_end: got {begin}/{end}, expected 0 <= begin < end <= 1")
    t0 = int(round(begin * total_steps))
    span = int(end * total_steps) - t0
    if updates < 1 or span < updates:
        raise SDKError(f"prune_updates: got {updates}, expected 1 to {max(span, 0)} (the optimizer steps between "
                       f"prune_begin and prune_end of {total_steps} steps; raise epochs or lower it)")
    return CubicSchedule(final=level, initial=0.0, begin_step=t0, num_updates=updates, frequency=span // updates)


@dataclass
class StructuredGradualPruning:
    """Step callback: cut channels whenever `schedule(steps done)` rises (see the module docstring).

    criterion_fn(model) -> criterion `crit(name, layer, n_keep) -> kept indices` (`sdk.prune.api.make_criterion`
    style), built anew at each event so it scores the model as it is then. `recalibrate(model)` re-estimates
    BatchNorm statistics after each cut (None: skip).
    """
    schedule: object
    criterion_fn: callable
    base_widths: dict
    round_to: int = 0
    recalibrate: callable = None
    log: callable = None
    history: list = field(default_factory=list)  # {step, target, filter_sparsity, params}
    current: float = 0.0

    @classmethod
    def for_model(cls, model, schedule, criterion_fn, **kw):
        return cls(schedule, criterion_fn, {n: m.conv.out_channels for n, m in prunable_layers(model).items()}, **kw)

    def targets(self, level):
        return {n: keep_count(c, level, self.round_to) for n, c in self.base_widths.items()}

    def __call__(self, trainer, step):
        target = self.schedule(step + 1)  # `step` is the index of the optimizer step just done
        if target <= self.current + 1e-9:
            return
        self.prune_to(trainer, target, step + 1)

    def prune_to(self, trainer, level, step):
        from .measure import count_params
        from .surgery import prune_channels

        model = trainer.model
        layers = prunable_layers(model)
        crit = self.criterion_fn(model)
        keep = {}
        for name, n in self.targets(level).items():
            width = layers[name].conv.out_channels
            if n < width:
                keep[name] = crit(name, layers[name], n)
        prune_channels(model, keep)
        ema = getattr(getattr(trainer, "ema", None), "ema", None)
        if ema is not None:
            prune_channels(ema, keep)  # same architecture before the cut, so the same indices
        if self.recalibrate is not None:
            self.recalibrate(model)
            if ema is not None:  # the EMA copy's statistics are an average of stale ones: take the fresh ones
                own = model.state_dict()
                for k, v in ema.state_dict().items():
                    if "running_" in k:
                        v.copy_(own[k])
        trainer.rebuild_optimizer()
        # the best checkpoint so far has another architecture: choose 'best' again among epochs after this cut
        trainer.best_fitness, trainer.best_epoch = -1.0, -1
        self.current = level
        widths = {n: m.conv.out_channels for n, m in prunable_layers(model).items()}
        row = {"step": step, "target": round(level, 6),
               "filter_sparsity": round(1.0 - sum(widths.values()) / sum(self.base_widths.values()), 6),
               "params": count_params(model)}
        self.history.append(row)
        if self.log:
            self.log(f"gradual pruning, step {step}: level {level:.3f} -> filter sparsity "
                     f"{row['filter_sparsity']:.3f}, {row['params']:,} params")

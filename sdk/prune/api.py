"""Pruning as calls: from a model to its pruned copy (choose the criterion, count the channels, cut, report),
and from a checkpoint to a saved pruned checkpoint, one-shot (`prune_checkpoint`) or gradually while fine-tuning
(`prune_gradually`). `python -m sdk prune` maps its flags onto these."""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import SDKError
from .criteria import CRITERIA, FeatureMapClustering, L1Norm, local_ratios_from_clustering
from .measure import count_gflops, count_params
from .plan import check_level, keep_counts, prunable_layers, sparsity


def make_criterion(name, model=None, data=None, imgsz=416, stats_images=64, seed=0, progress=True, stats=None):
    """'l1' or 'fmc' (feature-map clustering; needs labelled training images, or precomputed `stats`)."""
    if name == "l1":
        return L1Norm()
    if name == "fmc":
        if stats is None:
            if data is None:
                raise SDKError("data: got nothing, expected labelled training images for feature-map clustering")
            from .stats import feature_map_stats

            stats = feature_map_stats(model, prunable_layers(model), data, imgsz, stats_images, progress)
        return FeatureMapClustering(stats, seed)
    raise SDKError(f"criterion: got {name}, expected one of {', '.join(CRITERIA)}")


def prune_model(model, criterion, level=0.0, layer_ratios=None, local=False, round_to=0, imgsz=416, inplace=False):
    """Prune `model` (a copy unless `inplace`) with a criterion from `make_criterion`.

    level: the same ratio in every prunable layer (level pruning). layer_ratios: {name: ratio} overrides
    (local pruning, given). local=True: per-layer ratios from the clustering whose mean is `level` (needs
    the 'fmc' criterion). round_to: keep a multiple of this many channels per layer (8 suits TensorRT).
    Returns (pruned model, report).
    """
    from .surgery import prune_channels

    level = check_level(level)
    if not inplace:
        model = copy.deepcopy(model)
    layers = prunable_layers(model)
    ratios = dict(layer_ratios or {})
    if local:
        if not isinstance(criterion, FeatureMapClustering):
            raise SDKError("local: got criterion l1, expected fmc (per-layer ratios come from the clustering)")
        ratios = {**local_ratios_from_clustering(criterion.stats, level, criterion.seed), **ratios}
    before = {"params": count_params(model), "gflops": count_gflops(model, imgsz)}
    counts = keep_counts(layers, level, ratios, round_to)
    keep = {name: criterion(name, layers[name], n) for name, n in counts.items()
            if n < layers[name].conv.out_channels}
    widths_before = {n: m.conv.out_channels for n, m in layers.items()}
    filter_sparsity = sparsity(counts, layers)
    prune_channels(model, keep, imgsz=min(imgsz, 256))
    after = {"params": count_params(model), "gflops": count_gflops(model, imgsz)}
    report = {"criterion": getattr(criterion, "name", type(criterion).__name__), "level": level,
              "local": bool(local or layer_ratios), "round_to": round_to, "filter_sparsity": filter_sparsity,
              "params_before": before["params"], "params": after["params"], "gflops_before": before["gflops"],
              "gflops": after["gflops"], "imgsz": imgsz,
              "layers": {n: [widths_before[n], counts[n]] for n in layers}}
    return model, report


@dataclass
class PruneResult:
    """A pruned model, its report (params/GFLOPs before and after, per-layer widths, schedule events for gradual
    pruning) and where it was written."""
    model: object
    report: dict
    output: str | None = None


def _load_data(data, model, split):
    """The images and boxes the criterion and BatchNorm re-estimation read. Both use boxes, never classes, so a
    dataset of other classes (the one the pruned model will be fine-tuned on) is read with its own names."""
    from ..data.datasets import load_dataset
    from ..train.heads import data_class_names, needs_new_head

    own = data_class_names(str(data), split)
    if needs_new_head(model.names, own):
        print(f"prune: --data classes ({', '.join(own)}) are not the model's ({', '.join(model.names)}); the "
              f"criterion and BatchNorm use its images and boxes only, fine-tune with train to rebuild the head",
              file=sys.stderr)
        return load_dataset(data, names=own, split=split)
    return load_dataset(data, names=list(model.names), split=split)


def _save(model, report, weights, output, onnx, imgsz, skip=("layers",)):
    from ..export.onnx_export import export_onnx
    from ..models.checkpoint import save_checkpoint

    if output:
        save_checkpoint(model, output, pruning={k: v for k, v in report.items() if k not in skip},
                        source=Path(weights).name)
        report["output"] = str(output)
    if onnx:
        _, exp = export_onnx(model, onnx, imgsz=imgsz, source=Path(output or weights).name)
        report.update(onnx=str(onnx), onnx_mb=exp["size_mb"])


def _check_outputs(output, onnx):
    if output and not str(output).endswith(".pt"):
        raise SDKError(f"output: got '{output}', expected a path ending in .pt")
    if onnx and not str(onnx).endswith(".onnx"):
        raise SDKError(f"onnx: got '{onnx}', expected a path ending in .onnx")


def prune_checkpoint(weights: str | Path, output: str | Path | None = None, criterion: str = "fmc",
                     level: float = 0.5, data=None, split: str = "train", layer_ratios: Sequence[str] = (),
                     local: bool = False, round_to: int = 0, stats_images: int = 64, seed: int = 0,
                     recal_images: int = 64, imgsz: int = 416, onnx: str | Path | None = None) -> PruneResult:
    """One-shot filter pruning of a checkpoint: cut every prunable layer to `level` (or per-layer
    `layer_ratios` 'NAME=RATIO', or clustering-chosen ratios with `local`), re-estimate BatchNorm on
    `recal_images` of `data`, save an SDK checkpoint (and an ONNX export)."""
    from ..models.checkpoint import load_checkpoint
    from .plan import parse_layer_ratios

    check_level(level)
    _check_outputs(output, onnx)
    model, _ = load_checkpoint(weights)
    ratios = parse_layer_ratios(list(layer_ratios), prunable_layers(model))
    train = None
    if criterion == "fmc":
        if not data:
            raise SDKError("data: got nothing, expected labelled training images for criterion fmc")
        train = _load_data(data, model, split)
    crit = make_criterion(criterion, model, train, imgsz, stats_images, seed)
    pruned, report = prune_model(model, crit, level, ratios, local, round_to, imgsz, inplace=True)
    cut = report["params"] < report["params_before"]
    if cut and train is None and data and recal_images > 0:
        train = _load_data(data, model, split)
    if cut and train is not None and recal_images > 0:  # the cut changed what every BatchNorm sees
        from .recalibrate import recalibrate_batchnorm

        recalibrate_batchnorm(pruned, train, imgsz, recal_images)
        report["recal_images"] = min(recal_images, len(train))
    _save(pruned, report, weights, output, onnx, imgsz)
    return PruneResult(pruned, report, str(output) if output else None)


def prune_gradually(weights: str | Path, data, out_dir: str | Path, recipe=None, output: str | Path | None = None,
                    criterion: str = "fmc", level: float = 0.5, updates: int = 10, begin: float = 0.0,
                    end: float = 0.6, round_to: int = 0, stats_images: int = 64, seed: int = 0,
                    recal_images: int = 64, split: str = "train", val_data=None, val_split: str = "val",
                    validate: bool = True, onnx: str | Path | None = None, log=None) -> PruneResult:
    """Pruning and fine-tuning as one run: the cubic schedule raises the level to `level` over `updates`
    events between `begin` and `end` (fractions of the optimizer steps), cutting channels for real at each
    (`sdk.prune.gradual`); the best fine-tuned model is saved to `output`. `recipe`: a FinetuneRecipe."""
    from ..models.checkpoint import load_checkpoint
    from ..train.recipe import FinetuneRecipe, load_train_val, make_trainer
    from .gradual import StructuredGradualPruning, schedule_for
    from .recalibrate import recalibrate_batchnorm

    recipe = recipe or FinetuneRecipe()
    check_level(level)
    if level <= 0:
        raise SDKError(f"level: got {level}, expected a ratio in (0, 1) for gradual pruning")
    if not data:
        raise SDKError("data: got nothing, expected labelled training images for gradual pruning (it fine-tunes)")
    _check_outputs(output, onnx)
    model, _ = load_checkpoint(weights)
    train, val = load_train_val(model, data, split, val_data, val_split, validate)
    imgsz = recipe.imgsz
    before = {"params": count_params(model), "gflops": count_gflops(model, imgsz)}

    def criterion_fn(m):  # scored on the model as it is at each event
        return make_criterion(criterion, m, train, imgsz, stats_images, seed, progress=False)

    recal = (lambda m: recalibrate_batchnorm(m, train, imgsz, recal_images)) if recal_images > 0 else None
    trainer = make_trainer(model, train, val, recipe, out_dir=out_dir)
    batches = -(-len(trainer.train_data) // trainer.batch_size)
    steps = trainer.epochs * -(-batches // trainer.accumulate)  # optimizer steps, as the trainer counts them
    schedule = schedule_for(steps, level, updates, end, begin)
    gp = StructuredGradualPruning.for_model(model, schedule, criterion_fn, round_to=round_to, recalibrate=recal,
                                            log=log)
    trainer.step_callbacks.append(gp)
    res = trainer.fit()
    if gp.current < level - 1e-9:  # cannot happen with schedule_for; guards a changed budget
        raise SDKError(f"level: reached {gp.current} gradually, expected {level}")
    pruned = trainer.best_model()
    report = {"criterion": criterion, "level": level, "gradual": True, "round_to": round_to,
              "schedule": {"total_steps": steps, "begin_step": schedule.begin_step, "updates": schedule.num_updates,
                           "frequency": schedule.frequency, "end_step": schedule.end_step},
              "events": gp.history, "params_before": before["params"], "params": count_params(pruned),
              "gflops_before": before["gflops"], "gflops": count_gflops(pruned, imgsz), "imgsz": imgsz,
              "layers": {n: [w, gp.targets(level)[n]] for n, w in gp.base_widths.items()},
              "finetune": {k: res[k] for k in ("epochs", "steps", "seconds", "best_epoch", "history") if k in res}}
    for k in ("best_map50", "best_map50_95", "final_map50", "final_map50_95"):
        if k in res:
            report[k] = res[k]
    _save(pruned, report, weights, output, onnx, imgsz, skip=("layers", "finetune"))
    return PruneResult(pruned, report, str(output) if output else None)

"""A YOLOv7-tiny trainer for the CPU: fine-tune a (pruned) checkpoint or train from a cfg.

Official recipe (train.py + hyp.scratch.tiny.yaml): SGD with Nesterov momentum and three parameter groups
(BatchNorm weights without weight decay), linear warm-up of the learning rate and momentum (biases warm down
from `warmup_bias_lr`), cosine decay to lr0 * lrf, EMA weights, the YOLOv7 loss (`sdk.train.loss`), mosaic +
scale/translate + HSV + flip augmentation (`sdk.train.augment`). Each epoch the EMA model is scored on the val
data with `sdk.evaluation` (conf 0.001, IoU 0.65); `best.pt` keeps the best fitness (0.1 mAP@.5 +
0.9 mAP@.5:.95, as official), `last.pt` everything needed to resume. Both are SDK checkpoints
(`sdk.models.checkpoint.save_checkpoint`, atomic writes) that `load_checkpoint` and `python -m sdk export` read.

Differences from the official defaults, for small data on a CPU: the optimizer steps every batch unless
`nominal_batch` asks to accumulate (official accumulates to 64 images), and the warm-up is `warmup_epochs`
epochs with no 1000-iteration floor.

Extension points (for distillation, gradual pruning, QAT):

- ``loss_hooks``: callables ``hook(model, imgs, targets, preds) -> (extra_loss, {name: float})``. ``imgs`` is the
  (B, 3, H, W) float batch, ``targets`` the (n, 6) image/class/cx/cy/w/h (normalised) tensor, ``preds`` the raw
  per-level maps. ``extra_loss`` (a scalar tensor, may be 0) is added to the YOLO loss before backward; the
  named floats are shown in the progress bar and averaged into the epoch history.
- ``step_callbacks``: callables ``cb(trainer, step)`` run after every optimizer step (``step`` counts optimizer
  steps from 0 across epochs). ``trainer.model`` is the live model, ``trainer.ema.ema`` the EMA copy,
  ``trainer.optimizer`` the optimizer, ``trainer.epoch`` the current epoch. A callback that changes the model's
  structure (structured gradual pruning, `sdk.prune.gradual`) cuts ``trainer.ema.ema`` alike and calls
  ``trainer.rebuild_optimizer()``.

Usage::

    from sdk.train.trainer import Trainer
    results = Trainer(model, "data/pennfudan", "data/pennfudan", epochs=10, batch_size=8, imgsz=416,
                      out_dir="runs/ft").fit()
"""
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..data.datasets import LabelledDataset, load_dataset
from ..errors import SDKError
from .augment import to_batch, training_image
from .hyp import HYP_TINY, scaled_loss_gains

RESUME_FORMAT = "sdk-train-v1"


def as_dataset(data, split, names, what, max_images=None):
    """A LabelledDataset from anything `load_dataset` takes (YOLO, COCO json, VOC, data yaml) or a dataset."""
    ds = data if isinstance(data, LabelledDataset) else load_dataset(str(data), names=names, split=split)
    if max_images:
        ds = LabelledDataset(ds.samples[:max_images], ds.names, ds.layout, ds.root, ds.category_ids)
    if not len(ds):
        raise SDKError(f"{what} {getattr(ds, 'root', data)}: the dataset is empty, expected labelled images")
    if len(ds.names) > len(names):
        raise SDKError(f"{what} {ds.root}: has {len(ds.names)} classes, expected at most the model's "
                       f"{len(names)} ({', '.join(names)})")
    return ds


def cosine_lr(epochs, lrf):
    """Learning-rate factor: 1 at epoch 0 down to lrf at the last epoch, along half a cosine."""
    return lambda e: ((1 - math.cos(e * math.pi / max(epochs, 1))) / 2) * (lrf - 1) + 1


class Trainer:
    def __init__(self, model, train_data, val_data=None, epochs=10, batch_size=8, imgsz=416, lr=None,
                 hyp=None, out_dir=None, nominal_batch=None, warmup_epochs=None, ema=True, seed=0,
                 max_train_images=None, max_val_images=None, augment=True, loss_hooks=(), step_callbacks=(),
                 resume=None, progress=True, threads=None, save=True):
        import torch

        if epochs < 1:
            raise SDKError(f"epochs: got {epochs}, expected at least 1")
        if batch_size < 1:
            raise SDKError(f"batch_size: got {batch_size}, expected at least 1")
        stride = int(max(model.stride))
        if imgsz % stride or imgsz <= 0:
            raise SDKError(f"imgsz: got {imgsz}, expected a positive multiple of the model stride {stride}")
        if threads:
            torch.set_num_threads(threads)
        self.model = model.float().train()
        self.names = list(model.names)
        self.train_data = as_dataset(train_data, "train", self.names, "data", max_train_images)
        self.val_data = as_dataset(val_data, "val", self.names, "val_data", max_val_images) \
            if val_data is not None else None
        self.epochs, self.batch_size, self.imgsz, self.seed = int(epochs), int(batch_size), int(imgsz), seed
        self.hyp = dict(HYP_TINY, **(hyp or {}))
        if lr is not None:
            self.hyp["lr0"] = float(lr)
        if warmup_epochs is not None:
            self.hyp["warmup_epochs"] = float(warmup_epochs)
        self.gains = scaled_loss_gains(self.hyp, model.detect.nc, model.detect.nl, self.imgsz)
        self.augment = augment
        self.accumulate = max(1, round((nominal_batch or batch_size) / batch_size))
        self.loss_hooks, self.step_callbacks = list(loss_hooks), list(step_callbacks)
        self.out_dir = Path(out_dir) if out_dir else None
        self.save = save and self.out_dir is not None
        self.progress = progress
        self.optimizer = self._optimizer()
        self.lf = cosine_lr(self.epochs, self.hyp["lrf"])
        from .ema import ModelEMA
        from .loss import YoloLoss

        self.ema = ModelEMA(self.model) if ema else None
        self.loss = YoloLoss(self.model, self.gains)
        self.start_epoch, self.epoch, self.step = 0, 0, 0
        self.best_fitness, self.best_epoch, self.history = -1.0, -1, []
        if resume:
            self._resume(resume)

    # ------------------------------------------------------------------ setup
    def _optimizer(self):
        import torch
        from torch import nn

        bn, weights, biases = [], [], []
        for m in self.model.modules():
            if hasattr(m, "bias") and isinstance(m.bias, nn.Parameter):
                biases.append(m.bias)
            if isinstance(m, nn.BatchNorm2d):
                bn.append(m.weight)
            elif hasattr(m, "weight") and isinstance(m.weight, nn.Parameter):
                weights.append(m.weight)
            elif hasattr(m, "implicit") and isinstance(m.implicit, nn.Parameter):
                bn.append(m.implicit)  # implicit knowledge vectors: no decay, as official
        decay = self.hyp["weight_decay"] * self.batch_size * self.accumulate / 64
        opt = torch.optim.SGD(bn, lr=self.hyp["lr0"], momentum=self.hyp["momentum"], nesterov=True)
        opt.add_param_group({"params": weights, "weight_decay": decay})
        opt.add_param_group({"params": biases})
        for g in opt.param_groups:
            g["initial_lr"] = self.hyp["lr0"]
        return opt

    def rebuild_optimizer(self):
        """A fresh optimizer over the model's current parameters, keeping each group's learning rate and momentum.

        For structural changes during training (pruning surgery replaces the pruned parameters): the old
        optimizer would keep updating the old tensors. Momentum buffers start again from zero.
        """
        old = self.optimizer
        self.optimizer = self._optimizer()
        for new, prev in zip(self.optimizer.param_groups, old.param_groups):
            new.update({k: prev[k] for k in ("lr", "momentum", "initial_lr") if k in prev})
        return self.optimizer

    def _resume(self, path):
        from ..models.checkpoint import load_checkpoint

        model, info = load_checkpoint(path)
        if info.get("resume_format") != RESUME_FORMAT:
            raise SDKError(f"resume {path}: not a training checkpoint, expected the last.pt a training run wrote")
        if model.yaml != self.model.yaml:
            raise SDKError(f"resume {path}: its architecture differs from the model given, expected the same cfg")
        self.model.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(info["optimizer"])
        if self.ema is not None and info.get("ema_state"):
            self.ema.ema.load_state_dict(info["ema_state"])
            self.ema.updates = int(info.get("ema_updates", 0))
        self.start_epoch = int(info["epoch"]) + 1
        self.step = int(info.get("step", 0))
        self.best_fitness = float(info.get("best_fitness", -1.0))
        self.best_epoch = int(info.get("best_epoch", -1))
        self.history = list(info.get("history", []))
        if self.start_epoch >= self.epochs:
            raise SDKError(f"resume {path}: finished {self.start_epoch} of {self.epochs} epochs already, "
                           f"expected a run with epochs left (raise --epochs)")

    # ------------------------------------------------------------------ training
    def _batches(self, rng):
        order = rng.permutation(len(self.train_data))
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _load_batch(self, idxs, rng_seed):
        rng = np.random.default_rng(rng_seed)
        return to_batch([training_image(self.train_data, int(i), self.imgsz, self.hyp, rng, self.augment)
                         for i in idxs])

    def _warmup(self, it, nw, epoch):
        """Linear warm-up: biases from warmup_bias_lr down, other groups from 0 up, momentum 0.8 -> 0.937."""
        for j, g in enumerate(self.optimizer.param_groups):
            start = self.hyp["warmup_bias_lr"] if j == 2 else 0.0
            g["lr"] = float(np.interp(it, [0, nw], [start, g["initial_lr"] * self.lf(epoch)]))
            g["momentum"] = float(np.interp(it, [0, nw], [self.hyp["warmup_momentum"], self.hyp["momentum"]]))

    def train_epoch(self, epoch):
        import torch

        from ..progress import progress_bar

        self.epoch = epoch
        self.model.train()
        rng = np.random.default_rng([self.seed, epoch])
        batches = self._batches(rng)
        nb = len(batches)
        nw = round(self.hyp["warmup_epochs"] * nb)
        for g in self.optimizer.param_groups:
            g["lr"] = g["initial_lr"] * self.lf(epoch)
        sums, count = {}, 0
        seeds = rng.integers(0, 2**31, nb)
        bar = progress_bar(total=nb, desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.progress)
        self.optimizer.zero_grad()
        with ThreadPoolExecutor(1) as pool:  # the next batch is augmented while this one trains
            pending = pool.submit(self._load_batch, batches[0], seeds[0])
            for k in range(nb):
                x, t = pending.result()
                if k + 1 < nb:
                    pending = pool.submit(self._load_batch, batches[k + 1], seeds[k + 1])
                it = k + nb * epoch
                if it < nw:
                    self._warmup(it, nw, epoch)
                imgs, targets = torch.from_numpy(x), torch.from_numpy(t)
                preds = self.model(imgs)
                loss, items = self.loss(preds, targets)
                for hook in self.loss_hooks:
                    extra, named = hook(self.model, imgs, targets, preds)
                    loss = loss + extra
                    items.update(named)
                if not torch.isfinite(loss):
                    raise SDKError(f"training: the loss became {loss.item()} at epoch {epoch + 1}, expected a "
                                   f"finite loss (lower --lr)")
                loss.backward()
                if (k + 1) % self.accumulate == 0 or k + 1 == nb:
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                    if self.ema is not None:
                        self.ema.update(self.model)
                    for cb in self.step_callbacks:
                        cb(self, self.step)
                    self.step += 1
                items["loss"] = loss.item() / len(x)
                for key, v in items.items():
                    sums[key] = sums.get(key, 0.0) + float(v)
                count += 1
                bar.update(1)
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix({key: f"{v / count:.4f}" for key, v in sums.items()}, refresh=False)
        bar.close()
        return {key: v / max(count, 1) for key, v in sums.items()}

    @property
    def eval_model(self):
        return self.ema.ema if self.ema is not None else self.model

    def fit(self):
        """Train for the remaining epochs; returns the results (best and final mAP, history, paths)."""
        from .validate import validate

        from .results import plot_results, warn_if_never_warm, write_results_csv

        t0 = time.time()
        nb = math.ceil(len(self.train_data) / self.batch_size)
        warn_if_never_warm(round(self.hyp["warmup_epochs"] * nb), nb * self.epochs)
        for epoch in range(self.start_epoch, self.epochs):
            losses = self.train_epoch(epoch)
            row = {"epoch": epoch + 1, **{f"train_{k}": round(v, 5) for k, v in losses.items()},
                   "lr": self.optimizer.param_groups[0]["lr"]}
            if self.val_data is not None:
                metrics = validate(self.eval_model, self.val_data, self.imgsz)
                row.update({k: round(v, 5) for k, v in metrics.items()})
            self.history.append(row)
            if self.val_data is not None and row["fitness"] > self.best_fitness:
                self.best_fitness, self.best_epoch = row["fitness"], epoch + 1
                self._save("best.pt", epoch, resumable=False)
            self._save("last.pt", epoch, resumable=True)
            if self.save:
                write_results_csv(self.history, self.out_dir / "results.csv")
            if self.progress:
                print(f"epoch {epoch + 1}/{self.epochs}: " + ", ".join(
                    f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float)), flush=True)
        if self.val_data is None:
            self._save("best.pt", self.epochs - 1, resumable=False)
        out = {"epochs": self.epochs, "images": len(self.train_data), "imgsz": self.imgsz,
               "batch_size": self.batch_size, "steps": self.step, "seconds": round(time.time() - t0, 1),
               "best_epoch": self.best_epoch, "best_fitness": self.best_fitness, "history": self.history}
        if self.history and "map50" in self.history[-1]:
            best = max(self.history, key=lambda r: r["fitness"])
            out.update(best_map50=best["map50"], best_map50_95=best["map50_95"],
                       final_map50=self.history[-1]["map50"], final_map50_95=self.history[-1]["map50_95"])
        if self.save:
            out.update(best=str(self.out_dir / "best.pt"), last=str(self.out_dir / "last.pt"),
                       results_csv=str(self.out_dir / "results.csv"))
            if self.history:
                png = plot_results(self.history, self.out_dir / "results.png")
                out["results_png"] = str(png) if png else None
        return out

    def best_model(self):
        """The best weights of this run (the EMA model when no val data or nothing saved)."""
        if self.save and (self.out_dir / "best.pt").is_file():
            from ..models.checkpoint import load_checkpoint

            return load_checkpoint(self.out_dir / "best.pt")[0]
        return self.eval_model

    def _save(self, name, epoch, resumable):
        if not self.save:
            return
        from ..models.checkpoint import save_checkpoint

        self.out_dir.mkdir(parents=True, exist_ok=True)
        extra = {"epoch": epoch, "best_fitness": self.best_fitness, "best_epoch": self.best_epoch,
                 "history": self.history, "imgsz": self.imgsz}
        if resumable:
            extra.update(resume_format=RESUME_FORMAT, optimizer=self.optimizer.state_dict(), step=self.step)
            if self.ema is not None:
                extra.update(ema_state=self.ema.ema.state_dict(), ema_updates=self.ema.updates)
            save_checkpoint(self.model, self.out_dir / name, **extra)
        else:
            save_checkpoint(self.eval_model, self.out_dir / name, **extra)

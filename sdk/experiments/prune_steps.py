"""The steps behind the pruning table scripts (scripts/bench_distill.py, scripts/bench_gradual.py).

Every step is a library call (`sdk.prune.api.prune_checkpoint` / `prune_gradually`, `sdk.train.api.fine_tune` /
`distill`) run in this process with its output in a log file beside the checkpoints (watch it: the epochs appear
as they end), and keeps the call's result in `<work>/<step>/step.json`, so an interrupted table resumes where it
stopped and the two scripts share the steps they have in common (the one-shot fine-tune is the baseline of both
tables). Checkpoints are scored as deployed: exported to ONNX and evaluated on onnxruntime
(`sdk.experiments.prune_sweep.export_and_score`).
"""
import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_text_atomic


def run_logged(fn, log_path, what):
    """Run `fn()` with its stdout and stderr in `log_path`; an SDKError comes back as one line naming the log."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            return fn()
        except SDKError as e:
            print(f"error: {e}", file=log)
            raise SDKError(f"{what}: {e} (see {log_path})") from None


@dataclass
class Recipe:
    """What every row shares: data, input size, the fine-tune budget and recipe (as the prune sweep's)."""
    weights: str
    data: str
    work: Path
    epochs: int = 20
    level: float = 0.5
    imgsz: int = 416
    batch_size: int = 8
    threads: int = 1
    max_images: int = None
    max_val_images: int = None
    stats_images: int = 64
    hyp: tuple = ("mosaic=0",)
    log: callable = print
    cached_only: bool = False  # only read steps done before (re-render a table without training)
    round_to: int = 0  # keep a multiple of this many channels per layer (`prune --round`); 0: exact
    activation: str = None  # fine-tune with this activation (`train --activation`, e.g. ReLU); None: the cfg's

    def tag(self, criterion):
        return f"{criterion}{int(round(self.level * 100))}" + (f"r{self.round_to}" if self.round_to else "")

    def finetune_recipe(self):
        """The fine-tune budget every row shares (1 warm-up epoch, the recipe's hyp overrides)."""
        from ..train.recipe import FinetuneRecipe, parse_hyp

        return FinetuneRecipe(epochs=self.epochs, batch_size=self.batch_size, imgsz=self.imgsz, warmup_epochs=1,
                              hyp=parse_hyp(self.hyp), threads=self.threads, max_images=self.max_images,
                              max_val_images=self.max_val_images, activation=self.activation)

    def _threads(self):
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)

    def step(self, name, fn):
        """Run `fn() -> dict` once; later calls (this or another script) read the kept result."""
        path = Path(self.work) / name / "step.json"
        if path.is_file():
            self.log(f"{name}: done before, reading {path}")
            return json.loads(path.read_text())
        if self.cached_only:
            raise LookupError(name)
        self.log(f"{name}: running")
        t0 = time.time()
        out = fn()
        out["wall_s"] = round(time.time() - t0, 1)
        write_text_atomic(path, json.dumps(out, indent=1), "work dir")
        self.log(f"{name}: done in {out['wall_s'] / 60:.1f} min")
        return out

    def val(self):
        from ..data.datasets import load_dataset
        from ..models.checkpoint import load_checkpoint
        from ..train.trainer import as_dataset

        names = list(load_checkpoint(self.weights)[0].names)
        return as_dataset(load_dataset(self.data, names=names, split="val"), "val", names, "val_data",
                          self.max_val_images)

    def score(self, checkpoint, onnx_name):
        """Params, GFLOPs and mAP of a checkpoint through its exported ONNX on onnxruntime."""
        from ..models.checkpoint import load_checkpoint
        from ..prune.measure import count_gflops, count_params
        from .prune_sweep import export_and_score

        model = load_checkpoint(checkpoint)[0]
        out = export_and_score(model, self.val(), Path(self.work) / "onnx" / f"{onnx_name}.onnx", self.imgsz)
        out.update(params=count_params(model), gflops=round(count_gflops(model, self.imgsz), 4))
        return out

    # ------------------------------------------------------------------ the steps
    def unpruned(self):
        return self.step("unpruned", lambda: self.score(self.weights, "unpruned"))

    def oneshot(self, criterion):
        """One-shot pruning to `level` (with BatchNorm re-estimation), scored before any fine-tune."""
        tag = self.tag(criterion)
        out = Path(self.work) / tag / f"{tag}.pt"

        def fn():
            from ..prune.api import prune_checkpoint

            self._threads()
            rep = run_logged(lambda: prune_checkpoint(self.weights, out, criterion, self.level, data=self.data,
                                                      round_to=self.round_to, stats_images=self.stats_images,
                                                      imgsz=self.imgsz).report,
                             out.parent / "prune.log", f"prune {tag}")
            rep.pop("layers", None)
            return {"checkpoint": str(out), "prune": rep, "before_finetune": self.score(out, tag)}

        return self.step(tag, fn)

    def finetune(self, criterion, teacher=None, kd_weight=1.0):
        """The one-shot model fine-tuned `epochs` epochs: `train`, or `distill` from `teacher` (gain kd_weight)."""
        student = self.oneshot(criterion)["checkpoint"]
        name = self.finetune_name(criterion, teacher, kd_weight)
        out_dir = Path(self.work) / name

        def fn():
            from ..train.api import DistillConfig, distill, fine_tune

            self._threads()
            if teacher:
                job = lambda: distill(student, teacher, self.data, self.finetune_recipe(), out_dir,  # noqa: E731
                                      kd=DistillConfig(weight=kd_weight))
            else:
                job = lambda: fine_tune(student, self.data, self.finetune_recipe(), out_dir)  # noqa: E731
            res = run_logged(job, out_dir / "run.log", name).to_dict()
            return {"finetune": res, "score": self.score(out_dir / "best.pt", name)}

        return self.step(name, fn)

    def finetune_name(self, criterion, teacher=None, kd_weight=1.0):
        name = f"{self.tag(criterion)}-{'kd' if teacher else 'ft'}{self.epochs}"
        name += f"-{self.activation.lower()}" if self.activation else ""
        return name + (f"-w{kd_weight:g}" if teacher and kd_weight != 1.0 else "")

    def gradual(self, criterion, updates=10, end=0.6, event_images=32):
        """`prune --gradual`: the cubic schedule to `level` over the same fine-tune budget. At each event the
        criterion's statistics and BatchNorm are re-estimated on `event_images` training images (not the one-shot
        64: ten events of it would cost more than an epoch on a busy 2-core machine)."""
        name = f"{self.tag(criterion)}-grad{self.epochs}"
        out_dir = Path(self.work) / name

        def fn():
            from ..prune.api import prune_gradually

            self._threads()
            rep = run_logged(lambda: prune_gradually(self.weights, self.data, out_dir, self.finetune_recipe(),
                                                     out_dir / f"{name}.pt", criterion, self.level, updates=updates,
                                                     end=end, stats_images=event_images,
                                                     recal_images=event_images).report,
                             out_dir / "run.log", name)
            rep.pop("layers", None)
            return {"gradual": rep, "score": self.score(out_dir / f"{name}.pt", name)}

        return self.step(name, fn)


def curve(history, key="map50"):
    """Per-epoch values as one short string for the docs."""
    return ", ".join(f"{r[key]:.2f}" for r in history if key in r)


def machine():
    """Where the numbers come from: CPU, onnxruntime and torch versions, and the load when the table is written
    (not during earlier runs it reads back)."""
    import os

    from ..report import describe_machine

    load = os.getloadavg()
    return (f"{describe_machine()} (CPU builds); load average when this file was written {load[0]:.1f} / "
            f"{load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")

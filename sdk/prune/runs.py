"""The steps behind the pruning table scripts (scripts/bench_distill.py, scripts/bench_gradual.py).

Every step runs an SDK command the way a user would (`python -m sdk prune|train|distill ...`, one subprocess
each, its output in a log file beside the checkpoints) and keeps the command's JSON in `<work>/<step>/step.json`,
so an interrupted table resumes where it stopped and the two scripts share the steps they have in common (the
one-shot fine-tune is the baseline of both tables). Checkpoints are scored as deployed: exported to ONNX and
evaluated on onnxruntime (`sdk.prune.sweep.export_and_score`).
"""
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_text_atomic


def run_sdk(args, log_path):
    """`python -m sdk ARGS` with stdout and stderr in `log_path` (watch it: the epochs appear as they end);
    returns the command's last-line JSON."""
    cmd = [sys.executable, "-m", "sdk", *map(str, args)]
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        log.write("$ python " + " ".join(cmd[1:]) + "\n")
        log.flush()
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                              "PYTHONUNBUFFERED": "1"}).returncode
    lines = log_path.read_text().strip().splitlines()
    if code != 0 or not lines or not lines[-1].startswith("{"):
        raise SDKError(f"python -m sdk {args[0]}: exit status {code}, expected 0 and a JSON result (see {log_path})")
    return json.loads(lines[-1])


def add_recipe_args(p, weights_help=None):
    """The command-line face of `Recipe`, shared by the table scripts (scripts/bench_distill.py, bench_gradual.py)."""
    p.add_argument("--weights", default="../shared/models/yolov7-tiny-pennfudan.pt", help=weights_help)
    p.add_argument("--data", default="../shared/data/pennfudan")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--level", type=float, default=0.5)
    p.add_argument("--criteria", default="fmc,l1")
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-images", type=int, default=None, help="smoke runs: first N training images")
    p.add_argument("--max-val-images", type=int, default=None)
    p.add_argument("--stats-images", type=int, default=64)
    p.add_argument("--work", default="/tmp/edge-prune-bench", help="steps are kept here; reruns resume")


def recipe_from_args(args, **kw):
    import torch

    torch.set_num_threads(args.threads)
    return Recipe(args.weights, args.data, Path(args.work), args.epochs, args.level, args.imgsz, threads=args.threads,
                  max_images=args.max_images, max_val_images=args.max_val_images, stats_images=args.stats_images,
                  log=lambda m: print(m, flush=True), **kw)


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

    def tag(self, criterion):
        return f"{criterion}{int(round(self.level * 100))}"

    def finetune_args(self):
        args = ["--data", self.data, "--epochs", self.epochs, "--batch-size", self.batch_size, "--imgsz", self.imgsz,
                "--warmup-epochs", 1, "--threads", self.threads, "--hyp", *self.hyp]
        if self.max_images:
            args += ["--max-images", self.max_images]
        if self.max_val_images:
            args += ["--max-val-images", self.max_val_images]
        return args

    def prune_args(self, criterion):
        args = ["--weights", self.weights, "--criterion", criterion, "--level", self.level, "--data", self.data,
                "--imgsz", self.imgsz, "--stats-images", self.stats_images, "--threads", self.threads]
        return args

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
        from .measure import count_gflops, count_params
        from .sweep import export_and_score

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
            rep = run_sdk(["prune", *self.prune_args(criterion), "-o", out], out.parent / "prune.log")
            rep.pop("layers", None)
            return {"checkpoint": str(out), "prune": rep, "before_finetune": self.score(out, tag)}

        return self.step(tag, fn)

    def finetune(self, criterion, teacher=None, kd_weight=1.0):
        """The one-shot model fine-tuned `epochs` epochs: `train`, or `distill` from `teacher` (gain kd_weight)."""
        student = self.oneshot(criterion)["checkpoint"]
        name = self.finetune_name(criterion, teacher, kd_weight)
        out_dir = Path(self.work) / name

        def fn():
            cmd = ["distill", "--teacher", teacher, "--kd-weight", kd_weight] if teacher else ["train"]
            res = run_sdk([*cmd, "--weights", student, *self.finetune_args(), "--out-dir", out_dir],
                          out_dir / "run.log")
            return {"finetune": res, "score": self.score(out_dir / "best.pt", name)}

        return self.step(name, fn)

    def finetune_name(self, criterion, teacher=None, kd_weight=1.0):
        name = f"{self.tag(criterion)}-{'kd' if teacher else 'ft'}{self.epochs}"
        return name + (f"-w{kd_weight:g}" if teacher and kd_weight != 1.0 else "")

    def gradual(self, criterion, updates=10, end=0.6, event_images=32):
        """`prune --gradual`: the cubic schedule to `level` over the same fine-tune budget. At each event the
        criterion's statistics and BatchNorm are re-estimated on `event_images` training images (not the one-shot
        64: ten events of it would cost more than an epoch on a busy 2-core machine)."""
        name = f"{self.tag(criterion)}-grad{self.epochs}"
        out_dir = Path(self.work) / name

        def fn():
            rep = run_sdk(["prune", "--gradual", *self.prune_args(criterion), *self.finetune_args(),
                           "--stats-images", event_images, "--recal-images", event_images,
                           "--prune-updates", updates, "--prune-end", end, "--out-dir", out_dir,
                           "-o", out_dir / f"{name}.pt"], out_dir / "run.log")
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

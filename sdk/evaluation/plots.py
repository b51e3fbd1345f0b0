"""Evaluation plots a person reads: precision-recall per class, F1 / precision / recall against confidence, and
the confusion matrix, as PNGs (matplotlib, imported only here: it is not a runtime dependency)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..deps import require
from ..fileio import atomic_path
from .metrics import confusion_matrix, official_curves


def _pyplot():
    require("matplotlib", "evaluation plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path, "plots_dir", suffix=".part.png") as tmp:
        fig.savefig(tmp, dpi=120)
    return path


def _gts(dataset):
    return [{"boxes": s.boxes, "classes": s.classes, "crowd": s.crowd} for s in dataset.samples]


def save_eval_plots(dataset, preds, out_dir, conf: float = 0.25, iou: float = 0.45) -> list[Path]:
    """Write pr_curve.png, f1_curve.png, p_curve.png, r_curve.png and confusion_matrix.png into `out_dir`."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    names = list(dataset.names)
    gts = _gts(dataset)
    c = official_curves(gts, preds)
    written = []
    label = [f"{names[k] if k < len(names) else k}" for k in c["classes"]]

    fig, ax = plt.subplots(figsize=(6, 5), tight_layout=True)
    for (rec, prec), ap, name in zip(c["pr"], c["ap"][:, 0] if len(c["ap"]) else [], label):
        ax.plot(np.r_[0, rec], np.r_[1, np.maximum.accumulate(prec[::-1])[::-1]] if len(prec) else [1],
                label=f"{name} AP@.5 {ap:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01),
           title=f"precision-recall at IoU 0.5 (official metric, mAP@.5 {c['ap'][:, 0].mean() if len(c['ap']) else 0:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    written.append(_save(fig, out_dir / "pr_curve.png"))
    plt.close(fig)

    px = c["px"]
    p, r = c["precision"], c["recall"]
    f1 = 2 * p * r / (p + r + 1e-16)
    for key, y, ylabel in (("f1", f1, "F1"), ("p", p, "precision"), ("r", r, "recall")):
        fig, ax = plt.subplots(figsize=(6, 5), tight_layout=True)
        for row, name in zip(y, label):
            ax.plot(px, row, alpha=0.6 if len(label) > 1 else 1, label=name)
        if len(y):
            mean = y.mean(0)
            i = int(mean.argmax()) if key == "f1" else None
            ax.plot(px, mean, lw=2.5, color="k",
                    label=f"all classes {mean[i]:.2f} at conf {px[i]:.3f}" if i is not None else "all classes")
        ax.set(xlabel="confidence", ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.01), title=f"{ylabel} vs confidence")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
        written.append(_save(fig, out_dir / f"{key}_curve.png"))
        plt.close(fig)

    m = confusion_matrix(gts, preds, len(names), conf, iou)
    ticks = names + ["background"]
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(ticks) + 3),) * 2, tight_layout=True)
    col = m / np.maximum(m.sum(0, keepdims=True), 1)  # each true class's column sums to 1, as official
    im = ax.imshow(col, cmap="Blues", vmin=0, vmax=1)
    if len(ticks) <= 30:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v}\n{col[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if col[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(ticks)), ticks, rotation=45, ha="right")
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set(xlabel="true", ylabel="predicted", title=f"confusion matrix (conf {conf}, IoU {iou})")
    fig.colorbar(im, ax=ax, fraction=0.046)
    written.append(_save(fig, out_dir / "confusion_matrix.png"))
    plt.close(fig)
    return written

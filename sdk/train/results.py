"""A training run's record a person can read: results.csv per epoch (losses, lr, mAP) and a curves PNG."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from ..fileio import atomic_path, write_text_atomic


def write_results_csv(history: list[dict], path: str | Path) -> Path:
    """One row per epoch, the union of the keys in order of first appearance (atomic)."""
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    write_text_atomic(path, buf.getvalue(), "results.csv")
    return Path(path)


def plot_results(history: list[dict], path: str | Path) -> Path | None:
    """Loss, lr and mAP curves against epoch (None when matplotlib is not installed: the CSV has the numbers)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    epochs = [r["epoch"] for r in history]
    panels = [[k for k in history[-1] if k.startswith("train_")], ["lr"],
              [k for k in ("map50", "map50_95") if k in history[-1]]]
    panels = [p for p in panels if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), tight_layout=True)
    for ax, keys in zip(axes if len(panels) > 1 else [axes], panels):
        for k in keys:
            ax.plot(epochs, [r.get(k) for r in history], marker="o", ms=3, label=k)
        ax.set(xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    with atomic_path(path, "results.png", suffix=".part.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def warn_if_never_warm(warmup_iterations: int, total_iterations: int, lr_flag: str = "warmup_epochs") -> bool:
    """Say so when the whole run is inside the linear warm-up: the learning rate never reaches its target (a
    1-epoch fine-tune with the official 3 warm-up epochs trains at a fraction of lr0)."""
    if total_iterations and warmup_iterations >= total_iterations:
        print(f"warning: the run never leaves warm-up ({warmup_iterations} warm-up iterations >= "
              f"{total_iterations} in all), so the learning rate stays below its target; lower {lr_flag}",
              file=sys.stderr)
        return True
    return False

"""How results are shown and kept, in one place: the console table, the final JSON line, markdown tables,
plots, the JSON/markdown/PNG trio an analysis writes, and the description of the machine a number was taken on.

Every command, analysis, sweep and benchmark script reports through these, so a table reads the same everywhere
and every number carries its machine (CPU model and the SIMD flags that decide the INT8 kernels, cores,
onnxruntime and torch versions).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .fileio import atomic_path, ensure_parent, write_text_atomic

# The flags that decide onnxruntime's int8 kernels (VNNI or not) and its FP32 peak (AVX-512 or AVX2).
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp")


# ---------------------------------------------------------------- console
def table_lines(rows: Iterable[Sequence], headers: Sequence[str], align: bool = True) -> list[str]:
    """A markdown table as lines; `align` pads the columns (the console form), else the compact file form."""
    rows = [[str(v) for v in r] for r in rows]
    headers = [str(h) for h in headers]
    if not align:
        return ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"] + \
            ["| " + " | ".join(r) + " |" for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in rows]
    return out


def print_table(rows: Iterable[Sequence], headers: Sequence[str]) -> None:
    """A plain markdown table on stdout."""
    print("\n".join(table_lines(rows, headers)))


def markdown_table(rows: Iterable[Sequence], headers: Sequence[str], title: str | None = None,
                   note: str | None = None) -> str:
    """A markdown table for a file: optional '# title', an optional note paragraph, the table."""
    lines = ([f"# {title}", ""] if title else []) + ([note, ""] if note else [])
    return "\n".join(lines + table_lines(rows, headers, align=False)) + "\n"


def to_json(obj, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, default=_json_default)


def print_json_last(obj) -> None:
    """Commands end with one JSON object on its own line, for scripts."""
    sys.stdout.flush()
    print(to_json(obj))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


# ---------------------------------------------------------------- files
def map_noise_pt(map50: float, n_boxes: int) -> float:
    """One standard error of an mAP@.5 measured on `n_boxes` targets, in points: the binomial error of a
    detection rate sqrt(p (1 - p) / n). On a small val split (70 boxes) this is ~4-5 pt, so differences well
    inside it are noise, whatever the plot's axis makes them look like."""
    import math

    p = min(max(float(map50), 0.0), 1.0)
    return 100 * math.sqrt(p * (1 - p) / max(int(n_boxes), 1))


def plot_png(path: str | Path, draw: Callable, title: str | None = None, size=(9, 4.5)) -> str:
    """Draw `draw(ax)` on one matplotlib axis and write the PNG atomically (Agg, no display needed)."""
    from .deps import require

    matplotlib = require("matplotlib", "the plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        draw(ax)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        with atomic_path(Path(path), "plot", suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return str(path)


def write_outputs(out_dir: str | Path, name: str, title: str, headers: Sequence[str], rows: Iterable[Sequence],
                  payload: dict, plot: Callable | None = None, note: str | None = None) -> dict:
    """<name>.md (table), <name>.json (payload) and <name>.png (plot(ax)) in out_dir, each written atomically.
    The PNG is drawn first so a plotting failure leaves nothing behind."""
    out = Path(out_dir)
    ensure_parent(out / "x", "out_dir")
    files = {}
    if plot is not None:
        files["png"] = plot_png(out / f"{name}.png", plot, title)
    write_text_atomic(out / f"{name}.md", markdown_table(rows, headers, title, note), "markdown table")
    write_text_atomic(out / f"{name}.json", to_json(payload, indent=1), "JSON table")
    return {"markdown": str(out / f"{name}.md"), "json": str(out / f"{name}.json"), **files}


# ---------------------------------------------------------------- the machine
def cpu_model() -> str:
    from .quant.cpu import read_cpu  # the one /proc/cpuinfo reader (also picks the INT8 form)

    return read_cpu().name


def cpu_flags() -> list[str]:
    """The SIMD flags of this CPU that matter for inference speed (Linux /proc/cpuinfo; [] elsewhere)."""
    from .quant.cpu import read_cpu

    return sorted(read_cpu().flags & set(SIMD_FLAGS))


def _version(dist: str, module: str) -> str | None:
    if importlib.util.find_spec(module) is None:  # never import torch just to print its version
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def machine() -> dict:
    """Where a number was taken: CPU model, SIMD flags, cores, OS/arch, Python and runtime versions."""
    from .quant.cpu import choose_form, read_cpu

    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "int8_kernel": choose_form(read_cpu()).kernel,
            "cores": os.cpu_count(),
            "arch": platform.machine(), "system": platform.system(), "python": platform.python_version(),
            "onnxruntime": _version("onnxruntime", "onnxruntime"), "torch": _version("torch", "torch")}


def describe_machine(m: dict | None = None, threads: int | None = None) -> str:
    """One line for a table's caption: 'Intel Xeon ... (avx2 avx512_vnni), 2 cores, x86_64, int8 kernel: ...,
    onnxruntime 1.x' (with `threads`, the intra-op threads the numbers used)."""
    m = m or machine()
    flags = f" ({' '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
    thr = f" ({threads} intra-op threads)" if threads else ""
    kernel = f", int8 kernel: {m['int8_kernel']}" if m.get("int8_kernel") else ""
    versions = ", ".join(f"{k} {m[k]}" for k in ("onnxruntime", "torch") if m.get(k))
    return f"{m['cpu']}{flags}, {m['cores']} cores{thr}, {m['arch']}{kernel}" + (f", {versions}" if versions else "")

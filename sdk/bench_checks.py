"""Sanity checks on a latency measurement, said as warnings rather than silently printed as fact."""
from __future__ import annotations

MIN_RUNS = 30  # fewer timed runs than this make p95 a guess
MIN_TOTAL_S = 2.0  # a measurement shorter than this is dominated by warm-up effects and scheduler noise


def timing_warnings(model: dict, end_to_end: dict, runs: int) -> list[str]:
    """`model` / `end_to_end`: {'p50_ms', 'mean_ms', ...} of one bench run."""
    out = []
    if end_to_end["p50_ms"] < model["p50_ms"]:
        out.append(f"end-to-end p50 ({end_to_end['p50_ms']:.2f} ms) reads faster than model-only "
                   f"({model['p50_ms']:.2f} ms), which cannot be: the machine's load changed during the run; "
                   f"re-run with more --runs on a quiet machine")
    total_s = runs * (model["mean_ms"] + end_to_end["mean_ms"]) / 1e3
    if runs < MIN_RUNS or total_s < MIN_TOTAL_S:
        out.append(f"the run is too short to trust ({runs} runs, {total_s:.1f} s timed): use --runs "
                   f"{max(MIN_RUNS, int(runs * MIN_TOTAL_S / max(total_s, 1e-3)) + 1)} or more")
    return out

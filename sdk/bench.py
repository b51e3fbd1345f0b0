"""Latency measurement: warm-up, then N timed runs of the model alone and of pre + infer + post."""
import time

import numpy as np

from .postprocess import postprocess
from .runners.onnxruntime import IN_RUN, spin_mode


# benchmarks' onnxruntime sessions spin in a run, never after it (sdk.runners.onnxruntime.session_options): timed
# interleaved, a model reads what it reads alone (docs/int8.md, "Method"), and as fast as the camera pipeline runs it
BENCH_SPIN = IN_RUN


def percentiles(ms):
    ms = np.asarray(ms, np.float64)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "fps": float(1000.0 / ms.mean()), "min_ms": float(ms.min())}


def random_input(spec, fallback=None) -> np.ndarray:
    """A seeded random array for an input `spec` (`.shape`, `.dtype`): dynamic dimensions from `fallback` (a
    shape of the same rank), else 1; floats in [0, 1), integers (a byte-input model's pixels) in [0, 255)."""
    fallback = fallback or [1] * len(spec.shape)
    shape = [d if isinstance(d, int) and d > 0 else v for d, v in zip(spec.shape, fallback)]
    rng = np.random.default_rng(0)
    if np.issubdtype(np.dtype(spec.dtype), np.floating):
        return rng.random(shape, dtype=np.float32).astype(spec.dtype)
    return rng.integers(0, 255, shape).astype(spec.dtype)


def time_model(runner, x, runs=50, warmup=5):
    """Model-only latency on a fixed input (ms per call)."""
    feed = {runner.input.name: x}
    for _ in range(warmup):
        runner.infer(feed)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        runner.infer(feed)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def time_end_to_end(detector, frames, runs=50, warmup=5):
    """Pre-process + infer + NMS per frame, cycling over `frames` (ms per frame)."""
    for i in range(warmup):
        detector(frames[i % len(frames)])
    out = []
    for i in range(runs):
        t = time.perf_counter()
        detector(frames[i % len(frames)])
        out.append((time.perf_counter() - t) * 1e3)
    return out


def bench_detector(detector, frames, runs=50, warmup=5):
    x = detector.resolved.feed(detector.pre(frames[0])[0])  # what the runner takes (an NHWC model's layout)
    model_ms = time_model(detector.runner, x, runs, warmup)
    e2e_ms = time_end_to_end(detector, frames, runs, warmup)
    return {"model": percentiles(model_ms), "end_to_end": percentiles(e2e_ms), "runs": runs, "warmup": warmup}


def benchmark_runner(path, threads=None, **kw):
    """An onnxruntime session for a benchmark timed interleaved with others: its pool threads spin only while a
    run lasts (BENCH_SPIN), so an idle session never takes the cores of the one being timed."""
    from .runners.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner(path, threads=threads, spin=BENCH_SPIN, **kw).load()


def interleaved_model_bench(runners_and_inputs, runs=30, warmup=3, rounds=5):
    """Time several models side by side in one run: rounds of each, interleaved, so machine noise hits all alike.

    `runners_and_inputs` maps a label to (runner, input array). Returns {label: percentiles}. onnxruntime
    sessions must not spin once a run has returned (`benchmark_runner`: spin="run", or spin=False): a session left
    spinning steals the cores of the one being timed, so this refuses them rather than report distorted ratios.
    """
    spinning = [k for k, (r, _) in runners_and_inputs.items()
                if getattr(r, "backend", None) == "onnxruntime" and spin_mode(getattr(r, "spin", False)) == "on"]
    if spinning and len(runners_and_inputs) > 1:
        raise ValueError(f"interleaved timing of {', '.join(spinning)}: onnxruntime sessions whose idle threads "
                         f"spin; open them with spin={BENCH_SPIN!r} (sdk.bench.benchmark_runner) or spin=False")
    times = {k: [] for k in runners_and_inputs}
    for label, (runner, x) in runners_and_inputs.items():
        time_model(runner, x, runs=warmup, warmup=0)
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for label, (runner, x) in runners_and_inputs.items():
            times[label] += time_model(runner, x, runs=per_round, warmup=0)
    return {k: percentiles(v) for k, v in times.items()}


__all__ = ["BENCH_SPIN", "bench_detector", "benchmark_runner", "interleaved_model_bench", "percentiles", "time_model",
           "time_end_to_end", "postprocess"]

"""Whether an INT8 model is faster than its FP32 source HERE: measured, never assumed.

Both models are timed in one process, one call each in turn, on sessions whose threads spin in runs only
(`sdk.bench.benchmark_runner`): an idle pool left spinning would take the cores from the session being timed
(2-3x high times, distorted ratios; issue 19). The camera pipeline runs its session the same way.
"""

from .cpu import read_cpu


def time_side_by_side(paths, threads=2, runs=40):
    """{label: percentiles} of the ONNX models in `paths` ({label: path}), one call of each in turn."""
    from ..bench import benchmark_runner, interleaved_model_bench, random_input

    runners = {k: benchmark_runner(p, threads=threads) for k, p in paths.items()}
    try:
        feeds = {k: (r, random_input(r.input)) for k, r in runners.items()}
        return interleaved_model_bench(feeds, runs=runs, rounds=runs)
    finally:
        for r in runners.values():
            r.close()


def int8_verdict(int8_path, fp32_path, threads=2, runs=40):
    """Time `int8_path` against `fp32_path` here; returns the p50s, the ratio and a one-line verdict."""
    t = time_side_by_side({"int8": int8_path, "fp32": fp32_path}, threads, runs)
    p50 = {k: v["p50_ms"] for k, v in t.items()}
    ratio = p50["fp32"] / p50["int8"]
    cpu = read_cpu()
    where = f"{cpu.name} ({' '.join(cpu.simd) or 'flags unknown'})"
    if ratio >= 1.0:
        text = (f"INT8 is {ratio:.2f}x faster than FP32 on {where}: measured, {runs} interleaved runs, spinning in "
                f"runs only")
    else:
        text = (f"INT8 is SLOWER than FP32 on {where} ({ratio:.2f}x, {runs} interleaved runs): keep FP32 here, or "
                f"quantize with another form (--for-cpu, --activations, --reduce-range) and measure again")
    return {"int8_p50_ms": p50["int8"], "fp32_p50_ms": p50["fp32"], "speedup": ratio, "faster": ratio >= 1.0,
            "runs": runs, "verdict": text}

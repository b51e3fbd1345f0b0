"""Whether an INT8 model is faster than its FP32 source HERE: measured, never assumed.

The two sessions are timed in one process, one call each in turn, with onnxruntime's spinning disabled: an idle
session's spinning threads would otherwise take the cores from the one being timed (2-3x high times, distorted
ratios; issue 19). Production sessions keep spinning on; this is only how two models are compared.
"""
import time

import numpy as np

from .cpu import read_cpu


def timing_session(path, threads=2):
    """An onnxruntime CPU session for side-by-side timing: graph optimisations on, intra-op spinning off."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def interleaved_ms(sessions, runs=40, warmup=3):
    """{label: [ms per call]}: one call of each session in turn (order rotating), same random input per shape."""
    feeds = {}
    for label, s in sessions.items():
        inp = s.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        feeds[label] = {inp.name: np.random.default_rng(0).random(shape, dtype=np.float32)}
    for label, s in sessions.items():
        for _ in range(warmup):
            s.run(None, feeds[label])
    times = {k: [] for k in sessions}
    labels = list(sessions)
    for i in range(runs):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            t = time.perf_counter()
            sessions[label].run(None, feeds[label])
            times[label].append((time.perf_counter() - t) * 1e3)
    return times


def int8_verdict(int8_path, fp32_path, threads=2, runs=40):
    """Time `int8_path` against `fp32_path` here; returns the p50s, the ratio and a one-line verdict."""
    times = interleaved_ms({"int8": timing_session(int8_path, threads), "fp32": timing_session(fp32_path, threads)},
                           runs)
    p50 = {k: float(np.percentile(v, 50)) for k, v in times.items()}
    ratio = p50["fp32"] / p50["int8"]
    cpu = read_cpu()
    where = f"{cpu.name} ({' '.join(cpu.simd) or 'flags unknown'})"
    if ratio >= 1.0:
        text = f"INT8 is {ratio:.2f}x faster than FP32 on {where}: measured, {runs} interleaved runs, spinning off"
    else:
        text = (f"INT8 is SLOWER than FP32 on {where} ({ratio:.2f}x, {runs} interleaved runs): keep FP32 here, or "
                f"quantize with another form (--for-cpu, --activations, --reduce-range) and measure again")
    return {"int8_p50_ms": p50["int8"], "fp32_p50_ms": p50["fp32"], "speedup": ratio, "faster": ratio >= 1.0,
            "runs": runs, "verdict": text}

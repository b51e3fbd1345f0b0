"""Where an ONNX model's time goes on onnxruntime CPU: per-op-type and per-node kernel time from onnxruntime's
own profiler (SessionOptions.enable_profiling), on a session whose threads spin in runs only (sdk.bench.BENCH_SPIN).

The profile is of the graph onnxruntime actually runs (after its QDQ fusions and layout transformation), so the op
names are onnxruntime's kernels: QLinearConv, QLinearLeakyRelu, QLinearConcat, NhwcMaxPool, Transpose, ...
Profiling itself adds a fixed cost per node (a timestamp pair and an event), so compare shares and per-op ms within
one profile; the wall-clock speed of a model comes from the interleaved benchmarks (sdk.quant.speed).
"""
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def op_profile(path, threads=2, runs=20, warmup=3):
    """Profile `runs` calls of the ONNX model at `path` (random input, batch 1).

    Returns {"ops": {op: {"ms": per-call ms, "share": fraction, "nodes": count}}, "nodes": [(node name, op,
    per-call ms), ... slowest first], "kernel_ms": per-call kernel ms, "runs": runs}.
    """
    import onnxruntime as ort

    from ..bench import BENCH_SPIN
    from ..runners.onnxruntime import session_options

    with tempfile.TemporaryDirectory(prefix="sdk-profile-") as tmp:
        so = session_options(threads, spin=BENCH_SPIN)  # as the benchmarks time it: spinning in runs only
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "p")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        dtype = np.uint8 if "uint8" in inp.type else np.float32
        x = (np.random.default_rng(0).random(shape) * (255 if dtype == np.uint8 else 1)).astype(dtype)
        for _ in range(warmup):
            sess.run(None, {inp.name: x})
        # the warm-up calls are in the trace too: count only events after the last warm-up call ends
        for _ in range(runs):
            sess.run(None, {inp.name: x})
        trace = sess.end_profiling()
        with open(trace) as f:
            events = json.load(f)
        os.remove(trace)
    calls = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    start = calls[-runs]["ts"] if len(calls) >= runs else 0
    per_op, count, per_node = collections.Counter(), collections.Counter(), collections.Counter()
    node_op = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        op = e["args"]["op_name"]
        name = e["name"][:-len("_kernel_time")]
        per_op[op] += e["dur"]
        count[op] += 1
        per_node[name] += e["dur"]
        node_op[name] = op
    total = sum(per_op.values()) or 1
    ops = {op: {"ms": d / runs / 1e3, "share": d / total, "nodes": count[op] // runs}
           for op, d in per_op.most_common()}
    nodes = [(n, node_op[n], d / runs / 1e3) for n, d in per_node.most_common()]
    return {"ops": ops, "nodes": nodes, "kernel_ms": total / runs / 1e3, "runs": runs}


PROFILE_OPS = ("QLinearConv", "Conv", "FusedConv", "QLinearLeakyRelu", "QLinearConcat", "Concat")


def profile_row(prof, ops=PROFILE_OPS):
    """One table row of a profile: kernel ms per call, ms (share) of the named ops (FusedConv: an FP32 Conv +
    activation outside the NCHWc layout, e.g. with channel counts not a multiple of 16) and of everything else, and
    the number of kernels run per call (each pays onnxruntime's fixed per-kernel cost)."""
    named = {op: prof["ops"].get(op, {"ms": 0.0, "share": 0.0}) for op in ops}
    rest = prof["kernel_ms"] - sum(v["ms"] for v in named.values())
    kernels = sum(v["nodes"] for v in prof["ops"].values())
    return {"kernel_ms": round(prof["kernel_ms"], 3), "kernels": kernels,
            **{op: (round(v["ms"], 3), round(v["share"], 3)) for op, v in named.items()},
            "other": (round(rest, 3), round(rest / prof["kernel_ms"], 3) if prof["kernel_ms"] else 0.0)}

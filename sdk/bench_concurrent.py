"""N clients at once (`bench --concurrency N`): what a fleet of devices sees from one server.

Each client is a thread with its own Detector (pre- and post-processing on the client, as on a device) and, for
a `triton://` model, its own connection, so the server's dynamic batcher sees N independent request streams.
A local model's runner is shared by the clients (onnxruntime sessions are thread-safe). All clients warm up,
start together at a barrier, and each runs a fixed number of frames: throughput is frames / wall time, latency
is per frame.
"""
import threading
import time
from typing import Callable, List, Optional, Sequence

import numpy as np

from .bench import percentiles
from .errors import SDKError, bad_input

MAX_CONCURRENCY = 256


def bench_concurrent(make_detector: Callable[[int], object], frames: Sequence[np.ndarray], concurrency: int,
                     runs: int = 20, warmup: int = 2, timeout_s: Optional[float] = None) -> dict:
    """Run `concurrency` clients of `runs` frames each; `make_detector(i)` gives client i its Detector."""
    if not 1 <= int(concurrency) <= MAX_CONCURRENCY:
        raise bad_input("concurrency", concurrency, f"a client count in [1, {MAX_CONCURRENCY}]")
    if runs < 1 or warmup < 0:
        raise bad_input("runs/warmup", f"{runs}/{warmup}", "runs >= 1 and warmup >= 0")
    detectors = [make_detector(i) for i in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)
    e2e: List[List[float]] = [[] for _ in detectors]
    infer: List[List[float]] = [[] for _ in detectors]
    errors: List[BaseException] = []

    def client(i):
        det = detectors[i]
        try:
            for k in range(warmup):
                det(frames[k % len(frames)])
        except BaseException as e:  # reported after the barrier
            errors.append(e)
        try:
            barrier.wait(timeout=timeout_s)
        except threading.BrokenBarrierError:
            return
        if errors:
            return
        try:
            for k in range(runs):
                t = time.perf_counter()
                det(frames[(i + k) % len(frames)])
                e2e[i].append((time.perf_counter() - t) * 1e3)
                infer[i].append(det.last_timing.get("infer_ms", 0.0))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,), name=f"client-{i}", daemon=True)
               for i in range(concurrency)]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=timeout_s)
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout_s)
    wall = time.perf_counter() - t0
    if errors:
        e = errors[0]
        raise e if isinstance(e, SDKError) else SDKError(f"concurrency {concurrency}: a client failed "
                                                         f"({type(e).__name__}: {e}), expected every request to "
                                                         f"succeed")
    if any(t.is_alive() for t in threads):
        raise SDKError(f"concurrency {concurrency}: clients still running after {timeout_s} s, expected them done")
    all_e2e = [v for per in e2e for v in per]
    lat = percentiles(all_e2e)
    inf = percentiles([v for per in infer for v in per])
    return {"concurrency": concurrency, "requests": len(all_e2e), "wall_s": wall,
            "throughput_fps": len(all_e2e) / wall, "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"],
            "mean_ms": lat["mean_ms"], "infer_p50_ms": inf["p50_ms"], "infer_p95_ms": inf["p95_ms"]}

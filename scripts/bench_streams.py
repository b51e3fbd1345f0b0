#!/usr/bin/env python3
"""Several streams in one batched pipeline vs as many single-stream pipelines.

    python scripts/bench_streams.py --model runs/yolov7-tiny-dynamic.onnx \\
        --video ../shared/data/videos/one-by-one-person-detection.mp4 --frames 60

For N = 1, 2, 4: one Pipeline over N copies of the video (a dynamic-batch model runs them in one inference)
and N Pipelines of one stream each running at the same time in threads (each with its own model), both
processing `--frames` frames per stream; aggregate FPS (all frames / wall time) and per-stream latency p50/p95.
Sessions as the pipeline runs them (onnxruntime spinning off: sdk.video.pipeline.PIPELINE_SPIN; the real-time
resize). One run, rows interleaved; ratios only compare rows of the same run. The cost of tracking is measured
by scripts/bench_track.py (alternating rounds over the same frames). Prints a markdown table and the rows as the
last JSON line.
"""
import argparse
import json
import os
import threading
import time

from sdk.detector import Detector
from sdk.preprocess import REALTIME_RESIZE
from sdk.report import describe_machine
from sdk.video.pipeline import PIPELINE_SPIN, Pipeline
from sdk.video.sources import open_source


def detector(model, threads=None):
    """A detector opened as the camera pipeline opens it."""
    return Detector(model, backend="ort", spin=PIPELINE_SPIN, resize=REALTIME_RESIZE,
                    **({"threads": threads} if threads else {}))


def one_pipeline(model, video, n, frames):
    det = detector(model)
    sources = [open_source(f"{video}?start={240 + 100 * i}") for i in range(n)]
    t = time.perf_counter()
    stats = Pipeline(det, sources, handle_signals=False, max_frames=frames).run()
    wall = time.perf_counter() - t
    det.close()
    return stats, wall


def separate_pipelines(model, video, n, frames):
    out = [None] * n
    # models and sources opened before the clock starts, as for the batched pipeline
    dets = [detector(model, threads=max(1, 2 // n) if n <= 2 else 1) for _ in range(n)]
    sources = [open_source(f"{video}?start={240 + 100 * i}") for i in range(n)]

    def run(i):
        out[i] = Pipeline(dets[i], [sources[i]], handle_signals=False, max_frames=frames).run()
        dets[i].close()

    t = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return out, time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a dynamic-batch ONNX (python -m sdk export --dynamic-batch)")
    p.add_argument("--video", required=True)
    p.add_argument("--frames", type=int, default=60, help="frames per stream")
    args = p.parse_args()
    rows = []
    for n in (1, 2, 4):
        stats, wall = one_pipeline(args.model, args.video, n, args.frames)
        rows.append({"streams": n, "mode": "one batched pipeline", "aggregate_fps": round(stats["frames_processed"] / wall, 2),
                     "p50_ms": max(s["p50_ms"] for s in stats["streams"]),
                     "p95_ms": max(s["p95_ms"] for s in stats["streams"]), "mean_batch": stats["batch"]["mean_frames"]})
        per, wall = separate_pipelines(args.model, args.video, n, args.frames)
        done = sum(s["frames_processed"] for s in per)
        rows.append({"streams": n, "mode": f"{n} single-stream pipelines", "aggregate_fps": round(done / wall, 2),
                     "p50_ms": round(max(s["p50_ms"] for s in per), 2),
                     "p95_ms": round(max(s["p95_ms"] for s in per), 2), "mean_batch": 1.0})
    print("| streams | mode | aggregate FPS | latency p50 ms (worst stream) | p95 ms | frames per inference |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['streams']} | {r['mode']} | {r['aggregate_fps']} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['mean_batch']} |")
    machine, load = describe_machine(), os.getloadavg()
    print(f"machine: {machine}; load average {' / '.join(f'{v:.1f}' for v in load)}")
    print(json.dumps({"machine": machine, "load_avg": list(load), "frames_per_stream": args.frames, "rows": rows}))


if __name__ == "__main__":
    main()

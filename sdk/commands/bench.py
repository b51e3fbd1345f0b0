"""`python -m sdk bench`: model-only and end-to-end latency (p50/p95) and FPS."""
import sys

import numpy as np

from ..bench import bench_detector
from ..bench_concurrent import add_concurrency_args, run_concurrent
from ..bench_checks import timing_warnings
from ..data.images import list_images, read_image
from .common import add_model_args, detector_from_args, print_json_last, print_table


def add_arguments(p):
    add_model_args(p)
    p.add_argument("--source", default=None, help="images for the end-to-end timing (default: a synthetic 768x432 "
                                                  "frame, the size of the shared videos)")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    add_concurrency_args(p)


def run(args):
    det = detector_from_args(args)
    if args.source:
        frames = [read_image(p) for p in list_images(args.source)[:16]]
    else:
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 255, (432, 768, 3), dtype=np.uint8)]
    if args.concurrency is not None:
        return run_concurrent(args, det, frames)
    r = bench_detector(det, frames, runs=args.runs, warmup=args.warmup)
    rows = [[k, f"{v['p50_ms']:.2f}", f"{v['p95_ms']:.2f}", f"{v['mean_ms']:.2f}", f"{v['fps']:.1f}"]
            for k, v in (("model only", r["model"]), ("end-to-end", r["end_to_end"]))]
    print(f"{args.model} on {det.runner.describe()}, input {'x'.join(map(str, det.meta.imgsz))}, {args.runs} runs")
    print_table(rows, ["timing", "p50 ms", "p95 ms", "mean ms", "FPS"])
    warnings = timing_warnings(r["model"], r["end_to_end"], args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print_json_last({"model": args.model, "backend": det.runner.backend, "imgsz": list(det.meta.imgsz),
                     "model_p50_ms": r["model"]["p50_ms"], "model_p95_ms": r["model"]["p95_ms"],
                     "model_fps": r["model"]["fps"], "e2e_p50_ms": r["end_to_end"]["p50_ms"],
                     "e2e_p95_ms": r["end_to_end"]["p95_ms"], "e2e_fps": r["end_to_end"]["fps"],
                     "runs": args.runs, "warnings": warnings})
    return 0

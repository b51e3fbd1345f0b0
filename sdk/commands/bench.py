"""`python -m sdk bench`: model-only and end-to-end latency (p50/p95) and FPS."""
import sys

import numpy as np

from ..bench import bench_detector
from ..bench_checks import timing_warnings
from ..preprocess import REALTIME_RESIZE
from ..data.images import list_images, read_image
from .args import add_concurrency, add_model_args, add_runs
from .common import detector_from_args, print_json_last, print_table


def add_arguments(p):
    add_model_args(p)
    p.add_argument("--source", default=None, help="images for the end-to-end timing (default: a synthetic 768x432 "
                                                  "frame, the size of the shared videos)")
    p.add_argument("--against", default=None, metavar="FP32_ONNX",
                   help="an INT8 model's FP32 source: time both here (interleaved, spinning in runs only) and say "
                        "which is faster")
    add_runs(p, runs=100, warmup=10)
    add_concurrency(p)


def run(args):
    det = detector_from_args(args, resize=REALTIME_RESIZE)  # end-to-end as the camera pipeline pre-processes
    if args.source:
        frames = [read_image(p) for p in list_images(args.source, "--source")[:16]]
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
    extra = speed_report(args, det, r["model"]["p50_ms"])
    print_json_last({**extra, "model": args.model, "backend": det.runner.backend, "imgsz": list(det.meta.imgsz),
                     "model_p50_ms": r["model"]["p50_ms"], "model_p95_ms": r["model"]["p95_ms"],
                     "model_fps": r["model"]["fps"], "e2e_p50_ms": r["end_to_end"]["p50_ms"],
                     "e2e_p95_ms": r["end_to_end"]["p95_ms"], "e2e_fps": r["end_to_end"]["fps"],
                     "runs": args.runs, "warnings": warnings})
    return 0


def speed_report(args, det, model_p50_ms):
    """Achieved GFLOP/s (how near the CPU's limit the model runs) and, for INT8, a measured verdict only."""
    from ..quant.flops import model_gflops
    from ..quant.speed import int8_verdict

    out = {}
    if str(args.model).endswith(".onnx"):
        out["gflops"] = round(model_gflops(args.model), 3)
        out["achieved_gflop_s"] = round(out["gflops"] / (model_p50_ms / 1e3), 1)
        print(f"{out['gflops']:.2f} GFLOPs a frame -> {out['achieved_gflop_s']:.0f} GFLOP/s achieved (model only, p50)")
    if args.against:
        v = int8_verdict(args.model, args.against, threads=args.threads or 2, runs=min(args.runs, 60))
        print(v["verdict"])
        out["vs_fp32"] = v
    elif det.meta.precision == "int8":
        print("INT8 model: speed against FP32 not measured (give --against the FP32 .onnx to measure it here)")
    return out


def run_concurrent(args, first, frames) -> int:
    """The `bench --concurrency N` command body: `first` is the Detector the command already opened."""
    from ..bench_concurrent import bench_concurrent
    from ..detector import Detector
    from ..runners.triton import is_triton_url

    remote = is_triton_url(args.model)
    opened = []

    def make(i):
        if i == 0:
            return first
        runner = None if remote else first.runner  # a connection per client; one shared local session
        det = Detector(args.model, backend=args.backend, conf=args.conf, iou=args.iou, max_det=args.max_det,
                       runner=runner, resize=first.pre.resize)
        opened.append(det)
        return det

    try:
        r = bench_concurrent(make, frames, args.concurrency, runs=args.runs, warmup=args.warmup)
    finally:
        for det in opened if remote else ():
            det.close()
    print(f"{args.model} on {first.runner.describe()}: {args.concurrency} clients x {args.runs} frames",
          file=sys.stderr)
    print_table([[args.concurrency, r["requests"], f"{r['throughput_fps']:.2f}", f"{r['p50_ms']:.1f}",
                  f"{r['p95_ms']:.1f}", f"{r['infer_p50_ms']:.1f}", f"{r['infer_p95_ms']:.1f}"]],
                ["clients", "frames", "throughput FPS", "p50 ms", "p95 ms", "model call p50 ms",
                 "model call p95 ms"])
    print_json_last({"model": args.model, "backend": first.runner.backend, "runs": args.runs, **r})
    return 0

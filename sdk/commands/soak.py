"""`python -m sdk soak --minutes N`: the camera pipeline for N minutes on a looped file; memory at start and end.

A leak shows as resident memory that keeps growing after warm-up; the pipeline's queues and stats windows are
bounded, so RSS should level off within the first seconds.
"""
import os
import threading
import time

from ..errors import SDKError
from .camera import add_source_args, add_track_args, report, run_pipeline
from .common import add_model_args, check_range

WARMUP_FRACTION = 0.1  # RSS "after warm-up" is taken once this share of the run has passed


def add_arguments(p):
    add_model_args(p, imgsz=False)  # --imgsz comes with the source arguments
    add_source_args(p)
    add_track_args(p)
    p.add_argument("--minutes", type=float, required=True, help="how long to run (fractions allowed)")
    p.add_argument("--max-growth-mb", type=float, default=20.0,
                   help="RSS growth after warm-up above this is reported as not flat (default 20)")
    p.set_defaults(loop=True, no_overlay=False, output=[], save=None)


def rss_mb():
    """Resident set size of this process now (Linux /proc; peak RSS from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource  # noqa: PLC0415

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args):
    check_range("--minutes", args.minutes, 0.01, 7 * 24 * 60)
    args.loop = True
    if not args.source:
        raise SDKError("--source: missing, expected a video file (looped) or a camera URI for the soak run")
    seconds = args.minutes * 60
    samples = {"start": rss_mb()}
    done = threading.Event()

    def watch(pipeline):
        # A timer thread ends the run; RSS is sampled once after warm-up and at the end.
        def timer():
            if not done.wait(seconds * WARMUP_FRACTION):
                samples["after_warmup"] = rss_mb()
                if not done.wait(seconds * (1 - WARMUP_FRACTION)):
                    pipeline.stop("time limit")

        threading.Thread(target=timer, name="soak-timer", daemon=True).start()

    t0 = time.perf_counter()
    try:
        stats, info = run_pipeline(args, sinks=[], draw=True, on_start=watch)
    finally:
        done.set()
    samples["end"] = rss_mb()
    warm = samples.get("after_warmup", samples["start"])
    growth = samples["end"] - warm
    extra = {"minutes": round((time.perf_counter() - t0) / 60, 2), "rss_start_mb": round(samples["start"], 1),
             "rss_after_warmup_mb": round(warm, 1), "rss_end_mb": round(samples["end"], 1),
             "rss_growth_after_warmup_mb": round(growth, 1), "memory_flat": growth <= args.max_growth_mb}
    report(stats, info, extra)
    return 0

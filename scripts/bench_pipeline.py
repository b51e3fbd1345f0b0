"""Camera pipeline benchmark: end-to-end FPS vs model-only FPS, measured side by side in one run.

    python scripts/bench_pipeline.py --model yolov7-tiny.onnx \
        [--video ../shared/data/videos/one-by-one-person-detection.mp4] [--frames 50] [--rounds 8]

Model-only: the runner alone on one pre-processed frame (no decode, letterbox, NMS or drawing). End-to-end: the
full pipeline on the video (decode thread, letterbox, inference, NMS, drawing with the overlay, JSON lines sink),
frames finished per second. Short rounds alternate the two so machine noise hits both alike; each round gives a
paired ratio and the median of those is reported (target >= 0.9: decode, pre/post and drawing hidden behind
inference).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from sdk.bench import percentiles, time_model
from sdk.detector import Detector
from sdk.report import describe_machine
from sdk.video.pipeline import PIPELINE_SPIN, Pipeline
from sdk.video.sinks import JsonLinesSink
from sdk.video.sources import ThreadedCapture, open_source

SHARED = Path(os.environ.get("SDK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEFAULT_VIDEO = SHARED / "data" / "videos" / "one-by-one-person-detection.mp4"


def video_arguments(p, frames=50, rounds=8, model_required=True):
    """The flags every camera-pipeline benchmark takes: the model (or the shared checkpoint to export), the video,
    frames per round, rounds, first frame and onnxruntime threads."""
    p.add_argument("--model", required=model_required, default=None)
    if not model_required:
        p.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"),
                       help="exported at 416 when --model is not given")
    p.add_argument("--video", default=str(DEFAULT_VIDEO))
    p.add_argument("--frames", type=int, default=frames, help="frames per round")
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--start", type=int, default=240, help="first frame (the first person walks in at about 240)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")


def model_or_export(model, weights, folder):
    """`model`, or the shared checkpoint `weights` exported at 416 into `folder` when `model` is None."""
    if model is not None:
        return model
    from sdk.export.onnx_export import export_onnx
    from sdk.models.checkpoint import load_checkpoint

    return str(export_onnx(load_checkpoint(weights)[0], Path(folder) / "m.onnx", imgsz=416)[0])


def pipeline_round(det, video, start, frames, out_dir, spin=PIPELINE_SPIN, **pipeline_kw):
    """One pipeline run over `frames` frames from `start`, drawing into a JSON-lines sink; its final stats.
    `spin` as Pipeline's (None: the session as `det` opened it)."""
    source = open_source(f"{video}?start={start}")
    capture = ThreadedCapture(source, max_frames=frames)
    sink = JsonLinesSink(str(Path(out_dir) / "detections.jsonl"))
    info = {"model": "bench", "backend": det.runner.backend, "precision": det.meta.precision, "fps": source.fps,
            "size": source.size, "source": str(video)}
    return Pipeline(det, capture, [sink], info=info, draw=True, handle_signals=False, spin=spin,
                    **pipeline_kw).run()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    video_arguments(p)
    args = p.parse_args(argv)

    det = Detector(args.model, backend="ort", spin=PIPELINE_SPIN, threads=args.threads or None)  # as the pipeline runs it (no reopening)
    first = open_source(f"{args.video}?start={args.start}")
    _, frame = first.read()
    first.close()
    x, _ = det.pre(frame)
    time_model(det.runner, x, runs=5, warmup=5)
    model_fps, e2e_fps, inner_fps = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            model_fps.append(percentiles(time_model(det.runner, x, runs=args.frames, warmup=0))["fps"])
            stats = pipeline_round(det, args.video, args.start + r * args.frames, args.frames, tmp)
            e2e_fps.append(stats["e2e_fps"])
            inner_fps.append(stats["model_fps"])
            print(f"round {r + 1}: model-only {model_fps[-1]:.2f} FPS, end-to-end {e2e_fps[-1]:.2f} FPS, ratio "
                  f"{e2e_fps[-1] / model_fps[-1]:.3f} "
                  f"({stats['frames_processed']} frames, {stats['frames_dropped']} dropped, p50 latency "
                  f"{stats['p50_ms']:.0f} ms)", file=sys.stderr)
    model, e2e = statistics.median(model_fps), statistics.median(e2e_fps)
    ratio = statistics.median(e / m for e, m in zip(e2e_fps, model_fps))  # paired: each round's two neighbours
    result = {"model_only_fps": round(model, 2), "end_to_end_fps": round(e2e, 2), "ratio": round(ratio, 3),
              "target_ratio": 0.9, "model_fps_inside_pipeline": round(statistics.median(inner_fps), 2),
              "rounds": args.rounds, "frames_per_round": args.frames, "backend": det.runner.describe(),
              "imgsz": list(det.pre.shape), "video": Path(args.video).name,
              "machine": describe_machine(), "load_average_1m": round(os.getloadavg()[0], 1)}
    print(f"model-only FPS {model:.2f} | end-to-end FPS {e2e:.2f} | ratio {ratio:.3f} (median of the per-round "
          f"ratios; target >= 0.9)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

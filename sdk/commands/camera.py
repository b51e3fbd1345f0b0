"""`python -m sdk camera` (also samples/camera_detect.py): real-time detection from a camera, stream or file.

    python -m sdk camera --model yolov7-tiny.onnx                      # default camera, window
    python -m sdk camera --model m.engine --source csi://0 --save out.mp4 --output http://@:8080
    python -m sdk camera --model m.onnx --source video.mp4 --headless --json dets.jsonl --max-frames 300
"""
import sys

from ..errors import SDKError
from ..runners import choose_backend
from ..video.http_sink import add_http_arguments, http_options
from ..video.pipeline import Pipeline
from ..video.sinks import JsonLinesSink, create_sink, display_problem, sink_kind
from ..video.sources import ReconnectPolicy, ThreadedCapture, open_source
from .common import add_model_args, check_range, detector_from_args, print_json_last, print_table


def add_arguments(p):
    add_model_args(p, imgsz=False)  # camera has its own --imgsz
    add_source_args(p)
    p.add_argument("--output", action="append", default=[], metavar="URI",
                   help="where annotated frames go; repeatable: display://, out.mp4, detections.jsonl, "
                        "http://@:8080 (live view)")
    p.add_argument("--save", default=None, metavar="VIDEO", help="save the annotated video (same as --output VIDEO)")
    p.add_argument("--json", default=None, metavar="JSONL", help="detections as JSON lines (frame, time, boxes)")
    p.add_argument("--headless", action="store_true", help="no display window")
    add_http_arguments(p)
    p.add_argument("--no-overlay", action="store_true", help="do not draw FPS/latency on the frames")


def add_source_args(p):
    p.add_argument("--source", default=None, metavar="URI",
                   help="csi://N, /dev/videoN, v4l2:///dev/videoN, rtsp://..., a video, an image, a folder or a "
                        "glob; options as ?width=1280&height=720&framerate=30 (default: csi://0 when present, "
                        "else the first /dev/video*)")
    p.add_argument("--loop", action="store_true", help="restart files and image folders at the end")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many processed frames")
    p.add_argument("--imgsz", type=int, default=None,
                   help="input size; taken from the model's metadata (a different value is an error for "
                        "engines and static ONNX models)")
    p.add_argument("--reconnect", type=int, default=5, help="reconnect attempts for a lost live stream (back-off "
                                                             "0.5 s doubling to 8 s), then a clean exit")


def run(args):
    sinks = build_sinks(args)
    stats, info = run_pipeline(args, sinks)
    report(stats, info)
    if stats["stop_reason"].startswith("stream lost"):  # stats and outputs are complete; the exit says it failed
        raise SDKError(f"--source {info['source']}: {stats['stop_reason']}, expected the stream to come back")
    return 0


def run_pipeline(args, sinks, draw=None, on_start=None):
    """Model, source and sinks -> a finished run; returns (stats, info). Shared with the soak command."""
    if args.max_frames is not None:
        check_range("--max-frames", args.max_frames, 1, 10**12)
    check_range("--reconnect", args.reconnect, 0, 1000)
    choose_backend(args.model, args.backend)  # a wrong model file type fails before any camera is opened
    det = detector_from_args(args)
    try:
        apply_imgsz(det, args.imgsz, args.model)
        source = open_source(args.source)
        info = {"model": args.model, "backend": det.runner.backend, "precision": det.meta.precision,
                "imgsz": list(det.pre.shape), "names": list(det.names), "source": args.source or source.uri.text,
                "fps": source.fps, "size": source.size}
        policy = "latest frame, stale frames dropped" if source.live else "every frame, none dropped"
        print(f"source: {info['source']} ({source.description}, {'live' if source.live else 'file'}: {policy}"
              f"{', %.1f fps' % source.fps if source.fps else ''}"
              f"{', %dx%d' % tuple(source.size) if source.size else ''})", file=sys.stderr)
        capture = ThreadedCapture(source, loop=args.loop, reconnect=ReconnectPolicy(attempts=args.reconnect),
                                  max_frames=None if source.live else args.max_frames)
        pipeline = Pipeline(det, capture, sinks, info=info, max_frames=args.max_frames, draw=draw,
                            overlay=not getattr(args, "no_overlay", False))
        if on_start:
            on_start(pipeline)
        stats = pipeline.run()
    finally:
        det.close()
    return stats, info


def build_sinks(args):
    """Sinks for --output/--save/--json; the display window by default unless --headless (or no screen)."""
    outputs = list(args.output) + ([args.save] if args.save else [])
    kinds = [sink_kind(o) for o in outputs]
    if args.headless and "display" in kinds:
        raise SDKError("--output display://: got a display output with --headless, expected one or the other")
    if not outputs and not args.headless:
        problem = display_problem()
        if problem:
            print(f"note: {problem}; running headless (pass --headless to silence this)", file=sys.stderr)
        else:
            outputs.append("display://")
    sinks = [create_sink(o, **http_options(args)) for o in outputs]
    if args.json:
        sinks.append(JsonLinesSink(args.json))
    return sinks


def apply_imgsz(det, imgsz, model):
    """--imgsz must match a static input; a dynamic-shape ONNX model accepts another size (multiple of stride)."""
    if imgsz is None or [imgsz, imgsz] == list(det.pre.shape):
        return
    static = [d for d in det.runner.input.shape[2:] if isinstance(d, int) and d > 0]
    if len(static) == 2:
        raise SDKError(f"--imgsz {imgsz}: model {model} takes a fixed {static[0]}x{static[1]} input, expected "
                       f"--imgsz {static[0]} or no --imgsz (it comes from the model); re-export for another size")
    stride = int(det.meta.stride)
    if imgsz % stride:
        raise SDKError(f"--imgsz {imgsz}: got a size that is not a multiple of the stride, expected a multiple "
                       f"of {stride}")
    from ..preprocess import Preprocessor  # noqa: PLC0415

    det.meta.imgsz = (imgsz, imgsz)
    det.pre = Preprocessor(det.meta, dtype=det.runner.input.dtype)


def report(stats, info, extra=None):
    rows = [[k, stats[k]] for k in ("frames_read", "frames_processed", "frames_dropped", "frames_corrupt",
                                    "reconnects", "model_fps", "e2e_fps", "p50_ms", "p95_ms", "infer_ms", "detections",
                                    "stop_reason")]
    rows += [[k, v] for k, v in (extra or {}).items()]
    print_table(rows, ["stat", "value"])
    summary = {**stats, **(extra or {}), "model": info["model"], "backend": info["backend"],
               "precision": info["precision"], "imgsz": info["imgsz"], "source": info["source"]}
    print_json_last(summary)

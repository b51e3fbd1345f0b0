"""`python -m sdk camera` (also samples/camera_detect.py): real-time detection from cameras, streams or files.

    python -m sdk camera --model yolov7-tiny.onnx                      # default camera, window
    python -m sdk camera --model m.engine --source csi://0 --save out.mp4 --output http://@:8080
    python -m sdk camera --model m.onnx --source video.mp4 --headless --json dets.jsonl --max-frames 300
    python -m sdk camera --model m.onnx --source rtsp://cam1/live --source rtsp://cam2/live --track \\
        --count-line 0.1,0.6,0.9,0.6,door --save runs/cam{stream}.mp4 --output mosaic:runs/wall.mp4

This module only maps flags onto the library (sdk.video: open_source, create_sinks, Pipeline; sdk.track) and
adds the flag names to its errors.
"""
import sys

from ..errors import SDKError
from ..preprocess import REALTIME_RESIZE
from ..runners import choose_backend
from ..runners.onnxruntime import IN_RUN
from ..track.bytetrack import ANCHORS, TrackerConfig
from ..track.counting import parse_line, parse_zone
from ..video.http_sink import add_http_arguments, http_options
from ..video.pipeline import PIPELINE_SPIN, Pipeline
from ..video.sinks import JsonLinesSink, create_sinks, display_problem, sink_kind
from ..video.sources import ReconnectPolicy, open_source
from .common import add_model_args, check_range, detector_from_args, print_json_last, print_table


def add_arguments(p):
    add_model_args(p, imgsz=False)  # camera has its own --imgsz
    add_source_args(p)
    add_sink_args(p)
    add_track_args(p)
    add_spin_arg(p)


SPINNING_FLAGS = {"run": IN_RUN, "off": False, "on": True}  # --spinning: the runner's spin value


def add_spin_arg(p):
    p.add_argument("--spinning", choices=SPINNING_FLAGS, default=None,
                   help="onnxruntime's intra-op threads: run (default here: they spin within an inference and stop "
                        "when it returns, so capture, pre/post-processing and drawing get the cores between "
                        "inferences; docs/camera.md has the measurement), off (never spin) or on (onnxruntime's "
                        "own default: they also spin after each inference)")


def spin_from_args(args):
    """The pipeline's onnxruntime spinning setting: --spinning, else the pipeline's default."""
    flag = getattr(args, "spinning", None)
    return PIPELINE_SPIN if flag is None else SPINNING_FLAGS[flag]


def add_source_args(p):
    p.add_argument("--source", action="append", default=None, metavar="URI",
                   help="csi://N, /dev/videoN, v4l2:///dev/videoN, rtsp://..., a video, an image, a folder or a "
                        "glob; options as ?width=1280&height=720&framerate=30; repeat for several streams, batched "
                        "into one model (default: csi://0 when present, else the first /dev/video*)")
    p.add_argument("--loop", action="store_true", help="restart files and image folders at the end")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many processed frames (per stream)")
    p.add_argument("--imgsz", type=int, default=None,
                   help="input size; taken from the model's metadata (a different value is an error for "
                        "engines and static ONNX models)")
    p.add_argument("--reconnect", type=int, default=5, help="reconnect attempts for a lost live stream (back-off "
                                                             "0.5 s doubling to 8 s), then a clean exit")


def add_sink_args(p):
    p.add_argument("--output", action="append", default=[], metavar="URI",
                   help="where annotated frames go; repeatable: display://, out.mp4, detections.jsonl, "
                        "http://@:8080 (live view), rtsp://@:8554/NAME (RTSP server), rtp://HOST:PORT (H.264 over "
                        "UDP, SDP file printed), mot:tracks.txt (MOT Challenge), "
                        "mosaic:<output>; {stream} in a value makes one output per stream")
    p.add_argument("--save", default=None, metavar="VIDEO", help="save the annotated video (same as --output VIDEO)")
    p.add_argument("--json", default=None, metavar="JSONL",
                   help="detections (and count events) as JSON lines (frame, time, boxes, track ids)")
    p.add_argument("--headless", action="store_true", help="no display window")
    add_http_arguments(p)
    p.add_argument("--no-overlay", action="store_true", help="do not draw FPS/latency on the frames")


def add_track_args(p):
    g = p.add_argument_group("tracking and counting")
    g.add_argument("--track", action="store_true", help="persistent track ids (ByteTrack), drawn with their trails")
    g.add_argument("--track-buffer", type=int, default=TrackerConfig.track_buffer,
                   help="frames (at 30 fps) a lost track keeps its id (default %(default)s)")
    g.add_argument("--count-line", action="append", default=[], metavar="[S:]X1,Y1,X2,Y2[,NAME]",
                   help="count tracks crossing this line, in and out per class (pixels, or fractions of the frame "
                        "when all values are in [0, 1]); S: for stream S only; repeatable; implies --track")
    g.add_argument("--zone", action="append", default=[], metavar="[S:]X1,Y1,X2,Y2,X3,Y3[,...][,NAME]",
                   help="polygon: tracks inside now and their dwell time; repeatable; implies --track")
    g.add_argument("--anchor", choices=ANCHORS, default="bottom_center",
                   help="the point of a box that crosses lines and sits in zones (default %(default)s)")


def run(args):
    check_args(args)
    sinks = sinks_from_args(args)
    stats, info = run_pipeline(args, sinks)
    report(stats, info)
    raise_if_lost(stats, info)
    return 0


def raise_if_lost(stats, info):
    """A live stream that never came back fails the run (exit 1) once its stats and outputs are complete."""
    for source, stream in zip(info["sources"], stats["streams"]):
        reason = stream.get("stop_reason") or ""
        if reason.startswith("stream lost"):
            raise SDKError(f"--source {source}: {reason}, expected the stream to come back")


def check_args(args):
    """Flag values the library would reject, reported with the flag's name before anything is opened."""
    if args.max_frames is not None:
        check_range("--max-frames", args.max_frames, 1, 10**12)
    check_range("--reconnect", args.reconnect, 0, 1000)
    check_range("--track-buffer", getattr(args, "track_buffer", 30), 0, 10**6)
    lines_from_args(args)
    zones_from_args(args)


def run_pipeline(args, sinks, draw=None, on_start=None):
    """Model, sources and sinks -> a finished run; returns (stats, info). Shared with the soak command."""
    check_args(args)
    choose_backend(args.model, args.backend)  # a wrong model file type fails before any camera is opened
    # opened as the pipeline runs it (no reopening), with the real-time shrink of large frames
    det = detector_from_args(args, spin=spin_from_args(args), resize=REALTIME_RESIZE)
    try:
        sources = sources_from_args(args)
        info = run_info(args, det, sources)
        pipeline = pipeline_from_args(args, det, sources, sinks, info=info, draw=draw)
        if len(sources) > 1 or (det.batch_size or 1) > 1:  # said once: how the streams share the model
            print(pipeline.batch_text, file=sys.stderr)
        if on_start:
            on_start(pipeline)
        stats = pipeline.run()
    finally:
        det.close()
    return stats, info


def sources_from_args(args):
    """open_source() for each --source (the default camera with none), each described in one line."""
    texts = args.source or [None]
    sources = []
    try:
        for text in texts:
            source = open_source(text, "--source")
            policy = "latest frame, stale frames dropped" if source.live else "every frame, none dropped"
            label = text or source.uri.text
            print(f"source{' %d' % len(sources) if len(texts) > 1 else ''}: {label} ({source.description}, "
                  f"{'live' if source.live else 'file'}: {policy}{', %.1f fps' % source.fps if source.fps else ''}"
                  f"{', %dx%d' % tuple(source.size) if source.size else ''})", file=sys.stderr)
            sources.append(source)
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


def run_info(args, det, sources):
    texts = [t or s.uri.text for t, s in zip(args.source or [None], sources)]
    return {"model": args.model, "backend": det.runner.backend, "precision": det.meta.precision,
            "imgsz": list(det.pre.shape), "names": list(det.names), "source": texts[0] if len(texts) == 1 else texts,
            "fps": sources[0].fps, "size": sources[0].size, "sources": texts}


def lines_from_args(args):
    return [_for_a_stream(parse_line(t, anchor=args.anchor, what="--count-line"), "--count-line", t, args)
            for t in getattr(args, "count_line", [])]


def zones_from_args(args):
    return [_for_a_stream(parse_zone(t, anchor=args.anchor, what="--zone"), "--zone", t, args)
            for t in getattr(args, "zone", [])]


def _for_a_stream(spec, flag, text, args):
    streams = len(args.source or [None])
    if spec.stream is not None and spec.stream >= streams:
        raise SDKError(f"{flag} {text}: got stream {spec.stream}, expected 0..{streams - 1} (one per --source)")
    return spec


def tracking_wanted(args):
    """--track, or anything that needs tracks: count lines, zones, a mot: output."""
    mot = any(sink_kind(str(o).replace("{stream}", "0")) == "mot" for o in args_outputs(args))
    return bool(getattr(args, "track", False) or getattr(args, "count_line", None) or getattr(args, "zone", None)
                or mot)


def pipeline_from_args(args, det, sources, sinks, info=None, draw=None):
    config = TrackerConfig(track_buffer=getattr(args, "track_buffer", TrackerConfig.track_buffer))
    return Pipeline(det, sources, sinks, info=info, max_frames=args.max_frames, draw=draw, overlay=not args.no_overlay,
                    track=tracking_wanted(args), tracker_config=config, lines=lines_from_args(args),
                    zones=zones_from_args(args), loop=args.loop, reconnect=ReconnectPolicy(attempts=args.reconnect),
                    spin=spin_from_args(args))


def args_outputs(args):
    return list(args.output) + ([args.save] if args.save else [])


def sinks_from_args(args, streams=None):
    """Sinks for --output/--save/--json; the display window by default unless --headless (or no screen)."""
    streams = streams or len(args.source or [None])
    outputs = args_outputs(args)
    kinds = [sink_kind(str(o).replace("{stream}", "0")) for o in outputs]
    if args.headless and "display" in kinds:
        raise SDKError("--output display://: got a display output with --headless, expected one or the other")
    if not outputs and not args.headless:
        problem = display_problem()
        if problem:
            print(f"note: {problem}; running headless (pass --headless to silence this)", file=sys.stderr)
        else:
            outputs.append("display://")
    sinks = create_sinks(outputs, streams=streams, **http_options(args))
    if args.json:
        if "{stream}" in args.json:
            sinks += create_sinks([args.json], streams=streams)
        else:
            sinks.append(JsonLinesSink(args.json))
    return sinks


def report(stats, info, extra=None):
    rows = [[k, stats[k]] for k in ("frames_read", "frames_processed", "frames_dropped", "frames_corrupt",
                                    "reconnects", "model_fps", "e2e_fps", "p50_ms", "p95_ms", "infer_ms", "detections",
                                    "stop_reason")]
    if len(stats.get("streams", ())) > 1:
        rows += [[f"stream {s['stream']}", f"{s['frames_processed']} frames, {s['e2e_fps']} FPS, p50 {s['p50_ms']} ms, "
                  f"p95 {s['p95_ms']} ms, {s['stop_reason']}"] for s in stats["streams"]]
    rows += [[f"line {c['line']} (stream {c['stream']})", f"in {c['in']}, out {c['out']}"]
             for c in stats.get("lines", ())]
    rows += [[f"zone {z['zone']} (stream {z['stream']})", f"{z['inside']} inside, {z['entries']} entries"]
             for z in stats.get("zones", ())]
    rows += [[f"output {o['output']}", f"{o['frames_sent']} frames sent, {o['frames_dropped']} dropped"
              + (f", {o['frames_unwatched']} with nobody watching" if o.get("frames_unwatched") else "")]
             for o in stats.get("outputs", ())]
    rows += [[k, v] for k, v in (extra or {}).items()]
    print_table(rows, ["stat", "value"])
    summary = {**stats, **(extra or {}), "model": info["model"], "backend": info["backend"],
               "precision": info["precision"], "imgsz": info["imgsz"], "source": info["source"]}
    print_json_last(summary)

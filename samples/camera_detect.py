#!/usr/bin/env python3
"""Real-time object detection from cameras, streams or files, on TensorRT or onnxruntime.

    python samples/camera_detect.py --model yolov7-tiny.onnx                 # default camera, in a window
    python samples/camera_detect.py --model yolov7-tiny.engine --source csi://0 --save out.mp4
    python samples/camera_detect.py --model yolov7-tiny.onnx --source rtsp://cam/stream --headless \\
        --output http://@:8080 --json detections.jsonl
    python samples/camera_detect.py --model m.onnx --source cam0.mp4 --source cam1.mp4 --headless --track \\
        --count-line 0.1,0.7,0.9,0.7,door --save runs/cam{stream}.mp4
    python samples/camera_detect.py --model yolov7-tiny.engine --source csi://0 --headless \\
        --output rtsp://@:8554/cam            # an RTSP server for an NVR or VLC (rtp://HOST:PORT: plain UDP)

The same as `python -m sdk camera`, written out as the API's loop: sources, a detector, sinks, the pipeline,
the stats. The work is in sdk/video (sources, sinks, pipeline) and sdk/track. See docs/camera.md.
Needs the SDK installed (`pip install -e .` in the repository).
"""
import sys

from sdk.cli import guarded
from sdk.commands import camera  # the flags
from sdk.commands.args import CommandParser  # library errors name a parameter ('output ...'); it adds the flag
from sdk.commands.inspect import model_options_from_args  # layout flags for models from other exporters
from sdk.detector import Detector
from sdk.preprocess import REALTIME_RESIZE  # large frames shrink through exact 2x halvings (sdk/preprocess.py)
from sdk.video.pipeline import Pipeline
from sdk.video.sources import ReconnectPolicy, open_source


def detect(args):
    camera.check_args(args)
    sinks = camera.sinks_from_args(args)  # outputs first: a bad path or a taken port fails before any camera opens

    threads = {"threads": args.threads} if args.threads else {}  # onnxruntime intra-op threads
    spin = camera.spin_from_args(args)  # onnxruntime's threads spin in runs only, unless --spinning
    detector = Detector(args.model, backend=args.backend, conf=args.conf, iou=args.iou, max_det=args.max_det,
                        options=model_options_from_args(args), spin=spin, resize=REALTIME_RESIZE,
                        **threads)  # options: --imgsz, foreign layouts
    sources = [open_source(uri) for uri in args.source or [None]]  # csi://0, /dev/video0, rtsp://..., files
    print(f"backend: {detector.runner.describe()} ({detector.backend_reason}); {len(sources)} source(s)",
          file=sys.stderr)

    info = camera.run_info(args, detector, sources)  # model, backend, input size, sources: for the sinks and stats
    with detector:
        pipeline = Pipeline(detector, sources, sinks, info=info, track=camera.tracking_wanted(args),
                            lines=camera.lines_from_args(args), zones=camera.zones_from_args(args),
                            loop=args.loop, max_frames=args.max_frames, overlay=not args.no_overlay,
                            reconnect=ReconnectPolicy(attempts=args.reconnect), spin=spin)
        print(pipeline.batch_text, file=sys.stderr)
        for result in pipeline:  # one processed frame of one stream; the sinks already have it
            for event in result.events:  # a track crossed a count line or entered/left a zone
                print(f"stream {result.name}: track {event['track']} {event['direction']} "
                      f"{event.get('line') or event.get('zone')} ({event['class']})", file=sys.stderr)
    camera.report(pipeline.final_stats, info)  # a table, then the stats as the last line (JSON)
    camera.raise_if_lost(pipeline.final_stats, info)
    return 0


def main(argv=None):
    parser = CommandParser(prog="camera_detect.py", description=__doc__.splitlines()[0])
    camera.add_arguments(parser)
    return guarded(lambda: parser.parse_and_run(detect, argv))  # a bad value (--conf 2) is one error line too


if __name__ == "__main__":
    sys.exit(main())

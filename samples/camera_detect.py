#!/usr/bin/env python3
"""Real-time object detection from a camera, a stream or a file, on TensorRT or onnxruntime.

    python samples/camera_detect.py --model yolov7-tiny.onnx                 # default camera, in a window
    python samples/camera_detect.py --model yolov7-tiny.engine --source csi://0 --save out.mp4
    python samples/camera_detect.py --model yolov7-tiny.onnx --source rtsp://cam/stream --headless \\
        --output http://@:8080 --json detections.jsonl

The same as `python -m sdk camera`; the work is in sdk/video (sources, sinks, pipeline). See docs/camera.md.
Needs the SDK installed (`pip install -e .` in the repository).
"""
import argparse
import sys

from sdk.cli import guarded
from sdk.commands import camera


def main(argv=None):
    parser = argparse.ArgumentParser(prog="camera_detect.py", description=__doc__.splitlines()[0])
    camera.add_arguments(parser)
    args = parser.parse_args(argv)
    return guarded(lambda: camera.run(args))


if __name__ == "__main__":
    sys.exit(main())

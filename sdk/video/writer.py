"""A video writer that only leaves a complete file behind (temporary name, renamed on close), H.264 where it can.

Encoders, best first: the Jetson hardware encoder through GStreamer (`gstreamer_pipeline`), FFmpeg's libx264
through PyAV (`pip install av`, its wheels bundle FFmpeg and leave OpenCV alone; browsers play the result), and
OpenCV's mp4v as the fallback (plays in VLC/FFmpeg, not in browsers), which is said once per process.
"""
import os
import sys
from fractions import Fraction

import cv2

from ..errors import SDKError
from ..fileio import discard, temp_beside

_FALLBACK_SAID = []


def h264_encoder():
    """The name of a PyAV H.264 encoder that works here, or None (PyAV missing or built without one)."""
    try:
        import av  # noqa: PLC0415  (optional: the [video] extra)
    except ImportError:
        return None
    for name in ("libx264", "libopenh264", "h264"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001  (UnknownCodecError / ValueError differ across PyAV versions)
            continue
    return None


def say_fallback_once(why):
    if not _FALLBACK_SAID:
        _FALLBACK_SAID.append(why)
        print(f"note: {why}; saving mp4v (plays in VLC/FFmpeg, not in browsers): pip install av for H.264",
              file=sys.stderr)


class _PyAvWriter:
    """BGR frames -> H.264 (yuv420p, so every player decodes it) in an mp4/mkv container through PyAV."""

    def __init__(self, path, fps, size, codec):
        import av  # noqa: PLC0415

        self._av = av
        self.container = av.open(str(path), mode="w", format=_container_format(path))
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": "23"} if codec == "libx264" else {}
        self.index = 0

    def isOpened(self):  # noqa: N802  (cv2.VideoWriter's name)
        return True

    def write(self, frame):
        vf = self._av.VideoFrame.from_ndarray(frame, format="bgr24")
        vf.pts = self.index
        self.index += 1
        for packet in self.stream.encode(vf):
            self.container.mux(packet)

    def release(self):
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


def _container_format(path):
    ext = os.path.splitext(str(path))[1].lower()
    return {".mkv": "matroska", ".mov": "mov", ".avi": "avi", ".ts": "mpegts", ".webm": "webm"}.get(ext, "mp4")


class AtomicVideoWriter:
    """Frames go to a temporary file beside `path`; `close()` (or a clean `with` exit) renames it to `path`.

    An interrupted run should still leave a playable file, so callers that catch Ctrl-C call `close()`;
    `abort()`, or an exception inside a `with` block, discards the partial video. `codec`: "auto" (H.264 through
    PyAV when available, else mp4v), "h264" (PyAV required) or "mp4v"; `encoder` says which one is used.
    """

    def __init__(self, path, fps, size, fourcc="mp4v", gstreamer_pipeline=None, codec="mp4v"):
        """`gstreamer_pipeline(tmp_path) -> str` encodes through GStreamer instead (the Jetson hardware encoder)."""
        self.path, self.fps, self.size = str(path), float(fps or 30.0), tuple(size)  # size = (width, height)
        self._tmp = temp_beside(path, "video output", suffix=os.path.splitext(str(path))[1] or ".mp4")
        h264 = h264_encoder() if codec in ("auto", "h264") and gstreamer_pipeline is None else None
        if codec == "h264" and h264 is None and gstreamer_pipeline is None:
            discard(self._tmp)
            raise SDKError(f"video output {path}: got codec h264 without an H.264 encoder, expected PyAV with "
                           f"libx264 (pip install av) or codec mp4v")
        if gstreamer_pipeline is not None:
            self.encoder = "gstreamer nvv4l2h264enc"
            self.writer = cv2.VideoWriter(gstreamer_pipeline(self._tmp), cv2.CAP_GSTREAMER, 0, self.fps, self.size)
        elif h264 is not None and _container_format(path) != "avi":
            self.encoder = f"pyav {h264}"
            self.size = (self.size[0] - self.size[0] % 2, self.size[1] - self.size[1] % 2)  # 4:2:0 needs even sides
            self.writer = _PyAvWriter(self._tmp, self.fps, self.size, h264)
        else:
            if codec == "auto":
                say_fallback_once("no H.264 encoder found (PyAV is not installed)" if h264 is None else
                                  f"{os.path.splitext(str(path))[1]} files get OpenCV's encoder")
            self.encoder = f"opencv {fourcc}"
            self.writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, self.size)
        self.frames = 0
        self.closed = False
        if not self.writer.isOpened():
            self.abort()
            raise SDKError(f"video output {path}: OpenCV cannot write it, expected a writable .mp4/.avi path")

    def write(self, frame):
        if frame.shape[1::-1] != self.size:
            frame = cv2.resize(frame, self.size)
        self.writer.write(frame)
        self.frames += 1

    def close(self):
        if not self.closed:
            self.closed = True
            self.writer.release()
            os.replace(self._tmp, self.path)

    def abort(self):
        if not self.closed:
            self.closed = True
            try:
                self.writer.release()
            finally:
                discard(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close() if exc_type is None else self.abort()

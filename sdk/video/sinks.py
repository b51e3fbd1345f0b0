"""Output sinks, pluggable by URI: `display://`, `out.mp4`, `detections.jsonl`, `http://@:8080`,
`mot:tracks.txt` (MOT Challenge text), `mosaic:<output>` (every stream tiled in one frame), `rtsp://@:8554/NAME`
(an RTSP server) and `rtp://HOST:PORT` (H.264 over UDP), both in sdk/video/stream_out.py.

Every sink implements the same small interface, called by the pipeline's drawing thread:

    open(info)    info: {"model", "backend", "precision", "imgsz", "names", "source", "fps" (source fps or None),
                         "size": (w, h)}
    write(frame_bgr_annotated, detections, stats)   once per processed frame; detections are
                  sdk.detections.Detections in original-frame pixels; stats is the live stats dict (the keys of the
                  final JSON line, plus "counts" {class: n} for this frame and "frame_index")
    close()

`write` must return quickly (a network sink hands the latest frame to its own thread). A sink may set
`stop_requested = True` (the display window does on q/Esc) to end the run cleanly.

Sinks are found by URI scheme in SINKS ("module:Class", imported only when used) so other modules plug in
without this file importing them; a plain path picks a sink by its extension. With several streams, a sink
whose `stream` attribute is an int gets that stream only; `create_sinks` makes one per stream from a
`{stream}` placeholder (`runs/cam{stream}.mp4`); sinks that take every stream (`MULTI_STREAM`) get them all.
"""
import importlib
import inspect
import json
import os

from ..data.images import VIDEO_SUFFIXES
from ..errors import SDKError
from ..fileio import discard, ensure_parent, temp_beside
from ..records import frame_record
from . import gstreamer
from .uri import parse_uri
from .writer import AtomicVideoWriter

SINKS = {
    "display": "sdk.video.sinks:DisplaySink",
    "file": "sdk.video.sinks:VideoFileSink",
    "jsonl": "sdk.video.sinks:JsonLinesSink",
    "http": "sdk.video.http_sink:HttpSink",
    "mot": "sdk.video.sinks:MotSink",
    "mosaic": "sdk.video.mosaic:MosaicSink",
    "rtsp": "sdk.video.stream_out:RtspSink",
    "rtp": "sdk.video.stream_out:RtpSink",
}
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
PREFIXES = ("mot", "mosaic")  # `mot:path`, `mosaic:<output>`: a sink wrapped around a path or another output
MULTI_STREAM = ("jsonl", "display", "mosaic", "http")  # one of these serves every stream (http: a tile each)
STREAM_PLACEHOLDER = "{stream}"


class Sink:
    """Base class: does nothing; subclasses override what they need."""

    stop_requested = False
    stream = None  # None: every stream's frames; an int: that stream's only

    def open(self, info):
        pass

    def write(self, frame_bgr_annotated, detections, stats):
        pass

    def close(self):
        pass


def register_sink(scheme, class_path):
    """Plug a sink in for `scheme://...` URIs; `class_path` is 'package.module:ClassName'."""
    SINKS[scheme] = class_path


def split_prefix(text):
    """`mot:runs/t.txt` -> ("mot", "runs/t.txt"); anything else -> (None, text)."""
    head, sep, rest = str(text).partition(":")
    if sep and head.lower() in PREFIXES and not rest.startswith("//"):
        return head.lower(), rest
    return None, text


def sink_kind(text):
    """Registry key for an --output value: the URI scheme, or file/jsonl for paths by extension."""
    prefix, rest = split_prefix(text)
    if prefix is not None:
        if not rest.strip():
            raise SDKError(f"output {text}: got nothing after '{prefix}:', expected {prefix}:"
                           + ("PATH.txt" if prefix == "mot" else "<output> such as mosaic:runs/all.mp4"))
        return prefix
    if str(text).lower().startswith("webrtc://"):
        raise SDKError(f"output {text}: got webrtc://, expected http://HOST:PORT (MJPEG live view), "
                       f"rtsp://@:8554/NAME or rtp://HOST:PORT: WebRTC output is not implemented yet")
    uri = parse_uri(text, "output")
    if uri.protocol in ("file", "image"):
        suffix = os.path.splitext(uri.location)[1].lower()
        if suffix in JSON_SUFFIXES:
            return "jsonl"
        if suffix in VIDEO_SUFFIXES:
            return "file"
        raise SDKError(f"output {text}: got a path ending in '{suffix or '(none)'}', expected a video file "
                       f"({', '.join(VIDEO_SUFFIXES)}), JSON lines (.jsonl) or a URI ({', '.join(SINKS)})")
    if uri.protocol == "https":
        return "http"
    if uri.protocol not in SINKS:
        raise SDKError(f"output {text}: got '{uri.protocol}://', expected one of {', '.join(SINKS)}:// or a "
                       f"video/.jsonl path")
    return uri.protocol


def create_sink(text, token=None, **options):
    """Build the sink for one --output value; a sink gets `token` (--http-token) and each other option (e.g.
    http_sink.http_options) that its constructor takes; None means not given."""
    kind = sink_kind(text)
    cls = _load_class(SINKS[kind], text)
    params = inspect.signature(cls).parameters
    wraps = any(p.kind is p.VAR_KEYWORD for p in params.values())  # mosaic: passes them on to the sink it wraps
    given = {k: v for k, v in {"token": token, **options}.items() if v is not None and (wraps or k in params)}
    return cls(text, **given)


def create_sinks(outputs, streams=1, token=None, **options):
    """Sinks for several --output values and `streams` sources: a `{stream}` in a value makes one sink per
    stream (the placeholder replaced by the stream's number); a value without one is a single sink, which
    must be able to take every stream when there are several (JSON lines, display, mosaic:)."""
    sinks = []
    for text in outputs:
        kind = sink_kind(str(text).replace(STREAM_PLACEHOLDER, "0"))
        if STREAM_PLACEHOLDER in str(text) and kind != "mosaic":
            for i in range(streams):
                sink = create_sink(str(text).replace(STREAM_PLACEHOLDER, str(i)), token=token, **options)
                sink.stream = i
                sinks.append(sink)
            continue
        if streams > 1 and kind not in MULTI_STREAM:
            raise SDKError(f"output {text}: got one output for {streams} streams, expected a {{stream}} "
                           f"placeholder (e.g. {_placeholder_example(text)}) or mosaic:{text} to tile them")
        sink = create_sink(text, token=token, **options)
        sink.stream = None if streams > 1 else 0
        sinks.append(sink)
    return sinks


def _placeholder_example(text):
    root, ext = os.path.splitext(str(text))
    return f"{root}{STREAM_PLACEHOLDER}{ext}" if ext and "://" not in str(text) else f"{text}{STREAM_PLACEHOLDER}"


def _load_class(class_path, text):
    module_name, _, class_name = class_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            raise SDKError(f"output {text}: its sink {class_path} is not installed in this SDK, expected one of "
                           f"the available outputs (display://, a video path, a .jsonl path)") from None
        raise
    return getattr(module, class_name)


def writable_path(path, what):
    """Fail before the run starts when an output cannot be written (not at the first frame)."""
    ensure_parent(path, what)
    if os.path.isdir(path):
        raise SDKError(f"{what} {path}: is a folder, expected a file path")
    return str(path)


class VideoFileSink(Sink):
    """Annotated frames to a video file, written beside it and renamed on close, so it is always playable.

    On a Jetson whose OpenCV has GStreamer and the nvv4l2h264enc element, the hardware H.264 encoder is used;
    elsewhere H.264 through PyAV when installed, else OpenCV's mp4v (said once).
    """

    def __init__(self, uri, encoder="auto", codec="auto"):
        self.uri = uri
        self.path = writable_path(parse_uri(uri, "output").location, "output")
        self.encoder, self.codec = encoder, codec
        self.fps = None
        self.writer = None

    def open(self, info):
        self.fps = info.get("fps") or 30.0

    def write(self, frame_bgr_annotated, detections, stats):
        if self.writer is None:  # the size is known for sure only from the first frame
            pipeline = gstreamer.h264_save_pipeline if self._hardware() else None
            self.writer = AtomicVideoWriter(self.path, self.fps, frame_bgr_annotated.shape[1::-1],
                                            gstreamer_pipeline=pipeline, codec=self.codec)
        self.writer.write(frame_bgr_annotated)

    def _hardware(self):
        return self.encoder == "jetson" or (self.encoder == "auto" and gstreamer.jetson_encoder_available())

    def close(self):
        if self.writer is not None:
            self.writer.close()

    def abort(self):
        if self.writer is not None:
            self.writer.abort()

    @property
    def frames(self):
        return self.writer.frames if self.writer else 0


class TextFileSink(Sink):
    """A text file written beside its name and renamed on close (discarded on abort): nothing half-written."""

    what = "output"

    def __init__(self, uri, path):
        self.uri = uri
        self.path = writable_path(path, self.what)
        self._tmp = None
        self._file = None

    def open(self, info):
        self._tmp = temp_beside(self.path, self.what, suffix=".part")
        self._file = open(self._tmp, "w")

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
            os.replace(self._tmp, self.path)

    def abort(self):
        if self._file is not None:
            self._file.close()
            self._file = None
            discard(self._tmp)


class JsonLinesSink(TextFileSink):
    """One JSON object per processed frame in the layout of sdk/records.py (source, stream, frame, video_time,
    wall_time, detections with track ids when tracking, counts, and the line/zone events of that frame)."""

    what = "json"

    def __init__(self, uri):
        super().__init__(uri, parse_uri(uri, "json").location)

    def write(self, frame_bgr_annotated, detections, stats):
        record = frame_record(detections, source=stats.get("source") or "", frame=stats.get("frame_index") or 0,
                              video_time=stats.get("video_time"), wall_time=stats.get("timestamp"),
                              stream=stats.get("stream", 0), counts=stats.get("counts"), events=stats.get("events"))
        self._file.write(json.dumps(record) + "\n")


class MotSink(TextFileSink):
    """`mot:path.txt`: tracks in MOT Challenge text, `frame,id,left,top,width,height,conf,-1,-1,-1` (frames from 1),
    the format motmetrics and TrackEval read. Boxes without a confirmed track are not written."""

    def __init__(self, uri):
        super().__init__(uri, split_prefix(uri)[1])

    def write(self, frame_bgr_annotated, detections, stats):
        if detections.track_ids is None:
            raise SDKError(f"output {self.uri}: got detections without track ids, expected tracking on (--track)")
        frame = int(stats.get("frame_index", 0)) + 1
        rows = [f"{frame},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1"
                for (x1, y1, x2, y2), score, tid in zip(detections.boxes.tolist(), detections.scores.tolist(),
                                                         detections.track_ids) if tid >= 0]
        if rows:
            self._file.write("\n".join(rows) + "\n")


class DisplaySink(Sink):
    """A window on the local screen (OpenCV highgui; `nveglglessink` on a Jetson with GStreamer). q/Esc quits."""

    WINDOW = "camera_detect"

    def __init__(self, uri="display://"):
        self.uri = uri
        self.gst_writer = None
        problem = display_problem()
        if problem:
            raise SDKError(f"output {uri}: {problem}, expected a desktop session; use --headless to run "
                           f"without a window")

    def open(self, info):
        self.size = info.get("size")

    def write(self, frame_bgr_annotated, detections, stats):
        import cv2  # noqa: PLC0415

        if gstreamer.on_jetson() and gstreamer.opencv_has_gstreamer():
            if self.gst_writer is None:
                self.gst_writer = cv2.VideoWriter(gstreamer.display_pipeline(), cv2.CAP_GSTREAMER, 0, 30.0,
                                                  frame_bgr_annotated.shape[1::-1])
            self.gst_writer.write(frame_bgr_annotated)
            return
        name = self.WINDOW if "stream" not in stats else f"{self.WINDOW} stream {stats['stream']}"
        cv2.imshow(name, frame_bgr_annotated)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self):
        import cv2  # noqa: PLC0415

        if self.gst_writer is not None:
            self.gst_writer.release()
        else:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass


def display_problem():
    """Why a window cannot be shown here, or None when it can."""
    import cv2  # noqa: PLC0415

    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY is not set)"
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() in ("NONE", "NO", ""):
        if not (gstreamer.on_jetson() and gstreamer.opencv_has_gstreamer()):
            return f"OpenCV {cv2.__version__} is built without a GUI (opencv-python-headless)"
    return None

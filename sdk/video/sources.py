"""Frame sources (files, images, cameras, streams) and the threaded capture that feeds the pipeline.

A `FrameSource` reads synchronously and reports each read as ok / corrupt / end / lost. `ThreadedCapture` runs
one in its own thread behind a bounded queue: live sources keep only the newest frame (a camera must never
queue stale frames), files never drop. A lost live stream is reopened with exponential back-off; when every
attempt fails the capture ends cleanly with the reason in its stats.
"""
import glob
import os
import queue
import threading
import time
from typing import NamedTuple, Optional

import cv2
import numpy as np

from ..data.images import list_images
from ..errors import SDKError
from . import gstreamer
from .uri import find_default_camera, parse_uri

OK, CORRUPT, END, LOST = "ok", "corrupt", "end", "lost"
MAX_CORRUPT_IN_A_ROW = 30  # a file that yields nothing decodable for this long is treated as ended


class Frame(NamedTuple):
    index: int  # position among the frames read (dropped frames keep their index)
    image: np.ndarray  # BGR uint8
    t_read: float  # time.perf_counter() when it was read: latency is measured from here


class FrameSource:
    """Synchronous reader. Subclasses implement `open`, `read() -> (status, frame)`, `close`."""

    live = False
    fps = None
    size = None  # (w, h) once known
    description = ""

    def open(self):
        return self

    def read(self):
        raise NotImplementedError

    def close(self):
        pass

    def reopen(self):
        """Reconnect after a lost stream; raises SDKError when it cannot."""
        self.close()
        self.open()


def valid_frame(frame, size=None):
    """A decodable BGR frame of the stream's size (a torn or half-decoded frame is counted as corrupt)."""
    if frame is None or not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or not frame.size:
        return False
    return size is None or frame.shape[1::-1] == tuple(size)


class CaptureSource(FrameSource):
    """cv2.VideoCapture over a file, a camera (GStreamer pipeline or V4L2 index) or a network stream."""

    def __init__(self, uri, open_timeout_s=10.0):
        self.uri = uri
        self.live = uri.live or bool(uri.option("live", 0, int))
        self.pace = uri.protocol == "file" and self.live  # a file played in real time behaves like a camera
        self.open_timeout_s = float(uri.option("timeout", open_timeout_s, float))
        self.cap = None
        self._next_t = 0.0
        self._corrupt_run = 0
        self._frame_size = None
        self.target, self.api, self.description = (uri.location, "CAP_FFMPEG", "FFmpeg") if uri.protocol == "file" \
            else gstreamer.capture_target(uri)

    def open(self):
        what = f"{self.uri.what} {self.uri.text}"
        if self.uri.protocol == "file" and not os.path.isfile(self.uri.location):
            raise SDKError(f"{what}: file not found, expected a video file, an image, a folder, a glob or a camera")
        if self.uri.protocol == "v4l2" and not os.path.exists(self.uri.location):
            present = sorted(glob.glob("/dev/video*")) or ["none"]
            raise SDKError(f"{what}: camera not found (no {self.uri.location}), expected one of the cameras "
                           f"present: {', '.join(present)}")
        if self.uri.protocol in ("rtsp", "http", "https", "rtmp"):
            from .probe import tcp_problem

            problem = tcp_problem(self.uri.location if "://" in self.uri.location else self.uri.text)
            if problem:
                raise SDKError(f"{what}: connection {problem} ({self.description}), expected a reachable "
                               f"stream; check the address and that the camera/server is up")
        params = []
        if self.api in ("CAP_FFMPEG", "CAP_V4L2"):
            ms = int(self.open_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        self.cap = cv2.VideoCapture(self.target, getattr(cv2, self.api), params)
        if not self.cap.isOpened():
            self.cap.release()
            self.cap = None
            if self.uri.protocol == "file":
                raise SDKError(f"{what}: OpenCV cannot open it, expected a playable video file")
            if self.uri.protocol in ("v4l2", "csi"):
                raise SDKError(f"{what}: camera present but cannot be opened ({self.description}); it may be busy "
                               f"(another program using it) or not support the requested format/size")
            raise SDKError(f"{what}: stream did not open within {self.open_timeout_s:g}s ({self.description}), "
                           f"expected a reachable stream; check the address, credentials and network")
        start = self.uri.option("start", 0, int)  # file.mp4?start=N begins at frame N
        if start and self.uri.protocol == "file":
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or None
        w, h = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w and h else None
        self._next_t = time.perf_counter()
        self._corrupt_run = 0
        self._frame_size = None
        return self

    def read(self):
        if self.pace:  # real-time playback: wait for this frame's moment, like a camera would
            self._next_t += 1.0 / (self.fps or 30.0)
            delay = self._next_t - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        ok, frame = self.cap.read()
        if not ok:
            if self.uri.protocol != "file":
                return LOST, None
            return self._file_read_failed()
        if not valid_frame(frame, self._frame_size):
            return CORRUPT, None
        if self._frame_size is None:  # the first decoded frame fixes the size (drivers may report another)
            self._frame_size = self.size = frame.shape[1::-1]
        self._corrupt_run = 0
        return OK, frame

    def _file_read_failed(self):
        # Past the last frame is the end; a failure before it is a damaged frame that is skipped.
        pos, count = self.cap.get(cv2.CAP_PROP_POS_FRAMES), self.cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self._corrupt_run += 1
        if count > 0 and pos < count - 1 and self._corrupt_run < MAX_CORRUPT_IN_A_ROW:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, pos + 1)
            return CORRUPT, None
        return END, None

    def close(self):
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class ImageSource(FrameSource):
    """An image, a folder or a glob of images, read in sorted order; undecodable files are corrupt frames."""

    description = "images"

    def __init__(self, uri):
        self.uri = uri
        self.paths = list_images(uri.location, uri.what)
        self.i = 0
        self.current_path = None

    def open(self):
        self.i = 0
        return self

    def read(self):
        if self.i >= len(self.paths):
            return END, None
        self.current_path = self.paths[self.i]
        self.i += 1
        img = cv2.imdecode(np.fromfile(self.current_path, np.uint8), cv2.IMREAD_COLOR)
        if not valid_frame(img):
            return CORRUPT, None
        self.size = img.shape[1::-1]
        return OK, img


def open_source(text: Optional[str] = None, what: str = "source") -> FrameSource:
    """A FrameSource for a URI, opened; with no URI, the default camera (csi://0, else the first /dev/video*).
    Errors name `what` (the CLI passes its flag, --source)."""
    if text is None:
        text, looked = find_default_camera()
        if text is None:
            raise SDKError(f"{what}: no camera found (looked for: {'; '.join(looked)}), expected a camera "
                           f"(csi://0, /dev/video0), a stream (rtsp://host/path), a video file, an image, "
                           f"a folder or a glob")
    uri = parse_uri(text, what)
    if uri.protocol in ("image", "folder", "glob"):
        return ImageSource(uri).open()
    if uri.protocol in ("file", "csi", "v4l2", "rtsp", "rtmp", "udp", "http", "https"):
        return CaptureSource(uri).open()
    raise SDKError(f"{what} {text}: got protocol '{uri.protocol}://', expected csi://, v4l2://, /dev/videoN, "
                   f"rtsp://, a file, a folder or a glob")


class ReconnectPolicy(NamedTuple):
    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delays(self):
        d = self.first_delay_s
        for _ in range(self.attempts):
            yield d
            d = min(d * 2, self.max_delay_s)


class ThreadedCapture:
    """Read a FrameSource in a background thread. Iterate (or `get()`) for `Frame`s; `None` marks the end.

    queue_size defaults to 1 for live sources (latest-frame policy: a new frame replaces a waiting one, which is
    counted as dropped) and 8 for files (the reader waits for the consumer, nothing is ever dropped).
    """

    def __init__(self, source, loop=False, queue_size=None, reconnect=ReconnectPolicy(), max_frames=None):
        self.source, self.loop, self.reconnect = source, loop, reconnect
        self.live = source.live
        self.max_frames = max_frames
        self.queue = queue.Queue(maxsize=queue_size or (1 if self.live else 8))
        self.stop_event = threading.Event()
        self.stats = {"frames_read": 0, "frames_dropped": 0, "frames_corrupt": 0, "reconnects": 0, "loops": 0}
        self.end_reason = None
        self.error = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self.stop_event.set()

    def join(self, timeout=5.0):
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        if not self._thread.is_alive():  # a reader stuck in a driver call keeps its handle (daemon thread)
            self.source.close()

    def get(self, timeout=None):
        """The next Frame, or None when the source has ended (or the capture was stopped)."""
        while True:
            try:
                return self.queue.get(timeout=0.1 if timeout is None else timeout)
            except queue.Empty:
                if timeout is not None or self.stop_event.is_set():
                    return None

    def __iter__(self):
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    def _run(self):
        try:
            self._read_loop()
        except Exception as e:  # surfaced by the pipeline as a one-line error
            self.error = e
            self.end_reason = f"capture failed: {e}"
        finally:
            self._put_end()

    def _read_loop(self):
        index = 0
        while not self.stop_event.is_set():
            if self.max_frames is not None and self.stats["frames_read"] >= self.max_frames:
                self.end_reason = "max frames read"
                return
            status, image = self.source.read()
            if status == OK:
                self._put(Frame(index, image, time.perf_counter()))
                self.stats["frames_read"] += 1
                index += 1
            elif status == CORRUPT:
                self.stats["frames_corrupt"] += 1
            elif status == END:
                if not self.loop:
                    self.end_reason = "end of source"
                    return
                self.stats["loops"] += 1
                self.source.reopen()
            elif status == LOST and not self._reconnect():
                return

    def _reconnect(self):
        for attempt, delay in enumerate(self.reconnect.delays(), 1):
            if self.stop_event.wait(delay):
                return False
            try:
                self.source.reopen()
            except SDKError:
                continue
            self.stats["reconnects"] += 1
            return True
        self.end_reason = f"stream lost, {self.reconnect.attempts} reconnect attempts failed"
        return False

    def _put(self, frame):
        if self.live:  # latest-frame policy: replace the waiting frame, never block the camera
            with self._lock:
                try:
                    self.queue.put_nowait(frame)
                except queue.Full:
                    try:
                        self.queue.get_nowait()
                        self.stats["frames_dropped"] += 1
                    except queue.Empty:
                        pass
                    self.queue.put_nowait(frame)
            return
        while not self.stop_event.is_set():  # files: wait for the consumer, never drop
            try:
                self.queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def _put_end(self):
        self.stop_event.set()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass  # the consumer sees stop_event with an empty queue after draining

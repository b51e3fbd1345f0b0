"""The latest annotated frame, shared between one producer (the pipeline) and any number of viewers.

The producer only swaps a reference and wakes the viewers, so it never waits on the network. JPEG encoding
is lazy: the first viewer that asks for a frame encodes it, the others reuse those bytes, and with nobody
watching nothing is encoded. There is no per-viewer queue: a slow viewer simply gets the newest frame the
next time it asks, so memory stays at one raw frame plus one JPEG whatever the viewers do.
"""
import threading


class FrameHub:
    def __init__(self, jpeg_quality=80):
        self.jpeg_quality = int(jpeg_quality)
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()  # one encoder at a time, so each frame is encoded once
        self._frame = None
        self._detections = None
        self._stats = {}
        self._seq = 0
        self._jpeg = (0, None)  # (seq, bytes) of the last encoded frame
        self.frames_encoded = 0
        self.closed = False

    def publish(self, frame_bgr, detections, stats):
        """Hand over the newest frame; returns at once. The frame must not be modified afterwards."""
        with self._cond:
            self._frame, self._detections, self._stats = frame_bgr, detections, stats
            self._seq += 1
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def seq(self):
        return self._seq

    def latest(self):
        """(seq, detections, stats) of the newest frame; detections is None before the first frame."""
        with self._cond:
            return self._seq, self._detections, self._stats

    def wait_newer(self, seq, timeout):
        """Block until a frame newer than `seq` exists (True), or timeout/close (False)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seq or self.closed, timeout)
            return self._seq > seq and not self.closed

    def jpeg(self):
        """(seq, JPEG bytes) of the newest frame, encoded at most once per frame; (0, None) before any frame."""
        import cv2  # noqa: PLC0415  (runtime dependency of the video path, imported where it is used)

        with self._encode_lock:
            with self._cond:
                seq, frame = self._seq, self._frame
            if frame is None or self._jpeg[0] == seq:
                return self._jpeg
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for a frame of shape {frame.shape}")
            self._jpeg = (seq, buf.tobytes())
            self.frames_encoded += 1
            return self._jpeg

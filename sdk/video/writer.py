"""An mp4 writer that only leaves a complete file behind (temporary name, renamed on close)."""
import os

import cv2

from ..errors import SDKError
from ..fileio import check_video_file, discard, sync_file, temp_beside, write_failed


class AtomicVideoWriter:
    """Frames go to a temporary file beside `path`; `close()` (or a clean `with` exit) renames it to `path`.

    An interrupted run should still leave a playable file, so callers that catch Ctrl-C call `close()`;
    `abort()`, or an exception inside a `with` block, discards the partial video.
    """

    def __init__(self, path, fps, size, fourcc="mp4v", gstreamer_pipeline=None):
        """`gstreamer_pipeline(tmp_path) -> str` encodes through GStreamer instead (the Jetson hardware encoder)."""
        self.path, self.fps, self.size = str(path), float(fps or 30.0), tuple(size)  # size = (width, height)
        self._tmp = temp_beside(path, "video output", suffix=os.path.splitext(str(path))[1] or ".mp4")
        if gstreamer_pipeline is not None:
            self.writer = cv2.VideoWriter(gstreamer_pipeline(self._tmp), cv2.CAP_GSTREAMER, 0, self.fps, self.size)
        else:
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
            try:  # OpenCV's writer reports no errors: a full disk shows only in the file
                sync_file(self._tmp)
                check_video_file(self._tmp, self.frames, "video output", shown=self.path)
            except OSError as e:
                discard(self._tmp)
                raise write_failed(self.path, e, "video output") from e
            except BaseException:
                discard(self._tmp)
                raise
            os.replace(self._tmp, self.path)

    def abort(self):
        if not self.closed:
            self.closed = True
            self.writer.release()
            discard(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close() if exc_type is None else self.abort()

"""`--output mosaic:<output>`: every stream tiled into one frame (a video wall), handed to another output.

    --output mosaic:runs/wall.mp4     --output mosaic:display://     --output mosaic:rtsp://@:8554/wall

Each stream keeps its tile (letterboxed into a common tile size, its name in the corner); a composed frame goes
to the inner output once every stream that is still running has delivered a new frame (one mosaic frame per
round of the batch), so the mosaic runs at the pace of the streams, not at their sum.
"""
import math

import cv2
import numpy as np

from ..detections import Detections
from ..errors import SDKError
from .sinks import Sink, create_sink, split_prefix

MAX_WIDTH = 1920  # the mosaic is scaled down to fit this width


class MosaicSink(Sink):
    def __init__(self, uri, token=None, **options):
        self.uri = uri
        inner = split_prefix(uri)[1]
        if split_prefix(inner)[0] is not None:
            raise SDKError(f"output {uri}: got a nested prefix, expected mosaic:<a video path, display://, "
                           f"rtsp://..., http://...>")
        self.inner = create_sink(inner, token=token, **options)
        self.inner.stream = None
        self.tiles = {}
        self.fresh = set()
        self.n = 1
        self.tile = None
        self.info = {}
        self.last_stats = {}

    def open(self, info):
        self.n = max(1, len(info.get("streams") or [info]))
        sizes = [s.get("size") for s in info.get("streams") or [info] if s.get("size")]
        w, h = sizes[0] if sizes else (640, 360)
        cols = math.ceil(math.sqrt(self.n))
        rows = math.ceil(self.n / cols)
        scale = min(1.0, MAX_WIDTH / (cols * w))
        self.tile = (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
        self.grid = (cols, rows)
        self.canvas = np.zeros((rows * self.tile[1], cols * self.tile[0], 3), np.uint8)
        fps = max([s.get("fps") or 0 for s in info.get("streams") or [info]] or [0]) or None
        self.info = {**{k: v for k, v in info.items() if k != "streams"},  # the inner output sees one stream
                     "size": (self.canvas.shape[1], self.canvas.shape[0]), "fps": fps,
                     "source": f"mosaic of {self.n} streams"}
        self.inner.open(self.info)

    def _place(self, index, frame):
        tw, th = self.tile
        h, w = frame.shape[:2]
        r = min(tw / w, th / h)
        small = cv2.resize(frame, (max(1, int(w * r)), max(1, int(h * r))), interpolation=cv2.INTER_AREA)
        col, row = index % self.grid[0], index // self.grid[0]
        x0, y0 = col * tw, row * th
        self.canvas[y0:y0 + th, x0:x0 + tw] = 0
        oy, ox = (th - small.shape[0]) // 2, (tw - small.shape[1]) // 2
        self.canvas[y0 + oy:y0 + oy + small.shape[0], x0 + ox:x0 + ox + small.shape[1]] = small

    def write(self, frame_bgr_annotated, detections, stats):
        index = int(stats.get("stream", 0))
        if index in self.fresh:  # a stream came round again: the others had their turn, show the wall
            self._emit()
        self._place(index, frame_bgr_annotated)
        self.fresh.add(index)
        self.last_stats = stats
        if len(self.fresh) >= self.n:
            self._emit()

    def _emit(self):
        self.fresh.clear()
        stats = {k: v for k, v in self.last_stats.items() if k not in ("stream", "stream_name")}
        self.inner.write(self.canvas.copy(), Detections.empty(), stats)

    @property
    def stop_requested(self):
        return getattr(self.inner, "stop_requested", False)

    def close(self):
        if self.fresh:
            self._emit()
        self.inner.close()

    def abort(self):
        (getattr(self.inner, "abort", None) or self.inner.close)()

"""What leaves the SDK about a frame: one JSON-lines record layout for `detect` and `camera`, and YOLO txt labels.

One layout so a consumer reads `detect --save-dir` and `camera --json` with the same code:
    {"source": str, "stream": int, "frame": int, "video_time": float | None, "wall_time": float,
     "detections": [{"xyxy": [x0, y0, x1, y1], "score": float, "class_id": int, "class_name": str,
                     "track_id": int (only when tracking)}],
     "counts": {class_name: n}, "events": [...] (only when line/zone counting produced some)}
`video_time` is the frame's position in the file (seconds) for files, the capture time since the stream opened for
live sources; `wall_time` is Unix time when the record was made. Boxes are in original-frame pixels, clipped to
the frame (as the official `clip_coords` does).
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

from .detections import Detections

RECORD_KEYS = ("source", "stream", "frame", "video_time", "wall_time", "detections", "counts")
DETECTION_KEYS = ("xyxy", "score", "class_id", "class_name")


def detection_list(dets: Detections, decimals: int = 2) -> list[dict]:
    """Detections as JSON-ready dicts (with `track_id` when the detections carry track ids)."""
    out = dets.to_list(decimals)
    track_ids = getattr(dets, "track_ids", None)
    if track_ids is not None:
        for d, t in zip(out, track_ids):
            d["track_id"] = int(t)
    return out


def frame_record(dets: Detections, *, source: str, frame: int, video_time: float | None = None,
                 wall_time: float | None = None, stream: int = 0, counts: dict | None = None,
                 events: Iterable[dict] | None = None) -> dict[str, Any]:
    """The one record layout (see the module docstring)."""
    rec = {"source": str(source), "stream": int(stream), "frame": int(frame),
           "video_time": None if video_time is None else round(float(video_time), 4),
           "wall_time": round(time.time() if wall_time is None else float(wall_time), 4),
           "detections": detection_list(dets), "counts": dets.counts() if counts is None else dict(counts)}
    events = list(events or ())
    if events:
        rec["events"] = events
    return rec


def check_record(rec: dict) -> None:
    """Raise ValueError when `rec` does not follow the layout (used by tests and by readers that want to fail
    early on files from another version)."""
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        raise ValueError(f"record: missing {', '.join(missing)}")
    if not isinstance(rec["frame"], int) or not isinstance(rec["stream"], int):
        raise ValueError("record: frame and stream must be ints")
    if rec["video_time"] is not None and not isinstance(rec["video_time"], (int, float)):
        raise ValueError("record: video_time must be a number or null")
    for d in rec["detections"]:
        if any(k not in d for k in DETECTION_KEYS) or len(d["xyxy"]) != 4:
            raise ValueError(f"record: detection {d} lacks {DETECTION_KEYS}")


def yolo_txt_lines(dets: Detections, width: int, height: int, with_conf: bool = False) -> list[str]:
    """Predictions as YOLO label lines `class cx cy w h [conf]`, normalised to the image, as Ultralytics writes
    them with `save_txt` (and `save_conf`), so they can be read back as labels."""
    if not len(dets):
        return []
    b = np.asarray(dets.boxes, np.float64)
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    cx, cy = (b[:, 0] + b[:, 2]) / 2 / width, (b[:, 1] + b[:, 3]) / 2 / height
    w, h = (b[:, 2] - b[:, 0]) / width, (b[:, 3] - b[:, 1]) / height
    lines = []
    for i in range(len(b)):
        fields = [str(int(dets.class_ids[i])), *(f"{v:.6f}" for v in (cx[i], cy[i], w[i], h[i]))]
        if with_conf:
            fields.append(f"{float(dets.scores[i]):.5f}")
        lines.append(" ".join(fields))
    return lines

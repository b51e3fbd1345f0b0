"""Line crossings and zone occupancy from tracks: what a door or a car-park camera is for.

A line `x1,y1,x2,y2` counts a track when its anchor point (bottom centre of the box by default: where a person
stands) moves from one side of the line to the other across the segment itself. Looking from (x1, y1) towards
(x2, y2), moving from the left-hand side to the right-hand side is `in`, the other way `out` (in image
coordinates: a line drawn left to right counts downward motion as `in`). A track is counted once per crossing:
its side is remembered and only a change of side past a small dead band (jitter of a box edge on the line) counts.

A zone is a polygon; a track is inside while its anchor is. Occupancy is the number of tracks inside now; the
dwell time of a track is from its first frame inside to its last, kept through a short absence (occlusion).
Coordinates are frame pixels, or fractions of the frame when every value is within [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import SDKError
from .bytetrack import ANCHORS, anchor_point, anchor_points

DEAD_BAND_PX = 2.0  # an anchor closer to the line than this keeps its previous side
ZONE_GRACE_S = 1.0  # a track unseen for less than this is still in the zone it was in


@dataclass(frozen=True)
class LineSpec:
    points: tuple  # (x1, y1, x2, y2)
    name: str = ""
    stream: int | None = None  # None: every stream
    anchor: str = "bottom_center"


@dataclass(frozen=True)
class ZoneSpec:
    points: tuple  # ((x, y), ...)
    name: str = ""
    stream: int | None = None
    anchor: str = "bottom_center"


def _numbers(text, what):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise SDKError(f"{what} {text}: got a value that is not a number, expected comma-separated numbers") \
            from None


def _stream_prefix(text):
    """`2:x1,y1,...` applies to stream 2 only; no prefix, to every stream."""
    head, sep, rest = text.partition(":")
    if sep and head.strip().isdigit():
        return int(head), rest
    return None, text


def parse_line(text: str, anchor: str = "bottom_center", what: str = "line") -> LineSpec:
    """`[stream:]x1,y1,x2,y2[,name]` -> LineSpec; `what` names the input in errors."""
    stream, body = _stream_prefix(str(text).strip())
    parts = body.split(",")
    name = ""
    if len(parts) == 5:
        name = parts.pop().strip()
    if len(parts) != 4:
        raise SDKError(f"{what} {text}: got {len(parts)} values, expected x1,y1,x2,y2[,name]")
    pts = tuple(_numbers(",".join(parts), what))
    if pts[:2] == pts[2:]:
        raise SDKError(f"{what} {text}: got two equal end points, expected a line with a length")
    _check_anchor(anchor, what)
    return LineSpec(pts, name or f"line{'' if stream is None else stream}", stream, anchor)


def parse_zone(text: str, anchor: str = "bottom_center", what: str = "zone") -> ZoneSpec:
    """`[stream:]x1,y1,x2,y2,x3,y3[,...][,name]` -> ZoneSpec (at least three corners)."""
    stream, body = _stream_prefix(str(text).strip())
    parts = body.split(",")
    name = ""
    try:
        float(parts[-1])
    except ValueError:
        name = parts.pop().strip()
    values = _numbers(",".join(parts), what)
    if len(values) < 6 or len(values) % 2:
        raise SDKError(f"{what} {text}: got {len(values)} numbers, expected x,y pairs of at least 3 corners")
    _check_anchor(anchor, what)
    return ZoneSpec(tuple(zip(values[::2], values[1::2])), name or "zone", stream, anchor)


def _check_anchor(anchor, what):
    if anchor not in ANCHORS:
        raise SDKError(f"{what} anchor: got '{anchor}', expected one of {', '.join(ANCHORS)}")


def _to_pixels(values, size):
    """Fractions of the frame (every value in [0, 1]) become pixels of a (w, h) frame."""
    arr = np.asarray(values, np.float64).reshape(-1, 2)
    if size and np.all((arr >= 0) & (arr <= 1)):
        arr = arr * np.asarray(size, np.float64)
    return arr


@dataclass
class LineCounter:
    """Counts tracks crossing one line, in and out, per class."""

    spec: LineSpec
    size: tuple | None = None  # (w, h) of the stream's frames, for fractional coordinates
    counts_in: dict = field(default_factory=dict)
    counts_out: dict = field(default_factory=dict)
    _side: dict = field(default_factory=dict)  # track id -> (side, last anchor)

    def __post_init__(self):
        self.a, self.b = _to_pixels(self.spec.points, self.size)
        self.name = self.spec.name

    def side(self, p) -> float:
        """Signed distance of a point from the line (positive: right-hand side looking from a to b)."""
        return float(self.sides(np.asarray(p, np.float64)[None])[0])

    def sides(self, points: np.ndarray) -> np.ndarray:
        """`side` of each of `(n, 2)` points."""
        d = self.b - self.a
        return (d[0] * (points[:, 1] - self.a[1]) - d[1] * (points[:, 0] - self.a[0])) / np.hypot(*d)

    def _crosses_segment(self, p, q) -> bool:
        """The move p -> q passes through the segment itself, not its extension."""
        d, e = self.b - self.a, np.asarray(q) - np.asarray(p)
        den = d[0] * e[1] - d[1] * e[0]
        if abs(den) < 1e-12:
            return False
        w = np.asarray(p) - self.a
        t = (w[0] * e[1] - w[1] * e[0]) / den  # position along the line segment
        return -1e-9 <= t <= 1 + 1e-9

    def update(self, track_ids, boxes, class_names) -> list:
        """Feed one frame's tracks; returns the crossings as [(track id, 'in'|'out', class name)]."""
        events = []
        points = anchor_points(boxes, self.spec.anchor)
        for tid, p, s, cls in zip(track_ids, points.tolist(), self.sides(points).tolist(), class_names):
            if tid < 0:
                continue
            p = tuple(p)
            state = self._side.get(tid)
            if abs(s) <= DEAD_BAND_PX:
                if state is not None:
                    continue  # on the line: keep the side it came from (and the point it left it at)
                self._side[tid] = (0.0, p)
                continue
            side = 1.0 if s > 0 else -1.0
            if state is not None and state[0] and state[0] != side and self._crosses_segment(state[1], p):
                direction = "in" if side > 0 else "out"
                table = self.counts_in if direction == "in" else self.counts_out
                table[cls] = table.get(cls, 0) + 1
                events.append((int(tid), direction, cls))
            self._side[tid] = (side, p)
        return events

    def forget(self, live_ids):
        """Drop the memory of tracks the tracker no longer has (bounded state on a long run)."""
        for tid in [t for t in self._side if t not in live_ids]:
            del self._side[tid]

    def totals(self) -> dict:
        return {"in": sum(self.counts_in.values()), "out": sum(self.counts_out.values()),
                "in_by_class": dict(self.counts_in), "out_by_class": dict(self.counts_out)}


@dataclass
class ZoneCounter:
    """Tracks inside one polygon now, entries, and dwell times."""

    spec: ZoneSpec
    size: tuple | None = None
    entries: int = 0
    _inside: dict = field(default_factory=dict)  # track id -> [first time inside, last time inside, class]
    _dwell_done: list = field(default_factory=list)  # dwell times of tracks that left (bounded)

    def __post_init__(self):
        self.polygon = _to_pixels(self.spec.points, self.size)
        self.name = self.spec.name
        self.now = []
        self.t = 0.0

    def contains(self, p) -> bool:
        """Even-odd rule point-in-polygon (the anchor on an edge counts as inside)."""
        x, y = p
        poly = self.polygon
        inside = False
        for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
            if (y1 > y) != (y2 > y):
                xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                if abs(xc - x) < 1e-9:
                    return True
                if xc > x:
                    inside = not inside
        return inside

    def update(self, track_ids, boxes, class_names, t: float) -> list:
        """Feed one frame at stream time `t` (s); returns [(track id, 'enter'|'leave', class name, dwell_s)]."""
        events, seen = [], set()
        self.t = t
        for tid, box, cls in zip(track_ids, boxes, class_names):
            if tid < 0 or not self.contains(anchor_point(box, self.spec.anchor)):
                continue
            seen.add(int(tid))
            if tid not in self._inside:
                self._inside[int(tid)] = [t, t, cls]
                self.entries += 1
                events.append((int(tid), "enter", cls, 0.0))
            else:
                self._inside[int(tid)][1] = t
        for tid in [k for k, v in self._inside.items() if k not in seen and t - v[1] > ZONE_GRACE_S]:
            first, last, cls = self._inside.pop(tid)
            self._dwell_done = (self._dwell_done + [last - first])[-1000:]
            events.append((tid, "leave", cls, round(last - first, 2)))
        self.now = sorted(seen)
        return events

    def occupancy(self, t: Optional[float] = None) -> dict:
        """Tracks inside now (by class), entries so far, each one's dwell at stream time `t` (default: the last
        update's)."""
        t = self.t if t is None else t
        by_class = {}
        for tid in self.now:
            cls = self._inside[tid][2]
            by_class[cls] = by_class.get(cls, 0) + 1
        dwell = {str(tid): round(t - self._inside[tid][0], 2) for tid in self.now}
        done = self._dwell_done
        return {"inside": len(self.now), "inside_by_class": by_class, "entries": self.entries,
                "dwell_s": dwell, "mean_dwell_s_of_left": round(float(np.mean(done)), 2) if done else 0.0}

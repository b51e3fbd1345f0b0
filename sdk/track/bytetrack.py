"""ByteTrack (Zhang et al., ECCV 2022): multi-object tracking by associating every detection box, weak ones too.

Per frame: every track's Kalman prediction is matched to the confident detections by IoU (Hungarian assignment,
IoU fused with the detection score); the tracks left over get a second chance against the low-score detections
(an occluded or blurred person the detector only half sees), which is what keeps their ids through a weak
detector's dips; new confident detections start tentative tracks that are confirmed when seen again; a track
without a match is kept as lost for `track_buffer` frames so a short occlusion does not change its id.

Why a small implementation here rather than a package: supervision pulls `opencv-python` (it would replace
JetPack's CUDA/GStreamer OpenCV) and dropped ByteTrack in 0.31; `trackers` and the official ByteTrack bring their
own dependency trees (the official one torch). This one needs numpy and scipy's linear_sum_assignment (scipy has
aarch64 wheels and is a `pip install -e '.[track]'` away), and is tested on scripted box sequences.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from ..deps import require
from ..errors import SDKError
from . import kalman

TENTATIVE, TRACKED, LOST, REMOVED = "tentative", "tracked", "lost", "removed"


@dataclass(frozen=True)
class TrackerConfig:
    """ByteTrack's parameters. The association thresholds are the paper's; the score thresholds are lower than
    its MOT17 ones (0.5 / 0.6): a YOLO score is objectness x class probability and runs lower than the
    detector ByteTrack was tuned on (the shared person model scores walking people 0.4-0.6; Ultralytics'
    ByteTrack defaults go down to 0.25)."""

    track_thresh: float = 0.4  # detections above this are "high"; below (down to low_thresh) "low"
    low_thresh: float = 0.1
    new_track_thresh: float = 0.45  # a new track needs a detection at least this confident
    match_thresh: float = 0.8  # max (1 - IoU x score) cost in the first association
    low_match_thresh: float = 0.5  # max (1 - IoU) cost in the second association (low-score boxes)
    tentative_match_thresh: float = 0.7  # tentative tracks vs what is left of the high boxes
    track_buffer: int = 30  # frames a lost track is kept (at 30 fps; scaled by the stream's frame rate)
    trail: int = 30  # anchor points kept per track for drawing

    def validate(self):
        for name in ("track_thresh", "low_thresh", "new_track_thresh", "match_thresh", "low_match_thresh",
                     "tentative_match_thresh"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SDKError(f"tracker {name}: got {v}, expected a value from 0 to 1")
        if self.low_thresh > self.track_thresh:
            raise SDKError(f"tracker low_thresh: got {self.low_thresh}, expected at most track_thresh "
                             f"({self.track_thresh})")
        if self.track_buffer < 0 or self.trail < 0:
            raise SDKError(f"tracker track_buffer/trail: got {self.track_buffer}/{self.trail}, expected >= 0")
        return self


class Track:
    """One object over time: Kalman state, class, score, the frames it was seen in, its recent trail."""

    def __init__(self, xyxy, score, class_id, frame, trail):
        self.mean, self.cov = kalman.initiate(kalman.xyxy_to_xyah(np.asarray(xyxy, np.float64)))
        self.score, self.class_id = float(score), int(class_id)
        self.track_id = -1  # given when confirmed
        self.state = TENTATIVE
        self.start_frame = self.last_frame = frame
        self.hits = 1
        self.trail = collections.deque(maxlen=max(trail, 1))

    @property
    def xyxy(self) -> np.ndarray:
        return kalman.xyah_to_xyxy(self.mean[:4])

    def seen(self, score, class_id, frame):
        """What a match sets besides the Kalman state (ByteTracker corrects all matched states at once)."""
        self.score, self.class_id = float(score), int(class_id)
        self.last_frame = frame
        self.hits += 1


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of `(n, 4)` and `(m, 4)` xyxy boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def assign(cost: np.ndarray, thresh: float):
    """Minimum-cost matching keeping only pairs with cost <= thresh: (pairs, unmatched rows, unmatched cols)."""
    rows, cols = cost.shape
    if not rows or not cols:
        return [], list(range(rows)), list(range(cols))
    lsa = require("scipy.optimize", "track (ByteTrack's assignment)").linear_sum_assignment
    # Pairs above the threshold may not be matched at all: pricing them out keeps the optimum among the rest.
    r, c = lsa(np.where(cost > thresh, thresh + 1e4, cost))
    pairs = [(i, j) for i, j in zip(r, c) if cost[i, j] <= thresh]
    matched_r, matched_c = {i for i, _ in pairs}, {j for _, j in pairs}
    return pairs, [i for i in range(rows) if i not in matched_r], [j for j in range(cols) if j not in matched_c]


class ByteTracker:
    """`update(boxes, scores, class_ids) -> track ids` (one per box, -1 for boxes no confirmed track owns).

    Class-aware: a track only ever matches boxes of its own class.
    """

    def __init__(self, config: TrackerConfig | None = None, frame_rate: float = 30.0):
        self.config = (config or TrackerConfig()).validate()
        require("scipy.optimize", "track (ByteTrack's assignment)")  # fail at start, not at the first box
        self.max_lost = max(1, int(round((frame_rate or 30.0) / 30.0 * self.config.track_buffer)))
        self.frame = 0
        self.tracks: list[Track] = []  # tentative, tracked and lost
        self._next_id = 1

    def active(self) -> list[Track]:
        """Confirmed tracks seen in the latest frame."""
        return [t for t in self.tracks if t.state == TRACKED and t.last_frame == self.frame]

    def update(self, boxes, scores, class_ids) -> np.ndarray:
        cfg = self.config
        self.frame += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        class_ids = np.asarray(class_ids, np.int64).reshape(-1)
        ids = np.full(len(boxes), -1, np.int64)
        matched = []  # (track, box index): Kalman-corrected together once the three associations are done
        feet = list(map(tuple, anchor_points(boxes).tolist()))  # trail points of every box, in one pass
        high = np.flatnonzero(scores >= cfg.track_thresh)
        low = np.flatnonzero((scores > cfg.low_thresh) & (scores < cfg.track_thresh))

        self._predict()
        confirmed = [t for t in self.tracks if t.state in (TRACKED, LOST)]
        tentative = [t for t in self.tracks if t.state == TENTATIVE]

        # 1. confirmed and lost tracks vs confident boxes, IoU weighted by the box score
        cost = self._cost(confirmed, boxes[high], class_ids[high], scores[high])
        pairs, left_tracks, left_high = assign(cost, cfg.match_thresh)
        for ti, di in pairs:
            self._match(confirmed[ti], high[di], feet, scores, class_ids, ids, matched)
        # 2. tracks still unmatched (only those seen last frame) vs the weak boxes, plain IoU
        remaining = [confirmed[i] for i in left_tracks if confirmed[i].state == TRACKED]
        cost = self._cost(remaining, boxes[low], class_ids[low])
        pairs, left_remaining, _ = assign(cost, cfg.low_match_thresh)
        for ti, di in pairs:
            self._match(remaining[ti], low[di], feet, scores, class_ids, ids, matched)
        for i in left_remaining:
            remaining[i].state = LOST
        # 3. tentative tracks vs the confident boxes nobody took; unmatched tentative tracks are dropped
        high = high[left_high]
        cost = self._cost(tentative, boxes[high], class_ids[high], scores[high])
        pairs, left_tentative, left_high = assign(cost, cfg.tentative_match_thresh)
        for ti, di in pairs:
            self._match(tentative[ti], high[di], feet, scores, class_ids, ids, matched)
        for i in left_tentative:
            tentative[i].state = REMOVED
        # a matched track's state is read by no later association (each stage takes unmatched tracks only)
        self._correct(matched, boxes)
        # 4. new tracks from confident boxes still unclaimed (confirmed at once on the first frame, as ByteTrack)
        for di in high[left_high]:
            if scores[di] >= cfg.new_track_thresh:
                track = Track(boxes[di], scores[di], class_ids[di], self.frame, cfg.trail)
                if self.frame == 1:
                    self._confirm(track)
                    ids[di] = track.track_id
                track.trail.append(feet[di])
                self.tracks.append(track)
        # 5. forget tracks lost for too long
        for t in self.tracks:
            if t.state == LOST and self.frame - t.last_frame > self.max_lost:
                t.state = REMOVED
        self.tracks = [t for t in self.tracks if t.state != REMOVED]
        return ids

    def _predict(self):
        moving = self.tracks
        if not moving:
            return
        means = np.stack([t.mean for t in moving])
        # A track not seen last frame keeps its velocity but not its height change (ByteTrack zeroes vh).
        means[np.array([t.state != TRACKED for t in moving]), 7] = 0.0
        means, covs = kalman.predict(means, np.stack([t.cov for t in moving]))
        for t, m, c in zip(moving, means, covs):
            t.mean, t.cov = m, c

    @staticmethod
    def _correct(matched, boxes):
        if not matched:
            return
        tracks = [t for t, _ in matched]
        z = kalman.xyxy_to_xyah(boxes[[di for _, di in matched]])
        means, covs = kalman.update_many(np.stack([t.mean for t in tracks]), np.stack([t.cov for t in tracks]), z)
        for t, m, c in zip(tracks, means, covs):
            t.mean, t.cov = m, c

    def _cost(self, tracks, boxes, class_ids, scores=None):
        if not tracks or not len(boxes):
            return np.zeros((len(tracks), len(boxes)))
        iou = iou_matrix(kalman.xyah_to_xyxy(np.stack([t.mean[:4] for t in tracks])), boxes)
        if scores is not None:  # ByteTrack's fuse_score: a confident box is a better match at the same IoU
            iou = iou * scores[None, :]
        cost = 1.0 - iou
        cost[np.array([t.class_id for t in tracks])[:, None] != class_ids[None, :]] = 1.0 + 1e-6
        return cost

    def _match(self, track, di, feet, scores, class_ids, ids, matched):
        track.seen(scores[di], class_ids[di], self.frame)
        matched.append((track, di))
        if track.state in (TENTATIVE, LOST):
            if track.track_id < 0:
                self._confirm(track)
            track.state = TRACKED
        track.trail.append(feet[di])
        ids[di] = track.track_id

    def _confirm(self, track):
        track.state = TRACKED
        track.track_id = self._next_id
        self._next_id += 1


# the point of a box that counts as its position, from its corners (scalars or arrays alike)
_ANCHOR_XY = {"bottom_center": lambda x1, y1, x2, y2: ((x1 + x2) / 2, y2),
              "center": lambda x1, y1, x2, y2: ((x1 + x2) / 2, (y1 + y2) / 2),
              "top_center": lambda x1, y1, x2, y2: ((x1 + x2) / 2, y1),
              "bottom_left": lambda x1, y1, x2, y2: (x1, y2),
              "bottom_right": lambda x1, y1, x2, y2: (x2, y2)}
ANCHORS = tuple(_ANCHOR_XY)


def anchor_point(xyxy, anchor: str = "bottom_center") -> tuple:
    """The point of a box that counts as its position (feet for people seen from the side: bottom centre)."""
    return _ANCHOR_XY[anchor](*(float(v) for v in xyxy))


def anchor_points(boxes, anchor: str = "bottom_center") -> np.ndarray:
    """`anchor_point` of every `(n, 4)` box as an `(n, 2)` float64 array (the same arithmetic, one numpy pass)."""
    return np.stack(_ANCHOR_XY[anchor](*np.asarray(boxes, np.float64).reshape(-1, 4).T), axis=1)

"""The batched tracker (one Kalman correction for all matched tracks, predicted boxes from stacked states) gives
what the per-track implementation gave: the same ids, states and trails, and the same Kalman states to rounding.

The original per-track code is kept here, frozen, as the reference (as tests/test_prepost_equivalence.py keeps
the original pre/post-processing): one Kalman update per matched track, done as soon as the track is matched,
and each track's box computed on its own. Both run on crowded scripted scenes (40 people walking, crossing,
detector dips to low scores, missed frames, two classes) and on the shared model's detections on the shared
person video.
"""
import numpy as np
import pytest

from sdk.track import ByteTracker, TrackerConfig
from sdk.track import kalman
from sdk.track.bytetrack import LOST, REMOVED, TENTATIVE, TRACKED, Track, anchor_point, assign, iou_matrix

pytest.importorskip("scipy.optimize", reason="--track needs scipy (pip install -e '.[track]')")

_H = np.eye(4, 8)


def reference_kalman_update(mean, cov, measurement):
    """sdk.track.kalman.update before batching: one track."""
    h = mean[3]
    r = np.diag(np.array([kalman.STD_POSITION * h, kalman.STD_POSITION * h, 1e-1, kalman.STD_POSITION * h]) ** 2)
    s = _H @ cov @ _H.T + r
    gain = np.linalg.solve(s, (cov @ _H.T).T).T
    mean = mean + gain @ (measurement - _H @ mean)
    cov = cov - gain @ s @ gain.T
    return mean, cov


class ReferenceByteTracker(ByteTracker):
    """ByteTracker.update as it was: each matched track corrected at once, boxes one track at a time."""

    def update(self, boxes, scores, class_ids):
        cfg = self.config
        self.frame += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        class_ids = np.asarray(class_ids, np.int64).reshape(-1)
        ids = np.full(len(boxes), -1, np.int64)
        high = np.flatnonzero(scores >= cfg.track_thresh)
        low = np.flatnonzero((scores > cfg.low_thresh) & (scores < cfg.track_thresh))
        self._ref_predict()
        confirmed = [t for t in self.tracks if t.state in (TRACKED, LOST)]
        tentative = [t for t in self.tracks if t.state == TENTATIVE]
        cost = self._ref_cost(confirmed, boxes[high], class_ids[high], scores[high])
        pairs, left_tracks, left_high = assign(cost, cfg.match_thresh)
        for ti, di in pairs:
            self._ref_match(confirmed[ti], high[di], boxes, scores, class_ids, ids)
        remaining = [confirmed[i] for i in left_tracks if confirmed[i].state == TRACKED]
        cost = self._ref_cost(remaining, boxes[low], class_ids[low])
        pairs, left_remaining, _ = assign(cost, cfg.low_match_thresh)
        for ti, di in pairs:
            self._ref_match(remaining[ti], low[di], boxes, scores, class_ids, ids)
        for i in left_remaining:
            remaining[i].state = LOST
        high = high[left_high]
        cost = self._ref_cost(tentative, boxes[high], class_ids[high], scores[high])
        pairs, left_tentative, left_high = assign(cost, cfg.tentative_match_thresh)
        for ti, di in pairs:
            self._ref_match(tentative[ti], high[di], boxes, scores, class_ids, ids)
        for i in left_tentative:
            tentative[i].state = REMOVED
        for di in high[left_high]:
            if scores[di] >= cfg.new_track_thresh:
                track = Track(boxes[di], scores[di], class_ids[di], self.frame, cfg.trail)
                if self.frame == 1:
                    self._confirm(track)
                    ids[di] = track.track_id
                track.trail.append(anchor_point(boxes[di]))
                self.tracks.append(track)
        for t in self.tracks:
            if t.state == LOST and self.frame - t.last_frame > self.max_lost:
                t.state = REMOVED
        self.tracks = [t for t in self.tracks if t.state != REMOVED]
        return ids

    def _ref_predict(self):
        moving = self.tracks
        if not moving:
            return
        means = np.stack([t.mean for t in moving])
        for i, t in enumerate(moving):
            if t.state != TRACKED:
                means[i, 7] = 0.0
        means, covs = kalman.predict(means, np.stack([t.cov for t in moving]))
        for t, m, c in zip(moving, means, covs):
            t.mean, t.cov = m, c

    @staticmethod
    def _ref_cost(tracks, boxes, class_ids, scores=None):
        if not tracks or not len(boxes):
            return np.zeros((len(tracks), len(boxes)))
        iou = iou_matrix(np.stack([kalman.xyah_to_xyxy(t.mean[:4]) for t in tracks]), boxes)
        if scores is not None:
            iou = iou * scores[None, :]
        cost = 1.0 - iou
        cost[np.array([t.class_id for t in tracks])[:, None] != class_ids[None, :]] = 1.0 + 1e-6
        return cost

    def _ref_match(self, track, di, boxes, scores, class_ids, ids):
        track.mean, track.cov = reference_kalman_update(track.mean, track.cov,
                                                        kalman.xyxy_to_xyah(np.asarray(boxes[di], np.float64)))
        track.score, track.class_id = float(scores[di]), int(class_ids[di])
        track.last_frame = self.frame
        track.hits += 1
        if track.state in (TENTATIVE, LOST):
            if track.track_id < 0:
                self._confirm(track)
            track.state = TRACKED
        track.trail.append(anchor_point(boxes[di]))
        ids[di] = track.track_id


def crowd(seed, people=40, frames=120):
    """People walking at their own speeds through a 1920x1080 frame: paths cross, the detector's score dips
    below the high threshold now and then, some frames miss a person, one in five is another class."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [1800, 950], (people, 2))
    vel = rng.uniform(-6, 6, (people, 2))
    size = rng.uniform([25, 60], [80, 200], (people, 2))
    cls = (rng.uniform(size=people) < 0.2).astype(np.int64)
    out = []
    for f in range(frames):
        seen = rng.uniform(size=people) > 0.08
        xy = start + vel * f + rng.normal(0, 1.5, (people, 2))
        boxes = np.concatenate([xy, xy + size], 1)[seen].astype(np.float32)
        scores = np.where(rng.uniform(size=people) < 0.15, rng.uniform(0.12, 0.39, people),
                          rng.uniform(0.41, 0.95, people))[seen].astype(np.float32)
        out.append((boxes, scores, cls[seen]))
    return out


def assert_same_tracking(sequence, config=None, frame_rate=30.0):
    new, ref = ByteTracker(config, frame_rate), ReferenceByteTracker(config, frame_rate)
    confirmed = 0
    for f, (boxes, scores, cls) in enumerate(sequence):
        a, b = new.update(boxes, scores, cls), ref.update(boxes, scores, cls)
        assert a.tolist() == b.tolist(), f"frame {f}: ids differ"
        assert [(t.track_id, t.state, t.hits, t.last_frame, t.class_id) for t in new.tracks] == \
            [(t.track_id, t.state, t.hits, t.last_frame, t.class_id) for t in ref.tracks], f"frame {f}"
        for tn, tr in zip(new.tracks, ref.tracks):
            np.testing.assert_allclose(tn.mean, tr.mean, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(tn.cov, tr.cov, rtol=1e-9, atol=1e-9)
            assert list(tn.trail) == list(tr.trail)
        confirmed += int((a >= 0).sum())
    return confirmed, new


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crowded_scenes_track_exactly_as_before(seed):
    sequence = crowd(seed)
    confirmed, tracker = assert_same_tracking(sequence)
    assert confirmed > 0.7 * sum(len(s) for s, _, _ in sequence)  # the scene really was tracked
    assert tracker._next_id - 1 >= 40 and any(t.state == LOST for t in tracker.tracks)


def test_a_short_buffer_and_other_thresholds_track_exactly_as_before():
    cfg = TrackerConfig(track_thresh=0.6, low_thresh=0.2, new_track_thresh=0.65, track_buffer=5)
    confirmed, tracker = assert_same_tracking(crowd(3, people=25, frames=90), cfg, frame_rate=10.0)
    assert confirmed > 0 and tracker._next_id - 1 > 25  # lost tracks expired and people got new ids


def test_the_shared_video_tracks_exactly_as_before(onnx_model, person_video):
    import cv2

    from sdk.detector import Detector

    cap = cv2.VideoCapture(str(person_video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 410)  # a person walks to the door and out (frame ~440)
    with Detector(str(onnx_model), backend="ort", conf=0.1) as det:
        sequence = []
        for _ in range(40):
            ok, frame = cap.read()
            assert ok
            d = det(frame)
            sequence.append((d.boxes, d.scores, d.class_ids))
    cap.release()
    confirmed, _ = assert_same_tracking(sequence, frame_rate=10.0)
    assert confirmed >= 30


def test_kalman_correction_of_many_tracks_equals_one_at_a_time():
    rng = np.random.default_rng(5)
    means = np.c_[rng.uniform(0, 1000, (30, 2)), rng.uniform(0.2, 1, 30), rng.uniform(20, 300, 30),
                  rng.normal(0, 3, (30, 4))]
    covs = np.stack([kalman.initiate(m[:4])[1] for m in means])
    means, covs = kalman.predict(means, covs)
    z = means[:, :4] + rng.normal(0, 2, (30, 4))
    new_means, new_covs = kalman.update_many(means, covs, z)
    for i in range(30):
        m, c = reference_kalman_update(means[i], covs[i], z[i])
        np.testing.assert_allclose(new_means[i], m, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(new_covs[i], c, rtol=1e-12, atol=1e-9)
    assert kalman.update_many(means[:0], covs[:0], z[:0])[0].shape == (0, 8)


def test_anchors_and_line_sides_of_many_boxes_equal_one_at_a_time():
    from sdk.track import LineCounter, parse_line
    from sdk.track.bytetrack import ANCHORS, anchor_points

    boxes = crowd(4, people=30, frames=1)[0][0]
    line = LineCounter(parse_line("100.5,40,1700,990.25,diagonal"))
    for anchor in ANCHORS:
        points = anchor_points(boxes, anchor)
        assert [tuple(p) for p in points.tolist()] == [anchor_point(b, anchor) for b in boxes]
        sides = line.sides(points).tolist()
        reference = [float((d[0] * (p[1] - line.a[1]) - d[1] * (p[0] - line.a[0])) / np.hypot(*d))
                     for d in [line.b - line.a] for p in (anchor_point(b, anchor) for b in boxes)]
        assert sides == reference and any(s > 0 for s in sides) and any(s < 0 for s in sides)

"""Drawing tracks (id and trail), count lines and zones on BGR frames."""
import functools
import itertools

import cv2
import numpy as np

LINE_COLOR = (0, 215, 255)  # amber
ZONE_COLOR = (255, 160, 0)


@functools.lru_cache(maxsize=4096)  # a generator per call cost ~15 us a track a frame
def track_color(track_id):
    rng = np.random.default_rng(int(track_id) * 104729 + 3)
    return tuple(int(v) for v in rng.integers(80, 256, 3))


def draw_tracks(img, detections, tracker):
    """Trails of the tracks seen in this frame, and `#id` above each tracked box."""
    if detections.track_ids is None:
        return img
    trails = {t.track_id: t.trail for t in tracker.tracks if t.track_id >= 0}
    for box, tid in zip(detections.boxes, detections.track_ids):
        if tid < 0:
            continue
        color = track_color(tid)
        trail = trails.get(int(tid))
        if trail and len(trail) > 1:
            flat = np.fromiter(itertools.chain.from_iterable(trail), np.float64, 2 * len(trail))  # asarray: 2x
            pts = np.round(flat).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_8)  # anti-aliased: 5x the time (26 us a trail)
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        label = f"#{int(tid)}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        ty = min(max(y2, th + base), img.shape[0] - 1)
        cv2.rectangle(img, (x1, ty - th - base), (x1 + tw + 4, ty), color, -1)
        cv2.putText(img, label, (x1 + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _label(img, text, org, color):
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    x = int(min(max(org[0], 0), max(img.shape[1] - tw - 6, 0)))
    y = int(min(max(org[1], th + base + 4), img.shape[0] - 2))
    cv2.rectangle(img, (x, y - th - base - 4), (x + tw + 6, y), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 3, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.55, color, 1, cv2.LINE_AA)


def draw_lines(img, counters):
    for c in counters:
        a, b = (tuple(int(round(v)) for v in p) for p in (c.a, c.b))
        cv2.line(img, a, b, LINE_COLOR, 2, cv2.LINE_AA)
        t = c.totals()
        _label(img, f"{c.name}: in {t['in']} out {t['out']}", (min(a[0], b[0]), min(a[1], b[1]) - 4), LINE_COLOR)
    return img


def draw_zones(img, zones):
    for z in zones:
        pts = np.round(z.polygon).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, ZONE_COLOR, 2, cv2.LINE_AA)
        x, y = z.polygon.min(axis=0)
        _label(img, f"{z.name}: {len(z.now)} inside", (x + 4, y + 22), ZONE_COLOR)
    return img

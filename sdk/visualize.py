"""Drawing detections and an FPS/latency overlay on BGR frames."""
import cv2
import numpy as np


def class_color(cid):
    """A stable, distinct colour per class id."""
    rng = np.random.default_rng(int(cid) * 7919 + 17)
    return tuple(int(v) for v in rng.integers(64, 256, 3))


def draw_detections(img, dets, thickness=2):
    for box, score, cid in zip(dets.boxes, dets.scores, dets.class_ids):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        color = class_color(cid)
        cv2.rectangle(img, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        label = f"{dets.class_name(cid)} {score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        ty = max(y1, th + base)
        cv2.rectangle(img, (x1, ty - th - base), (x1 + tw, ty), color, -1)
        cv2.putText(img, label, (x1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def draw_overlay(img, lines):
    """Status text (FPS, latency) in the top-left corner on a dark box, readable on any background.

    A box rather than a thick black outline: OpenCV 5 renders thick text with a different advance, so an
    outline drawn under thin text no longer lines up with it.
    """
    y = 8
    for text in lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        cv2.rectangle(img, (4, y), (12 + tw, y + th + base + 6), (0, 0, 0), -1)
        cv2.putText(img, text, (8, y + th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        y += th + base + 8
    return img

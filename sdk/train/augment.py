"""Training images: load + resize, 4-image mosaic, random scale/translate, HSV jitter, horizontal flip, letterbox.

Boxes travel as (n, 5) arrays: class, x1, y1, x2, y2 in pixels of the current image.
"""
import cv2
import numpy as np

from ..data.images import read_image
from ..preprocess import letterbox

PAD = 114


def load_resized(sample, imgsz):
    """The image with its long side at `imgsz` (as official load_image) and its labels scaled alike."""
    img = read_image(sample.path)
    h0, w0 = img.shape[:2]
    r = imgsz / max(h0, w0)
    if r != 1:
        img = cv2.resize(img, (max(1, int(w0 * r)), max(1, int(h0 * r))),
                         interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    labels = np.zeros((len(sample.classes), 5), np.float32)
    if len(sample.classes):
        labels[:, 0] = sample.classes
        labels[:, 1:] = np.asarray(sample.boxes, np.float32).reshape(-1, 4) * np.array(
            [img.shape[1] / w0, img.shape[0] / h0] * 2, np.float32)
    return img, labels


def mosaic(samples, imgsz, rng):
    """Four images around a random centre on a 2*imgsz canvas."""
    s = imgsz
    canvas = np.full((2 * s, 2 * s, 3), PAD, np.uint8)
    yc, xc = (int(rng.uniform(0.5 * s, 1.5 * s)) for _ in range(2))
    out = []
    for k, sample in enumerate(samples):
        img, labels = load_resized(sample, s)
        h, w = img.shape[:2]
        if k == 0:  # top left
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b, x2b, y2b = w - (x2a - x1a), h - (y2a - y1a), w, h
        elif k == 1:  # top right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, 2 * s), yc
            x1b, y1b, x2b, y2b = 0, h - (y2a - y1a), min(w, x2a - x1a), h
        elif k == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(2 * s, yc + h)
            x1b, y1b, x2b, y2b = w - (x2a - x1a), 0, w, min(y2a - y1a, h)
        else:  # bottom right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, 2 * s), min(2 * s, yc + h)
            x1b, y1b, x2b, y2b = 0, 0, min(w, x2a - x1a), min(y2a - y1a, h)
        canvas[y1a:y2a, x1a:x2a] = img[y1b:y2b, x1b:x2b]
        labels = labels.copy()
        labels[:, [1, 3]] += x1a - x1b
        labels[:, [2, 4]] += y1a - y1b
        out.append(labels)
    labels = np.concatenate(out, 0)
    np.clip(labels[:, 1:], 0, 2 * s, out=labels[:, 1:])
    return canvas, labels


def random_affine(img, labels, out_size, rng, scale=0.5, translate=0.1, border=0):
    """Random zoom and shift about the centre into an out_size x out_size image (official random_perspective
    without rotation, shear or perspective, which hyp.scratch.tiny leaves at 0)."""
    h, w = img.shape[:2]
    c = np.eye(3)
    c[0, 2], c[1, 2] = -w / 2, -h / 2  # centre at the origin
    s = rng.uniform(1 - scale, 1 + scale)
    sm = np.diag([s, s, 1.0])
    t = np.eye(3)
    t[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_size
    t[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_size
    m = t @ sm @ c
    img = cv2.warpAffine(img, m[:2], (out_size, out_size), borderValue=(PAD, PAD, PAD))
    if len(labels):
        boxes = labels[:, 1:].copy()
        boxes = boxes * s + np.array([m[0, 2], m[1, 2]] * 2)
        boxes = np.clip(boxes, 0, out_size)
        before = (labels[:, 3] - labels[:, 1]) * s * (labels[:, 4] - labels[:, 2]) * s
        keep = box_candidates(boxes, before)
        labels = np.concatenate([labels[keep, :1], boxes[keep]], 1).astype(np.float32)
    return img, labels


def box_candidates(boxes, area_before, min_side=2, min_area_ratio=0.1, max_aspect=20):
    """Boxes still worth training on after cropping: a few pixels wide, >=10% of their area kept, not slivers."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    aspect = np.maximum(w / (h + 1e-16), h / (w + 1e-16))
    return (w > min_side) & (h > min_side) & (w * h / (area_before + 1e-16) > min_area_ratio) & (aspect < max_aspect)


def hsv_jitter(img, rng, hgain, sgain, vgain):
    """Random hue, saturation and value gains through lookup tables (in place)."""
    r = rng.uniform(-1, 1, 3) * [hgain, sgain, vgain] + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * r[0]) % 180).astype(np.uint8)
    lut_s = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * r[2], 0, 255).astype(np.uint8)
    merged = cv2.merge((cv2.LUT(hue, lut_h), cv2.LUT(sat, lut_s), cv2.LUT(val, lut_v)))
    cv2.cvtColor(merged, cv2.COLOR_HSV2BGR, dst=img)
    return img


def letterboxed(sample, imgsz):
    """Plain letterbox (validation look) with labels mapped into the padded image."""
    img, lb = letterbox(read_image(sample.path), (imgsz, imgsz))
    labels = np.zeros((len(sample.classes), 5), np.float32)
    if len(sample.classes):
        labels[:, 0] = sample.classes
        b = np.asarray(sample.boxes, np.float32).reshape(-1, 4)
        labels[:, [1, 3]] = b[:, [0, 2]] * lb.gain[0] + lb.pad[0]
        labels[:, [2, 4]] = b[:, [1, 3]] * lb.gain[1] + lb.pad[1]
    return img, labels


def training_image(dataset, index, imgsz, hyp, rng, augment=True):
    """(imgsz x imgsz BGR image, (n, 5) labels) for one training step."""
    if augment and rng.random() < hyp.get("mosaic", 0.0):
        others = rng.integers(0, len(dataset.samples), 3)
        img, labels = mosaic([dataset.samples[index]] + [dataset.samples[i] for i in others], imgsz, rng)
        img, labels = random_affine(img, labels, imgsz, rng, hyp["scale"], hyp["translate"])
    elif augment:
        img, labels = letterboxed(dataset.samples[index], imgsz)
        img, labels = random_affine(img, labels, imgsz, rng, hyp["scale"], hyp["translate"])
    else:
        img, labels = letterboxed(dataset.samples[index], imgsz)
    if augment:
        hsv_jitter(img, rng, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"])
        if rng.random() < hyp["fliplr"]:
            img = np.ascontiguousarray(img[:, ::-1])
            if len(labels):
                labels[:, [1, 3]] = imgsz - labels[:, [3, 1]]
    return img, labels


def to_batch(images_and_labels):
    """Images -> (B, 3, s, s) float32 RGB 0..1; labels -> (n, 6) image, class, cx, cy, w, h normalised."""
    imgs, targets = [], []
    for k, (img, labels) in enumerate(images_and_labels):
        s = img.shape[0]
        imgs.append(img[:, :, ::-1].transpose(2, 0, 1))
        if len(labels):
            t = np.zeros((len(labels), 6), np.float32)
            t[:, 0] = k
            t[:, 1] = labels[:, 0]
            t[:, 2] = (labels[:, 1] + labels[:, 3]) / 2 / s
            t[:, 3] = (labels[:, 2] + labels[:, 4]) / 2 / s
            t[:, 4] = (labels[:, 3] - labels[:, 1]) / s
            t[:, 5] = (labels[:, 4] - labels[:, 2]) / s
            targets.append(t)
    x = np.ascontiguousarray(np.stack(imgs), np.float32) / 255.0
    t = np.concatenate(targets, 0) if targets else np.zeros((0, 6), np.float32)
    return x, t

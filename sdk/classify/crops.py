"""A small two-class (person / background) folder dataset cut from detection labels, for tests and demos."""
from pathlib import Path

import cv2
import numpy as np

from ..data.images import read_image


def person_crops(dataset, out_root, max_images=None, min_side=32, seed=0):
    """A two-class folder dataset from detection labels: out_root/{person,background}/*.jpg.

    Person crops are the labelled boxes (non-crowd, both sides >= min_side); for each, one background crop of the
    same size (or half) at a random place that overlaps no labelled box. Small real data for classifier tests and demos.
    Returns {class: count}.
    """
    rng = np.random.default_rng(seed)
    out_root = Path(out_root)
    for c in ("person", "background"):
        (out_root / c).mkdir(parents=True, exist_ok=True)
    counts = {"person": 0, "background": 0}
    for sample in dataset.samples[:max_images]:
        img = read_image(sample.path)
        h, w = img.shape[:2]
        boxes = np.asarray(sample.boxes, np.float64).reshape(-1, 4)
        for j, (box, crowd) in enumerate(zip(boxes, sample.crowd)):
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            bw, bh = x1 - x0, y1 - y0
            if crowd or min(bw, bh) < min_side:
                continue
            cv2.imwrite(str(out_root / "person" / f"{sample.image_id}_{j}.jpg"), img[y0:y1, x0:x1])
            counts["person"] += 1
            for k in range(60):  # a free spot of the same size (then half the size), if the image has one
                cw, ch = (bw, bh) if k < 30 else (bw // 2, bh // 2)
                bx, by = int(rng.integers(0, max(1, w - cw))), int(rng.integers(0, max(1, h - ch)))
                if bx + cw <= w and by + ch <= h and not _overlaps((bx, by, bx + cw, by + ch), boxes):
                    cv2.imwrite(str(out_root / "background" / f"{sample.image_id}_{j}.jpg"),
                                img[by:by + ch, bx:bx + cw])
                    counts["background"] += 1
                    break
    return counts


def _overlaps(box, boxes):
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    return bool(np.any((ix > 0) & (iy > 0)))

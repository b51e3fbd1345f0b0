"""Per-channel feature-map statistics inside and outside the ground-truth boxes.

For every prunable layer's output (after its activation) and every channel: the mean and variance of the
activations on feature-map cells that fall inside a ground-truth box (MG, VG) and on the rest, the background
(MB, VB), pooled over the images. Feature-map clustering groups channels on these four numbers.
"""
import numpy as np

from ..data.images import read_image
from ..errors import SDKError
from ..preprocess import letterbox


class _Moments:
    """Running per-channel sums (float64) for a pooled mean and variance."""

    def __init__(self, channels):
        self.n = 0.0
        self.s = np.zeros(channels)
        self.ss = np.zeros(channels)

    def add(self, values, mask):
        # values: (C, H, W) torch tensor, mask: (H, W) torch bool
        count = int(mask.sum())
        if count == 0:
            return
        sel = values[:, mask].double()
        self.n += count
        self.s += sel.sum(1).numpy()
        self.ss += (sel * sel).sum(1).numpy()

    def mean_var(self):
        n = max(self.n, 1.0)
        mean = self.s / n
        return mean, np.maximum(self.ss / n - mean ** 2, 0.0)


def box_mask(boxes, stride, h, w):
    """Cells of an (h, w) map whose centres lie inside any of the xyxy boxes (network-input pixels)."""
    cy = (np.arange(h) + 0.5) * stride
    cx = (np.arange(w) + 0.5) * stride
    mask = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes:
        rows = (cy >= y1) & (cy <= y2)
        cols = (cx >= x1) & (cx <= x2)
        mask |= rows[:, None] & cols[None, :]
        if not rows.any() or not cols.any():  # a box smaller than a cell still marks the cell it sits in
            r = min(h - 1, int((y1 + y2) / 2 / stride))
            c = min(w - 1, int((x1 + x2) / 2 / stride))
            mask[r, c] = True
    return mask


def letterboxed_sample(sample, imgsz):
    """(1, 3, s, s) float32 input and the sample's boxes in input pixels."""
    img, lb = letterbox(read_image(sample.path), (imgsz, imgsz))
    x = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None], np.float32) / 255.0
    boxes = np.asarray(sample.boxes, np.float64).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]] * lb.gain[0] + lb.pad[0]
    boxes[:, [1, 3]] = boxes[:, [1, 3]] * lb.gain[1] + lb.pad[1]
    return x, boxes


def feature_map_stats(model, layers, dataset, imgsz=416, max_images=64, progress=True):
    """{layer name: (C, 4) array of MG, VG, MB, VB} for `layers` ({name: module}) over labelled images."""
    import torch

    from ..progress import progress_bar

    samples = [s for s in dataset.samples if len(s.boxes)][:max_images]
    if not samples:
        raise SDKError(f"data {dataset.root}: no image with a ground-truth box, expected labelled images "
                       f"for feature-map clustering")
    fg, bg, current = {}, {}, {}

    def hook(name):
        def fn(module, inputs, output):
            fmap = output[0].detach()
            c, h, w = fmap.shape
            if name not in fg:
                fg[name], bg[name] = _Moments(c), _Moments(c)
            mask = torch.from_numpy(box_mask(current["boxes"], imgsz / h, h, w))
            fg[name].add(fmap, mask)
            bg[name].add(fmap, ~mask)
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in progress_bar(samples, desc="feature maps", disable=not progress):
                x, current["boxes"] = letterboxed_sample(s, imgsz)
                model(torch.from_numpy(x))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = {}
    for name in layers:
        mg, vg = fg[name].mean_var()
        mb, vb = bg[name].mean_var()
        out[name] = np.stack([mg, vg, mb, vb], 1)
    return out

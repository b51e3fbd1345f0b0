"""Letterbox pre-processing, identical to the official YOLOv7 evaluation path.

Official test.py first resizes the long side to the input size (INTER_AREA when shrinking, INTER_LINEAR when
enlarging, sizes truncated with int()), then pads to the input shape with colour 114, centred. The same function
feeds inference, evaluation and INT8 calibration, so calibration sees exactly what inference sees.
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Letterbox:
    """How a frame maps into the network input: `net = orig * gain + pad`."""

    gain: tuple  # (gx, gy)
    pad: tuple  # (left, top)
    orig_shape: tuple  # (h, w)

    def to_original(self, xyxy):
        """Map `(n, 4)` xyxy boxes from network-input pixels back to the original image, clipped."""
        out = np.empty_like(xyxy)
        out[:, [0, 2]] = (xyxy[:, [0, 2]] - self.pad[0]) / self.gain[0]
        out[:, [1, 3]] = (xyxy[:, [1, 3]] - self.pad[1]) / self.gain[1]
        h, w = self.orig_shape
        # as the official clip_coords; fancy indexing copies, so assign (clip(out=...) would clip the copy)
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h)
        return out


def letterbox(img, shape, color=(114, 114, 114), scaleup=True):
    """Resize keeping the aspect ratio and pad to `shape` (h, w). Returns (image, Letterbox)."""
    h0, w0 = img.shape[:2]
    r = min(shape[0] / h0, shape[1] / w0)
    if not scaleup:
        r = min(r, 1.0)
    if r != 1:
        interp = cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR
        img = cv2.resize(img, (max(1, int(w0 * r)), max(1, int(h0 * r))), interpolation=interp)
    h, w = img.shape[:2]
    dw, dh = (shape[1] - w) / 2, (shape[0] - h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    if top or bottom or left or right:
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return img, Letterbox(gain=(w / w0, h / h0), pad=(left, top), orig_shape=(h0, w0))


class Preprocessor:
    """BGR frame -> `(1, 3, H, W)` float32 network input, from the model's metadata."""

    def __init__(self, meta, dtype=np.float32):
        self.shape = tuple(meta.imgsz)
        self.color = tuple(meta.letterbox_color)
        self.rgb = meta.channel_order.upper() == "RGB"
        self.scale = float(meta.scale)
        self.mean = np.asarray(meta.mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(meta.std, np.float32).reshape(3, 1, 1)
        self.plain = not self.mean.any() and np.all(self.std == 1)
        self.dtype = dtype

    def __call__(self, bgr):
        img, lb = letterbox(bgr, self.shape, self.color)
        if self.plain:
            # one C++ pass for HWC->NCHW, BGR->RGB and the scale, bit-identical to the numpy expression below
            # (tests/test_prepost_equivalence.py); numpy's transpose + astype + multiply + contiguous copy took
            # three strided passes over the frame
            x = cv2.dnn.blobFromImage(img, self.scale, swapRB=self.rgb)
        else:
            x = (img[:, :, ::-1] if self.rgb else img).transpose(2, 0, 1).astype(np.float32)[None]
            x *= self.scale
            x = (x - self.mean) / self.std
        return (x if x.dtype == self.dtype and x.flags.c_contiguous
                else np.ascontiguousarray(x, dtype=self.dtype)), lb

    def fingerprint(self):
        """What calibration caches are keyed on: any change here invalidates INT8 scales."""
        return {"imgsz": list(self.shape), "letterbox_color": list(self.color), "rgb": self.rgb,
                "scale": self.scale, "mean": self.mean.ravel().tolist(), "std": self.std.ravel().tolist(),
                "resize": "area-down-linear-up"}

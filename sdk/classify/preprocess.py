"""Frames to a classifier's input, as its metadata says (resize mode, crop fraction, colour, scale)."""
import cv2
import numpy as np

from ..errors import SDKError
from ..preprocess import letterbox
from .metadata import RESIZE_MODES


class ClassifyPreprocessor:
    """BGR frame -> (1, 3, H, W) network input; returns (x, None) like the detector's Preprocessor."""

    def __init__(self, meta, resize="center_crop", crop_fraction=0.875, dtype=np.float32):
        if resize not in RESIZE_MODES:
            raise SDKError(f"model resize mode: got '{resize}', expected one of {', '.join(RESIZE_MODES)}")
        self.shape = tuple(meta.imgsz)
        self.resize, self.crop_fraction = resize, float(crop_fraction)
        self.color = tuple(meta.letterbox_color)
        self.rgb = meta.channel_order.upper() == "RGB"
        self.scale = float(meta.scale)
        self.mean = np.asarray(meta.mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(meta.std, np.float32).reshape(3, 1, 1)
        self.dtype = dtype

    def resized(self, bgr):
        h, w = self.shape
        if self.resize == "letterbox":
            return letterbox(bgr, self.shape, self.color)[0]
        if self.resize == "stretch":
            return cv2.resize(bgr, (w, h), interpolation=_interp(bgr.shape[:2], self.shape))
        # centre crop: short side to size / crop_fraction, then the central h x w
        h0, w0 = bgr.shape[:2]
        r = max(h, w) / self.crop_fraction / min(h0, w0)
        nh, nw = max(h, round(h0 * r)), max(w, round(w0 * r))
        img = cv2.resize(bgr, (nw, nh), interpolation=_interp((h0, w0), (nh, nw)))
        top, left = (nh - h) // 2, (nw - w) // 2
        return img[top:top + h, left:left + w]

    def __call__(self, bgr):
        img = self.resized(bgr)
        if self.rgb:
            img = img[:, :, ::-1]
        x = img.transpose(2, 0, 1).astype(np.float32) * self.scale
        x = (x - self.mean) / self.std
        return np.ascontiguousarray(x[None], dtype=self.dtype), None

    def fingerprint(self):
        return {"imgsz": list(self.shape), "resize": self.resize, "crop_fraction": self.crop_fraction,
                "rgb": self.rgb, "scale": self.scale, "mean": self.mean.ravel().tolist(),
                "std": self.std.ravel().tolist()}


def _interp(src_hw, dst_hw):
    return cv2.INTER_AREA if dst_hw[0] * dst_hw[1] < src_hw[0] * src_hw[1] else cv2.INTER_LINEAR

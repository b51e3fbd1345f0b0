"""Letterbox pre-processing, identical to the official YOLOv7 evaluation path.

Official test.py first resizes the long side to the input size (INTER_AREA when shrinking, INTER_LINEAR when
enlarging, sizes truncated with int()), then pads to the input shape with colour 114, centred. The same function
feeds inference, evaluation and INT8 calibration, so calibration sees exactly what inference sees.

One exception, for real-time use on large frames: OpenCV's INTER_AREA at a non-integer ratio is a scalar loop
over every source pixel (for a 1080p frame a fifth of the network's time here: scripts/bench_prepost.py), while
its exact 2x case is vectorised. `resize="area-pyramid"` halves a frame that is at least twice the target with exact
2x2 means, then finishes with one INTER_AREA: same size and geometry, pixels within about a level on average,
detections equal within a pixel (tests/test_prepost_equivalence.py). Frames under twice the target (the shared
videos, every Penn-Fudan image the evaluation reads) get the one-pass resize either way, bit for bit. The camera
pipeline and `bench` use it (REALTIME_RESIZE); evaluation, calibration and training keep the official "area".
The official detect.py goes further and letterboxes with INTER_LINEAR, which aliases a 4x shrink.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import SDKError

RESIZES = ("area", "area-pyramid")  # the official one-pass INTER_AREA; exact 2x halvings first (large frames)
REALTIME_RESIZE = "area-pyramid"  # what the camera pipeline and `bench` use


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


def shrink_area_pyramid(img: np.ndarray, size: tuple) -> np.ndarray:
    """INTER_AREA to `size` (w, h) through exact 2x2 halvings while the frame stays at least twice the target
    (OpenCV's vectorised integer-ratio case), then one INTER_AREA for the rest of the ratio."""
    w, h = size
    while img.shape[1] >= 2 * w and img.shape[0] >= 2 * h and not img.shape[1] % 2 and not img.shape[0] % 2:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def letterbox(img, shape, color=(114, 114, 114), scaleup=True, resize: str = "area"):
    """Resize keeping the aspect ratio and pad to `shape` (h, w). Returns (image, Letterbox).
    `resize`: "area" (the official evaluation's) or "area-pyramid" (large frames, see the module's text)."""
    h0, w0 = img.shape[:2]
    r = min(shape[0] / h0, shape[1] / w0)
    if not scaleup:
        r = min(r, 1.0)
    if r != 1:
        size = (max(1, int(w0 * r)), max(1, int(h0 * r)))
        if r < 1 and resize == "area-pyramid":
            img = shrink_area_pyramid(img, size)
        else:
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if r < 1 else cv2.INTER_LINEAR)
    h, w = img.shape[:2]
    dw, dh = (shape[1] - w) / 2, (shape[0] - h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    if top or bottom or left or right:
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return img, Letterbox(gain=(w / w0, h / h0), pad=(left, top), orig_shape=(h0, w0))


class Preprocessor:
    """BGR frame -> `(1, 3, H, W)` float32 network input, from the model's metadata; for a model taking uint8
    `(1, H, W, 3)` bytes (`nhwc`, pixel scale 1: sdk.quant.byte_input) the letterboxed frame itself, with an opaque
    4th channel for `(1, H, W, 4)` RGBX (`channels` 4)."""

    def __init__(self, meta, dtype=np.float32, resize: str = "area", nhwc: bool = False, channels: int = 3):
        if resize not in RESIZES:
            raise SDKError(f"resize: got '{resize}', expected one of {', '.join(RESIZES)}")
        self.resize = resize
        self.shape = tuple(meta.imgsz)
        self.color = tuple(meta.letterbox_color)
        self.rgb = meta.channel_order.upper() == "RGB"
        self.scale = float(meta.scale)
        self.mean = np.asarray(meta.mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(meta.std, np.float32).reshape(3, 1, 1)
        self.plain = not self.mean.any() and np.all(self.std == 1)
        self.dtype = dtype
        # bytes in, bytes out: no float conversion, no NCHW planes (ResolvedModel.feed takes the NHWC array as is)
        self.bytes = nhwc and np.dtype(dtype) == np.uint8 and self.plain and self.scale == 1.0
        # an RGBX input (4 channels, the 4th ignored by the model) comes from the same one colour conversion
        self.conversion = {(True, 3): cv2.COLOR_BGR2RGB, (True, 4): cv2.COLOR_BGR2RGBA,
                           (False, 4): cv2.COLOR_BGR2BGRA}.get((self.rgb, channels))

    def __call__(self, bgr):
        img, lb = letterbox(bgr, self.shape, self.color, resize=self.resize)
        if self.bytes:
            if img.ndim != 3 or img.shape[2] != 3:
                raise SDKError(f"image: got shape {img.shape}, expected a 3-channel BGR image (h, w, 3)")
            conv = self.conversion
            return (cv2.cvtColor(img, conv) if conv is not None else np.ascontiguousarray(img))[None], lb
        if self.plain:
            # each channel plane converted into its NCHW slot (BGR->RGB by the order), then one in-place scale:
            # bit-identical to the numpy expression below and to cv2.dnn.blobFromImage for every byte value
            # (tests/test_prepost_equivalence.py), ~3x faster than blobFromImage at 416x416 (0.10 vs 0.27 ms)
            if img.ndim != 3 or img.shape[2] != 3:
                raise SDKError(f"image: got shape {img.shape}, expected a 3-channel BGR image (h, w, 3)")
            h, w = img.shape[:2]
            x = np.empty((1, 3, h, w), np.float32)
            planes = cv2.split(img)
            for i, plane in enumerate(planes[::-1] if self.rgb else planes):
                x[0, i] = plane
            x *= np.float32(self.scale)
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
                "resize": "area-down-linear-up" if self.resize == "area" else f"{self.resize}-down-linear-up"}

"""Pre/post-processing facts stored in the model file itself (ONNX `metadata_props`), so runners need no side file."""
import json
from dataclasses import asdict, dataclass, field, fields


@dataclass
class ModelMetadata:
    names: list = field(default_factory=list)
    imgsz: tuple = (640, 640)  # (height, width) the model was exported for
    stride: int = 32
    letterbox_color: tuple = (114, 114, 114)
    channel_order: str = "RGB"  # what the network expects; frames arrive BGR from OpenCV
    scale: float = 1 / 255.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    output_format: str = "yolo"  # (N, boxes, 5+nc): cx, cy, w, h (input pixels), objectness, class scores
    # other layouts: sdk.layouts.LAYOUTS; raw level maps decode with these anchors (per level, w h pairs, pixels)
    anchors: list = field(default_factory=list)
    task: str = "detect"
    input_name: str = "images"
    output_name: str = "output"
    precision: str = "fp32"
    source: str = ""
    # YOLO cfg layer indices per block ({"backbone": [...], "neck": [...], "head": [...]}); ONNX node names
    # carry the layer index as "model.N", so precision plans can select layers by block.
    blocks: dict = field(default_factory=dict)
    # How a frame becomes the input: detectors letterbox; classifiers usually centre-crop (ImageNet) or stretch.
    resize: str = "letterbox"
    crop_fraction: float = 0.875  # centre crop: resize the short side to size / crop_fraction, then crop

    PREFIX = "sdk."

    def to_props(self):
        """Flat string key/values for onnx `metadata_props`; values are JSON."""
        return {self.PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props):
        """Read from a `{key: str}` mapping; unknown keys are ignored, missing keys keep defaults."""
        known = {f.name for f in fields(cls)}
        kw = {}
        for key, raw in props.items():
            name = key[len(cls.PREFIX):] if key.startswith(cls.PREFIX) else None
            if name in known:
                try:
                    kw[name] = json.loads(raw)
                except (TypeError, ValueError):
                    kw[name] = raw
        for name in ("imgsz", "letterbox_color", "mean", "std"):
            if name in kw and isinstance(kw[name], list):
                kw[name] = tuple(kw[name])
        return cls(**kw)

    @property
    def has_sdk_props(self):
        return bool(self.names)

    def to_json(self):
        return asdict(self)

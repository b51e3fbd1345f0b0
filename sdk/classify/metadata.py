"""A classifier's description inside its ONNX file: the SDK metadata (task 'classify', input size, channel
order, scale/mean/std, 'logits' or 'probs') plus two classification keys in the same `metadata_props`:
`sdk.resize` ('center_crop' - the ImageNet recipe: resize the short side to size / crop_fraction, take the centre;
'stretch' - resize to the input, as Keras' image_dataset_from_directory does; 'letterbox' - keep the aspect
ratio and pad) and `sdk.crop_fraction`."""
import json

from ..errors import SDKError
from ..metadata import ModelMetadata

RESIZE_MODES = ("center_crop", "stretch", "letterbox")
OUTPUT_FORMATS = ("logits", "probs")


def classify_metadata(names, imgsz, output_format="logits", channel_order="RGB", scale=1 / 255.0,
                      mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), source="", precision="fp32"):
    if output_format not in OUTPUT_FORMATS:
        raise SDKError(f"classifier output format: got '{output_format}', expected one of {', '.join(OUTPUT_FORMATS)}")
    return ModelMetadata(names=list(names), imgsz=tuple(imgsz), stride=1, channel_order=channel_order, scale=scale,
                         mean=tuple(mean), std=tuple(std), output_format=output_format, task="classify",
                         input_name="images", output_name="output", source=source, precision=precision)


def set_classify_props(proto, meta, resize="center_crop", crop_fraction=0.875):
    """Write the metadata and the resize keys into an ONNX ModelProto's `metadata_props` (replacing sdk.* keys)."""
    if resize not in RESIZE_MODES:
        raise SDKError(f"classifier resize: got '{resize}', expected one of {', '.join(RESIZE_MODES)}")
    if not 0 < crop_fraction <= 1:
        raise SDKError(f"classifier crop fraction: got {crop_fraction}, expected a value in (0, 1]")
    keep = [p for p in proto.metadata_props if not p.key.startswith(ModelMetadata.PREFIX)]
    del proto.metadata_props[:]
    props = {**meta.to_props(), "sdk.resize": json.dumps(resize), "sdk.crop_fraction": json.dumps(crop_fraction)}
    for p in keep:
        proto.metadata_props.add(key=p.key, value=p.value)
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    return proto


def classify_extras(runner):
    """How the runner's model wants frames resized (`sdk.resize`, `sdk.crop_fraction` in its metadata)."""
    return {"resize": runner.metadata.resize, "crop_fraction": runner.metadata.crop_fraction}

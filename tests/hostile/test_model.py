"""Hostile ONNX files: metadata values and outputs are checked before anything trusts them.

The models are tiny generated graphs (a reshape of the input into YOLO rows) with SDK metadata: one metadata value
replaced (the metadata checks), or outputs that are NaN or mis-shaped, or an integer input type."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from .harness import assert_clean, assert_refused, noise_image, run_sdk

META = {"sdk.names": '["person"]', "sdk.imgsz": "[64, 64]", "sdk.stride": "32", "sdk.scale": "0.00392156862745098",
        "sdk.output_name": '"output"', "sdk.input_name": '"images"', "sdk.output_format": '"yolo"'}


def tiny_model(path, factor=None, out_shape=(1, 2048, 6), in_type=TensorProto.FLOAT, props=None, declared=None):
    """(1, 3, 64, 64) input reshaped into `out_shape` rows (times `factor` per column): a 'detector' in 3 nodes."""
    nodes, inits, x = [], [numpy_helper.from_array(np.asarray(out_shape, np.int64), "shape")], "images"
    if in_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["images"], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    nodes.append(helper.make_node("Reshape", [x, "shape"], ["rows"]))
    f = np.ones((1, 1, out_shape[-1]), np.float32) if factor is None else np.asarray(factor, np.float32)
    inits.append(numpy_helper.from_array(f.reshape(1, 1, -1), "factor"))
    nodes.append(helper.make_node("Mul", ["rows", "factor"], ["output"]))
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", in_type, [1, 3, 64, 64])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(declared or out_shape))],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    for k, v in {**META, **(props or {})}.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(path))
    return path


BAD_METADATA = [
    ("imgsz", "[-5, 0]", "sdk.imgsz"), ("imgsz", "[100000, 100000]", "sdk.imgsz"), ("imgsz", '"big"', "sdk.imgsz"),
    ("stride", "0", "sdk.stride"), ("scale", "NaN", "sdk.scale"), ("scale", "-1", "sdk.scale"),
    ("mean", "[1e30, 0, 0]", "sdk.mean"), ("std", "[0, 1, 1]", "sdk.std"), ("names", "person", "sdk.names"),
    ("names", "[1, 2]", "sdk.names"), ("letterbox_color", "[999, 0, 0]", "sdk.letterbox_color"),
    ("channel_order", '"XYZ"', "sdk.channel_order"), ("resize", '"explode"', "sdk.resize"),
    ("crop_fraction", "0", "sdk.crop_fraction"), ("blocks", "[1, 2]", "sdk.blocks"),
]


@pytest.mark.parametrize("key,value,needle", BAD_METADATA, ids=[f"{k}={v}" for k, v, _ in BAD_METADATA])
def test_bad_metadata_value_is_one_line_naming_the_key(key, value, needle, tmp_path):
    model = tiny_model(tmp_path / "m.onnx", props={f"sdk.{key}": value})
    proc = run_sdk(tmp_path, "detect", "--model", model, "--source", noise_image(tmp_path / "x.png"), timeout=60)
    assert_refused(proc, tmp_path, "m.onnx", needle)


def test_nan_boxes_are_refused(tmp_path):
    model = tiny_model(tmp_path / "nan.onnx", factor=[np.nan, 1, 1, 1, 1, 1])
    proc = run_sdk(tmp_path, "detect", "--model", model, "--source", noise_image(tmp_path / "x.png"))
    assert_refused(proc, tmp_path, "nan.onnx", "NaN or infinite")


@pytest.mark.parametrize("declared", [None, [1, "boxes", 6]], ids=["static", "dynamic"])
def test_output_with_the_wrong_width_is_refused(tmp_path, declared):
    """3 classes' rows from a model whose metadata names 1 class: refused from the declared shape, or (declared
    as 6 wide with a dynamic row count) when the first output arrives."""
    model = tiny_model(tmp_path / "wide.onnx", out_shape=(1, 1536, 8), declared=declared)
    proc = run_sdk(tmp_path, "detect", "--model", model, "--source", noise_image(tmp_path / "x.png"))
    assert_refused(proc, tmp_path, "expected")


def test_int64_input_is_not_fed_fractions(tmp_path):
    model = tiny_model(tmp_path / "i64.onnx", in_type=TensorProto.INT64)
    proc = run_sdk(tmp_path, "detect", "--model", model, "--source", noise_image(tmp_path / "x.png"))
    assert_refused(proc, tmp_path, "i64.onnx", "int64")


def test_uint8_input_gets_raw_pixels(tmp_path):
    """A uint8 input takes pixels as they are (scale 1): the rows echo them, so boxes have pixel-sized values."""
    model = tiny_model(tmp_path / "u8.onnx", in_type=TensorProto.UINT8, factor=[1, 1, 1, 1, 1 / 255, 1])
    proc = run_sdk(tmp_path, "detect", "--model", model, "--source", noise_image(tmp_path / "x.png"),
                   "--conf", "0.9", "--save-dir", tmp_path / "out")
    assert_clean(proc, tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    boxes = [d for r in rows for d in r["detections"]]
    assert boxes, "raw pixels (0..255) make objectness up to 1 and boxes of pixel size; 0/1 inputs would give none"


def test_quantize_refuses_a_model_it_did_not_export(tmp_path, train_images):
    model = tiny_model(tmp_path / "foreign.onnx", props={"sdk.names": "[]"})
    m = onnx.load(str(model))
    del m.metadata_props[:]
    onnx.save(m, str(model))
    proc = run_sdk(tmp_path, "quantize", "--model", model, "--calib", train_images, "--calib-count", "32",
                   "-o", tmp_path / "q.onnx")
    assert_refused(proc, tmp_path, "foreign.onnx")
    assert not (tmp_path / "q.onnx").exists()

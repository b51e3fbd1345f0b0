"""sdk.layouts on synthetic outputs: each layout recognised from shapes/names, decoded to the canonical rows the
post-processing takes (so every layout gives the same detections), and one-line errors for what it cannot read."""
import numpy as np
import pytest

from sdk.errors import SDKError
from sdk.layouts import (ModelOptions, decode_nodes, parse_anchors, parse_names, recognise, resolve_model)
from sdk.metadata import ModelMetadata
from sdk.postprocess import postprocess
from sdk.runners.base import TensorSpec

F, I = np.dtype(np.float32), np.dtype(np.int32)
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


def _spec(name, shape, dtype=F):
    return TensorSpec(name, tuple(shape), dtype)


def _canonical(rng, n=10647, nc=3):
    """Plausible decoded rows: a few confident boxes, the rest background."""
    rows = np.zeros((1, n, 5 + nc), np.float32)
    rows[0, :, :2] = rng.uniform(20, 400, (n, 2))
    rows[0, :, 2:4] = rng.uniform(10, 120, (n, 2))
    rows[0, :, 4] = rng.uniform(0, 0.05, n)
    rows[0, :, 5:] = rng.uniform(0, 1, (n, nc))
    hot = rng.choice(n, 12, replace=False)
    rows[0, hot, 4] = rng.uniform(0.6, 0.99, 12)
    return rows


def test_each_layout_is_recognised_with_its_reason():
    y = recognise([_spec("output", (1, 10647, 8))], (416, 416))
    assert y.name == "yolo" and y.nc == 3 and "3 anchors x 3549 cells" in y.reason
    v8 = recognise([_spec("output0", (1, 84, 8400))], (640, 640))
    assert v8.name == "anchor-free" and v8.nc == 80 and v8.channels_first
    v8t = recognise([_spec("output0", (1, 8400, 84))], (640, 640))
    assert v8t.name == "anchor-free" and not v8t.channels_first and "1 point x 8400 cells" in v8t.reason
    e2e = recognise([_spec("output", (None, 7))], (640, 640))
    assert e2e.name == "nms-ort" and e2e.nc is None
    trt = recognise([_spec("num_dets", (1, 1), I), _spec("det_boxes", (1, 100, 4)), _spec("det_scores", (1, 100)),
                     _spec("det_classes", (1, 100), I)], (640, 640))
    assert trt.name == "efficientnms" and trt.outputs == ("num_dets", "det_boxes", "det_scores", "det_classes")
    raw = recognise([_spec("a", (1, 3, 13, 13, 85)), _spec("b", (1, 3, 52, 52, 85)), _spec("c", (1, 3, 26, 26, 85))],
                    (416, 416), anchors=ANCHORS)
    assert raw.name == "raw" and raw.nc == 80 and raw.outputs == ("b", "c", "a")  # smallest stride first
    # the official --grid graph has the decoded output and the raw maps: the decoded one wins
    both = recognise([_spec("output", (1, 10647, 6)), _spec("m", (1, 3, 52, 52, 6))], (416, 416))
    assert both.name == "yolo"


def test_decoded_layouts_give_the_same_detections():
    rng = np.random.default_rng(0)
    rows = _canonical(rng)
    ref = postprocess(rows[0], None, conf_thres=0.25, iou_thres=0.45)
    assert 3 <= len(ref) <= 12
    nc = rows.shape[-1] - 5
    scores = rows[..., 5:] * rows[..., 4:5]
    af = np.concatenate([rows[..., :4], scores], -1).transpose(0, 2, 1)
    got = postprocess(recognise([_spec("o", af.shape)], (416, 416)).decode({"o": af})[0], None, conf_thres=0.25)
    np.testing.assert_allclose(got.boxes, ref.boxes, atol=1e-4)
    np.testing.assert_allclose(got.scores, ref.scores, atol=1e-5)
    # NMS inside: the reference detections as (n, 7) rows and as EfficientNMS tensors give them back
    xyxy = ref.boxes
    e2e = np.concatenate([np.zeros((len(ref), 1)), xyxy, ref.class_ids[:, None], ref.scores[:, None]], 1)
    lay = recognise([_spec("output", (None, 7))], (416, 416), nc=nc)
    got = postprocess(lay.decode({"output": e2e.astype(np.float32)})[0], None, conf_thres=0.25)
    np.testing.assert_allclose(got.boxes, ref.boxes, atol=1e-4)
    assert list(got.class_ids) == list(ref.class_ids)
    k = 100
    boxes = np.zeros((1, k, 4), np.float32)
    boxes[0, :len(ref)] = xyxy
    sc = np.zeros((1, k), np.float32)
    sc[0, :len(ref)] = ref.scores
    cl = np.zeros((1, k), np.int32)
    cl[0, :len(ref)] = ref.class_ids
    specs = [_spec("num_dets", (1, 1), I), _spec("det_boxes", (1, k, 4)), _spec("det_scores", (1, k)),
             _spec("det_classes", (1, k), I)]
    lay = recognise(specs, (416, 416), nc=nc)
    out = {"num_dets": np.array([[len(ref)]], np.int32), "det_boxes": boxes, "det_scores": sc, "det_classes": cl}
    got = postprocess(lay.decode(out)[0], None, conf_thres=0.25)
    np.testing.assert_allclose(got.scores, ref.scores, atol=1e-6)
    assert list(got.class_ids) == list(ref.class_ids)


def test_raw_maps_decode_with_the_yolo_formula():
    rng = np.random.default_rng(1)
    maps = {f"p{s}": rng.normal(0, 2, (1, 3, 416 // s, 416 // s, 7)).astype(np.float32) for s in (8, 16, 32)}
    lay = recognise([_spec(k, v.shape) for k, v in maps.items()], (416, 416), anchors=ANCHORS)
    rows = lay.decode(maps)
    assert rows.shape == (1, 3 * (52 * 52 + 26 * 26 + 13 * 13), 7)
    # one cell by hand: level 1 (stride 16), anchor 2, cell (y=5, x=7)
    m = maps["p16"][0, 2, 5, 7]
    s = 1 / (1 + np.exp(-m))
    i = 3 * 52 * 52 + 2 * 26 * 26 + 5 * 26 + 7
    np.testing.assert_allclose(rows[0, i, :2], [(s[0] * 2 - 0.5 + 7) * 16, (s[1] * 2 - 0.5 + 5) * 16], rtol=1e-5)
    np.testing.assert_allclose(rows[0, i, 2:4], [(s[2] * 2) ** 2 * 59, (s[3] * 2) ** 2 * 119], rtol=1e-5)
    np.testing.assert_allclose(rows[0, i, 4:], s[4:], rtol=1e-5)


def test_unknown_layouts_and_missing_facts_are_one_line_errors():
    with pytest.raises(SDKError) as e:
        recognise([_spec("logits", (1, 1000))], (224, 224))
    msg = str(e.value)
    assert "logits (1, 1000)" in msg and "yolo, anchor-free, nms-ort, efficientnms, raw" in msg and "\n" not in msg
    with pytest.raises(SDKError, match="anchors: got none"):
        recognise([_spec("a", (1, 3, 13, 13, 85))], (416, 416))
    with pytest.raises(SDKError, match="class names: got 2, expected 80"):
        recognise([_spec("output0", (1, 84, 8400))], (640, 640), nc=2)
    with pytest.raises(SDKError, match="layout: got 'ssd'"):
        ModelOptions(layout="ssd")
    dyn = [_spec("images", (None, 3, None, None))]
    with pytest.raises(SDKError, match="dynamic size .* expected --imgsz"):
        resolve_model(dyn, [_spec("output", (None, None, 85))], ModelMetadata(names=[]))
    r = resolve_model(dyn, [_spec("output", (None, None, 85))], ModelMetadata(names=[]),
                      ModelOptions(imgsz=(320, 320), layout="yolo"))
    assert r.meta.imgsz == (320, 320) and r.meta.names[79] == "class79" and r.foreign
    assert any("class0..class79" in n for n in r.notes)


def test_uint8_inputs_are_fed_pixels_and_flags_override_defaults():
    u8 = resolve_model([_spec("images", (1, 640, 640, 3), np.dtype(np.uint8))], [_spec("output0", (1, 84, 8400))],
                       ModelMetadata(names=[]))
    assert u8.meta.scale == 1.0 and u8.nhwc and u8.meta.imgsz == (640, 640)
    f = resolve_model([_spec("images", (1, 3, 640, 640))], [_spec("output0", (1, 84, 8400))], ModelMetadata(names=[]),
                      ModelOptions(channel_order="BGR", scale=1.0, names=[f"n{i}" for i in range(80)]))
    assert (f.meta.channel_order, f.meta.scale, f.meta.names[3]) == ("BGR", 1.0, "n3")


def test_names_and_anchors_in_every_spelling(tmp_path):
    assert parse_names("cat, dog") == ["cat", "dog"]
    (tmp_path / "names.txt").write_text("cat\n\ndog\n")
    assert parse_names(str(tmp_path / "names.txt")) == ["cat", "dog"]
    (tmp_path / "d.yaml").write_text("names: {0: cat, 1: dog}\n")
    assert parse_names(str(tmp_path / "d.yaml")) == ["cat", "dog"]
    assert parse_anchors("10,13,16,30/30,61,62,45") == [[10, 13, 16, 30], [30, 61, 62, 45]]
    (tmp_path / "cfg.yaml").write_text("anchors:\n  - [10,13, 16,30]\n  - [30,61, 62,45]\n")
    assert parse_anchors(str(tmp_path / "cfg.yaml")) == [[10, 13, 16, 30], [30, 61, 62, 45]]
    with pytest.raises(SDKError, match="anchors 1,2,3"):
        parse_anchors("1,2,3")


def test_decode_nodes_are_what_follows_the_last_convs():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w"], ["c2"], name="conv2"),
             helper.make_node("Sigmoid", ["c2"], ["s"], name="sig"),
             helper.make_node("Mul", ["s", "k"], ["y"], name="mul")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])])
    assert decode_nodes(helper.make_model(g)) == {"sig", "mul"}
    assert onnx is not None

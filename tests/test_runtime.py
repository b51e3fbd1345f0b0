"""Runner interface, pre/post-processing and the Detector on real images."""
import numpy as np
import pytest

from sdk.data.images import list_images, read_image
from sdk.detector import Detector
from sdk.errors import SDKError
from sdk.postprocess import nms, postprocess
from sdk.preprocess import letterbox
from sdk.runners import choose_backend, load_runner
from sdk.runners.onnxruntime import OnnxRuntimeRunner


def test_letterbox_matches_official_geometry_and_maps_back():
    img = np.full((375, 500, 3), 7, np.uint8)
    out, lb = letterbox(img, (416, 416))
    assert out.shape == (416, 416, 3)
    assert lb.gain == (416 / 500, 312 / 375) and lb.pad == (0, 52)
    assert (out[:52] == 114).all() and (out[52 + 312:] == 114).all() and (out[52:364] == 7).all()
    box = np.array([[0.0, 52.0, 416.0, 364.0]], np.float32)
    np.testing.assert_allclose(lb.to_original(box), [[0, 0, 500, 375]], atol=1e-3)


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    # class-aware: same box, different classes both survive
    pred = np.zeros((2, 7), np.float32)
    pred[:, :4] = [5, 5, 10, 10]
    pred[:, 4] = 0.9
    pred[0, 5], pred[1, 6] = 0.9, 0.9
    dets = postprocess(pred, None, ("a", "b"), conf_thres=0.25, iou_thres=0.45)
    assert sorted(dets.class_ids.tolist()) == [0, 1] and [d.class_name for d in dets] == ["a", "b"]


def test_detector_finds_the_labelled_people(onnx_model, val_images):
    from sdk.data.datasets import load_dataset
    from sdk.evaluation.metrics import box_iou

    det = Detector(str(onnx_model), conf=0.25)
    ds = load_dataset(val_images, names=["person"])
    matched = total = 0
    for s in ds.samples[:8]:
        d = det(read_image(s.path))
        assert all(name == "person" for name in (x.class_name for x in d))
        iou = box_iou(s.boxes, d.boxes)
        matched += int((iou.max(1) > 0.5).sum()) if len(d) else 0
        total += len(s.boxes)
        assert set(det.last_timing) == {"pre_ms", "infer_ms", "post_ms"}
    assert matched / total > 0.7


def test_runner_validates_inputs_with_one_line_errors(onnx_model):
    with OnnxRuntimeRunner(onnx_model) as r:
        assert r.input.name == "images" and r.input.shape == (1, 3, 416, 416)
        with pytest.raises(SDKError, match=r"got shape \(1, 3, 640, 640\), expected \(1, 3, 416, 416\)"):
            r.infer(np.zeros((1, 3, 640, 640), np.float32))
        with pytest.raises(SDKError, match="got dtype float64, expected float32"):
            r.infer(np.zeros((1, 3, 416, 416)))
        with pytest.raises(SDKError, match="got tensor 'x'"):
            r.infer({"x": np.zeros((1, 3, 416, 416), np.float32)})
    assert not r.loaded


def test_backend_choice_and_unknown_model_types(tmp_path, onnx_model):
    assert choose_backend(str(onnx_model))[0] == "ort"
    with pytest.raises(SDKError, match="expected an ONNX model"):
        choose_backend(str(tmp_path / "m.tflite"))
    with pytest.raises(SDKError, match="build one with: build_engine"):
        choose_backend(str(onnx_model), "trt")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(SDKError, match="onnxruntime cannot load it"):
        load_runner(str(bad))


def test_read_image_errors(tmp_path, val_images):
    with pytest.raises(SDKError, match="file not found"):
        read_image(str(tmp_path / "nope.png"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(SDKError, match="cannot decode"):
        read_image(str(bad))
    assert len(list_images(val_images)) == 30
    assert len(list_images(f"{val_images}/FudanPed0001*.png")) > 0

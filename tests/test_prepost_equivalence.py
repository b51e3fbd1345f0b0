"""The fast pre/post-processing (OpenCV NMS, one-pass blob) gives exactly what the original numpy code gave.

The originals are kept here, frozen, as the reference: greedy NMS as a Python loop over numpy IoU and the
transpose/astype/multiply input conversion. They run on the shared model's real outputs for every val image
(and frames of the shared video), at the evaluation confidence (0.001, hundreds of candidates) and the default
one (0.25).
"""
import numpy as np
import pytest

from sdk.data.images import list_images, read_image
from sdk.postprocess import MAX_WH, nms, postprocess, yolo_candidates
from sdk.preprocess import Preprocessor, letterbox
from sdk.runners.onnxruntime import OnnxRuntimeRunner


def reference_box_iou_one(box, boxes):
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / (area + areas - inter + 1e-9)


def reference_nms(boxes, scores, iou_thres, max_det=300):
    """sdk.postprocess.nms before OpenCV: the greedy loop in numpy."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < max_det:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[reference_box_iou_one(boxes[i], boxes[rest]) <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def reference_input(img, scale, rgb=True):
    if rgb:
        img = img[:, :, ::-1]
    x = img.transpose(2, 0, 1).astype(np.float32)
    x *= scale
    return np.ascontiguousarray(x[None], dtype=np.float32)


@pytest.fixture(scope="module")
def raw_outputs(onnx_model, val_images, person_video):
    import cv2

    runner = OnnxRuntimeRunner(onnx_model, threads=1).load()
    pre = Preprocessor(runner.metadata)
    frames = [read_image(p) for p in list_images(val_images)]
    cap = cv2.VideoCapture(str(person_video))
    for _ in range(3):
        ok, frame = cap.read()
        assert ok, f"cannot read {person_video}"
        frames.append(frame)
        frames.append(cv2.resize(frame, (1920, 1080)))  # a large frame: the INTER_AREA shrink path
    cap.release()
    outs = []
    for img in frames:
        x, lb = pre(img)
        outs.append((img, x, lb, runner.infer(x)[runner.outputs[0].name][0]))
    runner.close()
    return runner.metadata, outs


def test_input_is_bit_identical_to_the_numpy_conversion(raw_outputs):
    meta, outs = raw_outputs
    for img, x, _, _ in outs:
        lb_img, _ = letterbox(img, tuple(meta.imgsz), tuple(meta.letterbox_color))
        ref = reference_input(lb_img, float(meta.scale), meta.channel_order.upper() == "RGB")
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape == ref.shape
        assert np.array_equal(x, ref)


@pytest.mark.parametrize("rgb", [True, False])
@pytest.mark.parametrize("scale", [1 / 255, 1.0, 1 / 127.5, 0.017])
def test_every_byte_value_converts_as_numpy_and_blob_from_image_do(rgb, scale):
    """The plane-by-plane conversion gives the numpy expression's and cv2.dnn.blobFromImage's floats exactly, for
    every byte value in every channel and the scales models use."""
    import cv2

    from sdk.metadata import ModelMetadata
    from sdk.preprocess import Preprocessor

    v = np.arange(256, dtype=np.uint8)
    img = np.stack([v, v[::-1], np.roll(v, 85)], axis=-1).reshape(16, 16, 3)
    meta = ModelMetadata(names=["a"], imgsz=(16, 16), channel_order="RGB" if rgb else "BGR", scale=scale)
    x, _ = Preprocessor(meta)(img)
    assert np.array_equal(x, reference_input(img, scale, rgb))
    assert np.array_equal(x, cv2.dnn.blobFromImage(img, scale, swapRB=rgb))


@pytest.mark.parametrize("conf,iou", [(0.001, 0.65), (0.25, 0.45), (0.001, 0.3)])
def test_nms_keeps_the_same_boxes_as_the_numpy_loop(raw_outputs, conf, iou):
    _, outs = raw_outputs
    total = 0
    for _, _, _, pred in outs:
        boxes, scores, _ = yolo_candidates(pred, conf)
        kept, ref = nms(boxes, scores, iou), reference_nms(boxes, scores, iou)
        assert kept.dtype == np.int64 and kept.tolist() == ref.tolist()
        total += len(ref)
    assert total > (100 if conf < 0.01 else 10)  # the comparison saw real detections


def test_class_aware_nms_and_max_det_match_the_reference(raw_outputs):
    """Real boxes given three classes at random: the class offset keeps classes apart exactly as before."""
    _, outs = raw_outputs
    rng = np.random.default_rng(0)
    for _, _, _, pred in outs[:8]:
        boxes, scores, _ = yolo_candidates(pred, 0.001)
        cls = rng.integers(0, 3, len(scores))
        shifted = boxes + cls[:, None].astype(np.float32) * MAX_WH
        for max_det in (300, 5):
            assert nms(shifted, scores, 0.65, max_det).tolist() == reference_nms(shifted, scores, 0.65,
                                                                                max_det).tolist()


def test_postprocess_output_unchanged(raw_outputs):
    meta, outs = raw_outputs
    for _, _, lb, pred in outs[:6]:
        dets = postprocess(pred, lb, meta.names, 0.001, 0.65)
        boxes, scores, cls = yolo_candidates(pred, 0.001)
        keep = reference_nms(boxes, scores, 0.65)
        np.testing.assert_array_equal(dets.boxes, lb.to_original(boxes[keep]).astype(np.float32))
        np.testing.assert_array_equal(dets.scores, scores[keep])


def test_nms_of_nothing_is_empty():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


@pytest.fixture(scope="module")
def large_frames(person_video, val_images):
    """Frames two to five times the input size: shared-video frames with people, upscaled to 1080p and 4K
    (INTER_CUBIC: sharp edges survive), and val images at 2.5x (odd sizes: the halving stops early)."""
    import cv2

    cap = cv2.VideoCapture(str(person_video))
    frames = []
    for start in (300, 430, 700):
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
        ok, frame = cap.read()
        assert ok, f"cannot read {person_video}"
        frames += [cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_CUBIC),
                   cv2.resize(frame, (3840, 2160), interpolation=cv2.INTER_CUBIC)]
    cap.release()
    for path in list_images(val_images)[:6]:
        frames.append(cv2.resize(read_image(path), None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC))
    return frames


def test_area_pyramid_is_the_one_pass_resize_below_twice_the_input(raw_outputs):
    """Val images and the shared videos' frames (under twice the input size) get bit-identical inputs."""
    meta, outs = raw_outputs
    area, pyramid = Preprocessor(meta), Preprocessor(meta, resize="area-pyramid")
    small = [img for img, *_ in outs if max(img.shape[0] / meta.imgsz[0], img.shape[1] / meta.imgsz[1]) < 2]
    assert len(small) >= 30
    for img in small:
        assert np.array_equal(pyramid(img)[0], area(img)[0])


def test_area_pyramid_keeps_the_detections_of_large_frames(onnx_model, large_frames):
    """1080p, 4K and 2.5x val frames: the halving path changes pixels by under a level on average and the
    detections by under 1.5 input pixels and 0.03 in score; the same boxes are kept."""
    runner = OnnxRuntimeRunner(onnx_model, threads=2).load()
    meta = runner.metadata
    area, pyramid = Preprocessor(meta), Preprocessor(meta, resize="area-pyramid")
    name = runner.outputs[0].name
    kept = 0
    for img in large_frames:
        (xa, lba), (xp, lbp) = area(img), pyramid(img)
        assert xa.shape == xp.shape and lba == lbp  # same size, gain and padding
        assert np.abs(xa - xp).mean() * 255 < 1.25
        da = postprocess(runner.infer(xa)[name][0], lba, meta.names, 0.25, 0.45)
        dp = postprocess(runner.infer(xp)[name][0], lbp, meta.names, 0.25, 0.45)
        assert len(da) == len(dp) and da.class_ids.tolist() == dp.class_ids.tolist()
        if len(da):
            assert np.abs(da.boxes - dp.boxes).max() * lba.gain[0] < 1.5  # in network-input pixels
            assert np.abs(da.scores - dp.scores).max() < 0.03
        kept += len(da)
    runner.close()
    assert kept >= 8  # people were found in the large frames


def test_unknown_resize_is_a_one_line_error(raw_outputs):
    from sdk.errors import SDKError

    with pytest.raises(SDKError, match="resize: got 'cubic', expected one of area, area-pyramid"):
        Preprocessor(raw_outputs[0], resize="cubic")

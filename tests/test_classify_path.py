"""The classification path on real data: a small CNN trained here on Penn-Fudan person vs background crops (the
demo of scripts/bench_classify.py), exported with torch, then classified, scored (top-1 on held-out crops),
quantized to INT8 and benchmarked through `python -m sdk classify`. No TensorFlow needed."""
import json

import numpy as np
import pytest

from sdk.classify import ClassifyPreprocessor, classify_metadata, folder_dataset, softmax
from sdk.classify.demo import DEMO_NAMES as NAMES
from sdk.classify.demo import train_demo_classifier
from tests.conftest import CROP_SIZE as SIZE
from tests.conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def classifier_onnx(crops, tmp_path_factory):
    """The demo CNN of scripts/bench_classify.py, trained here, exported with SDK classification metadata."""
    pytest.importorskip("torch")
    return train_demo_classifier(crops / "train", tmp_path_factory.mktemp("clf") / "person-clf.onnx", SIZE)


def _json(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_preprocessing_modes(pennfudan):
    from sdk.data.images import read_image

    img = read_image(sorted((pennfudan / "images" / "val").iterdir())[0])
    meta = classify_metadata(NAMES, (48, 64), scale=1.0)
    for mode in ("center_crop", "stretch", "letterbox"):
        x, _ = ClassifyPreprocessor(meta, mode)(img)
        assert x.shape == (1, 3, 48, 64) and x.dtype == np.float32
    # centre crop of a 100x200 gradient at fraction 1: the middle 100x100 columns, resized down to 48x64's box
    grad = np.tile(np.arange(200, dtype=np.uint8)[None, :, None], (100, 1, 3))
    x, _ = ClassifyPreprocessor(classify_metadata(NAMES, (50, 50), scale=1.0), "center_crop", 1.0)(grad)
    assert 45 <= x[0, 0, 25, 0] <= 55 and 145 <= x[0, 0, 25, -1] <= 155
    assert np.allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


def test_top1_on_held_out_crops_and_int8(classifier_onnx, crops, tmp_path):
    q = tmp_path / "person-clf.int8.onnx"
    res = _json(run_cli("classify", "--model", classifier_onnx, "--source", crops / "val", "--eval", "--int8", q,
                        "--calib-images", crops / "train" / "person", "--calib-count", 32))
    fp32, int8 = res["eval"]["fp32"], res["eval"]["int8"]
    n = len(folder_dataset(crops / "val", NAMES))
    assert fp32["images"] == int8["images"] == n
    assert fp32["top1"] >= 0.85, fp32  # person vs background on images the CNN never saw
    assert abs(int8["top1"] - fp32["top1"]) <= 0.05, (fp32, int8)
    import onnx

    proto = onnx.load(str(q))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["sdk.precision"]) == "int8" and json.loads(props["sdk.names"]) == NAMES
    assert json.loads(props["sdk.resize"]) == "stretch"


def test_topk_per_image_and_bench(classifier_onnx, crops):
    proc = run_cli("classify", "--model", classifier_onnx, "--source", crops / "val" / "person", "--topk", "5",
                   "--bench", "--runs", "10")
    res = _json(proc)
    preds = res["predictions"]["fp32"]
    assert len(preds) == len(list((crops / "val" / "person").iterdir()))
    assert all(len(p["topk"]) == 2 for p in preds)  # top-5 of a 2-class model: both classes
    assert all(abs(sum(c["score"] for c in p["topk"]) - 1) < 1e-3 for p in preds)
    share = np.mean([p["topk"][0]["class"] == "person" for p in preds])
    assert share >= 0.8
    bench = res["bench"]["fp32"]
    assert bench["model"]["p50_ms"] > 0 and bench["end_to_end"]["p50_ms"] >= bench["model"]["p50_ms"] * 0.5
    assert "| image" in proc.stdout


def test_bad_inputs_are_one_line_errors(classifier_onnx, crops, tmp_path):
    import onnx

    from sdk.metadata import ModelMetadata

    detector_like = onnx.load(str(classifier_onnx))  # same graph, detection metadata (what `export` writes)
    del detector_like.metadata_props[:]
    for k, v in ModelMetadata(names=["person"]).to_props().items():
        detector_like.metadata_props.add(key=k, value=v)
    onnx.save(detector_like, str(tmp_path / "det.onnx"))
    assert_one_line_error(run_cli("classify", "--model", tmp_path / "det.onnx", "--source", crops / "val" / "person"),
                          "task 'detect'", "classifier")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.jpg").write_bytes((crops / "val" / "person").iterdir().__next__().read_bytes())
    assert_one_line_error(run_cli("classify", "--model", classifier_onnx, "--source", tmp_path, "--eval"),
                          "class folder 'cat'")
    assert_one_line_error(run_cli("classify", "--model", classifier_onnx, "--source", crops, "--topk", "0"),
                          "--topk")
    assert_one_line_error(run_cli("classify", "--model", classifier_onnx, "--source", crops / "val", "--eval",
                                  "--int8", tmp_path / "q.bin"), "--int8", ".onnx")

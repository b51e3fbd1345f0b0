"""What the SDK writes for other tools: COCO prediction + ground-truth pairs that pycocotools reads as is, clipped
boxes, one JSON-lines layout for detect and camera, YOLO txt predictions that read back as labels, eval plots."""
import json
import shutil

import numpy as np
import pytest

from sdk.data.datasets import load_yolo
from sdk.records import check_record

from .conftest import run_cli

pytest.importorskip("pycocotools", reason="pycocotools is the oracle (dev extra)")


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory, onnx_model, val_images):
    out = tmp_path_factory.mktemp("eval")
    p = run_cli("eval", "--model", onnx_model, "--data", val_images, "--save-json", out / "preds.json",
                "--plots", out / "plots", check=True)
    return out, json.loads(p.stdout.strip().splitlines()[-1])


def test_pycocotools_on_the_written_pair_equals_eval(eval_run):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out, summary = eval_run
    assert summary["gt_json"] == str(out / "preds.gt.json")
    gt = COCO(str(out / "preds.gt.json"))
    assert all(im["file_name"].endswith(".png") for im in gt.dataset["images"])
    assert len(gt.dataset["images"]) == summary["images"] == 30
    ev = COCOeval(gt, gt.loadRes(str(out / "preds.json")), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert abs(ev.stats[1] - summary["map50"]) < 1e-3 and abs(ev.stats[0] - summary["map50_95"]) < 1e-3
    assert set(summary["per_class"]) == {"person"}
    assert abs(summary["per_class"]["person"]["ap50"] - summary["map50"]) < 1e-9


def test_predicted_boxes_lie_inside_their_images(eval_run):
    out, _ = eval_run
    gt = json.loads((out / "preds.gt.json").read_text())
    size = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    preds = json.loads((out / "preds.json").read_text())
    assert len(preds) > 100
    for p in preds:
        x, y, w, h = p["bbox"]
        W, H = size[p["image_id"]]
        assert x >= 0 and y >= 0 and w >= 0 and h >= 0 and x + w <= W + 1e-3 and y + h <= H + 1e-3, (p, W, H)


def test_eval_plots_are_written(eval_run):
    out, summary = eval_run
    names = {"pr_curve.png", "f1_curve.png", "p_curve.png", "r_curve.png", "confusion_matrix.png"}
    assert {p.name for p in (out / "plots").iterdir()} == names
    assert sorted(summary["plots"]) == sorted(str(out / "plots" / n) for n in names)
    import cv2

    for n in names:
        img = cv2.imread(str(out / "plots" / n))
        assert img is not None and img.shape[0] > 300 and img.std() > 5  # a drawn figure, not a blank


def test_detect_jsonl_follows_the_record_layout_and_txt_round_trips(tmp_path, onnx_model, val_images):
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    for p in sorted(val_images.iterdir())[:4]:
        shutil.copy(p, images / p.name)
    save = tmp_path / "det"
    run_cli("detect", "--model", onnx_model, "--source", images, "--save-dir", save, "--save-txt", "--save-conf",
            check=True)
    records = [json.loads(line) for line in (save / "detections.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for r in records:
        check_record(r)
        assert r["video_time"] is None and r["stream"] == 0
    # the label files read back through the YOLO loader give the predicted boxes (to the 6 printed decimals)
    shutil.copytree(save / "labels", tmp_path / "data" / "labels")
    ds = load_yolo(images, names=["person"])
    by_name = {r["source"].rsplit("/", 1)[-1]: r for r in records}
    for s in ds.samples:
        want = np.array([d["xyxy"] for d in by_name[s.path.rsplit("/", 1)[-1]]["detections"]]).reshape(-1, 4)
        assert len(s.boxes) == len(want) > 0
        assert np.abs(np.sort(s.boxes, 0) - np.sort(want, 0)).max() < 0.02


def test_detect_on_a_video_stops_at_max_frames_with_video_times(tmp_path, onnx_model, person_video):
    save = tmp_path / "v"
    run_cli("detect", "--model", onnx_model, "--source", person_video, "--save-dir", save, "--no-images",
            "--max-frames", "5", check=True)
    records = [json.loads(line) for line in (save / "detections.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2, 3, 4]
    for r in records:
        check_record(r)
    import cv2

    fps = cv2.VideoCapture(str(person_video)).get(cv2.CAP_PROP_FPS)
    times = [r["video_time"] for r in records]
    assert fps > 0 and times[0] == 0
    assert all(abs((b - a) - 1 / fps) < 1e-3 for a, b in zip(times, times[1:]))  # the frames' positions in the file


def test_camera_json_uses_the_same_layout(tmp_path, onnx_model, person_video):
    out = tmp_path / "cam.jsonl"
    run_cli("camera", "--model", onnx_model, "--source", person_video, "--headless", "--json", out,
            "--max-frames", "5", check=True)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5
    for r in records:
        check_record(r)
        assert r["video_time"] is not None

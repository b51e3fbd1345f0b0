"""mAP: our COCO metric equals pycocotools, the eval command reproduces the official evaluator's numbers,
and YOLO txt / COCO json / Pascal VOC xml layouts give the same result."""
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from sdk.data.datasets import load_dataset
from sdk.errors import SDKError
from sdk.evaluation.metrics import coco_map

from .conftest import SHARED, assert_one_line_error, run_cli


def _pycocotools(gt_dict, preds, tmp_path):
    COCO = pytest.importorskip("pycocotools.coco").COCO
    COCOeval = pytest.importorskip("pycocotools.cocoeval").COCOeval
    import contextlib
    import io

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt_dict))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(preds) if preds else None
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats[1], e.stats[0]


def _official_square_row():
    text = (SHARED / "models" / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| square"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    return dict(zip(["input", "images", "boxes", "P", "R", "map50", "map50_95", "coco50", "coco50_95"],
                    [cells[0]] + [float(c) for c in cells[1:]]))


@pytest.fixture(scope="module")
def eval_run(onnx_model, val_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "preds.json"
    p = run_cli("eval", "--model", onnx_model, "--data", val_images, "--save-json", out, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1]), out, p.stdout


def test_eval_reproduces_the_official_evaluator(eval_run):
    result, _, stdout = eval_run
    official = _official_square_row()
    assert result["images"] == official["images"] == 30 and result["boxes"] == official["boxes"] == 70
    # official test.py metric vs its published square-input numbers, and our COCO metric vs pycocotools' column
    assert abs(result["official_map50"] - official["map50"]) <= 0.005
    assert abs(result["official_map50_95"] - official["map50_95"]) <= 0.005
    assert abs(result["map50"] - official["coco50"]) <= 0.005
    assert abs(result["map50_95"] - official["coco50_95"]) <= 0.005
    assert "mAP@.5" in stdout and stdout.count("\n") >= 3


def test_our_map_equals_pycocotools_on_the_same_predictions(eval_run, val_images, tmp_path):
    result, preds_path, _ = eval_run
    ds = load_dataset(val_images, names=["person"])
    preds = json.loads(preds_path.read_text())
    assert {p["category_id"] for p in preds} == {1}
    m50, m5095 = _pycocotools(ds.to_coco(), preds, tmp_path)
    assert abs(m50 - result["map50"]) < 0.001 and abs(m5095 - result["map50_95"]) < 0.001


def test_coco_metric_matches_pycocotools_on_random_multiclass_data(tmp_path):
    rng = np.random.default_rng(3)
    gts, preds, images, anns, dts = [], [], [], [], []
    for i in range(1, 13):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 300, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 120, (n, 2))], 1)
        classes = rng.integers(0, 3, n)
        crowd = rng.random(n) < 0.1
        gts.append({"boxes": boxes, "classes": classes, "crowd": crowd})
        m = int(rng.integers(0, 9))
        jitter = boxes[rng.integers(0, max(n, 1), m)] if n else rng.uniform(0, 300, (m, 4))
        pb = np.sort((jitter + rng.normal(0, 4, (m, 4))).reshape(m, 2, 2), axis=1).reshape(m, 4)
        pc = classes[rng.integers(0, max(n, 1), m)] if n and rng.random() < 0.8 else rng.integers(0, 3, m)
        ps = rng.random(m)
        preds.append({"boxes": pb, "classes": pc, "scores": ps})
        images.append({"id": i, "width": 500, "height": 500, "file_name": f"{i}.png"})
        for b, c, cr in zip(boxes, classes, crowd):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c) + 1, "iscrowd": int(cr),
                         "bbox": [b[0], b[1], w, h], "area": w * h})
        for b, c, s in zip(pb, pc, ps):
            dts.append({"image_id": i, "category_id": int(c) + 1, "score": float(s),
                        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    cats = [{"id": k + 1, "name": str(k)} for k in range(3)]
    m50, m5095 = _pycocotools({"images": images, "annotations": anns, "categories": cats}, dts, tmp_path)
    ours = coco_map(gts, preds, 3)
    assert abs(ours["map50"] - m50) < 1e-6 and abs(ours["map50_95"] - m5095) < 1e-6
    assert 0.05 < ours["map50"] < 0.95  # a non-trivial case


def _write_voc(ds, root):
    (root / "Annotations").mkdir(parents=True)
    for s in ds.samples:
        ann = ET.Element("annotation")
        ET.SubElement(ann, "filename").text = s.path.split("/")[-1]
        size = ET.SubElement(ann, "size")
        ET.SubElement(size, "width").text, ET.SubElement(size, "height").text = str(s.width), str(s.height)
        for b in s.boxes:
            o = ET.SubElement(ann, "object")
            ET.SubElement(o, "name").text = "person"
            bb = ET.SubElement(o, "bndbox")
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (b[0] + 1, b[1] + 1, b[2], b[3])):
                ET.SubElement(bb, k).text = f"{v:.1f}"
        ET.ElementTree(ann).write(root / "Annotations" / (s.path.split("/")[-1][:-4] + ".xml"))


def test_yolo_coco_and_voc_layouts_agree(onnx_model, val_images, pennfudan, tmp_path, eval_run):
    yolo = load_dataset(val_images, names=["person"])
    coco = load_dataset(pennfudan / "instances_val.json")
    assert coco.layout == "coco" and len(coco) == 30 and coco.num_boxes == 70
    by_name = {s.path: s for s in yolo.samples}
    for s in coco.samples:
        np.testing.assert_allclose(s.boxes, by_name[s.path].boxes, atol=0.05)
    _write_voc(yolo, tmp_path / "voc")
    voc = load_dataset(tmp_path / "voc", images=str(val_images))
    assert voc.layout == "voc" and voc.num_boxes == 70
    results = {}
    for name, spec in (("coco", pennfudan / "instances_val.json"), ("voc", tmp_path / "voc")):
        extra = ["--images", val_images] if name == "voc" else []
        p = run_cli("eval", "--model", onnx_model, "--data", spec, *extra, check=True)
        results[name] = json.loads(p.stdout.strip().splitlines()[-1])
    base = eval_run[0]
    for r in results.values():
        assert abs(r["map50"] - base["map50"]) < 0.002 and abs(r["map50_95"] - base["map50_95"]) < 0.004


def test_data_yaml_layout(tmp_path, onnx_model, pennfudan):
    y = tmp_path / "data.yaml"
    y.write_text(f"path: {pennfudan}\ntrain: images/train\nval: images/val\nnames: ['person']\n")
    ds = load_dataset(y, split="val")
    assert len(ds) == 30 and ds.names == ["person"]


def test_bad_labels_and_empty_data_are_one_line_errors(tmp_path, onnx_model, val_images):
    imgs, labels = tmp_path / "images", tmp_path / "labels"
    imgs.mkdir()
    labels.mkdir()
    src = sorted(val_images.iterdir())[0]
    (imgs / src.name).write_bytes(src.read_bytes())
    (labels / (src.stem + ".txt")).write_text("0 0.5 0.5 oops 0.2\n")
    line = assert_one_line_error(run_cli("eval", "--model", onnx_model, "--data", imgs), src.stem + ".txt:1")
    assert "expected 'class cx cy w h'" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("eval", "--model", onnx_model, "--data", empty), "contains no images")
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    (unlabelled / src.name).write_bytes(src.read_bytes())
    with pytest.raises(SDKError, match="no labels folder"):
        load_dataset(str(unlabelled))

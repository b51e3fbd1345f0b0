"""Fine-tuning the shared person model on a dataset of another class: Penn-Fudan boxes relabelled 'raccoon' in
Pascal VOC xml (made here). The head is rebuilt for the dataset's classes with the official bias prior, every
other weight is kept, the checkpoint and ONNX carry the dataset's names, and eval runs on them."""
import json
import math

import cv2
import pytest

from .conftest import assert_one_line_error, run_cli

torch = pytest.importorskip("torch", reason="training needs the torch extra")


def _voc(images_dir, out, names, limit):
    """Penn-Fudan YOLO labels -> VOC xml with each box's class replaced by `names[i % len(names)]`."""
    ann = out / "Annotations"
    ann.mkdir(parents=True)
    for k, img in enumerate(sorted(images_dir.glob("*.png"))[:limit]):
        h, w = cv2.imread(str(img)).shape[:2]
        label = images_dir.parent.parent / "labels" / images_dir.name / (img.stem + ".txt")
        objs = []
        for j, line in enumerate(label.read_text().split("\n")):
            if not line.strip():
                continue
            _, cx, cy, bw, bh = map(float, line.split())
            x0, y0, x1, y1 = (cx - bw / 2) * w + 1, (cy - bh / 2) * h + 1, (cx + bw / 2) * w, (cy + bh / 2) * h
            objs.append(f"<object><name>{names[(k + j) % len(names)]}</name><difficult>0</difficult><bndbox>"
                        f"<xmin>{x0:.0f}</xmin><ymin>{y0:.0f}</ymin><xmax>{x1:.0f}</xmax><ymax>{y1:.0f}</ymax>"
                        f"</bndbox></object>")
        (ann / f"{img.stem}.xml").write_text(
            f"<annotation><filename>{img.name}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{''.join(objs)}</annotation>")
        (ann / img.name).write_bytes(img.read_bytes())
    return out


def test_rebuilt_head_keeps_weights_and_starts_from_the_prior(checkpoint):
    from sdk.models.checkpoint import load_checkpoint
    from sdk.train.heads import class_prior, needs_new_head, objectness_prior, rebuild_head

    model, _ = load_checkpoint(checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    old = model.detect
    old_w = [c.weight.detach().clone().view(old.na, old.no, -1) for c in old.m]
    assert not needs_new_head(["person"], ["person"]) and needs_new_head(["person"], ["raccoon"])
    msg = rebuild_head(model, ["raccoon", "fox", "badger"])
    assert "\n" not in msg and "3 dataset classes (raccoon, fox, badger)" in msg and "person" in msg
    det = model.detect
    assert det.nc == 3 and model.names == ["raccoon", "fox", "badger"] and model.yaml["nc"] == 3
    assert det.m[0].out_channels == 3 * 8
    after = model.state_dict()
    kept = [k for k in before if not k.startswith(f"model.{det.i}.")]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)  # every other weight kept
    for i, conv in enumerate(det.m):
        w = conv.weight.detach().view(det.na, det.no, -1)
        assert torch.equal(w[:, :4], old_w[i][:, :4])  # box rows kept
        b = conv.bias.detach().view(det.na, det.no)
        bound = 1 / math.sqrt(conv.in_channels)  # nn.Conv2d's default bias init, which the prior is added to
        obj = objectness_prior(float(det.stride[i]))
        assert torch.all((b[:, 4] - obj).abs() <= bound + 1e-6)
        assert torch.all((b[:, 5:] - class_prior(3)).abs() <= bound + 1e-6)
    assert abs(objectness_prior(8) - math.log(8 / 80 ** 2)) < 1e-12 and abs(class_prior(1) - math.log(60)) < 1e-9
    # the model still runs, with 3 classes per row
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 128)).shape[-1] == 8


def test_fine_tune_to_a_new_class_end_to_end(checkpoint, pennfudan, tmp_path):
    train = _voc(pennfudan / "images" / "train", tmp_path / "train", ["raccoon"], 8)
    val = _voc(pennfudan / "images" / "val", tmp_path / "val", ["raccoon"], 6)
    out, onnx = tmp_path / "run", tmp_path / "raccoon.onnx"
    p = run_cli("train", "--weights", checkpoint, "--data", train, "--val-data", val, "--epochs", "1",
                "--batch-size", "4", "--imgsz", "320", "--out-dir", out, "--onnx", onnx, "--no-augment", check=True)
    rebuilt = [line for line in p.stderr.splitlines() if line.startswith("head: rebuilt")]
    assert len(rebuilt) == 1 and "(raccoon) instead of the model's 1 (person)" in rebuilt[0]
    from sdk.models.checkpoint import load_checkpoint

    best, _ = load_checkpoint(out / "best.pt")
    assert best.names == ["raccoon"] and best.detect.nc == 1
    insp = json.loads(run_cli("inspect", onnx, "--json", check=True).stdout.strip().splitlines()[-1])
    assert insp["names"] == ["raccoon"] and insp["sdk_metadata"]
    ev = run_cli("eval", "--model", onnx, "--data", val, check=True)
    r = json.loads(ev.stdout.strip().splitlines()[-1])
    assert r["images"] == 6 and r["boxes"] > 6 and 0.0 <= r["map50"] <= 1.0


def test_datasets_of_model_classes_keep_the_head(pennfudan, tmp_path):
    from sdk.train.heads import data_class_names, needs_new_head

    # YOLO txt without names: indices are the model's classes; a VOC of persons: names the model has
    assert data_class_names(str(pennfudan / "images" / "train")) is None
    persons = _voc(pennfudan / "images" / "val", tmp_path / "p", ["person"], 2)
    assert data_class_names(str(persons)) == ["person"] and not needs_new_head(["person"], ["person"])
    mixed = _voc(pennfudan / "images" / "val", tmp_path / "m", ["person", "raccoon"], 3)
    assert needs_new_head(["person"], data_class_names(str(mixed)))


def test_qat_and_distill_take_a_dataset_of_new_classes(checkpoint, pennfudan, tmp_path):
    from sdk.quant import qat
    from sdk.train.heads import adapt_to_dataset

    data = _voc(pennfudan / "images" / "val", tmp_path / "voc", ["raccoon", "fox"], 4)
    model, _, _ = qat.load_qat_model(checkpoint)
    msg = adapt_to_dataset(model, str(data), "train")
    assert msg.startswith("head: rebuilt") and model.names == ["fox", "raccoon"]
    model = qat.prepare_qat(model)  # what the qat command does next: the new head convs fake-quantized too
    cls = qat.quant_conv_class()
    assert all(type(c) is cls for c in model.detect.m) and model.detect.m[0].out_channels == 3 * 7
    # distillation from a person teacher into a raccoon/fox student is refused on one line
    p = run_cli("distill", "--weights", checkpoint, "--teacher", checkpoint, "--data", data, "--epochs", "1",
                "--out-dir", tmp_path / "kd", "--no-val")
    assert_one_line_error(p, "teacher", "expected the student's fox, raccoon")


def test_one_shot_fmc_pruning_takes_a_dataset_of_new_classes(checkpoint, pennfudan, tmp_path):
    """FMC and the BatchNorm re-estimation read boxes, not classes: pruning before fine-tuning to new classes
    works on the new dataset (it was refused with "class 'raccoon' is not a model class")."""
    data = _voc(pennfudan / "images" / "train", tmp_path / "voc", ["raccoon"], 6)
    out = tmp_path / "pruned.pt"
    p = run_cli("prune", "--weights", checkpoint, "--criterion", "fmc", "--level", "0.3", "--data", data,
                "--stats-images", "4", "--recal-images", "4", "--output", out, check=True)
    assert "are not the model's (person)" in p.stderr and out.is_file()
    from sdk.models.checkpoint import load_checkpoint

    pruned, _ = load_checkpoint(out)
    assert pruned.names == ["person"]  # the head is rebuilt by the fine-tune, not by pruning
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["params"] < report["params_before"]

"""The trainer end to end on real data: augmentation, extension points, checkpoints, resume, the CLI."""
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdk.data.datasets import load_dataset  # noqa: E402
from sdk.errors import SDKError  # noqa: E402
from sdk.models.checkpoint import load_checkpoint  # noqa: E402
from sdk.train.augment import mosaic, random_affine, training_image  # noqa: E402
from sdk.train.hyp import HYP_TINY  # noqa: E402
from sdk.train.trainer import Trainer  # noqa: E402

from .conftest import assert_one_line_error, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def train_ds(pennfudan):
    return load_dataset(pennfudan, names=["person"], split="train")


def test_mosaic_and_affine_keep_boxes_on_the_people(train_ds):
    rng = np.random.default_rng(0)
    img, labels = mosaic(train_ds.samples[:4], 160, rng)
    assert img.shape == (320, 320, 3)
    assert len(labels) == sum(len(s.classes) for s in train_ds.samples[:4])
    out, kept = random_affine(img, labels, 160, rng)
    assert out.shape == (160, 160, 3) and len(kept) >= 1
    assert (kept[:, 1:] >= 0).all() and (kept[:, 1:] <= 160).all()
    assert (kept[:, 3] > kept[:, 1]).all() and (kept[:, 4] > kept[:, 2]).all()
    # a box still covers non-padding pixels (a person, not the grey border)
    c, x1, y1, x2, y2 = kept[0].astype(int)
    assert (out[y1:y2, x1:x2] != 114).any()


def test_flip_moves_boxes_with_the_image(train_ds):
    hyp = dict(HYP_TINY, mosaic=0.0, fliplr=1.0, scale=0.0, translate=0.0, hsv_h=0, hsv_s=0, hsv_v=0)
    plain, lp = training_image(train_ds, 0, 160, hyp, np.random.default_rng(0), augment=False)
    flipped, lf = training_image(train_ds, 0, 160, hyp, np.random.default_rng(0), augment=True)
    assert np.allclose(lf[:, 1], 160 - lp[:, 3], atol=1) and np.allclose(lf[:, 3], 160 - lp[:, 1], atol=1)
    assert np.abs(flipped.astype(int) - plain[:, ::-1].astype(int)).mean() < 2


def test_fit_runs_hooks_writes_checkpoints_and_resumes(checkpoint, train_ds, pennfudan, tmp_path):
    model = load_checkpoint(checkpoint)[0]
    seen = {"hook": 0, "steps": []}

    def l2_hook(m, imgs, targets, preds):
        seen["hook"] += 1
        assert imgs.shape[1:] == (3, 128, 128) and targets.shape[1] == 6 and len(preds) == 3
        extra = 1e-6 * sum(p.pow(2).sum() for p in m.detect.m.parameters())
        return extra, {"l2": extra.item()}

    def on_step(trainer, step):
        seen["steps"].append((step, trainer.epoch))

    val = load_dataset(pennfudan, names=["person"], split="val")
    t = Trainer(model, train_ds, val, epochs=2, batch_size=4, imgsz=128, max_train_images=8, max_val_images=6,
                out_dir=tmp_path, loss_hooks=[l2_hook], step_callbacks=[on_step], progress=False)
    t.epochs = 1  # stop after the first of two epochs, as an interrupted run would
    t.fit()
    assert seen["hook"] == 2 and seen["steps"] == [(0, 0), (1, 0)]
    best, info = load_checkpoint(tmp_path / "best.pt")
    assert info["best_epoch"] == 1 and 0 < info["history"][0]["map50"] <= 1
    assert info["history"][0]["train_l2"] > 0
    last = load_checkpoint(tmp_path / "last.pt")[1]
    assert last["resume_format"] == "sdk-train-v1" and last["epoch"] == 0

    resumed = Trainer(load_checkpoint(checkpoint)[0], train_ds, val, epochs=2, batch_size=4, imgsz=128,
                      max_train_images=8, max_val_images=6, out_dir=tmp_path, step_callbacks=[on_step],
                      resume=tmp_path / "last.pt", progress=False)
    assert resumed.start_epoch == 1 and resumed.step == 2
    res = resumed.fit()
    assert [r["epoch"] for r in res["history"]] == [1, 2]
    assert seen["steps"][-2:] == [(2, 1), (3, 1)]
    with pytest.raises(SDKError, match="finished 2 of 2 epochs"):
        Trainer(load_checkpoint(checkpoint)[0], train_ds, None, epochs=2, imgsz=128, resume=tmp_path / "last.pt")


def test_empty_training_data_is_refused(checkpoint, train_ds):
    from sdk.data.datasets import LabelledDataset

    empty = LabelledDataset([], ["person"], "yolo", "nowhere")
    with pytest.raises(SDKError, match="the dataset is empty"):
        Trainer(load_checkpoint(checkpoint)[0], empty, None, epochs=1, imgsz=128)
    with pytest.raises(SDKError, match="multiple of the model stride"):
        Trainer(load_checkpoint(checkpoint)[0], train_ds, None, epochs=1, imgsz=100)


def test_train_cli_with_coco_json_data(checkpoint, pennfudan, tmp_path):
    p = run_cli("train", "--weights", checkpoint, "--data", pennfudan / "instances_train.json",
                "--val-data", pennfudan / "instances_val.json", "--epochs", "1", "--batch-size", "4",
                "--imgsz", "128", "--max-images", "4", "--max-val-images", "4", "--out-dir", tmp_path / "run")
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["images"] == 4 and res["steps"] == 1 and len(res["history"]) == 1
    model, info = load_checkpoint(res["best"])
    assert model.names == ["person"] and info["imgsz"] == 128
    import csv

    rows = list(csv.DictReader(open(res["results_csv"])))
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and float(rows[0]["train_loss"]) > 0
    assert 0 <= float(rows[0]["map50"]) <= 1 and float(rows[0]["lr"]) >= 0  # (0: still in warm-up)
    assert res["results_png"] and os.path.getsize(res["results_png"]) > 5000
    assert "never leaves warm-up" in p.stderr  # 1 epoch of 1 step is all warm-up


def test_warm_up_warning_only_when_the_run_stays_in_it(capsys):
    from sdk.train.results import warn_if_never_warm

    assert warn_if_never_warm(30, 10) and "never leaves warm-up (30 warm-up iterations >= 10" in \
        capsys.readouterr().err
    assert not warn_if_never_warm(3, 10) and capsys.readouterr().err == ""


def test_train_cli_from_cfg(checkpoint, pennfudan, tmp_path):
    import yaml

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(load_checkpoint(checkpoint)[0].yaml))
    p = run_cli("train", "--cfg", cfg, "--names", "person", "--data", pennfudan, "--no-val", "--epochs", "1",
                "--batch-size", "2", "--imgsz", "96", "--max-images", "2", "--out-dir", tmp_path / "scratch")
    assert p.returncode == 0, p.stderr[-2000:]
    assert load_checkpoint(tmp_path / "scratch" / "best.pt")[0].yaml["nc"] == 1


@pytest.mark.parametrize("extra, needle", [
    (["--epochs", "0"], "--epochs"),
    (["--hyp", "nonsense=1"], "--hyp nonsense=1"),
])
def test_train_cli_bad_input(checkpoint, pennfudan, tmp_path, extra, needle):
    p = run_cli("train", "--weights", checkpoint, "--data", pennfudan, "--out-dir", tmp_path, *extra)
    assert_one_line_error(p, needle)


def test_train_cli_empty_dataset(checkpoint, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    p = run_cli("train", "--weights", checkpoint, "--data", tmp_path / "images", "--out-dir", tmp_path / "o")
    assert_one_line_error(p, "--data")

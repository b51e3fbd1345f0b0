"""`python -m sdk distill` on the real model and data: a 50 %-pruned student fine-tuned with the unpruned teacher,
the distillation loss falls as the student moves towards the teacher, and bad input is a one-line error."""
import copy
import json

import pytest

torch = pytest.importorskip("torch")

from sdk.data.datasets import load_dataset  # noqa: E402
from sdk.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from sdk.train.augment import letterboxed, to_batch  # noqa: E402
from sdk.train.distill import OutputDistillation  # noqa: E402

from .conftest import assert_one_line_error, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def student(teacher, tmp_path_factory):
    """The teacher pruned to 50 % by L1 (cheap; the criterion does not matter here), saved as the CLI input."""
    from sdk.prune.api import make_criterion, prune_model

    pruned, _ = prune_model(teacher, make_criterion("l1"), 0.5, imgsz=128)
    return save_checkpoint(pruned, tmp_path_factory.mktemp("student") / "student.pt")


def test_distill_cli_fine_tunes_the_student(checkpoint, student, pennfudan, tmp_path):
    p = run_cli("distill", "--weights", student, "--teacher", checkpoint, "--data", pennfudan, "--epochs", "1",
                "--batch-size", "2", "--imgsz", "96", "--max-images", "4", "--max-val-images", "4",
                "--hyp", "mosaic=0", "--threads", "1", "--out-dir", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    row = res["history"][-1]
    assert row["train_kd_obj"] > 0 and row["train_kd_box"] >= 0 and 0 <= row["map50"] <= 1
    assert res["distillation"]["teacher"] == str(checkpoint) and res["steps"] == 2
    assert "train_kd_obj" in p.stdout  # the per-epoch table shows the distillation losses
    best = load_checkpoint(tmp_path / "best.pt")[0]
    assert best.yaml == load_checkpoint(student)[0].yaml  # still the student's (pruned) architecture
    assert load_checkpoint(tmp_path / "last.pt")[1]["resume_format"] == "sdk-train-v1"


def test_distillation_loss_falls_as_the_student_moves_to_the_teacher(teacher, student, pennfudan):
    """Trained on the distillation loss alone (YOLO gains 0), the student's outputs approach the teacher's."""
    from sdk.train.trainer import Trainer

    ds = load_dataset(pennfudan, names=teacher.names, split="train")
    x, t = to_batch([letterboxed(s, 128) for s in ds.samples[:4]])
    x, t = torch.from_numpy(x), torch.from_numpy(t)
    kd = OutputDistillation(copy.deepcopy(teacher))
    model = load_checkpoint(student)[0]

    def kd_loss(m):
        m.train()
        with torch.no_grad():
            return kd(m, x, t, m(x))[0].item()

    before = kd_loss(copy.deepcopy(model))
    tr = Trainer(model, ds, None, epochs=3, batch_size=2, imgsz=128, max_train_images=4, warmup_epochs=0,
                 hyp={"box": 0.0, "obj": 0.0, "cls": 0.0}, augment=False, loss_hooks=[kd], ema=False,
                 progress=False, save=False)
    tr.fit()
    after = kd_loss(copy.deepcopy(tr.model))
    assert after < 0.8 * before, (before, after)
    assert [h["train_kd_obj"] for h in tr.history][-1] < tr.history[0]["train_kd_obj"]


def _other_head_teacher(teacher, path):
    from sdk.models.yolo import YOLO

    cfg = copy.deepcopy(teacher.yaml)
    cfg["nc"] = 3
    return save_checkpoint(YOLO(cfg, names=["a", "b", "c"]), path)


def test_distill_cli_bad_input(checkpoint, student, teacher, pennfudan, tmp_path):
    common = ["--data", pennfudan, "--epochs", "1", "--imgsz", "96", "--max-images", "2", "--threads", "1",
              "--out-dir", tmp_path / "out"]
    other = _other_head_teacher(teacher, tmp_path / "nc3.pt")
    p = run_cli("distill", "--weights", student, "--teacher", other, *common)
    assert_one_line_error(p, "--teacher", "nc3.pt", "3 classes", "student's 1")
    p = run_cli("distill", "--weights", student, "--teacher", tmp_path / "missing.pt", *common)
    assert_one_line_error(p, "missing.pt", "not found")
    p = run_cli("distill", "--weights", tmp_path / "nostudent.pt", "--teacher", checkpoint, *common)
    assert_one_line_error(p, "nostudent.pt", "not found")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "labels").mkdir()
    p = run_cli("distill", "--weights", student, "--teacher", checkpoint, *common[2:], "--data",
                tmp_path / "empty" / "images")
    assert_one_line_error(p, "--data")
    p = run_cli("distill", "--weights", student, "--teacher", checkpoint, *common, "--temperature", "0")
    assert_one_line_error(p, "--temperature: got 0.0")
    assert not (tmp_path / "out").exists()

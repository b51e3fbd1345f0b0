"""Output distillation on the real YOLOv7-tiny: zero for a copy of the teacher, positive for a damaged student,
gradients reach the student only, a few steps on it pull the student back, and the hook runs in the trainer."""
import copy

import pytest

torch = pytest.importorskip("torch")

from sdk.errors import SDKError  # noqa: E402
from sdk.train.distill import OutputDistillation, binary_kl  # noqa: E402

from .conftest import letterboxed_batch  # noqa: E402


@pytest.fixture(scope="module")
def batch(pennfudan, teacher):
    return letterboxed_batch(pennfudan, teacher.names, "val", 2, 128)


def _student(teacher, noise=0.0, seed=0):
    s = copy.deepcopy(teacher)
    for p in s.parameters():
        p.requires_grad_(True)
    if noise:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in s.parameters():
                p.add_(torch.randn(p.shape, generator=g) * noise * p.abs().mean())
    return s.train()


def test_binary_kl_is_zero_only_for_equal_logits():
    a = torch.tensor([-3.0, 0.0, 2.5])
    assert torch.allclose(binary_kl(a, a), torch.zeros(3), atol=1e-7)
    assert (binary_kl(a + 1, a) > 0).all()


def test_copy_of_teacher_has_zero_loss_and_damaged_student_does_not(teacher, batch):
    x, t = batch
    kd = OutputDistillation(copy.deepcopy(teacher))
    same = _student(teacher).eval()
    same.detect.train()  # raw maps with BatchNorm in eval mode, exactly as the teacher runs
    loss, items = kd(same, x, t, same(x))
    assert loss.item() == pytest.approx(0.0, abs=1e-5)
    assert set(items) == {"kd_obj", "kd_cls", "kd_box"}
    damaged = _student(teacher, noise=0.3)
    loss, items = kd(damaged, x, t, damaged(x))
    assert loss.item() > 1e-3 and items["kd_obj"] > 0 and items["kd_box"] > 0
    assert all(not p.requires_grad for p in kd.teacher.parameters())
    loss.backward()
    assert all(p.grad is None for p in kd.teacher.parameters())
    assert sum(float(p.grad.abs().sum()) for p in damaged.parameters() if p.grad is not None) > 0


def test_teacher_batchnorm_statistics_do_not_move(teacher, batch):
    kd = OutputDistillation(copy.deepcopy(teacher))
    before = {k: v.clone() for k, v in kd.teacher.state_dict().items() if "running" in k}
    student = _student(teacher, noise=0.1)
    kd(student, batch[0], batch[1], student(batch[0]))
    after = kd.teacher.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert not kd.teacher.training and not kd.teacher.detect.training


def test_steps_on_the_distillation_loss_pull_the_student_to_the_teacher(teacher, batch):
    x, t = batch
    kd = OutputDistillation(copy.deepcopy(teacher))
    student = _student(teacher, noise=0.2, seed=1)
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss, _ = kd(student, x, t, student(x))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_head_mismatch_is_a_one_line_error(teacher, batch):
    from sdk.models.yolo import YOLO

    cfg = copy.deepcopy(teacher.yaml)
    cfg["nc"] = 3
    other = YOLO(cfg, names=["a", "b", "c"]).train()
    kd = OutputDistillation(copy.deepcopy(teacher))
    with pytest.raises(SDKError, match="same anchors, levels and classes"):
        kd(other, batch[0], batch[1], other(batch[0]))


def test_hooks_run_inside_the_trainer(teacher, pennfudan, tmp_path):
    from sdk.prune.schedule import CubicSchedule, GradualPruning, magnitude_masks, sparsity_of
    from sdk.train.trainer import Trainer

    kd = OutputDistillation(copy.deepcopy(teacher))
    gp = GradualPruning(CubicSchedule(final=0.3, num_updates=1, frequency=1), magnitude_masks)
    tr = Trainer(_student(teacher), pennfudan, None, epochs=1, batch_size=2, imgsz=160, max_train_images=4,
                 loss_hooks=[kd], step_callbacks=[gp], progress=False, save=False, augment=False)
    tr.fit()
    assert "kd_obj" in tr.history[-1] or any("kd_obj" in str(h) for h in tr.history)
    assert sparsity_of(tr.model, gp.masks) == pytest.approx(0.3, abs=0.002)
    assert sparsity_of(tr.ema.ema, gp.masks) == pytest.approx(0.3, abs=0.002)

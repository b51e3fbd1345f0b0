"""The YOLOv7 loss: CIoU, target assignment, and that it measures real detection quality on real data."""
import copy

import pytest

torch = pytest.importorskip("torch")

from sdk.models.yolo import YOLO  # noqa: E402
from sdk.train.hyp import HYP_TINY, scaled_loss_gains  # noqa: E402
from sdk.train.loss import YoloLoss, bbox_ciou  # noqa: E402

from .conftest import letterboxed_batch  # noqa: E402


@pytest.fixture(scope="module")
def batch(pennfudan, model):
    return letterboxed_batch(pennfudan, model.names, "train", 4, 256)


def test_ciou():
    a = torch.tensor([[10.0, 10, 4, 6]])
    assert torch.allclose(bbox_ciou(a, a), torch.ones(1), atol=1e-5)
    far = torch.tensor([[30.0, 30, 4, 6]])
    assert bbox_ciou(a, far).item() < 0  # no overlap: the centre-distance penalty makes it negative
    near = torch.tensor([[11.0, 10, 4, 6]])
    assert 0 < bbox_ciou(a, near).item() < 1


def test_targets_go_to_matching_anchors_at_the_cell_and_two_neighbours(model):
    loss = YoloLoss(model, scaled_loss_gains(HYP_TINY, 1, 3, 256))
    maps = [torch.zeros(1, 3, 256 // s, 256 // s, 6) for s in (8, 16, 32)]
    # one 40x80 px person centred at (98.4, 62.4) px: on P3 (stride 8) its centre sits at (12.3, 7.8)
    t = torch.tensor([[0, 0, 98.4 / 256, 62.4 / 256, 40 / 256, 80 / 256]])
    tcls, tbox, indices, anchors = loss.build_targets(maps, t)
    b, a, gj, gi = indices[0]
    p3_anchors = model.detect.anchors[0]
    ratio = torch.max(torch.tensor([5.0, 10.0]) / p3_anchors, p3_anchors / torch.tensor([5.0, 10.0])).max(1)[0]
    matched = set(torch.nonzero(ratio < 4.0).flatten().tolist())
    assert set(a.tolist()) == matched and matched
    cells = {(int(y), int(x)) for y, x in zip(gj, gi)}
    # x 12.3: in the left half of cell 12, so cell 11 too; y 7.8: lower half of row 7, so row 8 too
    assert cells == {(7, 12), (7, 11), (8, 12)}
    assert len(b) == 3 * len(matched)
    assert torch.allclose(tbox[0][:, 2:], torch.tensor([5.0, 10.0]).expand(len(b), 2))


def test_trained_model_scores_far_better_than_random_init(model, batch):
    x, t = batch
    gains = scaled_loss_gains(HYP_TINY, 1, 3, 256)
    model.train()
    torch.manual_seed(0)
    random_model = YOLO(model.yaml, names=model.names).train()
    with torch.no_grad():
        _, trained = YoloLoss(model, gains)(model(x), t)
        _, fresh = YoloLoss(random_model, gains)(random_model(x), t)
    model.eval()
    assert trained["box"] < 0.7 * fresh["box"], (trained, fresh)
    assert trained["obj"] < 0.5 * fresh["obj"], (trained, fresh)
    assert trained["cls"] == 0.0  # one class: no class loss, as official


def test_a_few_steps_lower_the_loss(model, batch):
    import copy

    x, t = batch
    m = copy.deepcopy(model).train()
    for mod in m.modules():  # keep BatchNorm statistics fixed: only the weights learn
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.eval()
    crit = YoloLoss(m, scaled_loss_gains(HYP_TINY, 1, 3, 256))
    opt = torch.optim.SGD(m.parameters(), lr=0.005, momentum=0.9)
    losses = []
    for _ in range(6):
        loss, _ = crit(m(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses

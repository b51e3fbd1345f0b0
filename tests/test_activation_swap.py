"""`train --activation`: the model's activations (modules and cfg) replaced so the fine-tune learns them and the
checkpoint rebuilds with them; the shared model is the data."""
import pytest

torch = pytest.importorskip("torch")

from sdk.errors import SDKError  # noqa: E402
from sdk.models.checkpoint import build_from_state, load_checkpoint  # noqa: E402
from sdk.models.yolo import with_activation  # noqa: E402


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_checkpoint(checkpoint)[0]


def _acts(m):
    return sorted({type(x).__name__ for x in m.modules() if isinstance(x, (torch.nn.ReLU, torch.nn.LeakyReLU))})


def test_relu_replaces_every_leaky_relu_and_the_checkpoint_rebuilds_with_it(model):
    import copy

    m = with_activation(copy.deepcopy(model), "ReLU")
    assert _acts(model) == ["LeakyReLU"] and _acts(m) == ["ReLU"]
    assert sum(isinstance(x, torch.nn.ReLU) for x in m.modules()) == 55
    assert "LeakyReLU" not in repr(m.yaml) and "nn.ReLU()" in repr(m.yaml)
    rebuilt = build_from_state(m.yaml, m.state_dict(), m.names)  # what load_checkpoint does with the saved cfg
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        got, want, old = rebuilt.eval()(x)[0], m.eval()(x)[0], model.eval()(x)[0]
    assert torch.equal(got, want) and not torch.allclose(got, old)  # same weights, another function


@pytest.mark.parametrize("bad", ["Swishy", "LeakyReLU(abc)", "ReLU("])
def test_unknown_activation_is_refused_by_name(model, bad):
    with pytest.raises(SDKError, match=r"^activation: got .*expected one of"):
        with_activation(model, bad)
    assert _acts(model) == ["LeakyReLU"] and "LeakyReLU" in repr(model.yaml)  # nothing changed


def test_train_cli_refuses_an_unknown_activation_in_one_line(tmp_path, checkpoint, pennfudan):
    from tests.conftest import assert_one_line_error, run_cli

    proc = run_cli("train", "--weights", str(checkpoint), "--data", str(pennfudan), "--epochs", "1",
                   "--activation", "Swishy", "--out-dir", str(tmp_path / "run"))
    assert_one_line_error(proc, "Swishy")
    assert not (tmp_path / "run" / "best.pt").exists()

"""Structural pruning: widths, exact surviving weights, cfg write-back, reload, ONNX export and parity."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdk.errors import SDKError  # noqa: E402
from sdk.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from sdk.prune.api import prune_model  # noqa: E402
from sdk.prune.criteria import L1Norm  # noqa: E402
from sdk.prune.plan import keep_counts, parse_layer_ratios, prunable_layers  # noqa: E402


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_checkpoint(checkpoint)[0]


@pytest.fixture(scope="module")
def pruned50(model):
    return prune_model(model, L1Norm(), 0.5, imgsz=160)


def test_level_50_halves_every_layer_and_meets_the_param_target(model, pruned50):
    pruned, report = pruned50
    assert report["params_before"] == 6014988
    assert report["params"] <= 1.6e6 < report["params_before"] / 3
    assert report["gflops"] < report["gflops_before"] / 3
    before = prunable_layers(model)
    for name, layer in prunable_layers(pruned).items():
        assert layer.conv.out_channels == round(before[name].conv.out_channels * 0.5)
        assert layer.bn.num_features == layer.conv.out_channels
    det = pruned.detect
    assert all(m.out_channels == det.na * det.no for m in det.m)  # detection outputs untouched
    assert [m.in_channels for m in det.m] == [64, 128, 256]
    assert [a.implicit.shape[1] for a in det.ia] == [64, 128, 256]


def test_surviving_filters_are_the_original_weights(model, pruned50):
    pruned, _ = pruned50
    l1 = L1Norm()
    for name in ("model.0", "model.7"):
        orig = prunable_layers(model)[name]
        keep = l1(name, orig, prunable_layers(pruned)[name].conv.out_channels)
        w = orig.conv.weight.detach()[keep]
        got = prunable_layers(pruned)[name].conv.weight.detach()
        if name == "model.7":  # its inputs (a concat of four pruned convs) were cut too
            assert got.shape[1] == w.shape[1] // 2
        else:
            assert torch.equal(got, w)
            assert torch.equal(prunable_layers(pruned)[name].bn.running_mean, orig.bn.running_mean[keep])


def test_pruned_checkpoint_reloads_and_exports(pruned50, tmp_path):
    from sdk.export.onnx_export import export_onnx

    pruned, _ = pruned50
    assert pruned.yaml["backbone"][0][3][0] == 16 and pruned.yaml["head"][-2][3][0] == 256
    path = save_checkpoint(pruned, tmp_path / "p.pt")
    again, info = load_checkpoint(path)
    x = torch.rand(1, 3, 160, 160)
    pruned.eval()
    assert torch.allclose(again(x), pruned(x), atol=1e-5)
    _, rep = export_onnx(again, tmp_path / "p.onnx", imgsz=160, check_images=[np.full((120, 90, 3), 90, np.uint8)])
    assert rep["params"] < 1.6e6
    assert rep["max_abs_diff_scores"] < 1e-3


def test_rounding_and_local_ratios(model):
    layers = prunable_layers(model)
    ratios = parse_layer_ratios(["model.14=0.25", "40=0.75"], layers)
    assert ratios == {"model.14": 0.25, "model.40": 0.75}
    counts = keep_counts(layers, 0.6, ratios, round_to=8)
    assert all(c % 8 == 0 and c >= 8 for c in counts.values())
    assert counts["model.14"] == 96 and counts["model.40"] == 32
    pruned, report = prune_model(model, L1Norm(), 0.6, layer_ratios=ratios, round_to=8, imgsz=128)
    assert {n: l.conv.out_channels for n, l in prunable_layers(pruned).items()} == counts
    assert report["local"] is True


@pytest.mark.parametrize("spec, needle", [(["model.6=0.5"], "model.6"), (["model.99=0.5"], "model.99"),
                                          (["model.12"], "NAME=RATIO"), (["model.12=1.2"], "[0, 1)")])
def test_bad_layer_specs_are_clear(model, spec, needle):
    with pytest.raises(SDKError, match=None) as e:
        parse_layer_ratios(spec, prunable_layers(model))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_level_out_of_range_is_refused(model):
    for level in (1.0, -0.1):
        with pytest.raises(SDKError, match=r"expected a pruning ratio in \[0, 1\)"):
            prune_model(model, L1Norm(), level)

"""Pruning criteria on the real model and data: K-means++, L1 norm, feature-map statistics and clustering."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdk.data.datasets import load_dataset  # noqa: E402
from sdk.prune.criteria import FeatureMapClustering, L1Norm, local_ratios_from_clustering, standardise  # noqa: E402
from sdk.prune.kmeans import kmeans  # noqa: E402
from sdk.prune.plan import keep_count, prunable_layers  # noqa: E402
from sdk.prune.stats import box_mask, feature_map_stats  # noqa: E402


@pytest.fixture(scope="module")
def stats(model, pennfudan):
    train = load_dataset(pennfudan, names=model.names, split="train")
    return feature_map_stats(model, prunable_layers(model), train, imgsz=192, max_images=6, progress=False)


def test_kmeans_recovers_separated_blobs_and_is_seeded():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    x = np.concatenate([c + rng.normal(0, 0.3, (25, 2)) for c in centres])
    labels, found, inertia = kmeans(x, 4, seed=3)
    # every true blob maps to exactly one cluster
    assert sorted(len(set(labels[i * 25:(i + 1) * 25])) for i in range(4)) == [1, 1, 1, 1]
    assert len(set(labels)) == 4
    assert inertia < 100 * 0.3 ** 2 * 2 * 2
    again = kmeans(x, 4, seed=3)
    assert np.array_equal(again[0], labels)
    with pytest.raises(ValueError):
        kmeans(x, 0)


def test_box_mask_marks_cells_inside_boxes():
    m = box_mask(np.array([[0, 0, 16, 16], [40, 40, 41, 41]]), stride=8, h=8, w=8)
    assert m[:2, :2].all() and m.sum() == 5  # 2x2 cells of the first box + the cell holding the tiny box
    assert m[5, 5]


def test_l1_keeps_the_largest_filters(model):
    layer = prunable_layers(model)["model.14"]
    norms = layer.conv.weight.detach().abs().sum((1, 2, 3)).numpy()
    keep = L1Norm()("model.14", layer, 32)
    assert len(keep) == 32 and np.all(np.diff(keep) > 0)
    assert norms[keep].min() >= np.sort(norms)[-32]


def test_feature_map_stats_are_real_per_channel_statistics(model, stats):
    layers = prunable_layers(model)
    assert set(stats) == set(layers)
    for name, layer in layers.items():
        s = stats[name]
        assert s.shape == (layer.conv.out_channels, 4)
        assert np.isfinite(s).all() and (s[:, [1, 3]] >= 0).all()
    # objects and background differ: persons are not background
    s = stats["model.28"]
    assert np.abs(s[:, 0] - s[:, 2]).mean() > 1e-3


def test_clustering_keeps_the_largest_vg_channel_of_each_cluster(model, stats):
    crit = FeatureMapClustering(stats, seed=0)
    layer = prunable_layers(model)["model.21"]
    n_keep = keep_count(layer.conv.out_channels, 0.75)
    keep = crit("model.21", layer, n_keep)
    assert len(keep) == n_keep == len(set(keep.tolist()))
    labels, _ = crit.clusters("model.21", n_keep)
    vg = stats["model.21"][:, 1]
    for j in set(labels.tolist()):
        members = np.flatnonzero(labels == j)
        assert members[np.argmax(vg[members])] in keep
    # different from the L1 choice: the criterion matters
    assert set(keep.tolist()) != set(L1Norm()("model.21", layer, n_keep).tolist())


def test_local_ratios_from_clustering_average_the_level(stats):
    ratios = local_ratios_from_clustering(stats, 0.5)
    assert set(ratios) == set(stats)
    values = np.array(list(ratios.values()))
    assert abs(values.mean() - 0.5) < 0.05 and values.std() > 0.01
    assert ((values >= 0) & (values < 1)).all()
    assert np.allclose(standardise(stats["model.0"]).mean(0), 0, atol=1e-9)

"""Which output channels of a layer to keep. Each criterion is a small callable, Torch-Pruning style:

    keep = criterion(name, layer, n_keep)  # sorted indices of the channels to keep

`layer` is an SDK `Conv` (conv + BatchNorm + activation); `name` is its "model.N" name.
"""
import numpy as np

from .kmeans import kmeans


class L1Norm:
    """Li et al. 2017: keep the filters with the largest sum of absolute weights."""

    name = "l1"

    def scores(self, layer):
        w = layer.conv.weight.detach()
        return w.abs().flatten(1).sum(1).double().numpy()

    def __call__(self, name, layer, n_keep):
        order = np.argsort(-self.scores(layer), kind="stable")
        return np.sort(order[:n_keep])


def standardise(features):
    """Zero mean, unit variance per column, so MG/VG/MB/VB weigh alike in the distance."""
    f = np.asarray(features, np.float64)
    std = f.std(0)
    return (f - f.mean(0)) / np.where(std > 0, std, 1.0)


class FeatureMapClustering:
    """Cluster a layer's channels on (MG, VG, MB, VB) with K-means++, K = channels to keep; in each cluster keep
    the channel with the largest VG (the one that varies most on objects). Channels in one cluster respond alike,
    so one of them stands for the rest.

    `stats` is {name: (C, 4) array} from `sdk.prune.stats.feature_map_stats` on the unpruned model.
    """

    name = "fmc"

    def __init__(self, stats, seed=0):
        self.stats = stats
        self.seed = seed

    def clusters(self, name, n_keep):
        feats = self.stats[name]
        labels, _, inertia = kmeans(standardise(feats), n_keep, seed=self.seed)
        return labels, inertia

    def __call__(self, name, layer, n_keep):
        feats = self.stats[name]
        c = len(feats)
        if n_keep >= c:
            return np.arange(c)
        labels, _ = self.clusters(name, n_keep)
        vg = feats[:, 1]
        keep = [int(np.flatnonzero(labels == j)[np.argmax(vg[labels == j])])
                for j in range(n_keep) if (labels == j).any()]
        if len(keep) < n_keep:  # K-means left a cluster empty: top up with the largest-VG channels left
            rest = [i for i in np.argsort(-vg, kind="stable") if i not in set(keep)]
            keep += rest[:n_keep - len(keep)]
        return np.sort(np.asarray(keep, np.int64))


def effective_width(features, explained=0.9, seed=0):
    """Smallest number of K-means++ clusters that explains `explained` of a layer's spread in (MG, VG, MB, VB),
    as a share of its channels: a layer whose channels fall into few clusters is redundant."""
    x = standardise(features)
    c = len(x)
    total = float(((x - x.mean(0)) ** 2).sum())
    if total <= 0:
        return 1.0 / c
    lo, hi = 1, c
    while lo < hi:  # binary search: explained spread grows with K
        k = (lo + hi) // 2
        if 1.0 - kmeans(x, k, seed=seed, iters=50)[2] / total >= explained:
            hi = k
        else:
            lo = k + 1
    return lo / c


def local_ratios_from_clustering(stats, level, seed=0, explained=0.9, hi=0.95):
    """Per-layer ratios averaging `level`, each proportional to the share of a layer's channels that the
    clustering finds redundant (1 - effective width), capped at `hi`."""
    red = {n: 1.0 - effective_width(f, explained, seed) for n, f in stats.items()}
    mean = float(np.mean(list(red.values())))
    if mean <= 0:
        return {n: level for n in stats}
    return {n: float(np.clip(level * r / mean, 0.0, hi)) for n, r in red.items()}


CRITERIA = ("fmc", "l1")

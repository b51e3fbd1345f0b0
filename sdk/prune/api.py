"""One call from a model to its pruned copy: choose the criterion, count the channels, cut, report."""
import copy

from ..errors import SDKError
from .criteria import CRITERIA, FeatureMapClustering, L1Norm, local_ratios_from_clustering
from .measure import count_gflops, count_params
from .plan import check_level, keep_counts, prunable_layers, sparsity


def make_criterion(name, model=None, data=None, imgsz=416, stats_images=64, seed=0, progress=True, stats=None):
    """'l1' or 'fmc' (feature-map clustering; needs labelled training images, or precomputed `stats`)."""
    if name == "l1":
        return L1Norm()
    if name == "fmc":
        if stats is None:
            if data is None:
                raise SDKError("data: got nothing, expected labelled training images for feature-map clustering")
            from .stats import feature_map_stats

            stats = feature_map_stats(model, prunable_layers(model), data, imgsz, stats_images, progress)
        return FeatureMapClustering(stats, seed)
    raise SDKError(f"criterion: got {name}, expected one of {', '.join(CRITERIA)}")


def prune_model(model, criterion, level=0.0, layer_ratios=None, local=False, round_to=0, imgsz=416, inplace=False):
    """Prune `model` (a copy unless `inplace`) with a criterion from `make_criterion`.

    level: the same ratio in every prunable layer (level pruning). layer_ratios: {name: ratio} overrides
    (local pruning, given). local=True: per-layer ratios from the clustering whose mean is `level` (needs
    the 'fmc' criterion). round_to: keep a multiple of this many channels per layer (8 suits TensorRT).
    Returns (pruned model, report).
    """
    from .surgery import prune_channels

    level = check_level(level)
    if not inplace:
        model = copy.deepcopy(model)
    layers = prunable_layers(model)
    ratios = dict(layer_ratios or {})
    if local:
        if not isinstance(criterion, FeatureMapClustering):
            raise SDKError("local: got criterion l1, expected fmc (per-layer ratios come from the clustering)")
        ratios = {**local_ratios_from_clustering(criterion.stats, level, criterion.seed), **ratios}
    before = {"params": count_params(model), "gflops": count_gflops(model, imgsz)}
    counts = keep_counts(layers, level, ratios, round_to)
    keep = {name: criterion(name, layers[name], n) for name, n in counts.items()
            if n < layers[name].conv.out_channels}
    widths_before = {n: m.conv.out_channels for n, m in layers.items()}
    filter_sparsity = sparsity(counts, layers)
    prune_channels(model, keep, imgsz=min(imgsz, 256))
    after = {"params": count_params(model), "gflops": count_gflops(model, imgsz)}
    report = {"criterion": getattr(criterion, "name", type(criterion).__name__), "level": level,
              "local": bool(local or layer_ratios), "round_to": round_to, "filter_sparsity": filter_sparsity,
              "params_before": before["params"], "params": after["params"], "gflops_before": before["gflops"],
              "gflops": after["gflops"], "imgsz": imgsz,
              "layers": {n: [widths_before[n], counts[n]] for n in layers}}
    return model, report

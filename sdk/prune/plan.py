"""Prunable layers and how many output channels each keeps."""
import difflib

from ..errors import SDKError


def prunable_layers(model):
    """{"model.N": Conv} for every cfg Conv layer. The detection layer is never pruned (its outputs are the
    boxes); convs feeding it are, and Torch-Pruning trims the detection convs' inputs to match."""
    from ..models.common import Conv

    return {f"model.{m.i}": m for m in model.model if isinstance(m, Conv) and getattr(m, "type", "") == "Conv"}


def check_level(level, what="level"):
    if not 0.0 <= float(level) < 1.0:
        raise SDKError(f"{what}: got {level}, expected a pruning ratio in [0, 1) (0.5 = remove half the filters)")
    return float(level)


def resolve_layer_name(name, layers):
    """'12', 'model.12' -> 'model.12'; unknown names get a one-line error with the closest ones."""
    key = name if name.startswith("model.") else f"model.{name}"
    if key not in layers:
        close = difflib.get_close_matches(key, list(layers), n=3)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise SDKError(f"layer {name}: no prunable layer of that name, expected one of model.0 .. "
                       f"model.{max(int(n.split('.')[1]) for n in layers)} that is a Conv{hint}")
    return key


def parse_layer_ratios(specs, layers):
    """['model.12=0.3', '40=0.5'] -> {'model.12': 0.3, 'model.40': 0.5}."""
    out = {}
    for spec in specs or ():
        name, sep, value = spec.partition("=")
        if not sep:
            raise SDKError(f"layer {spec}: got no '=', expected NAME=RATIO such as model.12=0.5")
        try:
            ratio = float(value)
        except ValueError:
            raise SDKError(f"layer {spec}: ratio '{value}' is not a number, expected NAME=RATIO in [0, 1)")
        out[resolve_layer_name(name.strip(), layers)] = check_level(ratio, f"layer {spec}")
    return out


def keep_count(channels, ratio, round_to=0):
    """Channels kept out of `channels` at `ratio`; rounded to a multiple of `round_to` (hardware-friendly)."""
    keep = max(1, int(round(channels * (1.0 - ratio))))
    if round_to and round_to > 1:
        keep = max(round_to, int(round(keep / round_to)) * round_to)
    return min(channels, keep)


def keep_counts(layers, level=0.0, layer_ratios=None, round_to=0):
    """{name: channels to keep}: `level` everywhere (level pruning) unless `layer_ratios` names a layer
    (local pruning)."""
    ratios = {n: (layer_ratios or {}).get(n, level) for n in layers}
    return {n: keep_count(m.conv.out_channels, ratios[n], round_to) for n, m in layers.items()}


def sparsity(counts, layers):
    total = sum(m.conv.out_channels for m in layers.values())
    return 1.0 - sum(counts.values()) / total if total else 0.0


__all__ = ["prunable_layers", "check_level", "parse_layer_ratios", "keep_count", "keep_counts"]

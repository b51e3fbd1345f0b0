"""INT8 post-training quantization with onnxruntime: calibrate once, then QDQ-quantize the layers a precision plan
marks int8 (per-channel int8 weights), leaving every other node in float.

Calibration ranges are computed once per (model, images, method) and saved as onnxruntime's JSON tensor-range
cache, so sensitivity sweeps re-quantize in about a second per variant instead of re-running the images.
"""
import contextlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SDKError
from ..fileio import atomic_path, temp_beside, discard
from ..precision.plan import PrecisionPlan, precision_counts
from .layers import check_float_model, load_model, metadata_of, onnx_layers

METHODS = ("entropy", "minmax", "percentile")
ENTROPY_BINS = 512
ACTIVATION_TYPES = ("auto", "u8", "s8")
# Conv carries the arithmetic; quantizing LeakyRelu/MaxPool/Concat/Resize too lets int8 tensors flow between
# convs, so onnxruntime's QDQ fusion drops the Dequantize->Quantize pairs around them (scripts/bench_int8.py:
# 2.2-2.5x the official FP32 against 1.7x for Conv-only u8s8, docs/int8.md).
# Relu: quantize_static removes a quantized Relu after a Conv (the conv's u8 output clamps at 0, `relu_ranges`);
# left out, each Relu stays a float island between a DequantizeLinear and a QuantizeLinear.
DEFAULT_OP_TYPES = ("Conv", "LeakyRelu", "Relu", "MaxPool", "Concat", "Resize")


@dataclass
class QuantConfig:
    method: str = "entropy"
    activations: str = "auto"  # auto: the fastest form for `target` (sdk.quant.cpu.choose_form)
    per_channel: bool = True
    reduce_range: bool = None  # None: as the form for `target` chooses (7-bit weights on x86 without VNNI)
    target: str = "host"  # the CPU the model is produced for: 'host' or a name in sdk.quant.cpu.TARGETS
    op_types: tuple = DEFAULT_OP_TYPES
    fmt: str = "qdq"  # qdq | qoperator (the latter only for baselines: it cannot carry a mixed plan to TensorRT)
    percentile: float = 99.999
    # Concat inputs and output share one scale, so onnxruntime's QLinearConcat is a plain copy instead of a
    # requantizing lookup per input (its inputs' ranges widen to the union: measured cost in docs/int8.md)
    share_concat_scales: bool = True
    # LeakyRelu(0.1) approximated by Relu so the conv's requantization absorbs it (the u8 output clamps at the
    # zero point) and the lookup-table op disappears. NOT exact: the negative side (x < 0 -> 0.1 x) is lost.
    leaky_as_relu: bool = False
    # zero-pad conv channel counts to what the target's fast INT8 conv kernel takes (sdk.quant.pad): exact, and
    # it moves the first conv (3 input channels), the 18-channel detection convs and a pruned model's odd counts
    # off onnxruntime's slow generic QLinearConv path. None: as the form for `target` says (x86: on).
    pad_channels: bool = None
    # the model takes the letterboxed frame's uint8 bytes, (B, H, W, 4) RGBX where the first conv is padded, else
    # (B, H, W, 3) RGB: the float conversion before it and the input QuantizeLinear inside it cancel, exactly
    # (sdk.quant.byte_input); onnxruntime CPU only
    uint8_input: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise SDKError(f"calib_method: got '{self.method}', expected one of {', '.join(METHODS)}")
        if self.activations not in ACTIVATION_TYPES:
            raise SDKError(f"activations: got '{self.activations}', expected auto, u8 or s8")
        if self.fmt not in ("qdq", "qoperator"):
            raise SDKError(f"quantization format: got '{self.fmt}', expected qdq or qoperator")

    def form(self):
        """The Int8Form quantize produces: the target CPU's choice, with explicit activations / reduce_range kept
        (and said so in the reason)."""
        from dataclasses import replace

        from .cpu import form_for

        form, _ = form_for(self.target)
        given = []
        if self.activations != "auto" and self.activations != form.activations:
            given.append(f"activations {self.activations}")
        if self.reduce_range is not None and self.reduce_range != form.reduce_range:
            given.append(f"reduce_range {self.reduce_range}")
        if not given:
            return form
        return replace(form, activations=self.activations if self.activations != "auto" else form.activations,
                       reduce_range=form.reduce_range if self.reduce_range is None else self.reduce_range,
                       reason=f"{', '.join(given)} as asked (the choice for this CPU would be "
                              f"{form.activations}{', 7-bit weights' if form.reduce_range else ''}: {form.reason})")


@contextlib.contextmanager
def _quiet_ort_warnings():
    """onnxruntime.quantization logs its 'consider pre-processing' advice through the root logger: hold the root
    level at ERROR while it runs and give the caller's level back after (never change the application's logging)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(max(before, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(before)


def _q():
    from ..deps import require

    return require("onnxruntime.quantization", "INT8 quantization")


def _method(q, name):
    return {"entropy": q.CalibrationMethod.Entropy, "minmax": q.CalibrationMethod.MinMax,
            "percentile": q.CalibrationMethod.Percentile}[name]


def calibrate(model_path, reader, method="minmax", cache_path=None, percentile=99.999):
    """Run the calibration images through `model_path` and save every float tensor's range to `cache_path`
    (onnxruntime's JSON range cache). Returns {tensor: (low, high)}."""
    import tempfile

    q = _q()
    QuantConfig(method=method)  # validates the name
    check_float_model(load_model(model_path), model_path)
    extra = {"percentile": percentile} if method == "percentile" else {}
    if method == "entropy":
        # onnxruntime's defaults (128 histogram bins, 128 quantized bins) leave the KL search a single candidate,
        # the full min..max range, i.e. plain minmax; a finer histogram gives it thresholds to choose from.
        extra = {"num_bins": ENTROPY_BINS, "num_quantized_bins": 128}
    with _quiet_ort_warnings(), tempfile.TemporaryDirectory(prefix="sdk-calib-") as tmp:
        calibrator = q.create_calibrator(Path(model_path), None, augmented_model_path=os.path.join(tmp, "aug.onnx"),
                                         calibrate_method=_method(q, method), extra_options=extra)
        # onnxruntime prints its calibration progress on stdout; commands keep stdout for the table + JSON
        with contextlib.redirect_stdout(sys.stderr):
            calibrator.collect_data(reader)
            data = calibrator.compute_data()
        del calibrator
    if cache_path:
        tmp = temp_beside(cache_path, "calibration cache", ".json")
        try:
            q.save_tensors_data(data, tmp)
            os.replace(tmp, cache_path)
        except BaseException:
            discard(tmp)
            raise
    return tensor_ranges(data)


def tensor_ranges(data):
    return {name: (float(_scalar(td.range_value[0])), float(_scalar(td.range_value[1])))
            for name, td in data.data.items()}


def _scalar(v):
    import numpy as np

    return np.asarray(v).reshape(-1)[0]


def load_ranges(cache_path):
    return tensor_ranges(_q().load_tensors_data(cache_path))


def detect_layer_index(meta):
    head = (meta.blocks or {}).get("head") or []
    return max(head) if head else None


def plan_int8_nodes(model, plan, config):
    """(int8 node names, resolved {node: precision}, layers). The detection layer's decode (grid/anchor maths in
    input pixels) always stays float: 8 bits cannot hold box coordinates up to the image size."""
    layers = onnx_layers(model)
    resolved = plan.resolve(layers)
    det = detect_layer_index(metadata_of(model))
    decode = {layer.name for layer in layers
              if det is not None and f"model.{det}/" in layer.name and layer.op_type != "Conv"}
    if det is None:  # a model from another exporter: its decode is whatever follows the last convs
        from ..layouts import decode_nodes

        decode = decode_nodes(model)
    ops = {o.lower() for o in config.op_types}
    int8 = [layer.name for layer in layers
            if resolved[layer.name] == "int8" and layer.name not in decode and layer.op_type.lower() in ops]
    return int8, resolved, layers


def quantize(model_path, output, ranges_cache, plan=None, config=None, method=None, extra_metadata=None):
    """Quantize `model_path` into `output` (atomically) using a range cache from `calibrate`. Returns a report."""
    q = _q()
    config = config or QuantConfig(method=method or "minmax")
    plan = plan or PrecisionPlan(default="int8")
    model = load_model(model_path)
    check_float_model(model, model_path)
    int8, resolved, layers = plan_int8_nodes(model, plan, config)
    if not int8:
        raise SDKError(f"precision plan {plan.to_dict()}: selects no quantizable layer "
                       f"({', '.join(config.op_types)}), expected at least one int8 layer")
    form = config.form()
    if config.uint8_input:  # the quantize command checks it before calibrating, too
        from .byte_input import check_byte_input

        check_byte_input(metadata_of(model), config.fmt, form)
    act = q.QuantType.QUInt8 if form.activations == "u8" else q.QuantType.QInt8
    fmt = q.QuantFormat.QDQ if config.fmt == "qdq" else q.QuantFormat.QOperator
    with _quiet_ort_warnings(), tempfile.TemporaryDirectory(prefix="sdk-quant-") as work, \
            atomic_path(output, "INT8 ONNX output", suffix=".onnx") as tmp:
        src, cache, padding = prepare_graph(model_path, ranges_cache, model, int8, config, work, form)
        # the rewritten LeakyRelus are Relus now: quantized only as op type Relu (DEFAULT_OP_TYPES says why)
        op_types = list(config.op_types) + (["Relu"] if config.leaky_as_relu and "Relu" not in config.op_types
                                            else [])
        q.quantize_static(src, str(tmp), None, quant_format=fmt, op_types_to_quantize=op_types,
                          per_channel=config.per_channel, reduce_range=form.reduce_range, activation_type=act,
                          weight_type=q.QuantType.QInt8, nodes_to_quantize=int8,
                          calibrate_method=_method(q, config.method), calibration_cache_path=cache,
                          extra_options=dict(config.extra))
        padded = {"padded_convs": len(padding["convs"]), "padded_inputs": padding["inputs"]} if padding else {}
        _finish(tmp, model, plan, config, int8, {"int8_form": form.to_dict(), **padded, **(extra_metadata or {})})
    counts = precision_counts(resolved)
    return {"output": str(output), "size_mb": round(os.path.getsize(output) / 2**20, 2), "int8_nodes": len(int8),
            "layers": len(layers), "plan_precisions": counts, "config": _config_json(config), "plan": plan.to_dict(),
            "int8_form": form.to_dict(), "padded_convs": padding["convs"] if padding else {}}


def _config_json(config):
    d = asdict(config)
    d["op_types"] = list(d["op_types"])
    return d


def _finish(path, source_model, plan, config, int8, extra):
    """The quantized model at `path`, rewritten in place: the byte input when `config.uint8_input`, the SDK
    metadata carried over (pixel scale 1 for a byte input) with how the model was quantized (precision int8)."""
    import onnx

    m = onnx.load(str(path))
    props = {p.key: p.value for p in source_model.metadata_props}
    if config.uint8_input:
        from .byte_input import byte_input

        byte_input(m)
        props["sdk.scale"] = json.dumps(1.0)
    props["sdk.precision"] = json.dumps("int8")
    props["sdk.quantization"] = json.dumps({"plan": plan.to_dict(), "config": _config_json(config),
                                            "int8_nodes": len(int8), **(extra or {})})
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(path))


def prepare_graph(model_path, ranges_cache, model, int8, config, work, form=None):
    """The float graph and range cache quantize_static reads, after the graph-level options of `config`:
    `leaky_as_relu` rewrites the int8 LeakyRelus (quantize_static folds a Relu after a Conv into the conv's output
    range), `pad_channels` zero-pads the int8 convs' channel counts to `form.channels` (sdk.quant.pad),
    `share_concat_scales` widens ranges so each int8 Concat's inputs and output share one. Returns (model path,
    range cache path, padding report or None); the originals when nothing changes."""
    q = _q()
    data = q.load_tensors_data(str(ranges_cache))
    ranges = tensor_ranges(data)
    selected = set(int8)
    changed = {}
    # pad_channels None follows the form (x86: a rule, ARM: none); False never pads; True pads where a rule exists
    pad_rule = form.channels if form and config.pad_channels is not False else None
    padding = None
    rewrite = bool(config.leaky_as_relu or pad_rule)  # the graph itself changes: work on a copy, saved in `work`
    if rewrite:
        import onnx

        model = onnx.load(str(model_path))  # a private copy: the caller's proto stays as read
        if config.leaky_as_relu:
            leaky_to_relu(model, selected)
    if config.uint8_input:  # bytes are the quantized input only at scale 1/255: pixels x 1/255 span [0, 1]
        changed[model.graph.input[0].name] = (0.0, 1.0)  # whatever the calibration images reached (or clipped)
    changed.update(relu_ranges(model, ranges, selected))  # before padding renames the conv outputs
    if pad_rule:
        from .pad import pad_conv_channels

        float_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in selected]
        padding = pad_conv_channels(model, pad_rule, skip=float_convs)
        # a padded copy of a tensor holds its values plus zeros, a restored one its values: the same range
        # (new_tensors names the original tensor; its range as changed above, e.g. by relu_ranges)
        known = {**ranges, **changed}
        changed.update({new: known[old] for new, old in padding["new_tensors"].items() if old in known})
    if rewrite:
        model_path = os.path.join(work, "prepared.onnx")
        onnx.save(model, model_path)
    if config.share_concat_scales:
        changed.update(shared_concat_ranges(model, {**ranges, **changed}, selected))
    if not changed:
        return str(model_path), str(ranges_cache), padding
    import numpy as np

    for name, (low, high) in changed.items():
        data.data[name] = q.TensorData(lowest=np.float32(low), highest=np.float32(high))
    cache = os.path.join(work, "ranges.json")
    q.save_tensors_data(data, cache)
    return str(model_path), cache, padding


def leaky_to_relu(model, selected):
    """Rewrite the selected LeakyRelus of `model` (in place) as Relus (`relu_ranges` then ranges them)."""
    for node in model.graph.node:
        if node.op_type == "LeakyRelu" and node.name in selected:
            node.op_type = "Relu"
            del node.attribute[:]


def relu_ranges(model, ranges, selected):
    """{tensor: (0, high)}: the ranges that make quantize_static's removal of each selected Relu a u8 clamp at 0.

    quantize_static drops a Relu after a Conv and quantizes the conv's output with that tensor's own range: with
    its calibrated negative side kept, the activation simply vanishes (mAP@.5 0.11 vs 0.58 float, on LeakyRelus
    rewritten as Relus). So the conv output is ranged from 0 like the Relu's. So is what only moves or joins Relu
    outputs (MaxPool, Resize, Concat): a rewritten LeakyRelu's calibrated range still holds the negative side, and
    a shared Concat scale would carry it back."""
    changed = {}
    for node in model.graph.node:
        if node.op_type == "Relu" and node.name in selected and node.output[0] in ranges:
            changed[node.output[0]] = changed[node.input[0]] = (0.0, ranges[node.output[0]][1])
    for node in model.graph.node:  # topological order: a MaxPool of a Concat of Relus is reached after both
        moved = node.input[:1] if node.op_type in ("MaxPool", "Resize") else node.input
        if node.op_type in ("MaxPool", "Resize", "Concat") and moved and node.output[0] in ranges and \
                all(changed.get(t, (-1.0,))[0] == 0.0 for t in moved):
            changed[node.output[0]] = (0.0, ranges[node.output[0]][1])
    return changed


def shared_concat_ranges(model, ranges, selected):
    """{tensor: (low, high)}: every tensor joined by a selected Concat (its inputs and output, transitively) gets
    the union of their ranges. One scale per group makes the quantized concat a copy; the price is a coarser
    scale on an input whose own range was narrower."""
    parent = {}

    def find(t):
        while parent.setdefault(t, t) != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for node in model.graph.node:
        # MaxPool and Resize keep their input's scale in onnxruntime's QDQ form: they join the group too
        if node.name in selected and node.op_type in ("Concat", "MaxPool", "Resize"):
            tensors = [t for t in [*node.input[:1 if node.op_type != "Concat" else None], *node.output]
                       if t in ranges]
            for t in tensors[1:]:
                parent[find(t)] = find(tensors[0])
    groups = {}
    for t in parent:
        groups.setdefault(find(t), []).append(t)
    out = {}
    for members in groups.values():
        low = min(ranges[t][0] for t in members)
        high = max(ranges[t][1] for t in members)
        out.update({t: (low, high) for t in members})
    return out

"""Quantization-aware training (QAT) of a YOLO model: fake-quantized convolutions in the format TensorRT's
explicit quantization reads, calibration of their input ranges, QAT checkpoints and the Q/DQ ONNX export.

The scheme (symmetric int8, zero point 0, as TensorRT needs):

* BatchNorm is folded into the convolutions first (`YOLO.fuse()`), so training sees exactly the weights that are
  exported and deployed; the head's implicit layers are folded into its 1x1 convs the same way.
* Weights: per output channel (axis 0), scale = max|w| / 127 recomputed every step from the live weights (they
  move while training; max|w| never clips a weight, so the straight-through gradient reaches every weight).
* Conv inputs: per tensor, scale = amax / 127 with amax calibrated on training images (`calibrate`), then kept
  fixed while training. Fixed ranges are what NVIDIA's pytorch-quantization recipe does (calibrate, then
  fine-tune with amax fixed): with batches of 8 on a CPU, an EMA of batch maxima is noisy and only grows, and a
  learned scale (LSQ) does not export to plain QuantizeLinear/DequantizeLinear.
* Only the inputs and weights of convolutions are quantized (TensorRT's recommended Q/DQ placement: it fuses
  Conv + LeakyReLU and carries int8 through pooling and concatenation itself); the detection layer's convs are
  quantized too, their outputs and the box decode stay float.

`torch.onnx.export` writes the fake-quant ops as QuantizeLinear -> DequantizeLinear pairs: float weights
-> Q -> DQ -> Conv, and activations -> Q -> DQ -> Conv.
"""
import json
import math
import random

import numpy as np

from ..errors import SDKError
from .methods import QAT_METHODS as CALIB_METHODS, canonical_method

QMIN, QMAX = -128, 127  # the int8 range ONNX QuantizeLinear clamps to; scales use 127 (symmetric)
HIST_BINS = 2048
QAT_FORMAT = "sdk-qat-v1"
SCHEME = {"weights": "int8 symmetric per-channel (axis 0), scale max|w|/127",
          "activations": "int8 symmetric per-tensor at conv inputs, calibrated amax/127, fixed while training",
          "zero_point": 0, "batchnorm": "folded before training"}


def _torch():
    from ..deps import require

    return require("torch", "quantization-aware training")


def _quant_conv_class():
    """Built on first use, so importing this module (the CLI's --help) does not import torch."""
    torch = _torch()
    from torch import nn

    class QuantConv2d(nn.Conv2d):
        """Conv2d with fake-quantized weights (per channel) and input (per tensor, fixed `act_amax`)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.register_buffer("act_amax", torch.tensor(0.0))
            self.quantize = True  # False: plain float conv (calibration)
            self.observer = None  # calibration: called with the float input

        @classmethod
        def from_conv(cls, conv):
            q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=conv.bias is not None)
            with torch.no_grad():
                q.weight.copy_(conv.weight)
                if conv.bias is not None:
                    q.bias.copy_(conv.bias)
            return q

        def weight_scale(self):
            amax = self.weight.detach().abs().amax(dim=(1, 2, 3))
            return (amax / 127.0).clamp(min=1e-8)  # an all-zero filter still needs a positive scale

        def quantized_weight(self):
            scale = self.weight_scale()
            if torch.jit.is_tracing():  # ONNX export: the scales become initializers, not ops on the weights
                scale = torch.tensor(scale.tolist())
            zero = torch.zeros(self.out_channels, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(self.weight, scale, zero, 0, QMIN, QMAX)

        def forward(self, x):
            if self.observer is not None:
                self.observer(x)
            if not self.quantize:
                return super().forward(x)
            if float(self.act_amax) <= 0:
                raise SDKError("QAT model: a convolution has no calibrated input range, expected calibrate() "
                               "before training or export")
            # 0-d scale and zero point: ONNX reads a scalar as per-tensor (a 1-element vector would be per-axis)
            scale = self.act_amax / 127.0
            if torch.jit.is_tracing():
                scale = torch.tensor(float(scale))
            x = torch.fake_quantize_per_tensor_affine(x, scale, torch.zeros((), dtype=torch.int32), QMIN, QMAX)
            return self._conv_forward(x, self.quantized_weight(), self.bias)

    return QuantConv2d


_QUANT_CONV = None


def quant_conv_class():
    global _QUANT_CONV
    if _QUANT_CONV is None:
        _QUANT_CONV = _quant_conv_class()
    return _QUANT_CONV


def quant_convs(model):
    """[(name, QuantConv2d)] in module order."""
    cls = quant_conv_class()
    return [(n, m) for n, m in model.named_modules() if isinstance(m, cls)]


def prepare_qat(model):
    """Fold BatchNorm (and the implicit head layers), then swap every Conv2d for a QuantConv2d, in place."""
    _torch()
    from torch import nn

    model = model.float().eval()
    model.fuse()
    left = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if left:
        raise SDKError(f"QAT model: BatchNorm {left[0]} cannot be folded (RepConv layers?), expected a "
                       f"YOLOv7-tiny-style model whose convs all fuse")
    cls = quant_conv_class()
    targets = [(n, m) for n, m in model.named_modules() if type(m) is nn.Conv2d]
    for name, conv in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, cls.from_conv(conv))  # fresh trainable parameters (fuse() leaves frozen ones)
    return model


def set_quantize(model, enabled):
    for _, m in quant_convs(model):
        m.quantize = enabled


def act_ranges(model):
    return {n: float(m.act_amax) for n, m in quant_convs(model)}


def load_act_ranges(model, ranges, origin):
    convs = dict(quant_convs(model))
    missing = sorted(set(convs) - set(ranges))
    if missing:
        raise SDKError(f"{origin}: no activation range for {missing[0]} ({len(missing)} missing), expected "
                       f"a QAT checkpoint of this architecture")
    for name, m in convs.items():
        m.act_amax.fill_(float(ranges[name]))


# ------------------------------------------------------------------ calibration
class AbsHistogram:
    """Histogram of |x| with a fixed bin width that grows when larger values arrive (pytorch-quantization's
    HistogramCalibrator), so many batches need no second pass."""

    def __init__(self, bins=HIST_BINS):
        self.bins, self.width, self.counts, self.max = bins, None, None, 0.0

    def add(self, x):
        torch = _torch()
        a = x.detach().abs().flatten().float()
        amax = float(a.max()) if a.numel() else 0.0
        if self.counts is None:
            self.width = max(amax, 1e-8) / self.bins
            self.counts = torch.zeros(self.bins, dtype=torch.float64)
        need = int(math.ceil(amax / self.width))
        if need > len(self.counts):
            self.counts = torch.cat([self.counts, torch.zeros(need - len(self.counts), dtype=torch.float64)])
        n = len(self.counts)
        self.counts += torch.histc(a, bins=n, min=0.0, max=n * self.width).double()
        self.max = max(self.max, amax)

    def amax(self, method="percentile", percentile=99.99):
        if canonical_method(method) == "minmax" or self.counts is None or self.counts.sum() == 0:
            return self.max
        cdf = (self.counts.cumsum(0) / self.counts.sum()).numpy()
        idx = int(np.searchsorted(cdf, percentile / 100.0))
        return min(self.max, (idx + 1) * self.width)


def calibration_paths(dataset, count, seed=0):
    paths = dataset.image_paths()
    if count < 1:
        raise SDKError(f"calib_count: got {count}, expected at least 1")
    if count > len(paths):
        raise SDKError(f"calib_count: got {count}, expected at most the {len(paths)} training images")
    return sorted(random.Random(seed).sample(paths, count))


def calibrate(model, paths, imgsz, method="percentile", percentile=99.99, progress=False):
    """Set every QuantConv2d's input amax from float activations on `paths` (letterboxed as at inference)."""
    torch = _torch()
    from ..data.images import read_image
    from ..metadata import ModelMetadata
    from ..preprocess import Preprocessor
    from ..progress import progress_bar

    method = canonical_method(method)
    if method not in CALIB_METHODS:
        raise SDKError(f"calib_method: got '{method}', expected one of {', '.join(CALIB_METHODS)}")
    if not 0 < percentile <= 100:
        raise SDKError(f"percentile: got {percentile}, expected a value in (0, 100]")
    pre = Preprocessor(ModelMetadata(names=list(model.names), imgsz=(imgsz, imgsz), stride=int(max(model.stride))))
    convs = quant_convs(model)
    hists = {name: AbsHistogram() for name, _ in convs}
    for name, m in convs:
        m.observer = hists[name].add
    was_training = model.training
    model.eval()
    set_quantize(model, False)
    try:
        with torch.no_grad():
            for p in progress_bar(paths, desc="calibrating", disable=not progress):
                x, _ = pre(read_image(p))
                model(torch.from_numpy(x))
    finally:
        set_quantize(model, True)
        for _, m in convs:
            m.observer = None
        model.train(was_training)
    for name, m in convs:
        m.act_amax.fill_(max(hists[name].amax(method, percentile), 1e-6))
    return act_ranges(model)


# ------------------------------------------------------------------ checkpoints
def to_float_model(qat_model):
    """A plain (unfused) YOLO with the QAT weights: each BatchNorm set to the identity plus the conv bias, the
    implicit head layers to 0 / 1. `load_checkpoint`, `export` and `prune` read it like any checkpoint, and
    fusing it gives back the QAT weights exactly."""
    torch = _torch()
    from ..models.common import Conv
    from ..models.yolo import YOLO, Detect

    fresh = YOLO(qat_model.yaml, names=list(qat_model.names)).float().eval()
    with torch.no_grad():
        for name, m in fresh.named_modules():
            if isinstance(m, Conv):
                src = qat_model.get_submodule(name).conv
                m.conv.weight.copy_(src.weight)
                bn = m.bn
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
                bn.weight.copy_(torch.sqrt(bn.eps + bn.running_var))  # same expression fuse() divides by: 1/1
                bn.bias.copy_(src.bias)
            elif isinstance(m, Detect):
                src = qat_model.get_submodule(name)
                for i, conv in enumerate(m.m):
                    conv.weight.copy_(src.m[i].weight)
                    conv.bias.copy_(src.m[i].bias)
                if m.implicit:
                    for a in m.ia:
                        a.implicit.zero_()
                    for mm in m.im:
                        mm.implicit.fill_(1.0)
    return fresh


def save_qat_checkpoint(qat_model, path, **extra):
    """An SDK checkpoint of the QAT weights (float, see `to_float_model`) plus the activation ranges."""
    from ..models.checkpoint import save_checkpoint

    qat = {"format": QAT_FORMAT, "act_amax": act_ranges(qat_model), "scheme": SCHEME}
    return save_checkpoint(to_float_model(qat_model), path, qat=qat, **extra)


def qat_info(info):
    q = info.get("qat")
    return q if isinstance(q, dict) and q.get("format") == QAT_FORMAT else None


def load_qat_model(path):
    """(QAT model, info, ranges or None): a QAT checkpoint comes back with its calibrated ranges."""
    from ..models.checkpoint import load_checkpoint

    model, info = load_checkpoint(path)
    model = prepare_qat(model)
    q = qat_info(info)
    if q:
        load_act_ranges(model, q["act_amax"], f"weights {path}")
    return model, info, (q["act_amax"] if q else None)


# ------------------------------------------------------------------ export
def export_qat_onnx(model, output, imgsz, source="", check_images=None, extra=None):
    """The QAT model -> explicit Q/DQ ONNX (opset 13) with the SDK metadata, precision 'int8-qat'.
    With `check_images`, the report holds the torch vs onnxruntime max differences on them."""
    import onnx

    from ..export.onnx_export import export_onnx
    from ..fileio import atomic_path

    model.eval()
    path, report = export_onnx(model, output, imgsz=imgsz, source=source, check_images=check_images,
                               precision="int8-qat")
    proto = onnx.load(str(path))
    proto.metadata_props.add(key="sdk.quantization", value=json.dumps({"method": "qat", **SCHEME, **(extra or {})}))
    with atomic_path(path, "ONNX output", suffix=".onnx") as tmp:
        onnx.save(proto, str(tmp))
    report.update(qdq_summary(proto))
    return path, report


def qdq_summary(proto):
    """Counts of Q/DQ nodes and the properties TensorRT explicit quantization needs, read from the graph."""
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in proto.graph.node if n.op_type == "Constant" and n.attribute}
    nodes = [n for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    def const(name):
        return inits[name] if name in inits else consts.get(name)

    zero_types, zero_values, scales_positive, scalar_scales = set(), set(), True, 0
    for n in nodes:
        zp = const(n.input[2]) if len(n.input) > 2 else None
        if zp is not None:
            zero_types.add(TensorProto.DataType.Name(zp.data_type))
            zero_values |= set(numpy_helper.to_array(zp).reshape(-1).tolist())
        sc = const(n.input[1])
        if sc is not None:
            scalar_scales += len(sc.dims) == 0
            scales_positive &= bool((numpy_helper.to_array(sc) > 0).all())
    producers = {o: n for n in proto.graph.node for o in n.output}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    qconvs = [c for c in convs if all(producers.get(c.input[i]) is not None and
                                      producers[c.input[i]].op_type == "DequantizeLinear" for i in (0, 1))]
    axes = {a.i for n in nodes for a in n.attribute if a.name == "axis"}
    return {"quantize_linear": sum(n.op_type == "QuantizeLinear" for n in nodes),
            "dequantize_linear": sum(n.op_type == "DequantizeLinear" for n in nodes),
            "convs": len(convs), "quantized_convs": len(qconvs), "zero_point_types": sorted(zero_types),
            "zero_points": sorted(zero_values), "per_channel_axes": sorted(axes), "scales_positive": scales_positive,
            "per_tensor_scales": scalar_scales}


def onnx_parity(model, onnx_path, images, imgsz, conf=0.25):
    """torch QAT model vs onnxruntime on the same letterboxed images. One rounding step that flips between the
    two float convolutions moves later layers by one int8 step, so low-score boxes differ more than the
    confident ones; both are reported (box differences in input pixels; width/height also relative, since the
    decode multiplies a small logit difference by the anchor size)."""
    torch = _torch()
    from ..data.images import read_image
    from ..metadata import ModelMetadata
    from ..preprocess import Preprocessor
    from ..runners.onnxruntime import OnnxRuntimeRunner

    pre = Preprocessor(ModelMetadata(names=list(model.names), imgsz=(imgsz, imgsz), stride=int(max(model.stride))))
    model.eval()
    box_conf, box_all, box_mean, score, centre, wh_rel = 0.0, 0.0, [], 0.0, 0.0, 0.0
    with OnnxRuntimeRunner(str(onnx_path), threads=1) as runner:
        for p in images:
            x, _ = pre(read_image(p))
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            out = runner.infer(x)[runner.outputs[0].name]
            d = np.abs(ref - out)
            keep = ref[..., 4] >= conf
            box_all = max(box_all, float(d[..., :4].max()))
            box_mean.append(float(d[..., :4].mean()))
            if keep.any():
                box_conf = max(box_conf, float(d[..., :4][keep].max()))
                centre = max(centre, float(d[..., :2][keep].max()))
                wh_rel = max(wh_rel, float((d[..., 2:4][keep] / np.maximum(ref[..., 2:4][keep], 1.0)).max()))
            score = max(score, float(d[..., 4:].max()))
    return {"parity_images": len(images), "max_box_px_conf": round(box_conf, 4),
            "max_centre_px_conf": round(centre, 4), "max_wh_rel_conf": round(wh_rel, 5),
            "max_box_px_all": round(box_all, 4),
            "mean_box_px": round(float(np.mean(box_mean)), 5), "max_score_diff": round(score, 5),
            "conf_threshold": conf}

"""Int8 accumulator analysis per Conv: can u8 x s8 products overflow the 16-bit intermediate sums?

On AVX2 CPUs without VNNI, onnxruntime's u8s8 GEMM uses vpmaddubsw: it multiplies u8 activations by s8 weights
and adds each ADJACENT PAIR of products into a saturating int16 before widening to int32. Two products can
reach 2*255*127 = 64770 > 32767, so a pair with two large same-sign weights and large activations saturates,
silently. VNNI (vpdpbusd) and ARM sdot accumulate straight into int32, and reduce_range (7-bit weights,
2*255*63 = 32130) cannot saturate. The full dot product over K = Cin/groups*kh*kw terms always fits int32
(K*255*127 < 2^31 for K < 66k); its bit width is reported too.

Per layer: the worst case from the quantized weights (255 * the two largest same-sign |w_q| of an output
channel: an order-independent bound) and the worst pair actually observed on calibration images (activations
quantized with their calibrated u8 scale, pairs adjacent along K in (Cin, kh, kw) order, on sampled positions).
"""
import math

import numpy as np

from .flops import node_attr

INT16_MAX = 32767
U8_MAX = 255


KERNEL_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "asimddp")


def cpu_flags():
    """The SIMD flags that decide the int8 kernel: avx2, avx512bw, avx512_vnni, avx_vnni (Linux /proc/cpuinfo)."""
    from ..report import cpu_flags as simd_flags

    return [f for f in simd_flags() if f in KERNEL_FLAGS]


def int8_kernel(flags):
    if "avx512_vnni" in flags or "avx_vnni" in flags or "asimddp" in flags:
        return "vnni/dot-product (int32 accumulation: no 16-bit saturation)"
    if "avx2" in flags:
        return "avx2 vpmaddubsw (u8s8 pairs saturate at int16)"
    return "unknown"


def quantize_weights_per_channel(w):
    """Symmetric per-output-channel int8, as onnxruntime's per_channel QDQ does."""
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    return np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int32)


def worst_pair_bound(wq):
    """255 * (the two largest same-sign |weights| in a channel): the largest int16 pair sum any input can make."""
    flat = wq.reshape(wq.shape[0], -1)
    pos = -np.sort(-np.clip(flat, 0, None), axis=1)[:, :2].sum(axis=1)
    neg = -np.sort(-np.clip(-flat, 0, None), axis=1)[:, :2].sum(axis=1)
    return int(U8_MAX * np.maximum(pos, neg).max())


def im2col_sample(x, kshape, stride, pads, dilation, positions, rng, pad_value=0):
    """(positions, K) patches of x (Cin, H, W) for a conv with kernel (kh, kw): sampled output positions only."""
    c, h, w = x.shape
    kh, kw = kshape
    xp = np.pad(x, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=pad_value)
    oh = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    idx = rng.choice(oh * ow, size=min(positions, oh * ow), replace=False)
    rows = []
    for p in idx:
        y0, x0 = (p // ow) * stride[0], (p % ow) * stride[1]
        patch = xp[:, y0:y0 + dilation[0] * kh:dilation[0], x0:x0 + dilation[1] * kw:dilation[1]]
        rows.append(patch.reshape(-1))
    return np.stack(rows)


def observed_pair_max(xq, wq, groups):
    """Largest |a_i w_i + a_(i+1) w_(i+1)| over adjacent K pairs, for u8 patches xq (P, Cin*kh*kw)."""
    cout = wq.shape[0]
    k = wq[0].size
    flat_w = wq.reshape(cout, k).astype(np.int64)
    worst = 0
    per_group = cout // groups
    for g in range(groups):
        a = xq[:, g * k:(g + 1) * k].astype(np.int64)
        w = flat_w[g * per_group:(g + 1) * per_group]
        n = (k // 2) * 2
        if n == 0:
            continue
        prod = a[:, None, :n] * w[None, :, :n]  # (P, Cout_g, n)
        pair = prod[..., 0::2] + prod[..., 1::2]
        worst = max(worst, int(np.abs(pair).max()))
    return worst


def analyse(model_path, ranges, images_batches, positions=256, seed=0):
    """Rows per Conv: K, int32 bits, worst-case and observed 16-bit pair sums, overflow flags."""
    import onnx
    from onnx import numpy_helper

    from ..runners.onnxruntime import OnnxRuntimeRunner
    from .layers import load_model

    model = load_model(model_path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in inits]
    # Expose every conv input as a graph output so one run gives all the activations.
    wanted = [n.input[0] for n in convs]
    existing = {o.name for o in model.graph.output}
    for name in dict.fromkeys(wanted):
        if name not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    import tempfile

    rng = np.random.default_rng(seed)
    observed = {n.name: 0 for n in convs}
    with tempfile.TemporaryDirectory(prefix="sdk-overflow-") as tmp:
        path = f"{tmp}/probe.onnx"
        onnx.save(model, path)
        with OnnxRuntimeRunner(path) as runner:
            for batch in images_batches:
                acts = runner.session.run(wanted, {runner.input.name: batch[:1]})
                for node, act in zip(convs, acts):
                    observed[node.name] = max(observed[node.name], _observed_for(node, act[0], inits, ranges,
                                                                                 positions, rng))
    rows = []
    for node in convs:
        w = inits[node.input[1]]
        wq = quantize_weights_per_channel(w)
        groups = node_attr(node, "group", 1)
        k = int(np.prod(w.shape[1:]))
        bound = worst_pair_bound(wq)
        rows.append({"layer": node.name, "K": k, "cout": int(w.shape[0]), "groups": groups,
                     "int32_bits_worst": int(math.ceil(math.log2(k * U8_MAX * 127 + 1))) + 1,
                     "pair_worst_case": bound, "pair_observed": observed[node.name],
                     "can_overflow_int16": bound > INT16_MAX, "overflowed_int16": observed[node.name] > INT16_MAX,
                     "reduce_range_worst": bound // 2 if bound > 0 else 0})
    return rows


def _observed_for(node, act, inits, ranges, positions, rng):
    w = inits[node.input[1]]
    low, high = ranges.get(node.input[0], (float(act.min()), float(act.max())))
    low, high = min(low, 0.0), max(high, 0.0)  # onnxruntime always keeps zero representable
    scale = (high - low) / U8_MAX or 1.0
    zp = round(-low / scale)
    xq = np.clip(np.round(act / scale) + zp, 0, U8_MAX)
    kh, kw = w.shape[2], w.shape[3]
    stride = node_attr(node, "strides", [1, 1])
    pads = node_attr(node, "pads", [0, 0, 0, 0])
    dil = node_attr(node, "dilations", [1, 1])
    patches = im2col_sample(xq, (kh, kw), stride, pads, dil, positions, rng, pad_value=zp)  # float 0 is zp
    return observed_pair_max(patches, quantize_weights_per_channel(w), node_attr(node, "group", 1))

"""INT8 building blocks on the real exported model: layers/blocks, FLOPs, TensorRT cache format, 16-bit pair
saturation maths, precision-plan selection."""
import struct

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from sdk.errors import SDKError
from sdk.precision.plan import PrecisionPlan
from sdk.quant.flops import model_flops
from sdk.quant.layers import onnx_layers
from sdk.quant.overflow import INT16_MAX, observed_pair_max, quantize_weights_per_channel, worst_pair_bound
from sdk.quant.trt_cache import format_cache, hex_to_scale, read_cache, scale_to_hex, write_cache


@pytest.fixture(scope="module")
def proto(onnx_model):
    return onnx.load(str(onnx_model))


def test_layers_carry_blocks_from_metadata(proto):
    layers = {layer.name: layer for layer in onnx_layers(proto)}
    assert layers["/model.0/conv/Conv"].block == "backbone"
    assert layers["/model.77/m.0/Conv"].block == "head"
    assert {layer.block for layer in layers.values()} == {"backbone", "neck", "head"}
    assert not any(layer.op_type == "Constant" for layer in layers.values())


def test_conv_flops_from_shapes(proto):
    flops = model_flops(proto)
    w = {i.name: i for i in proto.graph.initializer}["model.0.conv.weight"]
    cout, cin, kh, kw = w.dims
    # first conv: stride 2 on 416x416 -> 208x208 outputs, 2 FLOPs per multiply-add
    assert flops["/model.0/conv/Conv"] == 2 * cout * 208 * 208 * cin * kh * kw
    heaviest = PrecisionPlan.from_specs(["heaviest:3:int8"]).resolve(onnx_layers(proto))
    top = sorted(flops, key=lambda n: -flops[n])[:3]
    assert {n for n, p in heaviest.items() if p == "int8"} == set(top)
    assert all(name.endswith("/Conv") for name in top)


def test_plan_errors_name_the_missing_block_and_layer(proto):
    layers = onnx_layers(proto)
    with pytest.raises(SDKError, match="block among backbone, head, neck"):
        PrecisionPlan.from_specs(["block:tail:fp32"]).resolve(layers)
    with pytest.raises(SDKError, match="model.77"):
        PrecisionPlan.from_specs(["/model.777/m.0/Conv:fp32"]).resolve(layers)


def test_trt_cache_hex_is_big_endian_float32(tmp_path):
    assert scale_to_hex(1.0) == "3f800000"
    assert struct.unpack(">f", bytes.fromhex(scale_to_hex(0.0111)))[0] == pytest.approx(0.0111, rel=1e-6)
    text = format_cache({"images": 1.0 / 127}, trt_version=8601)
    assert text.splitlines()[0] == "TRT-8601-EntropyCalibration2"
    assert hex_to_scale(text.splitlines()[1].split(": ")[1]) == pytest.approx(1.0 / 127)
    n = write_cache(tmp_path / "c.cache", {"a": (-2.54, 1.0), "b": (0.0, 0.0)})
    header, scales = read_cache(tmp_path / "c.cache")
    assert n == 2 and header == "TRT-8502-EntropyCalibration2"
    assert scales["a"] == pytest.approx(2.54 / 127, rel=1e-6) and scales["b"] > 0
    (tmp_path / "bad.cache").write_text("hello\n")
    with pytest.raises(SDKError, match="expected 'TRT-<version>-<algorithm>'"):
        read_cache(tmp_path / "bad.cache")


def test_pair_saturation_maths():
    wq = np.array([[127, 127, -3], [5, -100, -90]]).reshape(2, 3, 1, 1)
    assert worst_pair_bound(wq) == 255 * 254 > INT16_MAX  # two same-sign 127s can saturate
    a = np.array([[255, 255, 0]])  # u8 activations, one sampled position
    assert observed_pair_max(a, wq, groups=1) == 255 * 254
    assert observed_pair_max(np.array([[10, 10, 0]]), wq, groups=1) < INT16_MAX


def test_per_channel_weights_use_full_int8_range(proto):
    w = numpy_helper.to_array({i.name: i for i in proto.graph.initializer}["model.0.conv.weight"])
    wq = quantize_weights_per_channel(w)
    assert np.abs(wq.reshape(w.shape[0], -1)).max(axis=1).tolist() == [127] * w.shape[0]

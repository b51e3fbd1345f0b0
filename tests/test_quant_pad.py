"""Conv channel padding for onnxruntime's fast INT8 conv kernels (sdk.quant.pad): exact on the float graph and on
the quantized one, on the shared model and on a graph with the odd channel counts pruning leaves."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sdk.quant.cpu import choose_form, parse_cpuinfo, read_cpu
from sdk.quant.pad import ChannelRule, pad_conv_channels
from sdk.quant.quantize import QuantConfig, calibrate, quantize

VNNI = ChannelRule(4, 4, 16)
# The tests quantize for x86-vnni (its padding rule) on whatever CPU runs them. Its 8-bit weights saturate the
# int16 pair sums of an AVX2-only CPU (vpmaddubsw), and differently in the fast and the generic conv kernel, so on
# such a host the exactness checks take 7-bit weights, as `quantize` itself would there (sdk.quant.cpu).
FOR_VNNI = {"method": "minmax", "target": "x86-vnni",
            **({"reduce_range": True} if choose_form(read_cpu()).reduce_range else {})}


def _run(model_or_path, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def _conv_shapes(model):
    init = {i.name: i for i in model.graph.initializer}
    return {n.name: tuple(init[n.input[1]].dims) for n in model.graph.node if n.op_type == "Conv"}


@pytest.fixture(scope="module")
def image(onnx_model, val_images):
    import cv2

    from sdk.detector import Detector

    path = sorted(p for p in val_images.iterdir() if p.suffix.lower() in (".png", ".jpg"))[0]
    with Detector(str(onnx_model), backend="ort") as det:
        x, _ = det.pre(cv2.imread(str(path)))
    return x


def test_shared_model_pads_first_and_detection_convs_exactly(onnx_model, image):
    proto = onnx.load(str(onnx_model))
    before = _conv_shapes(proto)
    rep = pad_conv_channels(proto, VNNI)
    after = _conv_shapes(proto)
    # RGB input 3 -> 4 channels, the three detection convs 18 -> 20 outputs; every other conv already fits
    assert rep["inputs"] == {"images": (3, 4)}
    assert rep["convs"] == {f"/model.77/m.{i}/Conv": (18, 20) for i in range(3)}
    assert after["/model.0/conv/Conv"][1] == 4 and before["/model.0/conv/Conv"][1] == 3
    assert all(o % 4 == 0 and o >= 16 and i % 4 == 0 for o, i, *_ in after.values())
    assert sorted(rep["restored"]) == [f"/model.77/m.{i}/Conv_output_0" for i in range(3)]
    ref, got = _run(onnx_model, image), _run(proto, image)
    assert [r.shape for r in ref] == [g.shape for g in got]
    assert all(np.array_equal(r, g) for r, g in zip(ref, got)), "padding must not change a single output"


def _odd_graph():
    """image -> conv 3->10 -> leaky -> {conv 10->19 -> leaky -> maxpool, resize} -> concat(19, 10) -> conv
    29->22 -> leaky -> [reshape] : channel counts like a 70 % pruned model, a Concat of two padded tensors (its
    layout has pads inside, so the restore is a Gather) and a non-per-channel consumer at the end."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def conv(name, x, cin, cout, k=3):
        inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (cout, cin, k, k)).astype(np.float32), f"{name}.w"))
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, cout).astype(np.float32), f"{name}.b"))
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.y"], name=name,
                                      pads=[k // 2] * 4))
        nodes.append(helper.make_node("LeakyRelu", [f"{name}.y"], [f"{name}.a"], name=f"{name}.act", alpha=0.1))
        return f"{name}.a"

    a = conv("c0", "images", 3, 10)
    b = conv("c1", a, 10, 19)
    nodes.append(helper.make_node("MaxPool", [b], ["mp"], name="mp", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Constant", [], ["scales"], name="scales",  # as torch exports it: a Constant
                                  value=numpy_helper.from_array(np.array([1, 1, 1, 1], np.float32))))
    nodes.append(helper.make_node("Resize", [a, "", "scales"], ["rs"], name="rs", mode="nearest"))
    nodes.append(helper.make_node("Concat", ["mp", "rs"], ["cat"], name="cat", axis=1))
    c = conv("c2", "cat", 29, 22, k=1)
    inits.append(numpy_helper.from_array(np.array([1, 22, -1], np.int64), "shape"))
    nodes.append(helper.make_node("Reshape", [c, "shape"], ["flat"], name="flat"))
    nodes.append(helper.make_node("Sigmoid", ["cat"], ["out2"], name="sig"))
    g = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("flat", TensorProto.FLOAT, [1, 22, 1024]),
                           helper.make_tensor_value_info("out2", TensorProto.FLOAT, [1, 29, 32, 32])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_odd_pruned_channels_pad_through_concat_pool_resize_and_restore_exactly():
    model = _odd_graph()
    x = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    ref = _run(model, x)
    rep = pad_conv_channels(model, VNNI)
    assert rep["convs"] == {"c0": (10, 16), "c1": (19, 20), "c2": (22, 24)}
    shapes = _conv_shapes(model)
    assert shapes["c2"][:2] == (24, 36)  # the concat of two padded tensors: 20 + 16 input channels
    producer = {o: n for n in model.graph.node for o in n.output}
    # 'cat' carries pads inside (after 19 real channels) and Sigmoid passes them on: a Gather gives the graph
    # output its 29 channels back; c2's pads are at the end: a Slice before the Reshape
    assert producer["out2"].op_type == "Gather" and producer["out2"].input[0] == "out2_padded"
    assert producer[producer["flat"].input[0]].op_type == "Slice"
    got = _run(model, x)
    assert [r.shape for r in ref] == [g.shape for g in got]
    assert all(np.allclose(r, g, atol=1e-5) for r, g in zip(ref, got))


def test_rule_follows_the_cpu():
    vnni = choose_form(parse_cpuinfo("flags\t: avx2 avx512f avx512bw avx512_vnni\n"))
    avx2 = choose_form(parse_cpuinfo("flags\t: avx2\n"))
    arm = choose_form(parse_cpuinfo("Features\t: asimd asimddp\nCPU implementer\t: 0x41\n"))
    assert vnni.channels == ChannelRule(4, 4, 16) and avx2.channels == ChannelRule(4, 8, 16)
    assert arm.channels is None  # MLAS has no symmetric conv kernel for group-1 convs on ARM64
    assert ChannelRule(4, 8, 16).out_channels(18) == 24 and ChannelRule().out_channels(10) == 16


def test_quantized_padded_model_gives_the_same_int8_outputs(tmp_path, onnx_model, train_images, image):
    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.quant.layers import load_model, metadata_of

    paths = calibration_images(train_images, 2, 0, "--calib")
    cache = tmp_path / "r.json"
    calibrate(onnx_model, ImageCalibrationReader(paths, metadata_of(load_model(onnx_model)), progress=False),
              "minmax", str(cache))
    plain, padded = tmp_path / "plain.onnx", tmp_path / "padded.onnx"
    quantize(onnx_model, plain, cache, config=QuantConfig(**FOR_VNNI, pad_channels=False))
    rep = quantize(onnx_model, padded, cache, config=QuantConfig(**FOR_VNNI))
    assert len(rep["padded_convs"]) == 3 and rep["int8_form"]["channels"] == VNNI.to_dict()
    props = {p.key: json.loads(p.value) for p in onnx.load(str(padded)).metadata_props if p.key == "sdk.quantization"}
    assert props["sdk.quantization"]["padded_inputs"] == {"images": [3, 4]}
    m = onnx.load(str(padded))
    quant_convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert len(quant_convs) == 58
    a, b = _run(plain, image), _run(padded, image)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)), "zero channels must not change the int8 result"
    # the op profile sees onnxruntime's fused kernels: one QLinearConv per conv, the Pad, shares adding up
    from sdk.quant.profile import op_profile, profile_row

    prof = op_profile(padded, threads=2, runs=2, warmup=1)
    assert prof["ops"]["QLinearConv"]["nodes"] == 58 and prof["ops"]["Pad"]["nodes"] == 1
    assert "Conv" not in prof["ops"] and abs(sum(v["share"] for v in prof["ops"].values()) - 1) < 1e-6
    row = profile_row(prof)
    assert row["kernels"] == sum(v["nodes"] for v in prof["ops"].values()) and row["QLinearConv"][0] > 0
    # for ARM (no such kernel) nothing is padded
    arm = tmp_path / "arm.onnx"
    assert quantize(onnx_model, arm, cache, config=QuantConfig(method="minmax", target="jetson"))["padded_convs"] == {}


def test_quantize_cli_pads_by_default_and_not_when_told(tmp_path, onnx_model, train_images):
    from sdk.commands import prune, quantize as quantize_cmd
    from sdk.commands.args import CommandParser, quant_config_from_args
    from tests.conftest import run_cli

    def parse(module, argv):
        p = CommandParser()
        module.add_arguments(p)
        return p.parse_args(argv)

    base = ["--model", "m.onnx", "--calib", "imgs", "-o", "q.onnx"]
    assert quant_config_from_args(parse(quantize_cmd, base)).pad_channels is None  # the form decides
    assert quant_config_from_args(parse(quantize_cmd, [*base, "--no-pad-channels"])).pad_channels is False
    assert parse(prune, ["--weights", "w.pt", "-o", "p.pt", "--level", "0.5", "--round-to", "16"]).round_to == 16
    out = tmp_path / "q.onnx"
    p = run_cli("quantize", "--model", onnx_model, "--calib", train_images, "--calib-count", "2", "--calib-method",
                "minmax", "--for-cpu", "x86-vnni", "--no-pad-channels", "-o", out, check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["padded_convs"] == {}
    init = {i.name: i for i in onnx.load(str(out)).graph.initializer}
    assert any(tuple(i.dims)[:2] == (32, 3) for i in init.values())  # the first conv still reads 3 channels


class _ArrayReader:
    """onnxruntime's CalibrationDataReader protocol over a few arrays (the synthetic graphs need no images)."""

    def __init__(self, name, arrays):
        self._feeds = iter([{name: a} for a in arrays])

    def get_next(self):
        return next(self._feeds, None)


def _calibrated(src, tmp_path, seed):
    """Three random 1x3x16x16 inputs and the minmax range cache of `src` on them: (inputs, cache path)."""
    rng = np.random.default_rng(seed)
    xs = [rng.random((1, 3, 16, 16), dtype=np.float32) for _ in range(3)]
    cache = tmp_path / "r.json"
    calibrate(src, _ArrayReader("x", xs), "minmax", str(cache))
    return xs, cache


def _conv(inits, nodes, rng, name, x, cin, cout, group=1, out=None):
    inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (cout, cin // group, 3, 3)).astype(np.float32),
                                         f"{name}.w"))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.1, cout).astype(np.float32), f"{name}.b"))
    nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [out or name], name=name, pads=[1] * 4,
                                  group=group))
    return out or name


def _graph(build, outputs):
    """A float model from `build(inits, nodes, rng)` with a 1x3x16x16 input and `outputs` [(name, shape)]."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    build(inits, nodes, rng)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _depthwise_after_padded_conv(inits, nodes, rng):  # the restored 'c1_unpadded' feeds an int8 grouped conv
    c1 = _conv(inits, nodes, rng, "c1", "x", 3, 18)
    _conv(inits, nodes, rng, "dw", c1, 18, 18, group=18, out="y")


def _padded_conv_is_output(inits, nodes, rng):  # a raw-head export: the 18-channel int8 conv is the output
    c0 = _conv(inits, nodes, rng, "c0", "x", 3, 16)
    nodes.append(helper.make_node("LeakyRelu", [c0], ["a0"], name="a0", alpha=0.1))
    _conv(inits, nodes, rng, "head", "a0", 16, 18, out="y")


def _padded_conv_is_output_and_reshaped(inits, nodes, rng):  # 'c1' is a graph output and read by a Reshape
    c1 = _conv(inits, nodes, rng, "c1", "x", 3, 18)
    inits.append(numpy_helper.from_array(np.array([1, 18, -1], np.int64), "shape"))
    nodes.append(helper.make_node("Reshape", [c1, "shape"], ["flat"], name="flat"))


@pytest.mark.parametrize("build, outputs, padded", [
    (_depthwise_after_padded_conv, [("y", [1, 18, 16, 16])], {"c1": [18, 20]}),
    (_padded_conv_is_output, [("y", [1, 18, 16, 16])], {"head": [18, 20]}),
    (_padded_conv_is_output_and_reshaped, [("c1", [1, 18, 16, 16]), ("flat", [1, 18, 256])], {"c1": [18, 20]}),
], ids=["depthwise-consumer", "graph-output", "graph-output-and-reshape"])
def test_padded_tensors_read_by_int8_nodes_or_outputs_quantize_to_the_same_int8_model(tmp_path, build, outputs,
                                                                                     padded):
    model = _graph(build, outputs)
    src = tmp_path / "float.onnx"
    onnx.save(model, str(src))
    # every tensor the rewrite adds names the original tensor whose range it has
    rewritten = onnx.load(str(src))
    new = pad_conv_channels(rewritten, VNNI)["new_tensors"]
    old = {t for n in model.graph.node for t in n.output} | {"x"}
    added = {t for n in rewritten.graph.node for t in n.output} - old
    assert added and set(new) == added and set(new.values()) <= old
    xs, cache = _calibrated(src, tmp_path, 2)
    rng = np.random.default_rng(7)  # an input calibration never saw
    plain, pad = tmp_path / "plain.onnx", tmp_path / "pad.onnx"
    quantize(src, plain, cache, config=QuantConfig(**FOR_VNNI, pad_channels=False))
    rep = quantize(src, pad, cache, config=QuantConfig(**FOR_VNNI))
    assert {k: list(v) for k, v in rep["padded_convs"].items()} == padded
    m = onnx.load(str(pad))
    onnx.checker.check_model(m, full_check=True)
    assert [o.name for o in m.graph.output] == [n for n, _ in outputs]
    # every conv is int8 (QDQ around it): no conv was left float for want of a range
    producer = {o: n.op_type for n in m.graph.node for o in n.output}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert convs and all(producer.get(n.input[0]) == "DequantizeLinear" for n in convs)
    for x in [xs[0], rng.random((1, 3, 16, 16), dtype=np.float32)]:
        a, b = _run(plain, x), _run(pad, x)
        assert [r.shape for r in a] == [r.shape for r in b]
        assert all(np.array_equal(r, s) for r, s in zip(a, b)), "zero channels must not change the int8 result"


def test_leaky_as_relu_leaves_no_activation_node_between_the_convs(tmp_path):
    """`leaky_as_relu` exists so the conv's int8 output clamp absorbs the activation: the quantized graph must have
    no Relu (nor LeakyRelu) left. It had 55 float Relus between DequantizeLinear and QuantizeLinear on the shared
    model (Relu was not among the op types given to quantize_static), slower than the lookups they replaced."""
    def build(inits, nodes, rng):
        c0 = _conv(inits, nodes, rng, "c0", "x", 3, 16)
        nodes.append(helper.make_node("LeakyRelu", [c0], ["a0"], name="a0", alpha=0.1))
        c1 = _conv(inits, nodes, rng, "c1", "a0", 16, 16)
        nodes.append(helper.make_node("LeakyRelu", [c1], ["a1"], name="a1", alpha=0.1))
        nodes.append(helper.make_node("Concat", ["a0", "a1"], ["cat"], name="cat", axis=1))
        _conv(inits, nodes, rng, "c2", "cat", 32, 16, out="y")

    src = tmp_path / "float.onnx"
    onnx.save(_graph(build, [("y", [1, 16, 16, 16])]), str(src))
    _, cache = _calibrated(src, tmp_path, 3)
    out, leaky = tmp_path / "relu.onnx", tmp_path / "leaky.onnx"
    quantize(src, out, cache, config=QuantConfig(method="minmax", target="x86-vnni", leaky_as_relu=True))
    quantize(src, leaky, cache, config=QuantConfig(method="minmax", target="x86-vnni"))
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "Relu" not in ops and "LeakyRelu" not in ops and ops.count("Conv") == 3
    assert [n.op_type for n in onnx.load(str(leaky)).graph.node].count("LeakyRelu") == 2  # the default keeps them
    # the clamp is there: every activation up to the last conv (the convs' outputs and the Concat of them, whose
    # float ranges held the LeakyRelus' negative side) is u8 with zero point 0, so nothing below 0 survives
    m = onnx.load(str(out))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    zero_points = {n.input[0]: int(init[n.input[2]]) for n in m.graph.node if n.op_type == "QuantizeLinear"
                   and n.input[0] in ("c0", "a0", "c1", "a1", "cat")}
    assert len(zero_points) >= 3 and set(zero_points.values()) == {0}, zero_points


@pytest.mark.parametrize("pad", [True, False])
def test_model_trained_with_relu_quantizes_with_the_relu_absorbed_and_clamped(tmp_path, pad):
    """A model with real Relus (`train --activation ReLU`) takes the same path as the rewritten LeakyRelus by default:
    no Relu node left, and each conv output quantized from 0 (its calibrated range holds the negative side the Relu
    removed: quantized with it, the activation would vanish), padded or not. onnxruntime names the fused conv's
    output after the Relu's ('a0'), an older quantizer after the conv's ('c0'): both are ranged from 0."""
    def build(inits, nodes, rng):
        c0 = _conv(inits, nodes, rng, "c0", "x", 3, 16)
        nodes.append(helper.make_node("Relu", [c0], ["a0"], name="a0"))
        c1 = _conv(inits, nodes, rng, "c1", "a0", 16, 16)
        nodes.append(helper.make_node("Relu", [c1], ["a1"], name="a1"))
        _conv(inits, nodes, rng, "c2", "a1", 16, 16, out="y")

    src, out = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(_graph(build, [("y", [1, 16, 16, 16])]), str(src))
    _, cache = _calibrated(src, tmp_path, 4)
    quantize(src, out, cache, config=QuantConfig(**FOR_VNNI, pad_channels=pad))
    m = onnx.load(str(out))
    assert "Relu" not in [n.op_type for n in m.graph.node]
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    zero_points = [int(init[n.input[2]]) for n in m.graph.node if n.op_type == "QuantizeLinear"
                   and n.input[0] in ("c0", "a0", "c1", "a1")]
    assert len(zero_points) == 2 and set(zero_points) == {0}, zero_points
    x = np.random.default_rng(5).random((1, 3, 16, 16), dtype=np.float32)
    ref, got = _run(str(src), x)[0], _run(str(out), x)[0]
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max(), "the int8 model must track the float Relu model"

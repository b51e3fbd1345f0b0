"""Issue 16 item 2: `python -m sdk quantize --target trt` writes a Q/DQ ONNX that follows TensorRT's rules
(sdk/tensorrt/qdq_rules.py, each rule citing onnx-tensorrt / the Developer Guide), build_engine names the node and
the rule of a Q/DQ ONNX that breaks one (onnxruntime's CPU form), and `--trt-cache` is accepted by build_engine.
The fake parser enforces the same rules independently (tests/fake_tensorrt/fake_trt.py, _qdq_parse_error)."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from sdk.errors import SDKError
from sdk.tensorrt import build_engine
from sdk.tensorrt.qdq_rules import check_qdq
from tests.conftest import run_cli
from tests.fake_tensorrt.fixtures import calls, flags_set, trt, trt10  # noqa: F401 - fixtures

QUIET = {"progress": False}
FP32_CONV = "/model.77/m.0/Conv"


@pytest.fixture(scope="module")
def trt_target(tmp_path_factory, onnx_model, train_images):
    """The real command, once: TensorRT target, a plan override, and a TensorRT 10.3 calibration cache."""
    d = tmp_path_factory.mktemp("trt-target")
    out, cache = d / "trt.onnx", d / "trt.cache"
    p = run_cli("quantize", "--model", onnx_model, "--calib", train_images, "--calib-count", "4", "--calib-method",
                "minmax", "--target", "trt", "--layer-precision", f"{FP32_CONV}:fp32", "-o", out, "--trt-cache",
                cache, "--trt-version", "10.3", check=True)
    return out, cache, json.loads(p.stdout.strip().splitlines()[-1])


def _consts(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_trt_target_follows_tensorrt_rules(trt_target):
    out, _, report = trt_target
    m = onnx.load(str(out))
    assert check_qdq(m) == [] and report["target"] == "trt" and report["int8_convs"] > 50
    consts = _consts(m)
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert all(consts[n.input[2]].dtype == np.int8 and not consts[n.input[2]].any() for n in qdq)  # symmetric
    producers = {o: n for n in m.graph.node for o in n.output}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    for conv in convs:
        w = producers.get(conv.input[1])
        if conv.name == FP32_CONV:
            assert w is None  # the plan's fp32 layer keeps float weights
            continue
        if w is None:
            continue
        axis = next(a.i for a in w.attribute if a.name == "axis")
        k = consts[w.input[0]].shape[0]
        assert axis == 0 and consts[w.input[1]].shape == (k,) and consts[w.input[0]].dtype == np.int8
        assert len(conv.input) < 3 or conv.input[2] in consts and consts[conv.input[2]].dtype == np.float32
    # every int8 Concat reads its inputs through Q/DQ pairs with one shared scale
    concats = [n for n in m.graph.node if n.op_type == "Concat" and all(
        producers.get(x) is not None and producers[x].op_type == "DequantizeLinear" for x in n.input)]
    assert concats
    for c in concats:
        assert len({float(consts[producers[x].input[1]]) for x in c.input}) == 1, c.name
    # the decode stays float: no node of the detection layer except its convs reads a DequantizeLinear
    decode = [n for n in m.graph.node if n.name.startswith("/model.77/") and n.op_type != "Conv" and
              n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    assert decode and not any(producers.get(x) is not None and producers[x].op_type == "DequantizeLinear"
                              for n in decode for x in n.input)
    assert json.loads({p.key: p.value for p in m.metadata_props}["sdk.quantization"])["target"] == "trt"


def test_trt_target_builds_on_every_tensorrt(trt, trt_target, tmp_path):
    out, _, report = trt_target
    built = build_engine(out, tmp_path / "q.engine", precision="fp16", strict=True, **QUIET)
    assert built["explicit_quantization"] and flags_set(trt) >= {"FP16", "INT8"}
    assert not calls(trt, "calibrator.") and built["layer_precisions"]["int8"] >= report["int8_convs"] - 5


def test_trt_target_detects_what_fp32_detects(trt_target, onnx_model, val_images):
    """onnxruntime executes the Q/DQ graph on the CPU (int8 arithmetic simulated): the same people are found."""
    from sdk.data.images import list_images, read_image
    from sdk.detector import Detector

    frames = [read_image(p) for p in list_images(str(val_images))[:3]]
    with Detector(str(trt_target[0]), backend="ort", conf=0.4) as q, Detector(str(onnx_model), backend="ort",
                                                                             conf=0.4) as f:
        for frame in frames:
            a, b = q(frame), f(frame)
            assert abs(len(a) - len(b)) <= 1 and len(b) > 0
            iou = _best_iou(a.boxes, b.boxes)
            assert np.median(iou) > 0.8, iou


def _best_iou(a, b):
    out = []
    for box in b:
        x1, y1 = np.maximum(a[:, 0], box[0]), np.maximum(a[:, 1], box[1])
        x2, y2 = np.minimum(a[:, 2], box[2]), np.minimum(a[:, 3], box[3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
        out.append(float((inter / union).max()) if len(a) else 0.0)
    return np.array(out)


def test_quantize_trt_cache_is_accepted_by_build_engine(trt10, trt_target, onnx_model, tmp_path):
    _, cache, _ = trt_target
    assert cache.read_text().startswith("TRT-100300-EntropyCalibration2\n")
    report = build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_cache=str(cache), **QUIET)
    assert report["calibration"]["cache_reused"] and not calls(trt10, "calibrator.get_batch")
    assert report["layer_precisions"]["int8"] > 50 and not report["warnings"]


@pytest.fixture(scope="module")
def cpu_form(onnx_model, val_images, tmp_path_factory):
    """onnxruntime's defaults: asymmetric activations, INT32 bias DequantizeLinear."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.metadata import ModelMetadata

    props = {p.key: p.value for p in onnx.load(str(onnx_model), load_external_data=False).metadata_props}
    reader = ImageCalibrationReader(calibration_images(val_images, 2), ModelMetadata.from_props(props), 1,
                                    progress=False)
    out = tmp_path_factory.mktemp("cpu-form") / "u8.onnx"
    quantize_static(str(onnx_model), str(out), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    return out


def test_cpu_form_is_refused_naming_node_and_rule(trt, cpu_form, tmp_path):
    rules = {v.rule for v in check_qdq(onnx.load(str(cpu_form)))}
    assert {"int8", "symmetric", "dq-input-int8"} <= rules
    with pytest.raises(SDKError, match=r"node '.+' \(QuantizeLinear\) breaks TensorRT's Q/DQ rule 'int8'.*"
                                       r"--target trt"):
        build_engine(cpu_form, tmp_path / "u8.engine", precision="int8", **QUIET)
    assert not calls(trt, "OnnxParser.parse")  # refused before TensorRT's parser


def _graph(nodes, inits, x_shape=(1, 4, 8, 8)):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("case, rule", [
    ("zero_point", "symmetric"), ("uint8", "int8"), ("int32_dq", "dq-input-int8"),
    ("activation_per_channel", "per-tensor-activations"), ("weight_axis", "weights-axis-0"),
    ("scale_count", "per-axis-count"), ("negative_scale", "scale-positive"), ("ok", None)])
def test_each_rule_names_the_node(case, rule):
    w = np.ones((4, 4, 3, 3), np.int8)
    s = {"s": np.array(0.1, np.float32), "z": np.array(0, np.int8), "ws": np.full(4, 0.01, np.float32),
         "wz": np.zeros(4, np.int8), "w": w}
    axis = 0
    if case == "zero_point":
        s["z"] = np.array(3, np.int8)
    elif case == "uint8":
        s["z"] = np.array(0, np.uint8)
    elif case == "negative_scale":
        s["s"] = np.array(-0.1, np.float32)
    elif case == "weight_axis":
        axis = 1
    elif case == "scale_count":
        s["ws"], s["wz"] = np.full(3, 0.01, np.float32), np.zeros(3, np.int8)
    act_scale, act_zp = ("ws", "wz") if case == "activation_per_channel" else ("s", "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", act_scale, act_zp], ["xq"], name="x_Q", axis=1),
             helper.make_node("DequantizeLinear", ["xq", act_scale, act_zp], ["xd"], name="x_DQ", axis=1),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="w_DQ", axis=axis),
             helper.make_node("Conv", ["xd", "wd"] + (["bd"] if case == "int32_dq" else []), ["y"], name="conv",
                              pads=[1, 1, 1, 1])]
    if case == "int32_dq":
        s.update(b=np.zeros(4, np.int32), bs=np.full(4, 0.001, np.float32), bz=np.zeros(4, np.int32))
        nodes.insert(3, helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"], name="bias_DQ", axis=0))
    found = check_qdq(_graph(nodes, s))
    if rule is None:
        assert found == []
    else:
        assert rule in {v.rule for v in found}, found
        assert all(v.node in {"x_Q", "x_DQ", "w_DQ", "bias_DQ"} for v in found)

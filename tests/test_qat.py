"""Quantization-aware training end to end on a few real Penn-Fudan images at 128 px: the fake-quantized model,
the explicit Q/DQ ONNX it exports (what TensorRT explicit quantization reads), onnxruntime parity, eval, the
TensorRT build path (fake TensorRT: proves the calls, not a result) and bad input."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from sdk.errors import SDKError  # noqa: E402
from sdk.models.checkpoint import load_checkpoint  # noqa: E402
from sdk.quant import qat  # noqa: E402
from tests.fake_tensorrt.fixtures import calls, flags_set, trt  # noqa: E402,F401 - fixture

from .conftest import assert_one_line_error, run_cli  # noqa: E402

IMGSZ = 128


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory, checkpoint, pennfudan):
    """One real `python -m sdk qat` run: 4 train images, 1 epoch, 1 torch thread."""
    d = tmp_path_factory.mktemp("qat")
    p = run_cli("qat", "--weights", checkpoint, "--data", pennfudan, "--epochs", "1", "--batch-size", "4",
                "--imgsz", IMGSZ, "--max-images", "4", "--max-val-images", "4", "--calib-images", "4",
                "--threads", "1", "--out-dir", d / "run", "-o", d / "qat.onnx", check=True)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    return {"dir": d, "onnx": d / "qat.onnx", "best": d / "run" / "best.pt", "res": res, "stdout": p.stdout}


def test_fake_quant_weights_are_int8_per_channel(qat_run):
    model, info, ranges = qat.load_qat_model(qat_run["best"])
    convs = qat.quant_convs(model)
    assert len(convs) == 58 and ranges and all(v > 0 for v in ranges.values())
    for name, m in convs:
        w = m.quantized_weight().detach()
        scale = m.weight_scale().view(-1, 1, 1, 1)
        levels = w / scale
        assert torch.allclose(levels, levels.round(), atol=1e-3), name  # integer multiples of the scale
        assert levels.abs().max() <= 127.001, name  # symmetric: -127..127, zero point 0
        for c in range(w.shape[0]):
            assert len(torch.unique(w[c])) <= 255, (name, c)
    # the QAT weights are not the float weights any more (training moved them) and load as a plain checkpoint
    plain, _ = load_checkpoint(qat_run["best"])
    assert info["qat"]["format"] == "sdk-qat-v1" and info["imgsz"] == IMGSZ
    plain.fuse()
    assert torch.equal(plain.model[0].conv.weight, model.model[0].conv.weight)


def test_folding_then_float_checkpoint_round_trip_is_exact(checkpoint):
    float_model, _ = load_checkpoint(checkpoint)
    q = qat.prepare_qat(load_checkpoint(checkpoint)[0])
    qat.set_quantize(q, False)
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        ref, folded = float_model(x), q(x)
        back = qat.to_float_model(q)(x)
    assert torch.allclose(ref, folded, atol=1e-2), (ref - folded).abs().max()  # BatchNorm + implicit folding
    assert torch.allclose(back, folded, atol=1e-4)  # identity BatchNorm: the QAT weights come back unchanged


def test_onnx_is_explicit_symmetric_qdq_with_float_decode(qat_run):
    from onnx import numpy_helper

    proto = onnx.load(str(qat_run["onnx"]))
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert props["sdk.precision"] == "int8-qat" and props["sdk.names"] == ["person"]
    assert props["sdk.imgsz"] == [IMGSZ, IMGSZ] and props["sdk.quantization"]["method"] == "qat"
    assert proto.opset_import[0].version == 13
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in proto.graph.node
              if n.op_type == "Constant"}
    value = {**consts, **inits}
    qdq = [n for n in proto.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) >= 2 * 58 + 2 * 40
    for n in qdq:
        zp = value[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any(), n.name  # int8 zero points, all 0
        assert (value[n.input[1]] > 0).all()
    consumers = {}
    for n in proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producers = {o: n for n in proto.graph.node for o in n.output}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 58
    for c in convs:  # input and weight of every conv come through Q -> DQ
        act, weight = producers[c.input[0]], producers[c.input[1]]
        assert act.op_type == weight.op_type == "DequantizeLinear", c.name
        assert value[act.input[1]].ndim == 0  # per-tensor activation scale
        assert {a.name: a.i for a in weight.attribute}.get("axis", 1) == 0  # per-channel weights, axis 0
        assert value[weight.input[1]].shape == (value[producers[weight.input[0]].input[0]].shape[0],)
    for n in qdq:  # nothing but convs reads dequantized tensors: the box decode stays float
        if n.op_type == "DequantizeLinear":
            assert {u.op_type for u in consumers[n.output[0]]} == {"Conv"}, n.name
    assert qat_run["res"]["onnx"]["quantized_convs"] == 58
    # the activation scales in the graph are the checkpoint's calibrated ranges / 127
    ranges = qat.load_qat_model(qat_run["best"])[2]
    first = producers[next(c for c in convs if c.name == "/model.0/conv/Conv").input[0]]
    assert value[first.input[1]] == pytest.approx(ranges["model.0.conv"] / 127, rel=1e-6)


def test_onnxruntime_matches_the_torch_qat_model(qat_run, pennfudan):
    def close(parity):
        # a rounding flip between two float convs shifts later layers by one int8 step: confident boxes keep
        # their centres within a pixel or two and their sizes within a few percent, scores within a few hundredths
        assert parity["max_centre_px_conf"] < 2.0 and parity["max_wh_rel_conf"] < 0.05, parity
        assert parity["mean_box_px"] < 0.3 and parity["max_score_diff"] < 0.05, parity

    assert qat_run["res"]["onnx"]["parity_images"] == 4
    close(qat_run["res"]["onnx"])
    model = qat.load_qat_model(qat_run["best"])[0]
    close(qat.onnx_parity(model, qat_run["onnx"], sorted((pennfudan / "images" / "val").glob("*"))[4:6], IMGSZ))


def test_sdk_eval_scores_the_qat_onnx(qat_run, val_images):
    p = run_cli("eval", "--model", qat_run["onnx"], "--data", val_images, "--threads", "1")
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["images"] == 30 and 0.1 < r["map50"] <= 1  # 128 px, 1 epoch on 4 images: low but real


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_tensorrt_builds_the_qat_onnx_without_calibrator(trt, qat_run, tmp_path, precision):
    from sdk.tensorrt import build_engine

    report = build_engine(qat_run["onnx"], tmp_path / "qat.engine", precision=precision, progress=False)
    assert report["explicit_quantization"] is True
    assert flags_set(trt) == ({"FP16", "INT8"} if precision == "fp16" else {"INT8"})
    assert not calls(trt, "IBuilderConfig.int8_calibrator") and not calls(trt, "calibrator.")
    assert report["layer_precisions"].get("int8", 0) >= 58  # every conv takes its int8 scales from the graph


def test_missing_ranges_and_too_many_calibration_images_are_refused(checkpoint):
    from sdk.data.datasets import LabelledDataset, Sample

    model = qat.prepare_qat(load_checkpoint(checkpoint)[0])
    with pytest.raises(SDKError, match="no activation range for model.0.conv"):
        qat.load_act_ranges(model, {}, "--weights x.pt")
    two = LabelledDataset([Sample(i, f"{i}.jpg", 8, 8, np.zeros((0, 4)), np.zeros(0, int)) for i in (1, 2)],
                          ["person"], "yolo", "two")
    with pytest.raises(SDKError, match="calib_count: got 500, expected at most the 2 training images"):
        qat.calibration_paths(two, 500)


@pytest.mark.parametrize("case, needle", [("missing-weights", "--weights"), ("empty-data", "--data"),
                                          ("bad-epochs", "--epochs"), ("bad-output", "--output"),
                                          ("bad-imgsz", "--imgsz: got 100")])
def test_bad_input_is_one_line_error(case, needle, checkpoint, pennfudan, tmp_path):
    empty = tmp_path / "empty" / "images" / "train"
    empty.mkdir(parents=True)
    args = {"--weights": checkpoint, "--data": pennfudan, "--out-dir": tmp_path / "run", "-o": tmp_path / "q.onnx"}
    extra = []
    if case == "missing-weights":
        args["--weights"] = tmp_path / "missing.pt"
    elif case == "empty-data":
        args["--data"] = empty
    elif case == "bad-epochs":
        extra = ["--epochs", "0"]
    elif case == "bad-imgsz":
        extra = ["--imgsz", "100"]
    else:
        args["-o"] = tmp_path / "q.engine"
    p = run_cli("qat", *[x for kv in args.items() for x in kv], *extra, "--threads", "1")
    assert_one_line_error(p, needle)
    assert not (tmp_path / "run").exists() and not (tmp_path / "q.onnx").exists()

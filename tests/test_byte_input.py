"""INT8 models that take the frame's bytes (sdk.quant.byte_input, quantize --uint8-input): the same integers reach
the first convolution, so the outputs and the detections are those of the float-input INT8 model, bit for bit."""
import json

import numpy as np
import onnx
import pytest

from sdk.errors import SDKError
from sdk.quant.quantize import QuantConfig, calibrate, quantize


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, onnx_model, train_images):
    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.quant.layers import load_model, metadata_of

    d = tmp_path_factory.mktemp("byte-input")
    paths = calibration_images(train_images, 2, 0, "--calib")
    cache = d / "r.json"
    calibrate(onnx_model, ImageCalibrationReader(paths, metadata_of(load_model(onnx_model)), progress=False),
              "minmax", str(cache))
    floats, byte, rgb = d / "float-input.onnx", d / "byte-input.onnx", d / "byte-input-unpadded.onnx"
    quantize(onnx_model, floats, cache, config=QuantConfig(method="minmax", target="x86-vnni"))
    quantize(onnx_model, byte, cache, config=QuantConfig(method="minmax", target="x86-vnni", uint8_input=True))
    # without channel padding: no 4th channel, (1, H, W, 3) RGB (and the first conv on the generic kernel, whose
    # int16 sums saturate differently on AVX2-only CPUs: compared with the unpadded float-input model)
    for path, byte_in in ((rgb, True), (d / "float-input-unpadded.onnx", False)):
        quantize(onnx_model, path, cache, config=QuantConfig(method="minmax", target="x86-vnni", uint8_input=byte_in,
                                                              pad_channels=False))
    return floats, byte, rgb, cache


def test_byte_input_model_gives_the_float_input_models_outputs_and_detections(quantized, val_images):
    import cv2

    from sdk.detector import Detector

    floats, byte, rgb, _ = quantized
    m = onnx.load(str(byte))
    inp = m.graph.input[0]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # the first conv's padding to 4 channels became the input's 4th channel: no Pad left in the graph
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 416, 416, 4]
    assert not any(n.op_type == "Pad" for n in m.graph.node)
    assert [d.dim_value for d in onnx.load(str(rgb)).graph.input[0].type.tensor_type.shape.dim] == [1, 416, 416, 3]
    props = {p.key: json.loads(p.value) for p in m.metadata_props}
    assert props["sdk.scale"] == 1.0 and props["sdk.quantization"]["config"]["uint8_input"] is True
    # one QuantizeLinear fewer: the input's (the float model quantizes its input, the byte model is given it)
    count = lambda model, op: sum(n.op_type == op for n in model.graph.node)  # noqa: E731
    assert count(onnx.load(str(floats)), "QuantizeLinear") == count(m, "QuantizeLinear") + 1
    paths = sorted(p for p in val_images.iterdir() if p.suffix.lower() in (".png", ".jpg"))[:4]
    with Detector(str(floats), backend="ort") as a, Detector(str(byte), backend="ort") as b, \
            Detector(str(rgb), backend="ort") as c, Detector(str(rgb.parent / "float-input-unpadded.onnx"),
                                                             backend="ort") as a3:
        for path in paths:
            img = cv2.imread(str(path))
            xb, xc = b.pre(img)[0], c.pre(img)[0]
            # the letterboxed RGB frame itself, RGBX with an opaque X for the padded model
            assert xb.dtype == np.uint8 and xb.shape == (1, 416, 416, 4) and (xb[..., 3] == 255).all()
            assert np.array_equal(xb[..., :3], xc) and xc.shape == (1, 416, 416, 3)
            xa, _ = a.pre(img)
            assert np.array_equal(a.infer_raw(xa), b.infer_raw(xb))
            assert np.array_equal(a3.infer_raw(a3.pre(img)[0]), c.infer_raw(xc))
            # the X channel is ignored (zero weights) and the (B, 3, H, W) layout other tools pass works too
            # (ResolvedModel.feed transposes it and adds X)
            assert np.array_equal(b.infer_raw(np.concatenate([xc, 0 * xc[..., :1]], axis=3)), b.infer_raw(xb))
            assert np.array_equal(b.infer_raw(np.ascontiguousarray(xc.transpose(0, 3, 1, 2))), b.infer_raw(xb))
            da, db = a(img), b(img)
            assert len(da) > 0 and np.array_equal(da.boxes, db.boxes) and np.array_equal(da.scores, db.scores)


def test_byte_input_model_is_timed_on_bytes(quantized):
    # the benchmarks feed each model an input of its own dtype and layout (sdk.bench.random_input)
    from sdk.compare import Comparator
    from sdk.quant.speed import time_side_by_side

    floats, byte, _, _ = quantized
    t = time_side_by_side({"float input": str(floats), "byte input": str(byte)}, threads=1, runs=2)
    assert set(t) == {"float input", "byte input"} and all(v["p50_ms"] > 0 for v in t.values())
    with Comparator({"byte input": str(byte)}, None, threads=1) as cmp:
        assert cmp.time(runs=2, rounds=1, warmup=1)["byte input"]["p50_ms"] > 0


def test_byte_input_ranges_the_input_as_pixels_whatever_the_calibration_saw(tmp_path, onnx_model, quantized):
    # calibration images without a white pixel (or entropy clipping) would give the input a scale below 1/255
    from onnxruntime.quantization import TensorData, load_tensors_data, save_tensors_data

    cache = quantized[3]
    data = load_tensors_data(str(cache))
    data.data["images"] = TensorData(lowest=np.float32(0.1), highest=np.float32(0.6))
    dim = tmp_path / "dim.json"
    save_tensors_data(data, str(dim))
    out = tmp_path / "b.onnx"
    quantize(onnx_model, out, dim, config=QuantConfig(method="minmax", target="x86-vnni", uint8_input=True))
    ref = quantized[1]
    import onnxruntime as ort  # noqa: PLC0415

    x = np.random.default_rng(1).integers(0, 256, (1, 416, 416, 4)).astype(np.uint8)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (out, ref))
    # the same model as from the full [0, 1] range
    assert np.array_equal(a.run(None, {"images": x})[0], b.run(None, {"images": x})[0])


def test_byte_input_refuses_what_it_cannot_make_exact(tmp_path, onnx_model, quantized):
    floats, byte, _, cache = quantized
    with pytest.raises(SDKError, match=r"^uint8_input: got s8 activations .* expected u8"):
        quantize(onnx_model, tmp_path / "s8.onnx", cache, config=QuantConfig(method="minmax", target="jetson",
                                                                            uint8_input=True))
    from sdk.quant.byte_input import byte_input

    with pytest.raises(SDKError, match=r"^uint8_input: got input 'images' of shape \[1, 416, 416, 4\]"):
        byte_input(onnx.load(str(byte)))  # already bytes
    with pytest.raises(SDKError, match=r"^uint8_input: input 'images' feeds Conv, expected one QuantizeLinear"):
        byte_input(onnx.load(str(onnx_model)))  # a float model: nothing quantizes the input
    assert not (tmp_path / "s8.onnx").exists()


def test_quantize_cli_uint8_input(tmp_path, onnx_model, train_images):
    from tests.conftest import run_cli

    out = tmp_path / "q.onnx"
    p = run_cli("quantize", "--model", onnx_model, "--calib", train_images, "--calib-count", "2", "--calib-method",
                "minmax", "--uint8-input", "-o", out)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["config"]["uint8_input"] is True
    assert onnx.load(str(out)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    p = run_cli("quantize", "--model", onnx_model, "--calib", train_images, "--calib-count", "2", "--target", "trt",
                "--uint8-input", "-o", tmp_path / "t.onnx")
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1].startswith("error: --uint8-input: got --target trt")
    assert not (tmp_path / "t.onnx").exists()
    # refused before the calibration images are even listed (a missing --calib folder is not what it reports)
    p = run_cli("quantize", "--model", onnx_model, "--calib", tmp_path / "no-such-folder", "--for-cpu", "jetson",
                "--uint8-input", "-o", tmp_path / "s8.onnx")
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1].startswith(
        "error: --uint8-input: got s8 activations (form for jetson), expected u8")
    assert not (tmp_path / "s8.onnx").exists()

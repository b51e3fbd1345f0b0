"""The INT8 calibrators and the fingerprinted calibration cache, against both fake TensorRT flavours."""
import json

import numpy as np
import pytest

from calibrators.data_reader import ImageCalibrationReader, calibration_images
from calibrators.tensorrt import calibrator_class, make_calibrator
from sdk.errors import SDKError
from sdk.metadata import ModelMetadata
from sdk.tensorrt import build_engine
from sdk.tensorrt.calib_cache import CalibrationCache, fingerprint
from sdk.tensorrt.memory import cuda_memory
from tests.fake_tensorrt import DEVICE
from tests.fake_tensorrt.fixtures import calls, trt, trt10, trt85  # noqa: F401 - fixtures

META = ModelMetadata(names=["person"], imgsz=(416, 416))


@pytest.fixture
def reader(val_images):
    return ImageCalibrationReader(calibration_images(val_images, 4, seed=1), META, batch_size=2, progress=False)


def _fp(**kw):
    base = dict(onnx_sha256="a" * 64, preprocess={"imgsz": [416, 416]}, images="img", batch_size=2,
                calibrator="entropy", tensorrt="8.5.2.2")
    return fingerprint(**{**base, **kw})


@pytest.mark.parametrize("kind, base", [("entropy", "IInt8EntropyCalibrator2"), ("minmax", "IInt8MinMaxCalibrator")])
def test_protocol_returns_device_pointers_then_none(trt, reader, kind, base):
    memory = cuda_memory()
    calib = make_calibrator(kind, reader, memory, trt=trt)
    assert isinstance(calib, getattr(trt, base)) and calib._base_init  # the base __init__ ran
    assert type(calib).__name__ == {"entropy": "EntropyCalibrator", "minmax": "MinMaxCalibrator"}[kind]
    assert calib.get_batch_size() == 2
    expected = list(reader.batches())
    for want in expected:
        ptrs = calib.get_batch(["images"])
        assert len(ptrs) == 1 and isinstance(ptrs[0], int) and DEVICE.is_device(ptrs[0])
        got = DEVICE.read(ptrs[0], want.nbytes).view(np.float32).reshape(want.shape)
        np.testing.assert_array_equal(got, want)  # exactly the inference pre-processing, on the device
    assert calib.get_batch(["images"]) is None
    assert calib.batches_served == 2
    assert calib.read_calibration_cache() is None  # no cache configured
    calib.free()
    assert DEVICE.device == {}  # it owned and freed its device buffer
    calib.check()


def test_class_is_created_lazily_per_tensorrt(trt85, trt10):
    import calibrators.tensorrt as ct

    assert "EntropyCalibrator" not in vars(ct)
    assert ct.EntropyCalibrator is calibrator_class("entropy")  # module __getattr__, imports tensorrt on use
    with pytest.raises(SDKError, match="calibrator: got 'kl'"):
        calibrator_class("kl", trt10)


def test_no_batches_is_a_clear_error(trt, reader):
    calib = make_calibrator("entropy", reader, cuda_memory(), trt=trt)
    reader.batches = lambda: iter(())
    assert calib.get_batch(["images"]) is None
    with pytest.raises(SDKError, match="yielded no batches"):
        calib.check()


def test_build_reports_a_bad_calibration_image(trt, onnx_model, val_images, tmp_path):
    images = tmp_path / "calib"
    images.mkdir()
    for p in sorted(val_images.iterdir())[:3]:
        (images / p.name).write_bytes(p.read_bytes())
    (images / "zz-broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SDKError, match="zz-broken.jpg"):
        build_engine(onnx_model, tmp_path / "m.engine", precision="int8", calib_images=str(images), progress=False)
    assert not (tmp_path / "m.engine").exists()
    assert DEVICE.device == {}  # buffers freed on failure too


def test_cache_roundtrip_and_stale_refusal(tmp_path):
    path = tmp_path / "m.calib"
    CalibrationCache(path, _fp()).save(b"TRT-8502-EntropyCalibration2\nimages: 3c010204\n")
    assert json.loads((tmp_path / "m.calib.json").read_text())["batch_size"] == 2
    cache = CalibrationCache(path, _fp())
    assert cache.load().startswith(b"TRT-8502") and cache.reused
    for change in ({"batch_size": 4}, {"calibrator": "minmax"}, {"tensorrt": "10.3.0.26"}, {"images": "other"},
                   {"onnx_sha256": "b" * 64}, {"preprocess": {"imgsz": [640, 640]}}):
        with pytest.raises(SDKError, match=f"stale, it was made for a different {next(iter(change))}"):
            CalibrationCache(path, _fp(**change)).load()
    # without calibration images the image list cannot be compared, the rest still is
    assert CalibrationCache(path, _fp(images=None, batch_size=None)).load() is not None
    path.write_bytes(b"TRT-8502-EntropyCalibration2\nimages: 00000000\n")
    with pytest.raises(SDKError, match="contents changed"):
        CalibrationCache(path, _fp()).load()
    (tmp_path / "m.calib.json").unlink()
    with pytest.raises(SDKError, match="no fingerprint file"):
        CalibrationCache(path, _fp()).load()


def test_build_writes_then_reuses_then_refuses_stale_cache(trt, onnx_model, val_images, tmp_path):
    kw = dict(precision="int8", calib_images=str(val_images), calib_batches=2,
              calib_cache=str(tmp_path / "m.calib"), progress=False)
    first = build_engine(onnx_model, tmp_path / "a.engine", **kw)
    assert first["calibration"]["batches_served"] == 2 and first["calibration"]["cache_written"]
    header = (tmp_path / "m.calib").read_bytes().split(b"\n")[0]
    assert header.startswith(b"TRT-") and header.endswith(b"EntropyCalibration2")
    assert len([c for c in calls(trt, "calibrator.get_batch") if c[1] is not None]) == 2
    trt.CALLS.clear()
    second = build_engine(onnx_model, tmp_path / "b.engine", **kw)
    assert second["calibration"]["cache_reused"] and second["calibration"]["batches_served"] == 0
    assert not calls(trt, "calibrator.get_batch")
    # the cache alone (no images) is enough when it matches the model, calibrator and TensorRT
    only_cache = {**kw, "calib_images": None}
    assert build_engine(onnx_model, tmp_path / "c.engine", **only_cache)["calibration"]["cache_reused"]
    for change in ({"calibrator": "minmax"}, {"calib_batches": 1}):
        with pytest.raises(SDKError, match="calibration cache .* stale"):
            build_engine(onnx_model, tmp_path / "d.engine", **{**kw, **change})
    assert not (tmp_path / "d.engine").exists()

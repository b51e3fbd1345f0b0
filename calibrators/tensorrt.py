"""TensorRT INT8 calibrators fed by the same ImageCalibrationReader (same pre-processing) as onnxruntime.

`EntropyCalibrator` subclasses `trt.IInt8EntropyCalibrator2`, `MinMaxCalibrator` `trt.IInt8MinMaxCalibrator`.
tensorrt is imported lazily, so the classes are created on first use: `calibrator_class(kind)` or
`calibrators.tensorrt.EntropyCalibrator` (module __getattr__). TensorRT calls back from C++: an exception
there would be swallowed into a vague build failure, so errors are stored on `.error` and the builder raises
them after the build.
"""
import numpy as np

from sdk.errors import SDKError

KINDS = {"entropy": ("EntropyCalibrator", "IInt8EntropyCalibrator2"),
         "minmax": ("MinMaxCalibrator", "IInt8MinMaxCalibrator")}
_classes = {}


class _CalibratorLogic:
    """The protocol TensorRT calls: get_batch_size, get_batch(names) -> [device pointer] or None at the end,
    read_calibration_cache -> bytes or None, write_calibration_cache(cache)."""

    def _setup(self, reader, memory, cache=None, batch_size=None):
        self.reader = reader  # None when only a (checked) cache is given: TensorRT then never asks for data
        self.batch_size = reader.batch_size if reader is not None else int(batch_size or 1)
        self.memory = memory
        self.cache = cache  # sdk.tensorrt.calib_cache.CalibrationCache or None
        self.batches_served = 0
        self.asked = False  # TensorRT asked for data (so "no batches" is the cause if the build fails)
        self.error = None
        self._iter = None
        self._device = None
        self._nbytes = 0

    def get_batch_size(self):
        return self.batch_size

    def get_batch(self, names, *_):
        try:
            self.asked = True
            if self.reader is None:
                return None
            if self._iter is None:
                self._iter = self.reader.batches()
            batch = next(self._iter, None)
            if batch is None:
                return None
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if self._device is None:
                self._nbytes = batch.nbytes
                self._device = self.memory.device_alloc(self._nbytes)
            if batch.nbytes != self._nbytes:
                raise SDKError(f"calibration batch {self.batches_served}: got {batch.nbytes} bytes, expected "
                               f"{self._nbytes}")
            self.memory.htod(self._device, batch)
            self.batches_served += 1
            return [int(self._device)] * len(names)
        except Exception as e:  # noqa: BLE001 - reported by the builder after TensorRT returns
            self.error = e
            return None

    def read_calibration_cache(self):
        try:
            return self.cache.load() if self.cache is not None else None
        except Exception as e:  # noqa: BLE001 - a stale cache: reported after the build, never reused
            self.error = e
            return None

    def write_calibration_cache(self, cache):
        try:
            if self.cache is not None:
                self.cache.save(bytes(cache))
        except Exception as e:  # noqa: BLE001
            self.error = e

    def free(self):
        if self._device is not None:
            self.memory.device_free(self._device)
            self._device = None

    def check(self):
        """After the build: raise what went wrong inside the callbacks, or that no data arrived."""
        if self.error is not None:
            raise self.error if isinstance(self.error, SDKError) else SDKError(
                f"INT8 calibration: {type(self.error).__name__}: {self.error}, expected calibration to run")
        if self.asked and self.batches_served == 0 and self.reader is not None:
            raise SDKError("INT8 calibration: the calibration data yielded no batches, expected at least one "
                           "(check --calib-images and --calib-batch-size)")


def calibrator_class(kind, trt=None):
    if kind not in KINDS:
        raise SDKError(f"--calibrator: got '{kind}', expected one of {', '.join(KINDS)}")
    if trt is None:
        from sdk.tensorrt.api import import_tensorrt

        trt = import_tensorrt()
    name, base_name = KINDS[kind]
    base = getattr(trt, base_name)
    key = (base, kind)  # keyed by the base class itself: one subclass per loaded tensorrt
    if key not in _classes:

        # The logic comes first in the MRO: the pybind base defines the same method names as pure virtuals.
        def __init__(self, reader, memory, cache=None, batch_size=None):
            base.__init__(self)  # pybind11 trampolines need the base constructor
            self._setup(reader, memory, cache, batch_size)

        _classes[key] = type(name, (_CalibratorLogic, base), {"__init__": __init__, "kind": kind,
                                                               "__module__": __name__})
    return _classes[key]


def make_calibrator(kind, reader, memory, cache=None, batch_size=None, trt=None):
    return calibrator_class(kind, trt)(reader, memory, cache, batch_size)


def __getattr__(name):
    for kind, (cls_name, _) in KINDS.items():
        if name == cls_name:
            return calibrator_class(kind)
    raise AttributeError(name)

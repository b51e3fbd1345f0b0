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
    """The protocol TensorRT calls: get_batch_size, get_batch(names) -> [device pointer per input] or None at the
    end, read_calibration_cache -> bytes or None, write_calibration_cache(cache).

    With an explicit-batch network TensorRT reads exactly one volume of each input's shape (or of the
    calibration profile's kOPT shape) from each pointer and ignores get_batch_size(), so every batch is checked
    against `shapes` here (as Polygraphy's calibrator checks its data loader): a bigger buffer would silently
    calibrate on its first image only."""

    def _setup(self, reader, memory, cache=None, batch_size=None, shapes=None):
        self.reader = reader  # None when only a (checked) cache is given: TensorRT then never asks for data
        self.batch_size = reader.batch_size if reader is not None else int(batch_size or 1)
        self.memory = memory
        self.cache = cache  # sdk.tensorrt.calib_cache.CalibrationCache or None
        self.shapes = dict(shapes or {})  # {input name: shape TensorRT reads}; empty = not checked
        self.batches_served = 0
        self.asked = False  # TensorRT asked for data (so "no batches" is the cause if the build fails)
        self.error = None
        self._iter = None
        self._device = {}  # input name -> (device pointer, nbytes): one buffer per input

    def get_batch_size(self):
        return self.batch_size

    def get_batch(self, names, *_):
        try:
            self.asked = True
            if self.reader is None:
                return None
            if self._iter is None:
                self._iter = iter(self.reader.batches())
            batch = next(self._iter, None)
            if batch is None:
                return None
            if not isinstance(batch, dict):  # an image reader: one array for the one image input
                batch = {names[0]: batch}
            ptrs = [self._upload(name, batch) for name in names]
            self.batches_served += 1
            return ptrs
        except Exception as e:  # noqa: BLE001 - reported by the builder after TensorRT returns
            self.error = e
            return None

    def _upload(self, name, batch):
        if name not in batch:
            raise SDKError(f"calibration input '{name}': not in the calibration data (it has "
                           f"{', '.join(sorted(batch))}), expected an array for every network input")
        arr = np.ascontiguousarray(batch[name], dtype=np.float32)
        want = self.shapes.get(name)
        if want is not None and tuple(arr.shape) != tuple(want):
            raise SDKError(f"calibration batch {self.batches_served} input '{name}': got shape {tuple(arr.shape)}, "
                           f"expected {tuple(want)} (TensorRT reads exactly one input volume per batch)")
        ptr, nbytes = self._device.get(name, (None, 0))
        if ptr is None:
            ptr, nbytes = self.memory.device_alloc(arr.nbytes), arr.nbytes
            self._device[name] = (ptr, nbytes)
        if arr.nbytes != nbytes:
            raise SDKError(f"calibration batch {self.batches_served} input '{name}': got {arr.nbytes} bytes, "
                           f"expected {nbytes}")
        self.memory.htod(ptr, arr)
        return int(ptr)

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
        for ptr, _ in self._device.values():
            self.memory.device_free(ptr)
        self._device = {}

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
        def __init__(self, reader, memory, cache=None, batch_size=None, shapes=None):
            base.__init__(self)  # pybind11 trampolines need the base constructor
            self._setup(reader, memory, cache, batch_size, shapes)

        _classes[key] = type(name, (_CalibratorLogic, base), {"__init__": __init__, "kind": kind,
                                                               "__module__": __name__})
    return _classes[key]


def make_calibrator(kind, reader, memory, cache=None, batch_size=None, trt=None, shapes=None):
    """A calibrator of `kind` fed by `reader` (`.batch_size`, `.batches()` yielding arrays or {input: array});
    `shapes` ({input: shape}) is what TensorRT will read per batch, checked on every batch."""
    return calibrator_class(kind, trt)(reader, memory, cache, batch_size, shapes)


def __getattr__(name):
    for kind, (cls_name, _) in KINDS.items():
        if name == cls_name:
            return calibrator_class(kind)
    raise AttributeError(name)

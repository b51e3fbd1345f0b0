"""TensorRT backend: a serialized engine behind the same Runner interface as onnxruntime.

Device memory through sdk.tensorrt.memory (cuda-python or pycuda), pinned host buffers, one CUDA stream and
async copies. Two execution paths: named tensors (`set_tensor_address` + `execute_async_v3`, TRT >= 8.5, the
only one on 10) and bindings (`execute_async_v2`, TRT 8.x). The engine's `.json` sidecar (written by
build_engine) gives class names / input size and the DLA core, and an engine built for another TensorRT, GPU or
Orin board is refused.

A dynamic-batch engine reports its batch dimension as None in `inputs` (as the onnxruntime runner does); each
call sets the input shape it got (checked against the optimization profile) and buffers are allocated once, for
the profile's largest shape, so a varying batch (several cameras) costs no re-allocation.
"""
from pathlib import Path

import numpy as np

from ..errors import SDKError
from ..metadata import ModelMetadata
from .base import Runner, TensorSpec

APIS = ("auto", "tensors", "bindings")


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(self, path, memory=None, api="auto", verbose=False, threads=None, providers=None, spin=None):
        # threads / providers / spin are onnxruntime options that callers pass to any runner; TensorRT has no use for them
        super().__init__(path)
        if api not in APIS:
            raise SDKError(f"TensorRT runner api: got '{api}', expected one of {', '.join(APIS)}")
        self.requested_api = api
        self.memory = memory
        self._owns_memory = memory is None
        self.verbose = verbose
        self.api = None
        self.trt = None
        self.record = None
        self.profiles = {}  # dynamic input name -> (min, opt, max) shapes of optimization profile 0
        self._buffers = {}  # name -> (flat host array, host ptr, device ptr)
        self._shapes = None
        self._stream = None

    # ---- loading -------------------------------------------------------------------------------------------
    def _load(self):
        from ..tensorrt import api as trtapi  # noqa: PLC0415
        from ..tensorrt.engine_meta import check_compatible, metadata_of, read_sidecar  # noqa: PLC0415
        from ..tensorrt.memory import cuda_memory  # noqa: PLC0415

        if not Path(self.path).is_file():
            raise SDKError(f"engine {self.path}: file not found, expected a TensorRT engine from build_engine")
        trt = self.trt = trtapi.import_tensorrt()
        self.record = read_sidecar(self.path)
        self._logger = trtapi.make_logger(trt, self.verbose)
        self._runtime = trt.Runtime(self._logger)
        if self.memory is None:
            self.memory = cuda_memory()
        try:
            self._deserialize(trt, trtapi, check_compatible, metadata_of)
        except BaseException:
            self._close()
            raise

    def _deserialize(self, trt, trtapi, check_compatible, metadata_of):
        if self.record is not None:
            device = self.memory.device_info()
            if self.record.get("device") and "dla_cores" in self.record["device"]:
                device = {**device, "dla_cores": int(getattr(self._runtime, "num_DLA_cores", 0))}
            check_compatible(self.path, self.record, trt.__version__, device)
            self.metadata = metadata_of(self.record, f"engine metadata {self.path}.json")
            if self.record.get("dla_core") is not None:
                self._runtime.DLA_core = int(self.record["dla_core"])  # before deserializing (IRuntime::setDLACore)
        else:
            self.metadata = ModelMetadata(names=[])  # a foreign engine: no class names, the Detector says so
        trtapi.init_plugins(trt, self._logger)  # plugin layers (EfficientNMS_TRT) need the registry filled
        self.engine = self._runtime.deserialize_cuda_engine(Path(self.path).read_bytes())
        if self.engine is None:
            raise SDKError(f"engine {self.path}: TensorRT {trt.__version__} cannot deserialize it, expected an "
                           f"engine built on this device with this TensorRT; rebuild it with build_engine")
        self.context = self.engine.create_execution_context()
        self.api = self._choose_api(trtapi)
        io = self._io_tensors() if self.api == "tensors" else self._io_bindings()
        self._order = [name for name, _, _, _ in io]  # binding order for execute_async_v2
        self.inputs = [TensorSpec(n, _spec_shape(s), np.dtype(d)) for n, is_in, s, d in io if is_in]
        self.outputs = [TensorSpec(n, _spec_shape(s), np.dtype(d)) for n, is_in, s, d in io if not is_in]
        self.profiles = {spec.name: trtapi.profile_shape(self.engine, spec.name, self._order.index(spec.name))
                         for spec in self.inputs if any(d is None for d in spec.shape)}
        self._stream = self.memory.stream()

    def _choose_api(self, trtapi):
        named, bindings = trtapi.has_named_tensors(self.engine), trtapi.has_binding_api(self.engine)
        if self.requested_api == "bindings" or (self.requested_api == "auto" and not named):
            if not bindings:
                raise SDKError(f"TensorRT runner api: got 'bindings', expected 'tensors' (TensorRT "
                               f"{self.trt.__version__} has no binding API)")
            return "bindings"
        if not named:
            raise SDKError(f"TensorRT runner api: got 'tensors', expected 'bindings' (TensorRT "
                           f"{self.trt.__version__} has no named-tensor API)")
        return "tensors"

    def _io_tensors(self):
        e, trt = self.engine, self.trt
        out = []
        for i in range(e.num_io_tensors):
            name = e.get_tensor_name(i)
            is_input = e.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            out.append((name, is_input, tuple(e.get_tensor_shape(name)), trt.nptype(e.get_tensor_dtype(name))))
        return out

    def _io_bindings(self):
        e, trt = self.engine, self.trt
        return [(e.get_binding_name(i), e.binding_is_input(i), tuple(e.get_binding_shape(i)),
                 trt.nptype(e.get_binding_dtype(i))) for i in range(e.num_bindings)]

    # ---- buffers ---------------------------------------------------------------------------------------------
    def _prepare(self, feed):
        """Set the input shapes of this call (dynamic batch) and make sure buffers exist; returns the shapes of
        every I/O tensor for this call."""
        shapes = {name: tuple(arr.shape) for name, arr in feed.items()}
        if shapes == self._shapes:
            return self._io_shapes
        for name, shape in shapes.items():
            if name not in self.profiles:
                continue
            lo, _, hi = self.profiles[name]
            if len(shape) != len(lo) or any(not a <= d <= b for a, d, b in zip(lo, shape, hi)):
                raise SDKError(f"tensorrt runner input '{name}': got shape {shape}, expected {tuple(lo)} to "
                               f"{tuple(hi)} (the engine's optimization profile; rebuild with build_engine "
                               f"--max-batch {shape[0]})")
        if not self._buffers:
            self._allocate()
        for name, shape in shapes.items():
            if name in self.profiles and not self._set_input_shape(name, shape):
                raise SDKError(f"tensorrt runner input '{name}': TensorRT refused shape {shape}, expected one "
                               f"inside the optimization profile {self.profiles[name]}")
        self._io_shapes = {**shapes, **{spec.name: self._output_shape(spec) for spec in self.outputs}}
        self._shapes = shapes
        return self._io_shapes

    def _allocate(self):
        """Pinned host + device buffers for the largest shapes the engine accepts (the profile's max)."""
        largest = {spec.name: tuple(self.profiles[spec.name][2]) if spec.name in self.profiles else spec.shape
                   for spec in self.inputs}
        for name in self.profiles:
            self._set_input_shape(name, largest[name])
        for spec in self.outputs:
            largest[spec.name] = self._output_shape(spec)
        for spec in self.inputs + self.outputs:
            count = int(np.prod(largest[spec.name]))
            host, host_ptr = self.memory.host_empty((max(count, 1),), spec.dtype)
            device = self.memory.device_alloc(max(host.nbytes, 1))
            self._buffers[spec.name] = (host, host_ptr, device)
            if self.api == "tensors":
                self.context.set_tensor_address(spec.name, int(device))

    def _set_input_shape(self, name, shape):
        if self.api == "tensors":
            return self.context.set_input_shape(name, shape) is not False
        return self.context.set_binding_shape(self._order.index(name), shape) is not False

    def _output_shape(self, spec):
        if all(isinstance(d, int) for d in spec.shape):
            return spec.shape
        if self.api == "tensors":
            return tuple(self.context.get_tensor_shape(spec.name))
        return tuple(self.context.get_binding_shape(self._order.index(spec.name)))

    def _view(self, name, shape):
        host = self._buffers[name][0]
        return host[:int(np.prod(shape))].reshape(shape)

    def _free_buffers(self):
        for host, host_ptr, device in self._buffers.values():
            self.memory.device_free(device)
            if host_ptr is not None:
                self.memory.host_free(host_ptr)
        self._buffers = {}
        self._shapes = None

    # ---- inference -------------------------------------------------------------------------------------------
    def _infer(self, feed):
        shapes = self._prepare(feed)
        stream = self._stream
        for spec in self.inputs:
            host = self._view(spec.name, shapes[spec.name])
            np.copyto(host, feed[spec.name])
            self.memory.htod_async(self._buffers[spec.name][2], host, stream)
        handle = self.memory.stream_handle(stream)
        if self.api == "tensors":
            ok = self.context.execute_async_v3(handle)
        else:
            ok = self.context.execute_async_v2([int(self._buffers[n][2]) for n in self._order], handle)
        if not ok:
            raise SDKError(f"engine {self.path}: TensorRT execution failed, expected a successful run (see the "
                           f"TensorRT log)")
        outputs = {}
        for spec in self.outputs:
            outputs[spec.name] = self._view(spec.name, shapes[spec.name])
            self.memory.dtoh_async(outputs[spec.name], self._buffers[spec.name][2], stream)
        self.memory.synchronize(stream)
        return {name: arr.copy() for name, arr in outputs.items()}

    def _close(self):
        if self.memory is not None:
            self._free_buffers()
            if self._stream is not None:
                self.memory.stream_destroy(self._stream)
                self._stream = None
            if self._owns_memory:
                self.memory.close()  # pycuda: releases (and finally pops) the context
                self.memory = None
        self.context = self.engine = None

    def describe(self):
        version = getattr(self.trt, "__version__", "?")
        precision = (self.record or {}).get("precision", "unknown precision")
        memory = getattr(self.memory, "name", "?")
        return f"TensorRT {version} ({precision}, {self.api} API, {memory})"


def _spec_shape(shape):
    return tuple(int(d) if int(d) >= 0 else None for d in shape)

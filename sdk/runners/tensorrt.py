"""TensorRT backend: a serialized engine behind the same Runner interface as onnxruntime.

Device memory through sdk.tensorrt.memory (cuda-python or pycuda), pinned host buffers, one CUDA stream and
async copies. Two execution paths: named tensors (`set_tensor_address` + `execute_async_v3`, TRT >= 8.5, the
only one on 10) and bindings (`execute_async_v2`, TRT 8.x). The engine's `.json` sidecar (written by
build_engine) gives class names / input size, and an engine built for another TensorRT or GPU is refused.
"""
from pathlib import Path

import numpy as np

from ..errors import SDKError
from ..metadata import ModelMetadata
from .base import Runner, TensorSpec

APIS = ("auto", "tensors", "bindings")


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(self, path, memory=None, api="auto", verbose=False, threads=None, providers=None):
        # threads / providers are onnxruntime options that callers pass to any runner; TensorRT has no use for them
        super().__init__(path)
        if api not in APIS:
            raise SDKError(f"TensorRT runner api: got '{api}', expected one of {', '.join(APIS)}")
        self.requested_api = api
        self.memory = memory
        self.verbose = verbose
        self.api = None
        self.trt = None
        self.record = None
        self._buffers = {}  # name -> (host array, host ptr, device ptr)
        self._shapes = None

    # ---- loading -------------------------------------------------------------------------------------------
    def _load(self):
        from ..tensorrt import api as trtapi  # noqa: PLC0415
        from ..tensorrt.engine_meta import check_compatible, metadata_of, read_sidecar  # noqa: PLC0415
        from ..tensorrt.memory import cuda_memory  # noqa: PLC0415

        if not Path(self.path).is_file():
            raise SDKError(f"engine {self.path}: file not found, expected a TensorRT engine from build_engine")
        trt = self.trt = trtapi.import_tensorrt()
        self.memory = self.memory or cuda_memory()
        self.record = read_sidecar(self.path)
        if self.record is not None:
            check_compatible(self.path, self.record, trt.__version__, self.memory.device_info())
            self.metadata = metadata_of(self.record)
        else:
            self.metadata = ModelMetadata(names=[])  # a foreign engine: no class names, the Detector says so
        self._logger = trtapi.make_logger(trt, self.verbose)
        # issue 15 (sdk/layouts.py): engines with NMS inside hold EfficientNMS_TRT, which needs the plugin library
        from ..layouts import init_trt_plugins  # noqa: PLC0415

        init_trt_plugins(trt, self._logger)
        self._runtime = trt.Runtime(self._logger)
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
    def _allocate(self, feed):
        """(Re)allocate pinned host + device buffers when the input shapes change (dynamic batch)."""
        shapes = {name: tuple(arr.shape) for name, arr in feed.items()}
        if shapes == self._shapes:
            return
        self._free_buffers()
        for spec in self.inputs:
            if any(not isinstance(d, int) for d in spec.shape):
                self._set_input_shape(spec.name, shapes[spec.name])
        for spec in self.inputs + self.outputs:
            shape = shapes[spec.name] if spec.name in shapes else self._output_shape(spec)
            host, host_ptr = self.memory.host_empty(shape, spec.dtype)
            device = self.memory.device_alloc(max(host.nbytes, 1))
            self._buffers[spec.name] = (host, host_ptr, device)
            if self.api == "tensors":
                self.context.set_tensor_address(spec.name, int(device))
        self._shapes = shapes

    def _set_input_shape(self, name, shape):
        if self.api == "tensors":
            self.context.set_input_shape(name, shape)
        else:
            self.context.set_binding_shape(self._order.index(name), shape)

    def _output_shape(self, spec):
        if all(isinstance(d, int) for d in spec.shape):
            return spec.shape
        if self.api == "tensors":
            return tuple(self.context.get_tensor_shape(spec.name))
        return tuple(self.context.get_binding_shape(self._order.index(spec.name)))

    def _free_buffers(self):
        for host, host_ptr, device in self._buffers.values():
            self.memory.device_free(device)
            if host_ptr is not None:
                self.memory.host_free(host_ptr)
        self._buffers = {}
        self._shapes = None

    # ---- inference -------------------------------------------------------------------------------------------
    def _infer(self, feed):
        self._allocate(feed)
        stream = self._stream
        for spec in self.inputs:
            host, _, device = self._buffers[spec.name]
            np.copyto(host, feed[spec.name])
            self.memory.htod_async(device, host, stream)
        handle = self.memory.stream_handle(stream)
        if self.api == "tensors":
            ok = self.context.execute_async_v3(handle)
        else:
            ok = self.context.execute_async_v2([int(self._buffers[n][2]) for n in self._order], handle)
        if not ok:
            raise SDKError(f"engine {self.path}: TensorRT execution failed, expected a successful run (see the "
                           f"TensorRT log)")
        for spec in self.outputs:
            host, _, device = self._buffers[spec.name]
            self.memory.dtoh_async(host, device, stream)
        self.memory.synchronize(stream)
        return {spec.name: self._buffers[spec.name][0].copy() for spec in self.outputs}

    def _close(self):
        self._free_buffers()
        if getattr(self, "_stream", None) is not None:
            self.memory.stream_destroy(self._stream)
            self._stream = None
        self.context = self.engine = None

    def describe(self):
        version = getattr(self.trt, "__version__", "?")
        precision = (self.record or {}).get("precision", "unknown precision")
        memory = getattr(self.memory, "name", "?")
        return f"TensorRT {version} ({precision}, {self.api} API, {memory})"


def _spec_shape(shape):
    return tuple(int(d) if int(d) >= 0 else None for d in shape)

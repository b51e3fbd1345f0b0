"""A fake `tensorrt` module in two flavours: "8.5" (JetPack 5.1) and "10.3" (JetPack 6.1/6.2).

Each flavour has only the attributes the real version has for what the SDK touches (reading or setting any
other attribute raises AttributeError), records calls in `trt.CALLS`, and behaves like TensorRT where the SDK
depends on it: the ONNX parser needs EXPLICIT_BATCH on 8.x, the builder calls the INT8 calibrator protocol
and fails without scales, per-layer precisions are honoured under OBEY/PREFER constraints and ignored without,
the inspector reports precisions only with DETAILED verbosity, and an engine from another version does not
deserialize. The "GPU" is tests/fake_tensorrt/device.py and the engine "executes" by running the embedded
ONNX through onnxruntime on the CPU, so outputs are real model outputs -- but nothing here is TensorRT.
"""
import enum
import json
import struct
import types

import numpy as np

from .device import DEVICE

MAGIC = b"FAKETRT\0"
INT8_TYPES = {"CONVOLUTION", "POOLING", "ACTIVATION", "ELEMENTWISE", "CONCATENATION", "RESIZE", "SCALE"}
OP_TO_LAYER = {"Conv": "CONVOLUTION", "LeakyRelu": "ACTIVATION", "Relu": "ACTIVATION", "Sigmoid": "ACTIVATION",
               "MaxPool": "POOLING", "Add": "ELEMENTWISE", "Sub": "ELEMENTWISE", "Mul": "ELEMENTWISE",
               "Pow": "ELEMENTWISE", "Div": "ELEMENTWISE", "Concat": "CONCATENATION", "Resize": "RESIZE",
               "Reshape": "SHUFFLE", "Transpose": "SHUFFLE", "Unsqueeze": "SHUFFLE", "Slice": "SLICE",
               "Expand": "SLICE", "Constant": "CONSTANT", "QuantizeLinear": "QUANTIZE",
               "DequantizeLinear": "DEQUANTIZE", "Shape": "SHAPE"}
FORMATS = {"fp32": "Row major linear FP32", "fp16": "Channel major FP16 format where channel % 8 == 0",
           "int8": "Channel major INT8 format where channel % 32 == 0", "int32": "Row major linear Int32"}


class _Strict:
    """Setting an attribute the real class does not have raises, as pybind11 objects do."""
    _settable = ()

    def __setattr__(self, name, value):
        if not name.startswith("_") and name not in self._settable:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        object.__setattr__(self, name, value)


def make_tensorrt(flavour="8.5"):
    v10 = flavour.startswith("10")
    version = "10.3.0.26" if v10 else "8.5.2.2"
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.CALLS = []
    record = trt.CALLS.append
    trt.num_dla_cores = 2  # a Jetson AGX Orin; tests may change it

    class DataType(enum.IntEnum):
        FLOAT = 0
        HALF = 1
        INT8 = 2
        INT32 = 3
        BOOL = 4
        if v10:
            INT64 = 8
            BF16 = 7
    trt.DataType = DataType
    trt.float32, trt.float16, trt.int8, trt.int32, trt.bool = (DataType.FLOAT, DataType.HALF, DataType.INT8,
                                                             DataType.INT32, DataType.BOOL)
    if v10:
        trt.int64, trt.bfloat16 = DataType.INT64, DataType.BF16
    np_types = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
                DataType.INT32: np.int32, DataType.BOOL: np.bool_}
    trt.nptype = lambda t: np_types[t]

    flags = ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
             "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
             "REJECT_EMPTY_ALGORITHMS"]
    flags += ["VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8", "BF16", "STRIP_PLAN"] if v10 else \
        ["STRICT_TYPES", "ENABLE_TACTIC_HEURISTIC"]
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1} if v10 else
        {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                         "DLA_GLOBAL_DRAM"] + (["TACTIC_DRAM"] if v10 else []))
    trt.ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "NONE", "DETAILED"])
    trt.LayerInformationFormat = enum.IntEnum("LayerInformationFormat", ["ONELINE", "JSON"])
    trt.DeviceType = enum.IntEnum("DeviceType", ["GPU", "DLA"])
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    trt.LayerType = enum.IntEnum("LayerType", sorted(set(OP_TO_LAYER.values()) | {"IDENTITY", "CAST"} if v10
                                                     else set(OP_TO_LAYER.values()) | {"IDENTITY"}))
    trt.CalibrationAlgoType = enum.IntEnum("CalibrationAlgoType", ["LEGACY_CALIBRATION", "ENTROPY_CALIBRATION",
                                                                   "ENTROPY_CALIBRATION_2", "MINMAX_CALIBRATION"])

    class Logger(_Strict):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)
        Severity = enum.IntEnum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])
        _settable = ("min_severity",)

        def __init__(self, min_severity=1):
            self.min_severity = min_severity
            self._errors = []

        def log(self, severity, msg):
            if severity <= self.ERROR:
                self._errors.append(msg)
    trt.Logger = Logger

    # ---- calibrators (pybind11 trampolines: the base __init__ must run; base methods are pure virtual) ----
    class IInt8Calibrator:
        def __init__(self):
            object.__setattr__(self, "_base_init", True)

        def _pure(self, *a):
            raise RuntimeError(f"Tried to call pure virtual function \"{type(self).__name__}\"")
        get_batch_size = get_batch = read_calibration_cache = write_calibration_cache = _pure

    class IInt8EntropyCalibrator2(IInt8Calibrator):
        def get_algorithm(self):
            return trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2

    class IInt8MinMaxCalibrator(IInt8Calibrator):
        def get_algorithm(self):
            return trt.CalibrationAlgoType.MINMAX_CALIBRATION
    trt.IInt8Calibrator, trt.IInt8EntropyCalibrator2 = IInt8Calibrator, IInt8EntropyCalibrator2
    trt.IInt8MinMaxCalibrator = IInt8MinMaxCalibrator

    if v10:
        class IProgressMonitor:
            def __init__(self):
                object.__setattr__(self, "_base_init", True)
        trt.IProgressMonitor = IProgressMonitor

    # ---- network --------------------------------------------------------------------------------------------
    class ITensor(_Strict):
        def __init__(self, name, shape, dtype):
            self._name, self._shape, self._dtype = name, tuple(shape), dtype

        name = property(lambda s: s._name)
        shape = property(lambda s: s._shape)
        dtype = property(lambda s: s._dtype)

    class ILayer(_Strict):
        _settable = ("name", "precision")

        def __init__(self, name, type_, outputs, inputs):
            object.__setattr__(self, "name", name)
            self._type, self._outputs, self._inputs = type_, outputs, inputs
            self._precision, self._precision_set, self._output_types = DataType.FLOAT, False, {}

        type = property(lambda s: s._type)
        num_outputs = property(lambda s: len(s._outputs))
        num_inputs = property(lambda s: len(s._inputs))
        precision_is_set = property(lambda s: s._precision_set)

        def get_output(self, i):
            return self._outputs[i]

        def get_input(self, i):
            return self._inputs[i]

        def __setattr__(self, name, value):
            if name == "precision":
                record(("ILayer.precision", self.name, value))
                object.__setattr__(self, "_precision", value)
                object.__setattr__(self, "_precision_set", True)
                return
            super().__setattr__(name, value)

        def __getattr__(self, name):
            if name == "precision":
                return self._precision
            raise AttributeError(f"'ILayer' object has no attribute '{name}'")

        def set_output_type(self, i, dtype):
            if not 0 <= i < len(self._outputs):
                raise IndexError(i)
            record(("ILayer.set_output_type", self.name, i, dtype))
            self._output_types[i] = dtype

        def get_output_type(self, i):
            return self._output_types.get(i, self._outputs[i].dtype)

        def reset_precision(self):
            self._precision_set = False

    class INetworkDefinition(_Strict):
        def __init__(self, flags):
            self._flags, self._layers, self._inputs, self._outputs = flags, [], [], []
            self._onnx, self._qdq = None, False

        num_layers = property(lambda s: len(s._layers))
        num_inputs = property(lambda s: len(s._inputs))
        num_outputs = property(lambda s: len(s._outputs))

        def get_layer(self, i):
            return self._layers[i]

        def get_input(self, i):
            return self._inputs[i]

        def get_output(self, i):
            return self._outputs[i]

    class ParserError:
        def __init__(self, desc):
            self._desc = desc

        def desc(self):
            return self._desc

        def __str__(self):
            return f"In node -1 (parseGraph): INVALID_NODE: {self._desc}"

    class OnnxParser(_Strict):
        def __init__(self, network, logger):
            self._network, self._errors = network, []

        num_errors = property(lambda s: len(s._errors))

        def get_error(self, i):
            return self._errors[i]

        def parse_from_file(self, path):
            record(("OnnxParser.parse_from_file", path))
            with open(path, "rb") as f:
                return self.parse(f.read())

        def parse(self, model_bytes, path=None):
            import onnx

            net = self._network
            if not v10 and not net._flags & (1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)):
                self._errors.append(ParserError("Network must have the Explicit Batch flag set"))
                return False
            try:
                model = onnx.load_from_string(bytes(model_bytes))
            except Exception as e:  # noqa: BLE001
                self._errors.append(ParserError(f"failed to parse ONNX model: {e}"))
                return False
            _fill_network(net, model)
            return True

    def _fill_network(net, model):
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model)
        vi = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.input) +
              list(inferred.graph.output)}

        def tensor(name):
            v = vi.get(name)
            elem = v.type.tensor_type.elem_type if v is not None else 1
            dims = tuple(d.dim_value if d.dim_value else -1 for d in v.type.tensor_type.shape.dim) if v else ()
            dtype = DataType.FLOAT if elem == 1 else (DataType.INT64 if v10 and elem == 7 else DataType.INT32)
            return ITensor(name, dims, dtype)

        inits = {t.name for t in model.graph.initializer}
        net._inputs = [tensor(i.name) for i in model.graph.input if i.name not in inits]
        net._outputs = [tensor(o.name) for o in model.graph.output]
        net._qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
        for node in model.graph.node:
            kind = OP_TO_LAYER.get(node.op_type, "IDENTITY" if node.op_type != "Cast" or not v10 else "CAST")
            net._layers.append(ILayer(node.name, getattr(trt.LayerType, kind), [tensor(o) for o in node.output],
                                      [tensor(i) for i in node.input if i]))
        net._onnx = model

    # ---- builder config, timing cache ------------------------------------------------------------------------
    class ITimingCache(_Strict):
        def __init__(self, data):
            self._entries = json.loads(bytes(data)[len(b"FAKETIMING"):]) if data else {"version": version, "n": 0}
            if self._entries.get("version") != version:
                raise RuntimeError("timing cache from another TensorRT version")

        def serialize(self):
            return b"FAKETIMING" + json.dumps(self._entries).encode()

    class IBuilderConfig(_Strict):
        _settable = ("int8_calibrator", "profiling_verbosity", "default_device_type", "DLA_core") + \
            (("progress_monitor",) if v10 else ("max_workspace_size",))

        def __init__(self):
            self._flags, self._pools, self._timing = set(), {}, None
            object.__setattr__(self, "int8_calibrator", None)
            object.__setattr__(self, "profiling_verbosity", trt.ProfilingVerbosity.LAYER_NAMES_ONLY)
            object.__setattr__(self, "default_device_type", trt.DeviceType.GPU)
            object.__setattr__(self, "DLA_core", -1)
            if v10:
                object.__setattr__(self, "progress_monitor", None)

        def __setattr__(self, name, value):
            if not name.startswith("_"):
                record((f"IBuilderConfig.{name}", value))
            super().__setattr__(name, value)

        def set_flag(self, flag):
            if not isinstance(flag, trt.BuilderFlag):
                raise TypeError(f"set_flag(): incompatible argument {flag!r}")
            record(("IBuilderConfig.set_flag", flag.name))
            self._flags.add(flag)

        def get_flag(self, flag):
            return flag in self._flags

        def clear_flag(self, flag):
            self._flags.discard(flag)

        def set_memory_pool_limit(self, pool, size):
            record(("IBuilderConfig.set_memory_pool_limit", pool.name, size))
            self._pools[pool] = size

        def get_memory_pool_limit(self, pool):
            return self._pools.get(pool, 0)

        def create_timing_cache(self, data):
            record(("IBuilderConfig.create_timing_cache", len(bytes(data))))
            return ITimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self._timing = cache
            return True

        def get_timing_cache(self):
            return self._timing

    # ---- builder ---------------------------------------------------------------------------------------------
    class Builder(_Strict):
        def __init__(self, logger):
            self._logger = logger

        num_DLA_cores = property(lambda s: trt.num_dla_cores)
        if not v10:
            platform_has_fast_fp16 = property(lambda s: True)
            platform_has_fast_int8 = property(lambda s: True)

            def build_engine(self, network, config):  # deprecated in 8.x, gone in 10
                raise AssertionError("the SDK must use build_serialized_network")

        def create_network(self, flags=0):
            record(("Builder.create_network", flags))
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def build_serialized_network(self, network, config):
            record(("Builder.build_serialized_network",))
            try:
                return _build(network, config)
            except _BuildError as e:
                self._logger.log(Logger.ERROR, str(e))
                record(("build_error", str(e)))
                return None

    class _BuildError(Exception):
        pass

    def _calibrate(net, config):
        calib = config.int8_calibrator
        if not isinstance(calib, IInt8Calibrator) or not getattr(calib, "_base_init", False):
            raise _BuildError("int8 calibrator must derive from IInt8Calibrator and call its __init__")
        algo = {trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2: "EntropyCalibration2",
                trt.CalibrationAlgoType.MINMAX_CALIBRATION: "MinMaxCalibration"}[calib.get_algorithm()]
        cache = calib.read_calibration_cache()
        record(("calibrator.read_calibration_cache", cache is not None))
        header = f"TRT-{version.replace('.', '')[:4]}-{algo}"
        if cache:
            if not bytes(cache).decode().startswith(header):
                raise _BuildError("calibration cache is for another TensorRT version or calibrator")
            return
        batch = calib.get_batch_size()
        inp = net.get_input(0)
        per_batch = batch * int(np.prod(inp.shape[1:])) * 4
        amax, n = 0.0, 0
        while True:
            ptrs = calib.get_batch([inp.name])
            record(("calibrator.get_batch", None if ptrs is None else len(ptrs)))
            if ptrs is None:
                break
            if len(ptrs) != 1 or not isinstance(ptrs[0], int):
                raise _BuildError(f"get_batch must return one device pointer per input, got {ptrs!r}")
            data = DEVICE.read(ptrs[0], per_batch).view(np.float32)
            amax, n = max(amax, float(np.abs(data).max())), n + 1
        if n == 0:
            raise _BuildError("Calibration failure occurred with no scaling factors detected")
        scale = struct.pack(">f", amax / 127.0).hex()
        calib.write_calibration_cache(f"{header}\n{inp.name}: {scale}\n".encode())

    def _choose(layer, allowed, constraints, qdq_convs):
        kind = layer.type.name
        if layer.precision_is_set and constraints:
            want = {DataType.FLOAT: "fp32", DataType.HALF: "fp16", DataType.INT8: "int8"}[layer.precision]
            if want in allowed:
                return want
            if constraints == "obey":
                raise _BuildError(f"layer {layer.name}: precision {want} requested but not enabled in the config")
        if layer.name in qdq_convs:
            return "int8"
        if "int8" in allowed and kind in INT8_TYPES and not qdq_convs:
            return "int8"
        return "fp16" if "fp16" in allowed else "fp32"

    def _build(net, config):
        if not net._layers:
            raise _BuildError("network has no layers (was the ONNX parsed?)")
        flags = config._flags
        allowed = {"fp32"} | ({"fp16"} if trt.BuilderFlag.FP16 in flags else set()) | \
            ({"int8"} if trt.BuilderFlag.INT8 in flags else set())
        if net._qdq and "int8" not in allowed:
            raise _BuildError("network has Q/DQ layers: the INT8 builder flag must be set")
        if "int8" in allowed and not net._qdq:
            if config.int8_calibrator is None:
                raise _BuildError("INT8 requested without calibrator and without dynamic ranges")
            _calibrate(net, config)
        if config.default_device_type == trt.DeviceType.DLA and not 0 <= config.DLA_core < trt.num_dla_cores:
            raise _BuildError(f"DLA core {config.DLA_core} does not exist")
        constraints = "obey" if trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS in flags else (
            "prefer" if trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS in flags else None)
        if not v10 and trt.BuilderFlag.STRICT_TYPES in flags:
            constraints = "obey"
        producers = {o: n for n in net._onnx.graph.node for o in n.output}
        qdq_convs = {n.name for n in net._onnx.graph.node if n.op_type == "Conv" and
                     producers.get(n.input[1]) is not None and producers[n.input[1]].op_type == "DequantizeLinear"}
        consumers = {}
        for n in net._onnx.graph.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        monitor = config.progress_monitor if v10 else None
        if monitor is not None:
            monitor.phase_start("Building engine", None, len(net._layers))
        engine_layers, fused, prev = [], set(), None
        by_name = {layer.name: layer for layer in net._layers}
        for step, layer in enumerate(net._layers):
            if monitor is not None and not monitor.step_complete("Building engine", step):
                raise _BuildError("build cancelled by the progress monitor")
            if layer.name in fused or layer.type.name in ("CONSTANT",):
                continue
            precision = _choose(layer, allowed, constraints, qdq_convs)
            if layer.get_output(0).dtype not in (DataType.FLOAT, DataType.HALF):
                precision = "int32"
            name = layer.name
            # fuse a convolution with the activation that alone consumes it, as TensorRT does
            users = consumers.get(layer.get_output(0).name, [])
            if layer.type.name == "CONVOLUTION" and len(users) == 1 and \
                    by_name[users[0].name].type.name == "ACTIVATION":
                fused.add(users[0].name)
                name = f"{layer.name} + {users[0].name}"
            fmt = FORMATS[precision]
            if prev is not None and prev != precision and precision != "int32":
                # TensorRT inserts a format conversion named after the layer it feeds
                engine_layers.append({"Name": f"Reformatting CopyNode for Input Tensor 0 to {name}",
                                      "LayerType": "Reformat",
                                      "Inputs": [{"Name": "r", "Format/Datatype": FORMATS[prev]}],
                                      "Outputs": [{"Name": "r2", "Format/Datatype": fmt}]})
            prev = precision if precision != "int32" else prev
            engine_layers.append({"Name": name, "LayerType": layer.type.name.capitalize(),
                                  "Inputs": [{"Name": t.name, "Format/Datatype": fmt} for t in layer._inputs[:1]],
                                  "Outputs": [{"Name": t.name, "Format/Datatype": fmt} for t in layer._outputs]})
        if monitor is not None:
            monitor.phase_finish("Building engine")
        if config._timing is not None:
            config._timing._entries["n"] += len(engine_layers)
        header = {"version": version, "layers": engine_layers,
                  "verbosity": config.profiling_verbosity.name,
                  "device": config.default_device_type.name, "flags": sorted(f.name for f in flags)}
        h = json.dumps(header).encode()
        return memoryview(MAGIC + struct.pack("<I", len(h)) + h + net._onnx.SerializeToString())

    # ---- runtime ---------------------------------------------------------------------------------------------
    class Runtime(_Strict):
        def __init__(self, logger):
            self._logger = logger

        def deserialize_cuda_engine(self, blob):
            blob = bytes(blob)
            if not blob.startswith(MAGIC):
                self._logger.log(Logger.ERROR, "invalid engine")
                return None
            (n,) = struct.unpack("<I", blob[len(MAGIC):len(MAGIC) + 4])
            header = json.loads(blob[len(MAGIC) + 4:len(MAGIC) + 4 + n])
            if header["version"] != version:
                self._logger.log(Logger.ERROR, "The engine plan file is not compatible with this version")
                return None
            return ICudaEngine(header, blob[len(MAGIC) + 4 + n:])

    class IEngineInspector(_Strict):
        def __init__(self, engine):
            self._engine = engine

        def get_engine_information(self, fmt):
            layers = self._engine._header["layers"]
            if self._engine._header["verbosity"] != "DETAILED":
                layers = [layer["Name"] for layer in layers]
            if fmt == trt.LayerInformationFormat.JSON:
                return json.dumps({"Layers": layers, "Bindings": [t[0] for t in self._engine._io]})
            return "\n".join(str(layer) for layer in layers)

    class ICudaEngine(_Strict):
        def __init__(self, header, onnx_bytes):
            import onnxruntime as ort

            self._header = header
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            self._session = ort.InferenceSession(onnx_bytes, sess_options=so, providers=["CPUExecutionProvider"])
            io = [(i.name, True, tuple(d if isinstance(d, int) else -1 for d in i.shape))
                  for i in self._session.get_inputs()]
            io += [(o.name, False, tuple(d if isinstance(d, int) else -1 for d in o.shape))
                   for o in self._session.get_outputs()]
            self._io = io

        def _find(self, name):
            for t in self._io:
                if t[0] == name:
                    return t
            raise KeyError(name)

        def create_execution_context(self):
            return IExecutionContext(self)

        def create_engine_inspector(self):
            return IEngineInspector(self)

        # named-tensor API: TensorRT 8.5+
        num_io_tensors = property(lambda s: len(s._io))

        def get_tensor_name(self, i):
            return self._io[i][0]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if self._find(name)[1] else trt.TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return self._find(name)[2]

        def get_tensor_dtype(self, name):
            self._find(name)
            return DataType.FLOAT

        if not v10:  # the binding API: gone in TensorRT 10
            num_bindings = property(lambda s: len(s._io))

            def get_binding_name(self, i):
                return self._io[i][0]

            def binding_is_input(self, i):
                return self._io[i][1]

            def get_binding_shape(self, i):
                return self._io[i][2]

            def get_binding_dtype(self, i):
                return DataType.FLOAT

    class IExecutionContext(_Strict):
        def __init__(self, engine):
            self._engine, self._addresses, self._shapes = engine, {}, {}

        def _run(self, addresses, stream):
            if int(stream) not in DEVICE.streams:
                raise RuntimeError(f"invalid CUDA stream {stream}")
            feed = {}
            for name, is_input, shape in self._engine._io:
                if name not in addresses:
                    return False
                if is_input:
                    shape = self._shapes.get(name, shape)
                    nbytes = int(np.prod(shape)) * 4
                    feed[name] = DEVICE.read(addresses[name], nbytes).view(np.float32).reshape(shape)
            outputs = self._engine._session.run(None, feed)
            for (name, _, _), value in zip([t for t in self._engine._io if not t[1]], outputs):
                DEVICE.write(addresses[name], np.ascontiguousarray(value, np.float32))
            return True

        def set_tensor_address(self, name, ptr):
            self._engine._find(name)
            record(("IExecutionContext.set_tensor_address", name))
            self._addresses[name] = int(ptr)
            return True

        def set_input_shape(self, name, shape):
            self._shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self._shapes.get(name, self._engine._find(name)[2])

        def execute_async_v3(self, stream_handle):
            record(("IExecutionContext.execute_async_v3",))
            return self._run(self._addresses, stream_handle)

        if not v10:
            def execute_async_v2(self, bindings, stream_handle):
                record(("IExecutionContext.execute_async_v2", len(bindings)))
                if len(bindings) != len(self._engine._io):
                    return False
                return self._run({t[0]: int(p) for t, p in zip(self._engine._io, bindings)}, stream_handle)

            def set_binding_shape(self, i, shape):
                self._shapes[self._engine._io[i][0]] = tuple(shape)
                return True

            def get_binding_shape(self, i):
                return self._shapes.get(self._engine._io[i][0], self._engine._io[i][2])

    trt.Builder, trt.Runtime, trt.OnnxParser = Builder, Runtime, OnnxParser
    trt.INetworkDefinition, trt.IBuilderConfig, trt.ILayer, trt.ITensor = (INetworkDefinition, IBuilderConfig,
                                                                         ILayer, ITensor)
    trt.ICudaEngine, trt.IExecutionContext, trt.IEngineInspector = ICudaEngine, IExecutionContext, IEngineInspector
    trt.ITimingCache = ITimingCache
    return trt

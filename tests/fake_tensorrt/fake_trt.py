"""A fake `tensorrt` module per version ("8.5" = JetPack 5.1, "8.6" = JetPack 6.0, "10.3" = JetPack 6.1/6.2), the
differences read from versions.py.

Each flavour has only the attributes the real version has for what the SDK touches (reading or setting any other
attribute raises AttributeError), records calls in `trt.CALLS` and log lines in `trt.LOG`, and behaves like
TensorRT where the SDK depends on it. Every such rule below carries a `# rule:` comment naming its source. The
"GPU" is tests/fake_tensorrt/device.py and an engine "executes" by running the embedded ONNX through onnxruntime
on the CPU in FP32, so outputs are real model outputs -- but nothing here is TensorRT: a fake proves calls, never
a result (no precision, speed or accuracy number comes from it).
"""
import enum
import json
import re
import struct
import types

import numpy as np

from .device import DEVICE
from .versions import VERSIONS

MAGIC = b"FAKETRT\0"
TIMING_MAGIC = b"FAKETIMING"
INT8_TYPES = {"CONVOLUTION", "POOLING", "ACTIVATION", "ELEMENTWISE", "CONCATENATION", "RESIZE", "SCALE"}
OP_TO_LAYER = {"Conv": "CONVOLUTION", "LeakyRelu": "ACTIVATION", "Relu": "ACTIVATION", "Sigmoid": "ACTIVATION",
               "MaxPool": "POOLING", "Add": "ELEMENTWISE", "Sub": "ELEMENTWISE", "Mul": "ELEMENTWISE",
               "Pow": "ELEMENTWISE", "Div": "ELEMENTWISE", "Concat": "CONCATENATION", "Resize": "RESIZE",
               "Reshape": "SHUFFLE", "Transpose": "SHUFFLE", "Unsqueeze": "SHUFFLE", "Slice": "SLICE",
               "Expand": "SLICE", "Constant": "CONSTANT", "QuantizeLinear": "QUANTIZE",
               "DequantizeLinear": "DEQUANTIZE", "Shape": "SHAPE", "Gather": "GATHER"}
# rule: plugins in the default registry (libnvinfer_plugin), found only after init_libnvinfer_plugins()
# (TensorRT Python API docs, tensorrt.init_libnvinfer_plugins; onnx-tensorrt imports unknown ops as plugins).
PLUGINS = {"EfficientNMS_TRT", "BatchedNMSDynamic_TRT", "BatchedNMS_TRT", "YoloLayer_TRT"}
FORMATS = {"fp32": "Row major linear FP32", "fp16": "Channel major FP16 format where channel % 8 == 0",
           "int8": "Channel major INT8 format where channel % 32 == 0", "int32": "Row major linear Int32"}
ONNX_FLOAT, ONNX_UINT8, ONNX_INT8, ONNX_INT32, ONNX_INT64 = 1, 2, 3, 6, 7


class _Strict:
    """Setting an attribute the real class does not have raises, as pybind11 objects do."""
    _settable = ()

    def __setattr__(self, name, value):
        if not name.startswith("_") and name not in self._settable:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        object.__setattr__(self, name, value)


def make_tensorrt(flavour="8.5"):
    V = VERSIONS[flavour]
    version = V.version
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.CALLS = []
    trt.LOG = []  # (severity name, message) of every logger call
    trt.CALIBRATION_READS = []  # {input: array} read from the calibrator's pointers, per batch (for tests)
    record = trt.CALLS.append
    trt.num_dla_cores = DEVICE.props["dla_cores"]
    plugins = {"initialized": False}

    class DataType(enum.IntEnum):
        FLOAT = 0
        HALF = 1
        INT8 = 2
        INT32 = 3
        BOOL = 4
        if V.int64:
            INT64 = 8
            BF16 = 7
    trt.DataType = DataType
    trt.float32, trt.float16, trt.int8, trt.int32, trt.bool = (DataType.FLOAT, DataType.HALF, DataType.INT8,
                                                             DataType.INT32, DataType.BOOL)
    if V.int64:
        trt.int64, trt.bfloat16 = DataType.INT64, DataType.BF16
    np_types = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
                DataType.INT32: np.int32, DataType.BOOL: np.bool_}
    if V.int64:
        np_types[DataType.INT64] = np.int64
    trt.nptype = lambda t: np_types[t]

    flags = ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
             "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
             "REJECT_EMPTY_ALGORITHMS"]
    flags += ["VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8", "BF16", "STRIP_PLAN"] if not V.strict_types \
        else ["STRICT_TYPES", "ENABLE_TACTIC_HEURISTIC"]
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1} if V.int64 else
        {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                         "DLA_GLOBAL_DRAM"] + (["TACTIC_DRAM"] if V.int64 else []))
    trt.ProfilingVerbosity = enum.IntEnum("ProfilingVerbosity", ["LAYER_NAMES_ONLY", "NONE", "DETAILED"])
    trt.LayerInformationFormat = enum.IntEnum("LayerInformationFormat", ["ONELINE", "JSON"])
    trt.DeviceType = enum.IntEnum("DeviceType", ["GPU", "DLA"])
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"])
    layer_types = set(OP_TO_LAYER.values()) | {"IDENTITY", "PLUGIN_V2"} | ({"CAST"} if V.cast_layer else set())
    trt.LayerType = enum.IntEnum("LayerType", sorted(layer_types))
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
            trt.LOG.append((["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"][severity], msg))
            if severity <= self.ERROR:
                self._errors.append(msg)
    trt.Logger = Logger

    def init_libnvinfer_plugins(logger, namespace):
        record(("init_libnvinfer_plugins", namespace))
        plugins["initialized"] = True
        return True
    trt.init_libnvinfer_plugins = init_libnvinfer_plugins

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

    if V.progress_monitor:
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
        is_network_input = property(lambda s: getattr(s, "_is_input", False))

    class ILayer(_Strict):
        _settable = ("name", "precision") + (("metadata",) if V.layer_metadata else ())

        def __init__(self, name, type_, outputs, inputs, node):
            object.__setattr__(self, "name", name)
            if V.layer_metadata:  # rule: onnx-tensorrt processMetadata: "[ONNX Layer: <node name>]"
                object.__setattr__(self, "metadata", f"[ONNX Layer: {name}]")
            self._type, self._outputs, self._inputs, self._node = type_, outputs, inputs, node
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
            self._onnx, self._qdq, self._plugins = None, False, []

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
        def __init__(self, desc, node=-1):
            self._desc, self._node = desc, node

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def __str__(self):
            return f"In node {self._node} (parseGraph): INVALID_NODE: {self._desc}"

    class OnnxParser(_Strict):
        def __init__(self, network, logger):
            self._network, self._errors, self._logger = network, [], logger

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
            # rule: the 8.x ONNX parser needs an explicit-batch network (onnx-tensorrt ModelImporter:
            # "Network must have the Explicit Batch flag set"); on 10 every network is explicit-batch.
            if V.strict_types and not net._flags & (1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)):
                self._errors.append(ParserError("Network must have the Explicit Batch flag set"))
                return False
            try:
                model = onnx.load_from_string(bytes(model_bytes))
            except Exception as e:  # noqa: BLE001
                self._errors.append(ParserError(f"failed to parse ONNX model: {e}"))
                return False
            for idx, node in enumerate(model.graph.node):
                error = _qdq_parse_error(model, node, self._logger) or _plugin_error(node)
                if error:
                    self._errors.append(ParserError(
                        f"In node {idx} with name: {node.name} and operator: {node.op_type}: {error}", idx))
                    return False
            _fill_network(net, model)
            return True

    def _plugin_error(node):
        # rule: onnx-tensorrt falls back to the plugin registry for unknown ops and fails with "Plugin not found,
        # are the plugin name, version, and namespace correct?" unless init_libnvinfer_plugins() registered it.
        if node.op_type in PLUGINS and not plugins["initialized"]:
            return "Assertion failed: creator && \"Plugin not found, are the plugin name, version, and namespace " \
                   "correct?\""
        return None

    constant_index = {}  # id(model) -> (model, {name: TensorProto}) of the model last looked into

    def _initializer(model, name):
        """The initializer (first) or Constant output called `name`, and its array; (None, None) if neither.
        One index per model: a scan per Q/DQ input made parsing a 700-node QDQ graph take seconds."""
        from onnx import TensorProto, helper, numpy_helper

        hit = constant_index.get(id(model))
        if hit is None or hit[0] is not model:
            index = {t.name: t for t in model.graph.initializer}
            for n in model.graph.node:
                if n.op_type == "Constant":
                    index.setdefault(n.output[0], n)
            constant_index.clear()
            hit = constant_index[id(model)] = (model, index)
        t = hit[1].get(name)
        if t is None:
            return None, None
        if not isinstance(t, TensorProto):  # a Constant node: its value attribute
            t = helper.get_attribute_value(t.attribute[0])
        return t, numpy_helper.to_array(t)

    def _qdq_parse_error(model, node, logger):
        """onnx-tensorrt QuantDequantLinearHelper (onnxOpImporters.cpp) as it treats Q/DQ nodes."""
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            return None
        scale_t, scale = _initializer(model, node.input[1])
        # rule: 8.x needs the scale as a build-time constant ("The scale tensor is required to be an
        # initializer"; onnx-tensorrt 8.5/8.6 QuantDequantLinearHelper).
        if scale is None:
            return "Assertion failed: inputs.at(1).is_weights(): The scale tensor is required to be an initializer."
        if node.op_type == "DequantizeLinear":
            t, arr = _initializer(model, node.input[0])
            elem = t.data_type if t is not None else _elem_type(model, node.input[0])
            # rule: DequantizeLinear takes 8-bit (10.x also 4-bit/FP8) input only: an INT32 bias DQ is refused
            # ("input has type Int32 but must have type ... Int8", nodeBase.cpp checkType via addDequantize).
            if elem is not None and elem not in (ONNX_INT8, ONNX_UINT8):
                kind = {ONNX_INT32: "Int32", ONNX_FLOAT: "Float", ONNX_INT64: "Int64"}.get(elem, str(elem))
                return f"{node.name}: input has type {kind} but must have type Int8"
        if len(node.input) > 2 and node.input[2]:
            zp_t, zp = _initializer(model, node.input[2])
            if zp_t is not None and zp_t.data_type == ONNX_UINT8:
                # rule: UINT8 Q/DQ is DLA-only. 8.x rejects it; 10.x warns and treats the zero point as INT8
                # (onnx-tensorrt QuantDequantLinearHelper), after which a non-zero value still fails below.
                if not V.uint8_zero_point_warns:
                    return "Assertion failed: TensorRT only supports INT8 quantization, got a UINT8 zero point"
                logger.log(Logger.WARNING, "TensorRT supports QuantizeLinear/DequantizeLinear with UINT8 zero_point "
                                           "only on DLA. Defaulting to INT8 instead.")
            # rule: symmetric quantization only: "Assertion failed: shiftIsAllZeros(zeroPoint): Non-zero zero
            # point is not supported." (onnx-tensorrt QuantDequantLinearHelper)
            if zp is not None and np.any(zp != 0):
                return "Assertion failed: shiftIsAllZeros(zeroPoint): Non-zero zero point is not supported."
        if scale.size != 1:
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            dims = _dims(model, node.input[0])
            # rule: "The number of scales is not equal to the number of output channels"
            # (onnx-tensorrt QuantDequantLinearHelper, per-axis scales must match dim[axis])
            if dims is not None and (axis >= len(dims) or dims[axis] != scale.size):
                return (f"Assertion failed: K == scaleSize: The number of scales is not equal to the number of "
                        f"output channels. Number of output channels = {dims[axis] if axis < len(dims) else '?'}, "
                        f"number of scales = {scale.size}.")
        return None

    def _elem_type(model, name):
        for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
            if v.name == name:
                return v.type.tensor_type.elem_type
        return None

    def _dims(model, name):
        t, arr = _initializer(model, name)
        if arr is not None:
            return list(arr.shape)
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model)
        for v in list(inferred.graph.value_info) + list(inferred.graph.input):
            if v.name == name:
                return [d.dim_value or -1 for d in v.type.tensor_type.shape.dim]
        return None

    def _fill_network(net, model):
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model)
        vi = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.input) +
              list(inferred.graph.output)}

        def tensor(name):
            v = vi.get(name)
            elem = v.type.tensor_type.elem_type if v is not None else ONNX_FLOAT
            dims = tuple(d.dim_value if d.dim_value else -1 for d in v.type.tensor_type.shape.dim) if v else ()
            if elem == ONNX_FLOAT:
                dtype = DataType.FLOAT
            elif elem in (ONNX_INT8, ONNX_UINT8):
                dtype = DataType.INT8
            else:  # rule: INT64 exists from 10.0; 8.x's parser casts INT64 to INT32 (onnx-tensorrt 8.x)
                dtype = DataType.INT64 if V.int64 and elem == ONNX_INT64 else DataType.INT32
            return ITensor(name, dims, dtype)

        inits = {t.name for t in model.graph.initializer}
        net._inputs = [tensor(i.name) for i in model.graph.input if i.name not in inits]
        for t in net._inputs:
            object.__setattr__(t, "_is_input", True)
        net._outputs = [tensor(o.name) for o in model.graph.output]
        net._qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
        for node in model.graph.node:
            if node.op_type in PLUGINS:
                kind = "PLUGIN_V2"
                net._plugins.append(node.op_type)
            elif node.op_type == "Cast":
                kind = "CAST" if V.cast_layer else "IDENTITY"  # rule: ICastLayer from 8.6 (versions.py)
            else:
                kind = OP_TO_LAYER.get(node.op_type, "IDENTITY")
            net._layers.append(ILayer(node.name, getattr(trt.LayerType, kind), [tensor(o) for o in node.output],
                                      [tensor(i) for i in node.input if i], node))
        net._onnx = model

    # ---- optimization profiles -------------------------------------------------------------------------------
    class IOptimizationProfile(_Strict):
        def __init__(self):
            self._shapes, self._valid = {}, True

        def set_shape(self, input, min, opt, max):  # noqa: A002 - the real keyword names
            record(("IOptimizationProfile.set_shape", input, tuple(min), tuple(opt), tuple(max)))
            lo, mid, hi = tuple(min), tuple(opt), tuple(max)
            # rule: min <= opt <= max per dimension, else the profile is invalid (NvInfer.h
            # IOptimizationProfile::setDimensions returns false; isValid() then fails)
            if not (len(lo) == len(mid) == len(hi)) or any(not a <= b <= c for a, b, c in zip(lo, mid, hi)):
                self._valid = False
            self._shapes[input] = (lo, mid, hi)

        def get_shape(self, input):  # noqa: A002
            return [list(s) for s in self._shapes[input]]

    # ---- builder config, timing cache ------------------------------------------------------------------------
    class ITimingCache(_Strict):
        def __init__(self, data):
            data = bytes(data)
            self._entries = {"version": version, "device": DEVICE.props["name"], "n": 0}
            if data.startswith(TIMING_MAGIC):
                self._entries = json.loads(data[len(TIMING_MAGIC):])

        def serialize(self):
            return TIMING_MAGIC + json.dumps(self._entries).encode()

    class IBuilderConfig(_Strict):
        _settable = ("int8_calibrator", "profiling_verbosity", "default_device_type", "DLA_core") + \
            (("progress_monitor",) if V.progress_monitor else ("max_workspace_size",))

        def __init__(self):
            # rule: TF32 is enabled by default (NvInfer.h BuilderFlag::kTF32 "enabled by default"), so an "fp32"
            # build runs FP32 convolutions as TF32 on Ampere/Orin unless the flag is cleared.
            self._flags, self._pools, self._timing = {trt.BuilderFlag.TF32}, {}, None
            self._profiles, self._calibration_profile = [], None
            object.__setattr__(self, "int8_calibrator", None)
            object.__setattr__(self, "profiling_verbosity", trt.ProfilingVerbosity.LAYER_NAMES_ONLY)
            object.__setattr__(self, "default_device_type", trt.DeviceType.GPU)
            object.__setattr__(self, "DLA_core", -1)
            if V.progress_monitor:
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
            record(("IBuilderConfig.clear_flag", flag.name))
            self._flags.discard(flag)

        def set_memory_pool_limit(self, pool, size):
            record(("IBuilderConfig.set_memory_pool_limit", pool.name, size))
            self._pools[pool] = size

        def get_memory_pool_limit(self, pool):
            return self._pools.get(pool, 0)

        def add_optimization_profile(self, profile):
            record(("IBuilderConfig.add_optimization_profile", dict(profile._shapes)))
            if not profile._valid:  # rule: addOptimizationProfile returns -1 for an invalid profile (NvInfer.h)
                return -1
            self._profiles.append(profile)
            return len(self._profiles) - 1

        num_optimization_profiles = property(lambda s: len(s._profiles))

        def set_calibration_profile(self, profile):
            record(("IBuilderConfig.set_calibration_profile", dict(profile._shapes)))
            self._calibration_profile = profile
            return profile._valid

        def get_calibration_profile(self):
            return self._calibration_profile

        def create_timing_cache(self, data):
            record(("IBuilderConfig.create_timing_cache", len(bytes(data))))
            return ITimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            # rule: setTimingCache returns false for a cache from another device or TensorRT version unless
            # ignore_mismatch (NvInfer.h IBuilderConfig::setTimingCache; Python returns the bool)
            own = cache._entries.get("version") == version and cache._entries.get("device") == DEVICE.props["name"]
            record(("IBuilderConfig.set_timing_cache", own or bool(ignore_mismatch)))
            if not own and not ignore_mismatch:
                return False
            self._timing = cache
            return True

        def get_timing_cache(self):
            return self._timing

    # ---- builder ---------------------------------------------------------------------------------------------
    class Builder(_Strict):
        def __init__(self, logger):
            self._logger = logger

        num_DLA_cores = property(lambda s: trt.num_dla_cores)
        if V.binding_api:
            platform_has_fast_fp16 = property(lambda s: True)
            platform_has_fast_int8 = property(lambda s: True)

            def build_engine(self, network, config):  # deprecated in 8.x, gone in 10
                raise AssertionError("the SDK must use build_serialized_network")

        def create_network(self, flags=0):
            record(("Builder.create_network", flags))
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            record(("Builder.build_serialized_network",))
            try:
                return _build(network, config, self._logger)
            except _BuildError as e:
                self._logger.log(Logger.ERROR, str(e))
                record(("build_error", str(e)))
                return None

    class _BuildError(Exception):
        pass

    def _volume(shape):
        return int(np.prod(shape)) if len(shape) else 1

    def _calibration_shapes(net, config):
        """{input: shape TensorRT reads per get_batch}."""
        shapes = {}
        for inp in net._inputs:
            if all(d >= 0 for d in inp.shape):
                # rule: with an explicit-batch network TensorRT reads one volume of the input's own shape per
                # get_batch; get_batch_size() is ignored (NvInfer.h IInt8Calibrator::getBatchSize: "only used for
                # implicit batch"; deprecated in 10.0)
                shapes[inp.name] = inp.shape
            else:
                # rule: dynamic inputs calibrate with the calibration profile's kOPT dims, and that profile must
                # be set (NvInfer.h IBuilderConfig::setCalibrationProfile; Developer Guide "INT8 Calibration
                # with Dynamic Shapes": "Calibration input data size must match this profile")
                profile = config._calibration_profile
                if profile is None or inp.name not in profile._shapes:
                    raise _BuildError("Calibration profile must be set to calibrate a network with dynamic input "
                                      f"'{inp.name}' {inp.shape}")
                shapes[inp.name] = profile._shapes[inp.name][1]
        return shapes

    def _calibrate(net, config, logger):
        """Scales for the network's tensors: {tensor name} that got one (all of them when calibrated)."""
        calib = config.int8_calibrator
        if not isinstance(calib, IInt8Calibrator) or not getattr(calib, "_base_init", False):
            raise _BuildError("int8 calibrator must derive from IInt8Calibrator and call its __init__")
        algo = {trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2: "EntropyCalibration2",
                trt.CalibrationAlgoType.MINMAX_CALIBRATION: "MinMaxCalibration"}[calib.get_algorithm()]
        header = f"TRT-{V.nv_version}-{algo}"
        cache = calib.read_calibration_cache()
        record(("calibrator.read_calibration_cache", cache is not None))
        if cache:
            lines = bytes(cache).decode(errors="replace").splitlines()
            if lines and lines[0] == header:
                return {line.split(": ")[0] for line in lines[1:] if ": " in line}
            # rule: a cache whose header names another TensorRT version or algorithm is not used; TensorRT
            # calibrates again (Developer Guide, "INT8 calibration cache is not portable across versions")
            logger.log(Logger.WARNING, f"calibration cache header '{lines[0] if lines else ''}' does not match "
                                       f"'{header}': the cache is ignored and calibration runs")
        calib.get_batch_size()  # called, and ignored for explicit batch (see _calibration_shapes)
        shapes = _calibration_shapes(net, config)
        names = [inp.name for inp in net._inputs]
        amax, n = 0.0, 0
        while True:
            ptrs = calib.get_batch(names)
            record(("calibrator.get_batch", None if ptrs is None else len(ptrs)))
            if ptrs is None:
                break
            # rule: one device pointer per network input, each to that input's data (NvInfer.h
            # IInt8Calibrator::getBatch "bindings: an array of pointers to device memory ... for each input")
            if len(ptrs) != len(names) or not all(isinstance(p, int) for p in ptrs):
                raise _BuildError(f"get_batch must return one device pointer per input {names}, got {ptrs!r}")
            if len(set(ptrs)) != len(ptrs):
                raise _BuildError(f"get_batch returned the same device pointer for inputs {names}")
            read = {}
            for name, ptr in zip(names, ptrs):
                shape = shapes[name]
                try:
                    read[name] = DEVICE.read(ptr, _volume(shape) * 4).view(np.float32).reshape(shape)
                except ValueError as e:
                    raise _BuildError(f"calibration read of '{name}' {shape}: illegal memory access ({e})")
            trt.CALIBRATION_READS.append(read)
            amax, n = max(amax, float(max(np.abs(a).max() for a in read.values()))), n + 1
        if n == 0:
            # rule: "Calibration failure occurred with no scaling factors detected" (TensorRT build log)
            raise _BuildError("Calibration failure occurred with no scaling factors detected")
        tensors = [t.name for t in net._inputs] + [o.name for layer in net._layers for o in layer._outputs]
        scale = struct.pack(">f", amax / 127.0).hex()
        calib.write_calibration_cache(("\n".join([header] + [f"{t}: {scale}" for t in tensors]) + "\n").encode())
        return set(tensors)

    def _choose(layer, allowed, constraints, qdq_convs, scaled):
        kind = layer.type.name
        if layer.precision_is_set and constraints:
            want = {DataType.FLOAT: "fp32", DataType.HALF: "fp16", DataType.INT8: "int8"}[layer.precision]
            if want in allowed:
                if want != "int8" or layer.name in qdq_convs or _has_scale(layer, scaled):
                    return want
            elif constraints == "obey":
                raise _BuildError(f"layer {layer.name}: precision {want} requested but not enabled in the config")
        if layer.name in qdq_convs:
            return "int8"
        if "int8" in allowed and kind in INT8_TYPES and not qdq_convs and _has_scale(layer, scaled):
            return "int8"
        return "fp16" if "fp16" in allowed else "fp32"

    def _has_scale(layer, scaled):
        return bool(layer._inputs) and layer._inputs[0].name in scaled

    def _check_qdq_build(net):
        # rule: activations quantize per tensor; per-channel Q/DQ only on constant weights along K (axis 0)
        # (TensorRT Developer Guide, "Explicit Quantization": "per-channel quantization ... weights only").
        inits = {t.name for t in net._onnx.graph.initializer}
        # Weights that are quantized in the graph (constant -> Q -> DQ, the pytorch-quantization / QAT export form)
        # are still weights: TensorRT constant-folds the Q (Developer Guide, "Explicit Quantization": Q/DQ on
        # weights may be left unfolded in the ONNX; onnx-tensorrt QuantizeLinear on a constant input).
        consts = inits | {o for n in net._onnx.graph.node if n.op_type == "Constant" for o in n.output}
        inits = consts | {n.output[0] for n in net._onnx.graph.node
                          if n.op_type == "QuantizeLinear" and n.input[0] in consts}
        for n in net._onnx.graph.node:
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
                continue
            _, scale = _initializer(net._onnx, n.input[1])
            if scale is not None and scale.size > 1 and n.input[0] not in inits:
                raise _BuildError(f"{n.name}: per-channel quantization of activation {n.input[0]} is not supported")

    def _build(net, config, logger):
        if not net._layers:
            raise _BuildError("network has no layers (was the ONNX parsed?)")
        dynamic = [t for t in net._inputs if any(d < 0 for d in t.shape)]
        # rule: "Network has dynamic or shape inputs, but no optimization profile has been defined."
        # (TensorRT network validation; NvInfer.h IOptimizationProfile: dynamic inputs need at least one profile)
        if dynamic and not config._profiles:
            raise _BuildError("Network has dynamic or shape inputs, but no optimization profile has been defined.")
        for i, profile in enumerate(config._profiles):
            for t in dynamic:
                if t.name not in profile._shapes:
                    raise _BuildError(f"optimization profile {i} has no dimensions for dynamic input {t.name}")
        flags = config._flags
        allowed = {"fp32"} | ({"fp16"} if trt.BuilderFlag.FP16 in flags else set()) | \
            ({"int8"} if trt.BuilderFlag.INT8 in flags else set())
        if net._qdq and "int8" not in allowed:
            raise _BuildError("network has Q/DQ layers: the INT8 builder flag must be set")
        if net._qdq:
            _check_qdq_build(net)
        scaled = set()
        if "int8" in allowed and not net._qdq:
            if config.int8_calibrator is None:
                # rule: INT8 without calibrator or dynamic ranges is not an error: TensorRT warns "Missing scale
                # and zero-point for tensor ..., expect fall back to non-int8 implementation" and builds those
                # layers in a float precision (TensorRT build log)
                logger.log(Logger.WARNING, "Missing scale and zero-point for tensor "
                                           f"{net._inputs[0].name if net._inputs else '?'}, expect fall back to "
                                           "non-int8 implementation for any layer consuming or producing given "
                                           "tensor")
            else:
                scaled = _calibrate(net, config, logger)
                missing = [layer._inputs[0].name for layer in net._layers
                           if layer.type.name in INT8_TYPES and layer._inputs and layer._inputs[0].name not in scaled]
                if missing:
                    logger.log(Logger.WARNING, f"Missing scale and zero-point for tensor {missing[0]} (and "
                                               f"{len(missing) - 1} more), expect fall back to non-int8 "
                                               f"implementation for any layer consuming or producing given tensor")
        if config.default_device_type == trt.DeviceType.DLA and not 0 <= config.DLA_core < trt.num_dla_cores:
            raise _BuildError(f"DLA core {config.DLA_core} does not exist")
        constraints = "obey" if trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS in flags else (
            "prefer" if trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS in flags else None)
        if V.strict_types and trt.BuilderFlag.STRICT_TYPES in flags:
            constraints = "obey"
        producers = {o: n for n in net._onnx.graph.node for o in n.output}
        qdq_convs = {n.name for n in net._onnx.graph.node if n.op_type == "Conv" and
                     producers.get(n.input[1]) is not None and producers[n.input[1]].op_type == "DequantizeLinear"}
        monitor = config.progress_monitor if V.progress_monitor else None
        if monitor is not None:
            monitor.phase_start("Building engine", None, len(net._layers))
        for step in range(len(net._layers)):
            if monitor is not None and not monitor.step_complete("Building engine", step):
                raise _BuildError("build cancelled by the progress monitor")
        if monitor is not None:
            monitor.phase_finish("Building engine")
        engine_layers = _engine_layers(net, [_choose(layer, allowed, constraints, qdq_convs, scaled)
                                             for layer in net._layers])
        if config._timing is not None:
            config._timing._entries["n"] += len(engine_layers)
        header = {"version": version, "layers": engine_layers, "plugins": sorted(set(net._plugins)),
                  "verbosity": config.profiling_verbosity.name, "dla_core": config.DLA_core,
                  "device": config.default_device_type.name, "flags": sorted(f.name for f in flags),
                  "profiles": [{k: [list(s) for s in v] for k, v in p._shapes.items()} for p in config._profiles]}
        h = json.dumps(header).encode()
        return memoryview(MAGIC + struct.pack("<I", len(h)) + h + net._onnx.SerializeToString())

    def _engine_layers(net, precisions):
        """The inspector's layer list: conv+activation fusions, reformat layers where the precision changes,
        Q/DQ folded into their consumers, and the trailing run of non-convolution layers (YOLO's box decode)
        as a Myelin region, named as each version names it (versions.py myelin_style)."""
        consumers = {}
        for layer in net._layers:
            for t in layer._inputs:
                consumers.setdefault(t.name, []).append(layer)
        items = []  # (member layers, precision)
        fused = set()
        for layer, precision in zip(net._layers, precisions):
            kind = layer.type.name
            if layer.name in fused or kind in ("CONSTANT", "QUANTIZE", "DEQUANTIZE"):
                continue
            if layer.get_output(0).dtype not in (DataType.FLOAT, DataType.HALF):
                precision = "int32"
            members = [layer]
            users = consumers.get(layer.get_output(0).name, [])
            # rule: a convolution fuses with the activation that alone consumes it ("conv + act" engine layer)
            if kind == "CONVOLUTION" and len(users) == 1 and users[0].type.name == "ACTIVATION":
                fused.add(users[0].name)
                members.append(users[0])
            items.append((members, precision))
        last_conv = max((i for i, (m, _) in enumerate(items) if m[0].type.name == "CONVOLUTION"), default=-1)
        out, prev = [], None
        i = 0
        while i < len(items):
            members, precision = items[i]
            if i > last_conv >= 0 and precision != "int32":
                # a Myelin region: the consecutive decode layers of one precision
                j = i
                region = []
                while j < len(items) and items[j][1] == precision:
                    region += items[j][0]
                    j += 1
                if prev is not None and prev != precision:  # the region reads its own format, as other layers
                    out.append({"Name": f"Reformatting CopyNode for Input Tensor 0 to {region[0].name}",
                                "LayerType": "Reformat", "Inputs": [{"Name": "r", "Format/Datatype": FORMATS[prev]}],
                                "Outputs": [{"Name": "r2", "Format/Datatype": FORMATS[precision]}]})
                out += _myelin(region, precision)
                prev = precision
                i = j
                continue
            name = " + ".join(m.name for m in members)
            fmt = FORMATS[precision]
            if prev is not None and prev != precision and precision != "int32":
                # rule: a format conversion named after the layer it feeds (engine inspector JSON)
                out.append({"Name": f"Reformatting CopyNode for Input Tensor 0 to {name}", "LayerType": "Reformat",
                            "Inputs": [{"Name": "r", "Format/Datatype": FORMATS[prev]}],
                            "Outputs": [{"Name": "r2", "Format/Datatype": fmt}]})
            prev = precision if precision != "int32" else prev
            entry = {"Name": name, "LayerType": members[0].type.name.capitalize(),
                     "Inputs": [{"Name": t.name, "Format/Datatype": fmt} for t in members[0]._inputs[:1]],
                     "Outputs": [{"Name": t.name, "Format/Datatype": fmt} for t in members[-1]._outputs]}
            if V.layer_metadata:
                entry["Metadata"] = "\x1f".join(m.metadata for m in members)
            out.append(entry)
            i += 1
        return out

    def _myelin(region, precision):
        fmt = FORMATS[precision]
        io = {"Inputs": [{"Name": region[0]._inputs[0].name if region[0]._inputs else "x",
                          "Format/Datatype": fmt}],
              "Outputs": [{"Name": region[-1]._outputs[0].name, "Format/Datatype": fmt}]}
        if V.myelin_style == "foreign":
            # rule: 8.x lists a Myelin region as one layer "{ForeignNode[<first layer>...<last layer>]}"
            # (TensorRT build logs and inspector output, e.g. NVIDIA/TensorRT issue #2576)
            return [{"Name": f"{{ForeignNode[{region[0].name}...{region[-1].name}]}}", "LayerType": "Myelin", **io}]
        # rule: TensorRT 10 lists Myelin's kernels as "__myl_<ops>_..." layers whose Metadata names the ONNX
        # layers inside, "[ONNX Layer: a]\x1f[ONNX Layer: b]" (onnx-tensorrt processMetadata + inspector)
        out = []
        for k in range(0, len(region), 4):
            chunk = region[k:k + 4]
            ops = "".join(re.sub(r"[^A-Za-z]", "", m.type.name.capitalize())[:4] for m in chunk)
            out.append({"Name": f"__myl_{ops}_myl0_{k // 4}", "LayerType": "kgen",
                        "Inputs": [{"Name": "m_in", "Format/Datatype": fmt}],
                        "Outputs": [{"Name": "m_out", "Format/Datatype": fmt}],
                        "Metadata": "\x1f".join(m.metadata for m in chunk)})
        out[0]["Inputs"] = io["Inputs"]
        return out

    # ---- runtime ---------------------------------------------------------------------------------------------
    class Runtime(_Strict):
        _settable = ("DLA_core",)

        def __init__(self, logger):
            self._logger = logger
            object.__setattr__(self, "DLA_core", -1)

        def __setattr__(self, name, value):
            if not name.startswith("_"):
                record((f"Runtime.{name}", value))
            super().__setattr__(name, value)

        num_DLA_cores = property(lambda s: trt.num_dla_cores)

        def deserialize_cuda_engine(self, blob):
            blob = bytes(blob)
            if not blob.startswith(MAGIC):
                self._logger.log(Logger.ERROR, "invalid engine")
                return None
            (n,) = struct.unpack("<I", blob[len(MAGIC):len(MAGIC) + 4])
            header = json.loads(blob[len(MAGIC) + 4:len(MAGIC) + 4 + n])
            # rule: an engine from another TensorRT version does not deserialize ("The engine plan file is not
            # compatible with this version of TensorRT")
            if header["version"] != version:
                self._logger.log(Logger.ERROR, "The engine plan file is not compatible with this version")
                return None
            # rule: plugin layers need their creators registered in this process before deserializing
            # ("getPluginCreator could not find plugin"; TensorRT Python docs, init_libnvinfer_plugins)
            if header["plugins"] and not plugins["initialized"]:
                self._logger.log(Logger.ERROR, f"getPluginCreator could not find plugin: {header['plugins'][0]} "
                                               f"version: 1")
                return None
            return ICudaEngine(header, blob[len(MAGIC) + 4 + n:], self.DLA_core)

    class IEngineInspector(_Strict):
        def __init__(self, engine):
            self._engine = engine

        def get_engine_information(self, fmt):
            layers = self._engine._header["layers"]
            # rule: only ProfilingVerbosity.DETAILED gives per-layer formats; otherwise names only
            # (TensorRT Python docs, IEngineInspector)
            if self._engine._header["verbosity"] != "DETAILED":
                layers = [layer["Name"] for layer in layers]
            if fmt == trt.LayerInformationFormat.JSON:
                return json.dumps({"Layers": layers, "Bindings": [t[0] for t in self._engine._io]})
            return "\n".join(str(layer) for layer in layers)

    def _engine_io(model):
        elem = {ONNX_FLOAT: DataType.FLOAT, ONNX_INT32: DataType.INT32,
                ONNX_INT64: DataType.INT64 if V.int64 else DataType.INT32}
        inits = {t.name for t in model.graph.initializer}

        def dims(v):
            return tuple(d.dim_value if d.dim_value else -1 for d in v.type.tensor_type.shape.dim)
        io = [(i.name, True, dims(i), elem.get(i.type.tensor_type.elem_type, DataType.FLOAT))
              for i in model.graph.input if i.name not in inits]
        io += [(o.name, False, dims(o), elem.get(o.type.tensor_type.elem_type, DataType.FLOAT))
               for o in model.graph.output]
        return io

    class ICudaEngine(_Strict):
        def __init__(self, header, onnx_bytes, dla_core):
            import onnx

            self._header, self._onnx_bytes, self._session = header, onnx_bytes, None
            self._dla_core = dla_core  # the DLA core it runs on: IRuntime::setDLACore before deserializing
            self._io = [t[:3] for t in _engine_io(onnx.load_from_string(onnx_bytes))]
            self._dtypes = {t[0]: t[3] for t in _engine_io(onnx.load_from_string(onnx_bytes))}
            self._profiles = header["profiles"]

        def _run(self, feed):
            if self._session is None:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads = 1
                self._session = ort.InferenceSession(self._onnx_bytes, sess_options=so,
                                                     providers=["CPUExecutionProvider"])
            return self._session.run(None, feed)

        def _find(self, name):
            for t in self._io:
                if t[0] == name:
                    return t
            raise KeyError(name)

        def create_execution_context(self):
            return IExecutionContext(self)

        def create_engine_inspector(self):
            return IEngineInspector(self)

        num_optimization_profiles = property(lambda s: max(1, len(s._profiles)))

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
            return self._dtypes[name]

        def get_tensor_profile_shape(self, name, profile_index):
            return self._profile_shape(name, profile_index)

        def _profile_shape(self, name, profile_index):
            shape = self._find(name)[2]
            if not self._profiles:
                return [shape, shape, shape]
            return [tuple(s) for s in self._profiles[profile_index].get(name, [shape] * 3)]

        if V.binding_api:  # the binding API: gone in TensorRT 10
            num_bindings = property(lambda s: len(s._io))

            def get_binding_name(self, i):
                return self._io[i][0]

            def binding_is_input(self, i):
                return self._io[i][1]

            def get_binding_shape(self, i):
                return self._io[i][2]

            def get_binding_dtype(self, i):
                return self._dtypes[self._io[i][0]]

            def get_profile_shape(self, profile_index, binding):
                name = binding if isinstance(binding, str) else self._io[binding][0]
                return self._profile_shape(name, profile_index)

    class IExecutionContext(_Strict):
        def __init__(self, engine):
            self._engine, self._addresses, self._shapes = engine, {}, {}

        def _input_shape(self, name, shape):
            if all(d >= 0 for d in shape):
                return shape
            return self._shapes.get(name)

        def _current_output_shape(self, shape):
            batch = next((s[0] for s in self._shapes.values()), None)
            if batch is None:
                return shape
            return tuple(batch if d < 0 else d for d in shape)

        def _run(self, addresses, stream):
            if int(stream) not in DEVICE.streams:
                raise RuntimeError(f"invalid CUDA stream {stream}")
            feed = {}
            for name, is_input, shape in self._engine._io:
                if name not in addresses:
                    return False
                if is_input:
                    shape = self._input_shape(name, shape)
                    # rule: every dynamic input's shape must be set before enqueue (IExecutionContext::
                    # allInputDimensionsSpecified; enqueueV3 fails otherwise)
                    if shape is None:
                        return False
                    nbytes = _volume(shape) * 4
                    feed[name] = DEVICE.read(addresses[name], nbytes).view(np.float32).reshape(shape)
            outputs = self._engine._run(feed)
            for (name, _, _), value in zip([t for t in self._engine._io if not t[1]], outputs):
                DEVICE.write(addresses[name], np.ascontiguousarray(value))
            return True

        def set_tensor_address(self, name, ptr):
            self._engine._find(name)
            record(("IExecutionContext.set_tensor_address", name))
            self._addresses[name] = int(ptr)
            return True

        def _set_shape(self, name, shape):
            lo, _, hi = self._engine._profile_shape(name, 0)
            shape = tuple(int(d) for d in shape)
            # rule: an input shape outside the active optimization profile is refused: setInputShape returns
            # false (NvInferRuntime.h IExecutionContext::setInputShape)
            if len(shape) != len(lo) or any(not a <= d <= b for a, d, b in zip(lo, shape, hi)):
                record(("IExecutionContext.set_input_shape_refused", name, shape))
                return False
            record(("IExecutionContext.set_input_shape", name, shape))
            self._shapes[name] = shape
            return True

        def set_input_shape(self, name, shape):
            return self._set_shape(name, shape)

        def get_tensor_shape(self, name):
            t = self._engine._find(name)
            return self._shapes.get(name, t[2]) if t[1] else self._current_output_shape(t[2])

        def execute_async_v3(self, stream_handle):
            record(("IExecutionContext.execute_async_v3",))
            return self._run(self._addresses, stream_handle)

        if V.binding_api:
            def execute_async_v2(self, bindings, stream_handle):
                record(("IExecutionContext.execute_async_v2", len(bindings)))
                if len(bindings) != len(self._engine._io):
                    return False
                return self._run({t[0]: int(p) for t, p in zip(self._engine._io, bindings)}, stream_handle)

            def set_binding_shape(self, i, shape):
                return self._set_shape(self._engine._io[i][0], shape)

            def get_binding_shape(self, i):
                return self.get_tensor_shape(self._engine._io[i][0])

    trt.Builder, trt.Runtime, trt.OnnxParser = Builder, Runtime, OnnxParser
    trt.INetworkDefinition, trt.IBuilderConfig, trt.ILayer, trt.ITensor = (INetworkDefinition, IBuilderConfig,
                                                                         ILayer, ITensor)
    trt.ICudaEngine, trt.IExecutionContext, trt.IEngineInspector = ICudaEngine, IExecutionContext, IEngineInspector
    trt.ITimingCache, trt.IOptimizationProfile = ITimingCache, IOptimizationProfile
    return trt

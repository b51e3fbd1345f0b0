"""Version shims over the TensorRT Python API, so the builder and runner read the same on TRT 8.5, 8.6 and 10.x.

What differs between the versions we support (JetPack 5.1 = TRT 8.5, JetPack 6.0 = TRT 8.6, JetPack 6.1/6.2 =
TRT 10.3):
- network creation: EXPLICIT_BATCH must be passed on 8.x; on 10 networks are always explicit-batch (flag 0).
- workspace: `set_memory_pool_limit(MemoryPoolType.WORKSPACE, n)` since 8.4; `max_workspace_size` is gone in 10.
- precision constraints: OBEY/PREFER_PRECISION_CONSTRAINTS since 8.2 (STRICT_TYPES before, removed in 10).
- build progress: `IProgressMonitor` only where the version has it (10.x).
- runtime: named tensors (`num_io_tensors`, `execute_async_v3`) since 8.5; the binding API is gone in 10.
Everything is feature-detected (hasattr), never version-string compared, so a new point release keeps working.
"""
import importlib

from ..errors import SDKError

NOT_INSTALLED = "TensorRT is not installed here; use the onnxruntime backend or run on a Jetson"


def import_tensorrt():
    """The `tensorrt` module, or the one-line error every TensorRT entry point gives without it."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError:
        raise SDKError(NOT_INSTALLED) from None


def version_tuple(trt):
    parts = []
    for p in str(trt.__version__).split(".")[:3]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def make_logger(trt, verbose=False):
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)


def network_flags(trt):
    """EXPLICIT_BATCH on 8.x (required by the ONNX parser); 0 on 10+, where implicit batch no longer exists."""
    if version_tuple(trt) >= (10,):
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def set_workspace(trt, config, nbytes):
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
    else:  # TensorRT < 8.4
        config.max_workspace_size = int(nbytes)


def constraint_flag(trt, constraints):
    """The builder flag that makes TensorRT honour per-layer precisions (None for 'none')."""
    if constraints == "none":
        return None
    name = "OBEY_PRECISION_CONSTRAINTS" if constraints == "obey" else "PREFER_PRECISION_CONSTRAINTS"
    if hasattr(trt.BuilderFlag, name):
        return getattr(trt.BuilderFlag, name)
    return trt.BuilderFlag.STRICT_TYPES  # TensorRT < 8.2 only knew one, strict, behaviour


def trt_dtype(trt, precision):
    return {"fp32": trt.float32, "fp16": trt.float16, "int8": trt.int8}[precision]


def build_serialized(builder, network, config):
    """Serialized engine bytes; `build_serialized_network` exists on every version we support (8.0+)."""
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise SDKError("TensorRT build: the builder returned no engine (see the TensorRT log above; --verbose "
                       "shows more), expected a serialized engine")
    return bytes(blob)


def has_named_tensors(engine):
    return hasattr(engine, "num_io_tensors")


def has_binding_api(engine):
    return hasattr(engine, "num_bindings")


def nptype(trt, dtype):
    return trt.nptype(dtype)


def init_plugins(trt, logger):
    """Register libnvinfer_plugin's creators (EfficientNMS_TRT, BatchedNMS...) in this process: the ONNX parser
    and the runtime look plugins up in the registry, which starts empty (TensorRT Python API,
    `init_libnvinfer_plugins`). Harmless when already done or when the module has no plugin library."""
    from .. import layouts  # one implementation (looked up at call time, so tests can take the library away)

    layouts.init_trt_plugins(trt, logger)


def profile_shape(engine, name, index, profile=0):
    """(min, opt, max) of an input in an optimization profile: named-tensor API (8.5+) or bindings (8.x)."""
    if hasattr(engine, "get_tensor_profile_shape"):
        shapes = engine.get_tensor_profile_shape(name, profile)
    else:
        shapes = engine.get_profile_shape(profile, index)
    return [tuple(int(d) for d in s) for s in shapes]


def set_calibration_profile(config, profile):
    """The INT8 calibration profile (deprecated with implicit calibration in 10.x, still honoured in 10.3)."""
    if hasattr(config, "set_calibration_profile"):
        config.set_calibration_profile(profile)
        return True
    return False

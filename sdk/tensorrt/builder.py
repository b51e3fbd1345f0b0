"""build_engine: ONNX -> TensorRT engine with FP16/INT8, entropy/minmax calibration, per-layer precision plans,
DLA, timing cache, optimization profiles for a dynamic batch, and a sidecar with what the engine was built with
and for.

Order matters for "nothing half-written": the engine is built and inspected (so --strict can fail) before
anything is written; engine, calibration cache and timing cache are written atomically.
"""
import hashlib
import re
import sys
import time
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_bytes_atomic
from ..metadata import ModelMetadata
from ..precision import PrecisionPlan
from . import api
from .calib_cache import CalibrationCache, fingerprint
from .engine_meta import write_sidecar
from .inspector import (layer_precisions, layer_regions, precision_counts, precision_report,
                        read_engine_information)
from .layers import apply_precisions, network_layers, onnx_conv_flops
from .progress import progress_monitor

PRECISIONS = ("fp32", "fp16", "int8", "best")
ENGINE_SUFFIXES = (".engine", ".trt", ".plan")
CALIBRATORS = ("entropy", "minmax")
DEFAULT_CALIB_IMAGES = 256  # calibration images when --calib-batches is not given
DEFAULT_MAX_BATCH = 8  # the largest batch of a dynamic-batch engine unless --max-batch says otherwise
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text):
    """'2G' / '512M' / '1048576' -> bytes (binary units)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise SDKError(f"workspace: got '{text}', expected a size such as 2G, 512M or a number of bytes")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(m.group(2).lower() or " "))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_inputs(onnx_path, output, precision, calibrator, calib_batches, calib_batch_size, dla_core,
                  gpu_fallback):
    if not Path(onnx_path).is_file():
        raise SDKError(f"onnx {onnx_path}: file not found, expected an ONNX model")
    if Path(output).suffix.lower() not in ENGINE_SUFFIXES:
        raise SDKError(f"output {output}: got suffix '{Path(output).suffix or '(none)'}', expected one of "
                       f"{', '.join(ENGINE_SUFFIXES)}")
    if precision not in PRECISIONS:
        raise SDKError(f"precision: got '{precision}', expected one of {', '.join(PRECISIONS)}")
    if calibrator not in CALIBRATORS:
        raise SDKError(f"calibrator: got '{calibrator}', expected one of {', '.join(CALIBRATORS)}")
    for name, value in (("calib_batches", calib_batches), ("calib_batch_size", calib_batch_size)):
        if value is not None and int(value) < 1:
            raise SDKError(f"{name}: got {value}, expected a positive integer")
    if gpu_fallback and dla_core is None:
        raise SDKError("gpu_fallback: got it without --dla-core, expected --dla-core N (GPU fallback is for "
                       "layers the DLA cannot run)")
    if dla_core is not None and precision == "fp32":
        raise SDKError("dla_core: got --precision fp32, expected fp16, int8 or best (the DLA has no FP32)")


def _load_onnx(path):
    import onnx  # noqa: PLC0415 - runtime dependency, imported when a build runs

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a corrupt file
        raise SDKError(f"onnx {path}: cannot be read ({type(e).__name__}), expected a valid ONNX model")
    return model


def is_explicitly_quantized(onnx_model):
    """A Q/DQ ONNX (from `python -m sdk quantize` / QAT) carries its own INT8 scales: no calibrator needed."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in onnx_model.graph.node)


def _make_plan(precision, layer_precision, precision_plan, precision_constraints):
    base = PrecisionPlan.load(precision_plan) if precision_plan else None
    if precision is None:
        precision = base.default if base else "fp16"
    default = precision if precision != "best" else "int8"
    constraints = precision_constraints or (base.constraints if base else "obey")
    plan = PrecisionPlan(default, list(base.overrides) if base else [], constraints)
    return precision, plan.extend(PrecisionPlan.from_specs(layer_precision, default, constraints))


def _parse(trt, builder, logger, onnx_path):
    network = builder.create_network(api.network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise SDKError(f"onnx {onnx_path}: TensorRT's ONNX parser failed ({'; '.join(errors)[:300] or 'no detail'})"
                       f", expected a model TensorRT can parse (opset 13 export)")
    return network, parser


def _parser_error(error):
    """IParserError: desc() is the message (str() of the pybind object is not, on every version)."""
    return str(error.desc() if hasattr(error, "desc") else error).strip()


def _flag_name(flag):
    return getattr(flag, "name", str(flag).split(".")[-1])


def _device_info(memory):
    try:
        return memory.device_info()
    except (SDKError, AttributeError):
        return None


def batch_profile(name, shape, min_batch=None, opt_batch=None, max_batch=None):
    """The optimization profile {"min", "opt", "max"} of input `name` (None for a static input), from the
    --min/--opt/--max-batch flags, defaulting to the ONNX's own dims (batch 1..DEFAULT_MAX_BATCH, opt = max)."""
    shape = [int(d) for d in shape]
    given = {"min_batch": min_batch, "opt_batch": opt_batch, "max_batch": max_batch}
    for flag, value in given.items():
        if value is not None and int(value) < 1:
            raise SDKError(f"{flag}: got {value}, expected a positive integer")
    if not shape or shape[0] >= 0:
        for flag, value in given.items():
            if value is not None and shape and int(value) != shape[0]:
                raise SDKError(f"{flag}: got {value}, expected {shape[0]} (the ONNX input '{name}' is "
                               f"{tuple(shape)}, a static batch; export with --dynamic-batch to batch)")
        return None
    if any(d < 0 for d in shape[1:]):
        raise SDKError(f"onnx: input '{name}' is {tuple(shape)}, expected only the batch dimension dynamic "
                       f"(export at a fixed --imgsz)")
    hi = int(max_batch or max(DEFAULT_MAX_BATCH, int(opt_batch or 0), int(min_batch or 0)))
    lo = int(min_batch or 1)
    mid = int(opt_batch or hi)
    if not lo <= mid <= hi:
        raise SDKError(f"min_batch/opt_batch/max_batch: got {lo}/{mid}/{hi}, expected min <= opt <= max")
    return {"min": [lo] + shape[1:], "opt": [mid] + shape[1:], "max": [hi] + shape[1:]}


def _add_profiles(trt, builder, config, network, args):
    """One optimization profile for the dynamic inputs; returns ({input: profile dict}, calibration profile or
    None). TensorRT returns no engine for dynamic inputs without a profile."""
    profiles = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        p = batch_profile(t.name, t.shape, args["min_batch"], args["opt_batch"], args["max_batch"])
        if p is not None:
            profiles[t.name] = p
    if not profiles:
        return {}, None
    profile = builder.create_optimization_profile()
    for name, p in profiles.items():
        profile.set_shape(name, p["min"], p["opt"], p["max"])
    if config.add_optimization_profile(profile) < 0:
        raise SDKError(f"optimization profile {profiles}: TensorRT refused it, expected min <= opt <= max")
    return profiles, None


def _calibration_shape(network, profiles, calib_batch_size):
    """(input name, the shape TensorRT reads per calibration batch) of the (single) image input."""
    t = network.get_input(0)
    shape = [int(d) for d in t.shape]
    if t.name not in profiles:
        if calib_batch_size is not None and int(calib_batch_size) != shape[0]:
            raise SDKError(f"calib_batch_size: got {calib_batch_size}, expected {shape[0]} (the ONNX input "
                           f"'{t.name}' is {tuple(shape)}, static: TensorRT reads one input volume per "
                           f"calibration batch; export with --dynamic-batch to calibrate in batches)")
        return t.name, tuple(shape)
    batch = int(calib_batch_size or profiles[t.name]["opt"][0])
    return t.name, (batch, *shape[1:])


class _Calibration:
    """Sets up the INT8 calibrator (or none for Q/DQ models) and checks it after the build. Batches have the
    network input's shape (static batch) or the calibration profile's (dynamic batch), as TensorRT reads them."""

    def __init__(self, trt, builder, config, network, profiles, meta, onnx_sha, args, memory, progress):
        self.calibrator, self.cache, self.reader = None, None, None
        self.info = {"mode": "none"}
        if args["qdq"]:
            self.info = {"mode": "explicit (Q/DQ in the ONNX)"}
            if args["calib_images"]:
                print("note: the ONNX has Q/DQ nodes (its own INT8 scales); --calib-images is not used",
                      file=sys.stderr)
            return
        if not args["int8"]:
            return
        from calibrators.data_reader import ImageCalibrationReader, calibration_images  # noqa: PLC0415
        from calibrators.tensorrt import make_calibrator  # noqa: PLC0415
        from ..preprocess import Preprocessor  # noqa: PLC0415

        name, shape = _calibration_shape(network, profiles, args["calib_batch_size"])
        batch_size = shape[0]
        if name in profiles:
            profile = builder.create_optimization_profile()
            profile.set_shape(name, shape, shape, shape)
            api.set_calibration_profile(config, profile)
            self.profile = {"input": name, "shape": list(shape)}
        max_batches = int(args["calib_batches"] or -(-DEFAULT_CALIB_IMAGES // batch_size))
        if args["calib_images"]:
            self.reader = ImageCalibrationReader(calibration_images(args["calib_images"]), meta, batch_size,
                                                 input_name=name, max_batches=max_batches, progress=progress)
        fp = fingerprint(onnx_sha, Preprocessor(meta).fingerprint(), self.reader.fingerprint() if self.reader else None,
                         batch_size if self.reader else None, args["calibrator"], trt.__version__)
        self.cache = CalibrationCache(args["calib_cache"], fp, args["calibrator"], trt.__version__)
        if self.cache.load() is None and self.reader is None:  # a stale cache is refused here, before building
            raise SDKError("INT8 calibration: got no --calib-images and no calibration cache, expected calibration "
                           "images (or a cache from an earlier build, or a Q/DQ ONNX from 'python -m sdk quantize')")
        self.calibrator = make_calibrator(args["calibrator"], self.reader, memory, self.cache, batch_size, trt=trt,
                                          shapes={name: shape})
        config.int8_calibrator = self.calibrator
        self.info = {"mode": f"implicit ({args['calibrator']} calibrator)", "batch_size": batch_size,
                     "input_shape": list(shape), "batches": len(self.reader) if self.reader else 0,
                     "cache": args["calib_cache"]}

    def finish(self):
        if self.calibrator is None:
            return
        try:
            self.calibrator.check()
        finally:
            self.calibrator.free()
        served = self.calibrator.batches_served
        self.info.update({"batches_served": served, "images": served * self.info["batch_size"],
                          "cache_reused": self.cache.reused, "cache_written": self.cache.written})


def _timing_cache(config, path):
    """Load (or start) the timing cache; a cache TensorRT refuses (another device or version) is reported and the
    build continues with a fresh one. Returns (cache, info)."""
    data = Path(path).read_bytes() if Path(path).is_file() else b""
    cache = config.create_timing_cache(data)
    info = {"path": str(path), "loaded_bytes": len(data), "refused": False}
    if config.set_timing_cache(cache, False) is False:  # ignore_mismatch=False: never use another GPU's timings
        print(f"warning: timing cache {path}: TensorRT refused it (made on another device or TensorRT version); "
              f"building without it and writing a fresh one", file=sys.stderr)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
        info["refused"] = True
    return cache, info


def _device_record(memory, dla_cores):
    device = _device_info(memory) if memory is not None else None
    if device is None:
        try:
            from .memory import cuda_memory  # noqa: PLC0415

            with cuda_memory() as own:
                device = own.device_info()
        except SDKError as e:
            print(f"warning: {e}; the engine sidecar records no GPU", file=sys.stderr)
            return None
    return {**device, "dla_cores": int(dla_cores)}


def build_engine(onnx, output, precision=None, calib_images=None, calib_cache=None, calib_batches=None,
                 calib_batch_size=None, calibrator="entropy", layer_precision=(), precision_plan=None,
                 precision_constraints=None, dla_core=None, gpu_fallback=False, workspace=None, timing_cache=None,
                 verbose=False, strict=False, progress=True, memory=None, min_batch=None, opt_batch=None,
                 max_batch=None, tf32=False):
    """Build and write a TensorRT engine plus its `.json` sidecar; returns the build report (a dict).

    `calib_batch_size` defaults to the network's batch (static input) or the opt batch (dynamic); `calib_batches`
    to 256 images' worth. `min/opt/max_batch` shape the optimization profile of a dynamic-batch ONNX (defaults
    1/8/8). `tf32` keeps TensorRT's TF32 for fp32 layers (cleared by default so fp32 means fp32)."""
    precision, plan = _make_plan(precision, layer_precision, precision_plan, precision_constraints)
    _check_inputs(onnx, output, precision, calibrator, calib_batches, calib_batch_size, dla_core, gpu_fallback)
    workspace_bytes = parse_size(workspace) if workspace else None
    trt = api.import_tensorrt()
    t0 = time.perf_counter()
    onnx_model = _load_onnx(onnx)
    meta = ModelMetadata.from_props({p.key: p.value for p in onnx_model.metadata_props})
    onnx_sha = _sha256(onnx)
    qdq = is_explicitly_quantized(onnx_model)
    if qdq:
        from .qdq_rules import require_tensorrt_qdq  # noqa: PLC0415

        require_tensorrt_qdq(onnx_model, onnx)  # names the node and the rule before TensorRT's parser does

    logger = api.make_logger(trt, verbose)
    api.init_plugins(trt, logger)  # before parsing: plugin nodes (EfficientNMS_TRT) resolve through the registry
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx)  # the parser must outlive the network it filled
    config = builder.create_builder_config()
    if workspace_bytes:
        api.set_workspace(trt, config, workspace_bytes)
    if hasattr(trt, "ProfilingVerbosity"):
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the inspector then reports precisions
    profiles, _ = _add_profiles(trt, builder, config, network,
                                {"min_batch": min_batch, "opt_batch": opt_batch, "max_batch": max_batch})

    # Per-layer precision: resolve the plan against the network's layers (unmatched override -> error).
    flops = onnx_conv_flops(onnx_model) if any(o.selector == "heaviest" for o in plan.overrides) else None
    pairs = network_layers(trt, network, meta.blocks, flops)
    infos = [info for info, _ in pairs]
    overridden = set()
    for o in plan.overrides:
        overridden |= plan.matches(o, infos)
    resolved = plan.resolve(infos, strict=True)
    requested = {name: resolved[name] for name in overridden}
    applied = apply_precisions(trt, pairs, requested)

    wanted = set(requested.values()) | ({"fp16", "int8"} if precision == "best" else {precision})
    flags = {}
    if "fp16" in wanted:
        flags["FP16"] = trt.BuilderFlag.FP16
    if "int8" in wanted or qdq:
        flags["INT8"] = trt.BuilderFlag.INT8  # a Q/DQ network needs INT8 enabled even when its default is FP16
    constraint = api.constraint_flag(trt, plan.constraints) if applied else None
    if constraint is not None:
        flags[_flag_name(constraint)] = constraint
    if dla_core is not None:
        available = getattr(builder, "num_DLA_cores", 0)
        if int(dla_core) >= available:
            raise SDKError(f"dla_core: got {dla_core}, expected a core below {available} (this device has "
                           f"{available} DLA cores)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        if gpu_fallback:
            flags["GPU_FALLBACK"] = trt.BuilderFlag.GPU_FALLBACK
    for f in flags.values():
        config.set_flag(f)
    tf32_flag = getattr(trt.BuilderFlag, "TF32", None)
    if tf32_flag is not None:
        if "fp32" in wanted and not tf32:
            config.clear_flag(tf32_flag)  # on by default: Ampere/Orin would run "fp32" convolutions as TF32
        elif config.get_flag(tf32_flag):
            flags["TF32"] = tf32_flag

    owned = None
    if memory is None and "INT8" in flags and not qdq:
        from .memory import cuda_memory  # noqa: PLC0415

        memory = owned = cuda_memory()
    try:
        return _build_and_write(trt, logger, builder, network, config, onnx, output, onnx_model, meta, onnx_sha,
                                qdq, precision, plan, flags, resolved, applied, infos, profiles, memory, strict,
                                progress, dla_core, timing_cache, t0,
                                {"qdq": qdq, "int8": "int8" in wanted, "calib_images": calib_images,
                                 "calib_cache": calib_cache, "calib_batches": calib_batches,
                                 "calib_batch_size": calib_batch_size, "calibrator": calibrator})
    finally:
        if owned is not None:
            owned.close()  # pycuda: pops the context on every path, errors included


def _build_and_write(trt, logger, builder, network, config, onnx, output, onnx_model, meta, onnx_sha, qdq,
                     precision, plan, flags, resolved, applied, infos, profiles, memory, strict, progress, dla_core,
                     timing_cache, t0, calib_args):
    calibration = _Calibration(trt, builder, config, network, profiles, meta, onnx_sha, calib_args, memory, progress)
    timing, timing_info = (None, None)
    if timing_cache:
        timing, timing_info = _timing_cache(config, timing_cache)
    monitor = progress_monitor(trt, progress)
    if monitor is not None:
        config.progress_monitor = monitor

    try:
        blob = api.build_serialized(builder, network, config)
    finally:
        calibration.finish()

    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(blob)
    if engine is None:
        raise SDKError(f"TensorRT build of {onnx}: the engine just built cannot be deserialized, expected a "
                       f"loadable engine (see the TensorRT log)")
    all_names = [network.get_layer(i).name for i in range(network.num_layers)]
    info_json = read_engine_information(trt, engine)
    every = layer_precisions(info_json, all_names)
    regions = layer_regions(info_json, all_names)
    actual = {i.name: every.get(i.name) for i in infos}
    rows = precision_report(applied, actual, regions)
    missed = [r for r in rows if not r["applied"]]
    warnings = []
    counts = precision_counts(actual)
    convs = [i.name for i in infos if i.op_type == "CONVOLUTION" and resolved.get(i.name) == "int8"]
    int8_convs = [n for n in convs if actual.get(n) == "int8"]
    if not qdq and convs and len(int8_convs) < len(convs):
        # TensorRT does not fail on tensors without scales: it warns and runs those layers in float
        warnings.append(f"INT8 was requested for {len(convs)} convolutions but {len(int8_convs)} run in INT8 "
                        f"(TensorRT had no scales for the others and fell back to float: see its 'Missing scale "
                        f"and zero-point' warnings; recalibrate or check the calibration cache)")
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if strict and missed:
        r = missed[0]
        raise SDKError(f"strict: layer {r['layer']} got {r['engine']} in the engine, expected {r['requested']} "
                       f"({len(missed)} of {len(rows)} overrides not applied; try --precision-constraints obey)")
    if strict and warnings:
        raise SDKError(f"strict: got {len(int8_convs)} of {len(convs)} convolutions in INT8, expected all "
                       f"(TensorRT had no scales for the others)")

    write_bytes_atomic(output, blob, "engine")
    if timing is not None:
        write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()), "timing cache")
    device = _device_record(memory, getattr(builder, "num_DLA_cores", 0))
    input_shape = None
    if network.num_inputs:
        input_shape = [int(d) for d in network.get_input(0).shape]
    report = {
        "engine": str(output), "onnx": str(onnx), "onnx_sha256": onnx_sha, "tensorrt": str(trt.__version__),
        "device": device, "precision": precision, "flags": list(flags),
        "explicit_quantization": qdq, "calibration": calibration.info, "plan": plan.to_dict(),
        "input_shape": input_shape, "profiles": [profiles] if profiles else [],
        "calibration_profile": getattr(calibration, "profile", None),
        "names": list(meta.names), "metadata": meta.to_json(),
        "dla_core": dla_core, "timing_cache": timing_info,
        "layer_precisions": counts, "regions": sorted(set(regions.values())), "overrides": rows,
        "overrides_applied": f"{len(rows) - len(missed)}/{len(rows)}", "warnings": warnings,
        "build_s": round(time.perf_counter() - t0, 2), "size_mb": round(len(blob) / 1e6, 2),
    }
    write_sidecar(output, {k: v for k, v in report.items() if k != "engine"})
    return report

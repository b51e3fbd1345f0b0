"""build_engine: ONNX -> TensorRT engine with FP16/INT8, entropy/minmax calibration, per-layer precision plans,
DLA, timing cache, and a sidecar with what the engine was built with and for.

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
from .inspector import layer_precisions, precision_counts, precision_report, read_engine_information
from .layers import apply_precisions, network_layers, onnx_conv_flops
from .progress import progress_monitor

PRECISIONS = ("fp32", "fp16", "int8", "best")
ENGINE_SUFFIXES = (".engine", ".trt", ".plan")
CALIBRATORS = ("entropy", "minmax")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text):
    """'2G' / '512M' / '1048576' -> bytes (binary units)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise SDKError(f"--workspace: got '{text}', expected a size such as 2G, 512M or a number of bytes")
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
        raise SDKError(f"--onnx {onnx_path}: file not found, expected an ONNX model")
    if Path(output).suffix.lower() not in ENGINE_SUFFIXES:
        raise SDKError(f"--output {output}: got suffix '{Path(output).suffix or '(none)'}', expected one of "
                       f"{', '.join(ENGINE_SUFFIXES)}")
    if precision not in PRECISIONS:
        raise SDKError(f"--precision: got '{precision}', expected one of {', '.join(PRECISIONS)}")
    if calibrator not in CALIBRATORS:
        raise SDKError(f"--calibrator: got '{calibrator}', expected one of {', '.join(CALIBRATORS)}")
    for name, value in (("--calib-batches", calib_batches), ("--calib-batch-size", calib_batch_size)):
        if int(value) < 1:
            raise SDKError(f"{name}: got {value}, expected a positive integer")
    if gpu_fallback and dla_core is None:
        raise SDKError("--gpu-fallback: got it without --dla-core, expected --dla-core N (GPU fallback is for "
                       "layers the DLA cannot run)")
    if dla_core is not None and precision == "fp32":
        raise SDKError("--dla-core: got --precision fp32, expected fp16, int8 or best (the DLA has no FP32)")


def _load_onnx(path):
    import onnx  # noqa: PLC0415 - runtime dependency, imported when a build runs

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a corrupt file
        raise SDKError(f"--onnx {path}: cannot be read ({type(e).__name__}), expected a valid ONNX model")
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
        raise SDKError(f"--onnx {onnx_path}: TensorRT's ONNX parser failed ({'; '.join(errors)[:300] or 'no detail'})"
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


class _Calibration:
    """Sets up the INT8 calibrator (or none for Q/DQ models) and checks it after the build."""

    def __init__(self, trt, config, meta, onnx_sha, args, memory, progress):
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

        batch_size = int(args["calib_batch_size"])
        if args["calib_images"]:
            self.reader = ImageCalibrationReader(calibration_images(args["calib_images"]), meta, batch_size,
                                                 max_batches=int(args["calib_batches"]), progress=progress)
        fp = fingerprint(onnx_sha, Preprocessor(meta).fingerprint(), self.reader.fingerprint() if self.reader else None,
                         batch_size if self.reader else None, args["calibrator"], trt.__version__)
        self.cache = CalibrationCache(args["calib_cache"], fp)
        if self.cache.load() is None and self.reader is None:  # a stale cache is refused here, before building
            raise SDKError("INT8 calibration: got no --calib-images and no calibration cache, expected calibration "
                           "images (or a cache from an earlier build, or a Q/DQ ONNX from 'python -m sdk quantize')")
        self.calibrator = make_calibrator(args["calibrator"], self.reader, memory, self.cache, batch_size, trt=trt)
        config.int8_calibrator = self.calibrator
        self.info = {"mode": f"implicit ({args['calibrator']} calibrator)", "batch_size": batch_size,
                     "batches": len(self.reader) if self.reader else 0, "cache": args["calib_cache"]}

    def finish(self):
        if self.calibrator is None:
            return
        try:
            self.calibrator.check()
        finally:
            self.calibrator.free()
        self.info.update({"batches_served": self.calibrator.batches_served, "cache_reused": self.cache.reused,
                          "cache_written": self.cache.written})


def build_engine(onnx, output, precision=None, calib_images=None, calib_cache=None, calib_batches=32,
                 calib_batch_size=8, calibrator="entropy", layer_precision=(), precision_plan=None,
                 precision_constraints=None, dla_core=None, gpu_fallback=False, workspace=None, timing_cache=None,
                 verbose=False, strict=False, progress=True, memory=None):
    """Build and write a TensorRT engine plus its `.json` sidecar; returns the build report (a dict)."""
    precision, plan = _make_plan(precision, layer_precision, precision_plan, precision_constraints)
    _check_inputs(onnx, output, precision, calibrator, calib_batches, calib_batch_size, dla_core, gpu_fallback)
    workspace_bytes = parse_size(workspace) if workspace else None
    trt = api.import_tensorrt()
    t0 = time.perf_counter()
    onnx_model = _load_onnx(onnx)
    meta = ModelMetadata.from_props({p.key: p.value for p in onnx_model.metadata_props})
    onnx_sha = _sha256(onnx)
    qdq = is_explicitly_quantized(onnx_model)

    logger = api.make_logger(trt, verbose)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx)  # the parser must outlive the network it filled
    config = builder.create_builder_config()
    if workspace_bytes:
        api.set_workspace(trt, config, workspace_bytes)
    if hasattr(trt, "ProfilingVerbosity"):
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # the inspector then reports precisions

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
            raise SDKError(f"--dla-core: got {dla_core}, expected a core below {available} (this device has "
                           f"{available} DLA cores)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        if gpu_fallback:
            flags["GPU_FALLBACK"] = trt.BuilderFlag.GPU_FALLBACK
    for f in flags.values():
        config.set_flag(f)

    if memory is None and "INT8" in flags and not qdq:
        from .memory import cuda_memory  # noqa: PLC0415

        memory = cuda_memory()
    calibration = _Calibration(trt, config, meta, onnx_sha,
                               {"qdq": qdq, "int8": "int8" in wanted, "calib_images": calib_images,
                                "calib_cache": calib_cache, "calib_batches": calib_batches,
                                "calib_batch_size": calib_batch_size, "calibrator": calibrator}, memory, progress)

    timing = None
    if timing_cache:
        data = Path(timing_cache).read_bytes() if Path(timing_cache).is_file() else b""
        timing = config.create_timing_cache(data)
        config.set_timing_cache(timing, False)
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
    actual = layer_precisions(read_engine_information(trt, engine), [i.name for i in infos])
    rows = precision_report(applied, actual)
    missed = [r for r in rows if not r["applied"]]
    if strict and missed:
        r = missed[0]
        raise SDKError(f"--strict: layer {r['layer']} got {r['engine']} in the engine, expected {r['requested']} "
                       f"({len(missed)} of {len(rows)} overrides not applied; try --precision-constraints obey)")

    write_bytes_atomic(output, blob, "engine")
    if timing is not None:
        write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()), "timing cache")
    device = _device_info(memory) if memory is not None else None
    if device is None:
        try:
            from .memory import cuda_memory  # noqa: PLC0415

            device = cuda_memory().device_info()
        except SDKError as e:
            print(f"warning: {e}; the engine sidecar records no GPU", file=sys.stderr)
    input_shape = None
    if network.num_inputs:
        input_shape = [int(d) for d in network.get_input(0).shape]
    report = {
        "engine": str(output), "onnx": str(onnx), "onnx_sha256": onnx_sha, "tensorrt": str(trt.__version__),
        "device": device, "precision": precision, "flags": list(flags),
        "explicit_quantization": qdq, "calibration": calibration.info, "plan": plan.to_dict(),
        "input_shape": input_shape, "names": list(meta.names), "metadata": meta.to_json(),
        "dla_core": dla_core, "timing_cache": str(timing_cache) if timing_cache else None,
        "layer_precisions": precision_counts(actual), "overrides": rows,
        "overrides_applied": f"{len(rows) - len(missed)}/{len(rows)}",
        "build_s": round(time.perf_counter() - t0, 2), "size_mb": round(len(blob) / 1e6, 2),
    }
    write_sidecar(output, {k: v for k, v in report.items() if k != "engine"})
    return report

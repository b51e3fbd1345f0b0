"""`build_engine` / `python -m sdk build`: an ONNX model to a TensorRT engine (FP32/FP16/INT8, per-layer
precision, DLA), with a per-layer precision report read back from the built engine."""
import sys

from ..quant.methods import TRT_METHODS
from . import args as groups
from .common import print_json_last, print_table


def add_arguments(p):
    p.add_argument("--onnx", required=True, help="ONNX model from 'python -m sdk export' (or a Q/DQ ONNX from "
                                                 "'python -m sdk quantize' / QAT: INT8 without calibration)")
    p.add_argument("-o", "--output", required=True, help="engine path (.engine, .trt or .plan); the build "
                                                         "metadata goes beside it as <engine>.json")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8", "best"), default=None,
                   help="kernels TensorRT may use (default: the plan's default, else fp16); best = fp16+int8")
    groups.add_calibration(p, required=False, count=None, method="entropy", methods=TRT_METHODS, seed=False,
                           aliases=("--calib-images",), method_aliases=("--calibrator",))
    p.add_argument("--calib-cache", default=None, help="calibration cache to reuse/write (refused when stale)")
    p.add_argument("--calib-batches", type=groups.integer(1, 10**5), default=None,
                   help="at most this many calibration batches (default: 256 images' worth)")
    p.add_argument("--calib-batch-size", type=groups.integer(1, 4096), default=None,
                   help="images per calibration batch: must be the ONNX's batch for a static input (TensorRT "
                        "reads one input volume per batch); for a dynamic batch default --opt-batch")
    p.add_argument("--layer-precision", action="append", default=[], metavar="PATTERN:PRECISION",
                   help="per-layer precision, repeatable: 'model.77*:fp32', 'block:head:fp16', 'op:Conv:int8', "
                        "'re:<regex>:fp16', 'heaviest:10:int8'")
    p.add_argument("--precision-plan", default=None, help="YAML precision plan (see sdk/precision/plan.py)")
    p.add_argument("--precision-constraints", choices=("obey", "prefer", "none"), default=None,
                   help="how strictly TensorRT must honour per-layer precisions (default obey)")
    p.add_argument("--dla-core", type=groups.integer(0, 16), default=None, help="build for this DLA core (Jetson Xavier/Orin)")
    p.add_argument("--gpu-fallback", action="store_true", help="with --dla-core: run unsupported layers on the GPU")
    p.add_argument("--workspace", default=None, help="builder workspace limit, e.g. 2G or 512M")
    p.add_argument("--timing-cache", default=None, help="timing cache file to reuse and update (faster rebuilds)")
    p.add_argument("--min-batch", type=groups.integer(1, 4096), default=None,
                   help="dynamic-batch ONNX: smallest batch of the optimization profile (default 1)")
    p.add_argument("--opt-batch", type=groups.integer(1, 4096), default=None,
                   help="dynamic-batch ONNX: the batch TensorRT tunes kernels for (default --max-batch)")
    p.add_argument("--max-batch", type=groups.integer(1, 4096), default=None,
                   help="dynamic-batch ONNX: largest batch (default 8); a static ONNX keeps its own batch")
    p.add_argument("--tf32", action="store_true",
                   help="let fp32 layers use TF32 (TensorRT's default on Ampere/Orin); off: fp32 means fp32")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log")
    p.add_argument("--strict", action="store_true", help="fail (and write nothing) when the engine did not apply "
                                                         "every per-layer override")


def run(args):
    from ..tensorrt import build_engine  # noqa: PLC0415

    report = build_engine(args.onnx, args.output, precision=args.precision, calib_images=args.calib,
                          calib_cache=args.calib_cache, calib_batches=args.calib_batches,
                          calib_batch_size=args.calib_batch_size, calibrator=args.calib_method,
                          layer_precision=args.layer_precision, precision_plan=args.precision_plan,
                          precision_constraints=args.precision_constraints, dla_core=args.dla_core,
                          gpu_fallback=args.gpu_fallback, workspace=args.workspace, timing_cache=args.timing_cache,
                          verbose=args.verbose, strict=args.strict, min_batch=args.min_batch,
                          opt_batch=args.opt_batch, max_batch=args.max_batch, tf32=args.tf32)
    rows = [[k, report[k]] for k in ("engine", "tensorrt", "device", "precision", "flags", "calibration",
                                     "layer_precisions", "regions", "profiles", "overrides_applied", "warnings",
                                     "build_s", "size_mb")]
    print_table(rows, ["build", "value"])
    if report["overrides"]:
        print()
        print_table([[r["layer"], r["requested"], r["engine"], "yes" if r["applied"] else "NO"]
                     for r in report["overrides"]], ["layer", "requested", "engine", "applied"])
    print_json_last({k: v for k, v in report.items() if k != "metadata"})
    return 0


def main(argv=None):
    """The `build_engine` console script."""
    from ..cli import guarded  # noqa: PLC0415

    parser = groups.CommandParser(prog="build_engine", description="build a TensorRT engine from an ONNX model")
    add_arguments(parser)
    return guarded(lambda: parser.parse_and_run(run, argv))


if __name__ == "__main__":
    sys.exit(main())

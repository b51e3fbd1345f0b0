"""`python -m sdk quantize`: FP32 ONNX -> INT8 QDQ ONNX (onnxruntime quantize_static, per-channel weights), the
layers outside the precision plan's INT8 set left in float; optionally a TensorRT calibration cache too."""
import sys

from .args import (add_plan, add_quantization, calib_paths_from_args, integer, plan_from_args,
                   quant_config_from_args)
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p)
    add_plan(p)
    p.add_argument("-o", "--output", required=True, help="INT8 QDQ ONNX to write")
    p.add_argument("--trt-cache", default=None, help="also write a TensorRT calibration cache (text) here")
    p.add_argument("--trt-version", type=integer(1000, 99999), default=8502,
                   help="TensorRT version in the cache header (8502 = TensorRT 8.5.2, JetPack 5.1)")
    p.add_argument("--save-ranges", default=None, help="also keep onnxruntime's JSON calibration ranges here")


def run(args):
    import os
    import tempfile

    from calibrators.data_reader import ImageCalibrationReader

    from ..quant.layers import check_float_model, load_model, metadata_of
    from ..quant.quantize import calibrate, plan_int8_nodes, quantize
    from ..quant.trt_cache import write_cache

    config = quant_config_from_args(args)
    plan = plan_from_args(args)
    model = load_model(args.model)
    check_float_model(model, args.model)
    meta = metadata_of(model)
    paths = calib_paths_from_args(args)
    # Resolve the plan before the (slower) calibration, so a plan naming missing layers fails at once.
    plan_int8_nodes(model, plan, config)
    reader = ImageCalibrationReader(paths, meta)
    with tempfile.TemporaryDirectory(prefix="sdk-quant-") as tmp:
        ranges_path = args.save_ranges or os.path.join(tmp, "ranges.json")
        ranges = calibrate(args.model, reader, config.method, ranges_path, config.percentile)
        report = quantize(args.model, args.output, ranges_path, plan, config,
                          extra_metadata={"calibration": reader.fingerprint(), "calib_images": len(paths)})
    if args.trt_cache:
        report["trt_cache"] = args.trt_cache
        report["trt_cache_tensors"] = write_cache(args.trt_cache, ranges, args.trt_version)
    report["calib_images"] = len(paths)
    src_mb = round(os.path.getsize(args.model) / 2**20, 2)
    print_table([[args.model, src_mb, args.output, report["size_mb"], report["int8_nodes"], report["layers"],
                  config.method, config.activations, len(paths)]],
                ["fp32 model", "MB", "int8 model", "MB", "int8 nodes", "layers", "calibration", "activations",
                 "images"])
    print(f"plan: {plan.to_dict()}", file=sys.stderr)
    print_json_last(report)
    return 0

"""`python -m sdk quantize`: FP32 ONNX -> INT8 QDQ ONNX (onnxruntime quantize_static, per-channel weights), the
layers outside the precision plan's INT8 set left in float; optionally a TensorRT calibration cache too."""
import sys

from .args import (add_plan, add_quantization, calib_paths_from_args, plan_from_args, tensorrt_version,
                   quant_config_from_args)
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p)
    add_plan(p)
    p.add_argument("-o", "--output", required=True, help="INT8 QDQ ONNX to write")
    p.add_argument("--trt-cache", default=None, help="also write a TensorRT calibration cache (text) here")
    p.add_argument("--trt-version", type=tensorrt_version, default="8502",
                   help="TensorRT version in the cache header: 8502 or 8.5.2 (JetPack 5.1), 8602 (6.0), 100300 or "
                        "10.3 (6.1/6.2)")
    # TensorRT target (sdk/quant/trt_target.py): same calibration and plan, a Q/DQ form TensorRT parses
    p.add_argument("--target", choices=("cpu", "trt"), default="cpu",
                   help="cpu: onnxruntime's QDQ form (default); trt: symmetric int8 Q/DQ placed for TensorRT "
                        "(build it with build_engine; --activations/--op-types do not apply)")
    p.add_argument("--save-ranges", default=None, help="also keep onnxruntime's JSON calibration ranges here")
    p.add_argument("--uint8-input", action="store_true",
                   help="the INT8 model takes the letterboxed frame's uint8 bytes, (1, H, W, 4) RGBX where the "
                        "first conv is padded (x86), else (1, H, W, 3): the float conversion and the input "
                        "quantization cancel, exactly (--target cpu, u8 activations)")


def run(args):
    import os
    import tempfile

    from calibrators.data_reader import ImageCalibrationReader

    from ..quant.layers import check_float_model, load_model, metadata_of
    from ..quant.quantize import calibrate, plan_int8_nodes, quantize
    from ..quant.trt_cache import write_cache

    config = quant_config_from_args(args)
    if args.uint8_input and args.target == "trt":
        from ..errors import SDKError  # noqa: PLC0415

        raise SDKError("--uint8-input: got --target trt, expected --target cpu (the TensorRT form keeps the float "
                       "input its engine's Q/DQ layers are placed for)")
    plan = plan_from_args(args)
    model = load_model(args.model)
    check_float_model(model, args.model)
    meta = metadata_of(model)
    if not meta.has_sdk_props or meta.input_name not in {i.name for i in model.graph.input}:
        from ..errors import SDKError  # noqa: PLC0415

        raise SDKError(f"--model {args.model}: no SDK metadata and no known YOLO layout, expected an FP32 ONNX from "
                       f"'python -m sdk export' or a YOLO exporter ('python -m sdk inspect' tells)")
    if config.uint8_input:  # refused now, not after minutes of calibration
        from ..quant.byte_input import check_byte_input

        check_byte_input(meta, config.fmt, config.form())
    paths = calib_paths_from_args(args)
    # Resolve the plan before the (slower) calibration, so a plan naming missing layers fails at once.
    plan_int8_nodes(model, plan, config)
    reader = ImageCalibrationReader(paths, meta)
    with tempfile.TemporaryDirectory(prefix="sdk-quant-") as tmp:
        ranges_path = args.save_ranges or os.path.join(tmp, "ranges.json")
        ranges = calibrate(args.model, reader, config.method, ranges_path, config.percentile)
        extra = {"calibration": reader.fingerprint(), "calib_images": len(paths)}
        if args.target == "trt":  # TensorRT target hook
            from ..quant.trt_target import quantize_for_tensorrt

            report = quantize_for_tensorrt(args.model, args.output, ranges, plan, extra_metadata=extra)
        else:
            report = quantize(args.model, args.output, ranges_path, plan, config, extra_metadata=extra)
    if args.trt_cache:
        report["trt_cache"] = args.trt_cache
        report["trt_cache_tensors"] = write_cache(args.trt_cache, ranges, args.trt_version, model=args.model)
    report["calib_images"] = len(paths)
    src_mb = round(os.path.getsize(args.model) / 2**20, 2)
    # the TensorRT target has one fixed form (symmetric s8, zero point 0): no CPU choice to report
    form = report.get("int8_form") or {"target": "tensorrt", "activations": "s8", "reduce_range": False,
                                       "kernel": "TensorRT explicit Q/DQ",
                                       "reason": "onnx-tensorrt accepts only symmetric int8 with zero point 0"}
    print_table([[args.model, src_mb, args.output, report["size_mb"], report["int8_nodes"], report["layers"],
                  config.method, form["activations"], len(paths)]],
                ["fp32 model", "MB", "int8 model", "MB", "int8 nodes", "layers", "calibration", "activations",
                 "images"])
    print(f"int8 form for {form['target']}: {form['activations']} activations, "
          f"{'7-bit' if form['reduce_range'] else '8-bit'} weights ({form['kernel']}): {form['reason']}. Speed not "
          f"measured here: python -m sdk bench --model {args.output} --against {args.model}", file=sys.stderr)
    print(f"plan: {plan.to_dict()}", file=sys.stderr)
    print_json_last(report)
    return 0

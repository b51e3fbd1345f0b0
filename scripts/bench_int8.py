"""INT8 on x86: the SDK's quantization against what a user gets today from the official YOLOv7 export.py plus
onnxruntime's quantize_static, all built, scored and timed side by side in ONE run on this machine.

Baseline graph (the YOLOv7 repo is not available, so export.py is emulated): the fused model, opset 12, and the
IDetect decode written with in-place slice assignment (y[..., 0:2] = ...) exactly as the official
IDetect.forward does, which exports as ScatterND/Slice ops; its outputs are (decoded, raw level maps) as the
official export with the default --grid-less head. It is quantized with quantize_static(per_channel=True,
op_types_to_quantize=['Conv']) in three variants: QDQ s8s8, QDQ u8s8, QOperator u8s8, each calibrated on the same
images. The SDK metadata (class names, input size) is copied onto the baseline files only so one evaluator with
one pre/post-processing scores every row; the graphs are untouched.

    python -m scripts.bench_int8 [--calib-count 32] [--runs 40] [--threads 2] [--out docs/int8_bench.json]
                                 [--relu-epochs 20] [--control] [--work /tmp/edge-int8-bench]

SDK rows: FP32; INT8 with minmax and entropy calibration in the form `quantize` picks for this CPU (shared
Concat scales, conv channels padded for the fast kernel); the steps behind it, each against the row before
(Concat scales separate and channels unpadded; + shared Concat scales; + channel padding = the default;
LeakyRelu approximated as Relu, not a default; + uint8 input, `quantize --uint8-input`, opt-in); and the forms
chosen for other CPUs (x86 AVX2 without VNNI, ARM64), timed here to show why the form depends on the CPU. With
--relu-epochs N (default 20; 0 skips them), the model fine-tuned N epochs with ReLU in place of its LeakyReLU
(`python -m sdk train --activation ReLU --epochs N --warmup-epochs 1 --hyp mosaic=0 --no-val`: no val image is
seen, the final EMA weights are kept) and its INT8 models (each also + uint8 input): onnxruntime absorbs a Relu
into the conv's requantization, a LeakyRelu costs a lookup pass. --control adds the same fine-tune with the
LeakyReLU kept, which separates the activation's effect from the extra training. The
fine-tunes are kept in --work (a rerun reuses them). With --profile, the onnxruntime op profile
(sdk.quant.profile) of the default INT8 model and of SDK FP32: where the time goes. Timing: every model in one process, one call each in turn, onnxruntime intra-op spinning
disabled (with spinning on, idle sessions' threads steal the cores: times 2-3x high, ratios distorted).
Prints one table (ms p50, speed vs baseline FP32, achieved GFLOP/s, mAP@.5, mAP@.5:.95, MB, per-step gain) and
the machine; the last line is JSON. Absolute times depend on the machine and on other load: compare the ratios
within one run.
"""
import argparse
import json
import os
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))


def official_style_forward(self, x):
    """IDetect.forward of the official repo in eval mode: sigmoid, then in-place slice assignment."""
    import torch

    z = []
    maps = self.level_maps(x)
    for i, xi in enumerate(maps):
        bs, na, ny, nx, no = xi.shape
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
        y = xi.sigmoid()
        y[..., 0:2] = (y[..., 0:2] * 2.0 - 0.5 + grid) * float(self.stride[i])
        y[..., 2:4] = (y[..., 2:4] * 2) ** 2 * self.anchor_grid[i]
        z.append(y.view(bs, -1, no))
    return torch.cat(z, 1), maps


def export_official_style(weights, out, imgsz, metadata_props):
    import onnx
    import torch

    from sdk.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(weights, fuse=True)
    model = model.float().eval()
    det = model.model[-1]
    det.forward = types.MethodType(official_style_forward, det)
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, imgsz, imgsz), out, opset_version=12, input_names=["images"],
                          output_names=["output"], dynamo=False)
    proto = onnx.load(out)
    ops = {n.op_type for n in proto.graph.node}
    assert "ScatterND" in ops, f"baseline export lost the in-place decode (ops: {sorted(ops)})"
    for k, v in metadata_props.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, out)
    return out


def upgrade_opset(src, out, opset=13):
    """Per-channel Q/DQ needs the DequantizeLinear 'axis' attribute of opset 13; this onnxruntime's
    quantize_static writes it into an opset-12 model (which onnxruntime then refuses to load), so a user
    upgrades the export first, as older quantize_static versions did automatically."""
    import onnx
    from onnx import version_converter

    onnx.save(version_converter.convert_version(onnx.load(src), opset), out)
    return out


def baseline_quantize(src, out, reader, variant):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    fmt, act = {"qdq_s8s8": (QuantFormat.QDQ, QuantType.QInt8), "qdq_u8s8": (QuantFormat.QDQ, QuantType.QUInt8),
                "qop_u8s8": (QuantFormat.QOperator, QuantType.QUInt8)}[variant]
    reader.rewind()
    quantize_static(src, out, reader, quant_format=fmt, per_channel=True, op_types_to_quantize=["Conv"],
                    activation_type=act, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    return out


def fine_tuned(weights, data, epochs, activation, work):
    """`sdk train` of `weights` for `epochs` (with `activation`, or the cfg's), kept in `work`: the final EMA weights,
    no val image seen (no best-epoch choice on the split the table scores)."""
    from sdk.train.api import fine_tune
    from sdk.train.recipe import FinetuneRecipe, parse_hyp

    out_dir = work / f"ft{epochs}-{(activation or 'cfg').lower()}"
    best = out_dir / "best.pt"
    if not best.is_file():
        print(f"fine-tuning {epochs} epochs ({activation or 'cfg activation'}) into {out_dir}", file=sys.stderr)
        fine_tune(weights, data, FinetuneRecipe(epochs=epochs, warmup_epochs=1, hyp=parse_hyp(["mosaic=0"]),
                                                activation=activation, threads=2), out_dir, validate=False)
    return best


def calibrated_variants(fp32, reader, method, configs, work, first):
    """Calibrate `fp32` once with `method` (ranges cached in `work`), then quantize it once per config of
    `configs` ({label: QuantConfig}): {label: path of the INT8 model}, files numbered from `first`."""
    from sdk.quant.quantize import calibrate, quantize

    reader.rewind()
    cache = str(work / f"ranges_{first}_{method}.json")
    calibrate(fp32, reader, method, cache)
    out = {}
    for i, (label, config) in enumerate(configs.items()):
        out[label] = str(work / f"sdk_int8_{first + i}.onnx")
        quantize(fp32, out[label], cache, config=config)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"))
    p.add_argument("--calib", default=str(SHARED / "data" / "pennfudan" / "images" / "train"))
    p.add_argument("--data", default=str(SHARED / "data" / "pennfudan" / "images" / "val"))
    p.add_argument("--calib-count", type=int, default=32)
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    p.add_argument("--train-data", default=str(SHARED / "data" / "pennfudan"),
                   help="dataset the --relu-epochs fine-tune trains on (its train split)")
    p.add_argument("--relu-epochs", type=int, default=20,
                   help="fine-tune with ReLU for this many epochs and add its rows (0: skip)")
    p.add_argument("--control", action="store_true",
                   help="also fine-tune with the LeakyReLU kept, same budget (the control for --relu-epochs)")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "edge-int8-bench"),
                   help="folder the fine-tunes are kept in")
    p.add_argument("--profile", action="store_true",
                   help="also profile SDK FP32 and the default INT8 models (onnxruntime op profile, sdk.quant.profile)")
    args = p.parse_args(argv)

    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.bench import BENCH_SPIN
    from sdk.runners.onnxruntime import spin_text
    from sdk.compare import Comparator
    from sdk.data.datasets import load_dataset
    from sdk.export.onnx_export import export_onnx
    from sdk.fileio import write_text_atomic
    from sdk.models.checkpoint import load_checkpoint
    from sdk.quant.layers import load_model, metadata_of
    from sdk.quant.cpu import form_for
    from sdk.quant.flops import model_gflops
    from sdk.quant.overflow import int8_kernel
    from sdk.quant.quantize import QuantConfig
    from sdk.report import describe_machine, print_json_last, print_table

    tmp = tempfile.TemporaryDirectory(prefix="bench-int8-")
    d = Path(tmp.name)
    model, _ = load_checkpoint(args.weights)
    sdk_fp32, _ = export_onnx(model, d / "sdk_fp32.onnx", imgsz=args.imgsz, source=Path(args.weights).name)
    sdk_fp32 = str(sdk_fp32)
    props = {pp.key: pp.value for pp in load_model(sdk_fp32).metadata_props}
    meta = metadata_of(load_model(sdk_fp32))
    paths = calibration_images(args.calib, args.calib_count, 0, "--calib")
    reader = ImageCalibrationReader(paths, meta, progress=False)

    models = {}
    base = export_official_style(args.weights, str(d / "official_fp32.onnx"), args.imgsz, props)
    models["official export.py FP32"] = base
    base13 = upgrade_opset(base, str(d / "official_fp32_opset13.onnx"))
    for variant, label in (("qdq_s8s8", "official + quantize_static QDQ s8s8"),
                           ("qdq_u8s8", "official + quantize_static QDQ u8s8"),
                           ("qop_u8s8", "official + quantize_static QOperator u8s8")):
        models[label] = baseline_quantize(base13, str(d / f"official_{variant}.onnx"), reader, variant)
    models["SDK FP32"] = sdk_fp32
    steps = {}  # label -> what changed against the row before it (the per-step gains of docs/int8.md)
    for method in ("minmax", "entropy"):
        variants = {f"SDK INT8 ({method}, default for this CPU)": QuantConfig(method=method)}
        if method == "entropy":
            variants = {
                "SDK INT8 (entropy, Concat scales separate, channels unpadded)":
                    QuantConfig(method=method, share_concat_scales=False, pad_channels=False),
                "SDK INT8 (entropy, + Concat scales shared, channels unpadded)":
                    QuantConfig(method=method, pad_channels=False),
                **variants,
                "SDK INT8 (entropy, default for this CPU, + uint8 input)": QuantConfig(method=method, uint8_input=True),
                "SDK INT8 (entropy, + LeakyRelu as Relu: not default)": QuantConfig(method=method, leaky_as_relu=True),
                **{f"SDK INT8 (entropy, form for {t}: {form_for(t)[0].activations} activations"
                   f"{', 7-bit weights' if form_for(t)[0].reduce_range else ''})": QuantConfig(method=method, target=t)
                   for t in ("x86-avx2", "arm64-dotprod")},
            }
        models.update(calibrated_variants(sdk_fp32, reader, method, variants, d, len(models)))
    finetuned = {}
    if args.relu_epochs > 0:
        finetuned[f"ReLU fine-tuned {args.relu_epochs} epochs"] = "ReLU"
        if args.control:
            finetuned[f"LeakyReLU fine-tuned {args.relu_epochs} epochs"] = None
    for tag, activation in finetuned.items():
        ckpt = fine_tuned(args.weights, args.train_data, args.relu_epochs, activation, Path(args.work))
        fp32, _ = export_onnx(load_checkpoint(ckpt)[0], d / f"{len(models)}.onnx", imgsz=args.imgsz,
                              source=ckpt.name)
        models[f"SDK FP32, {tag}"] = str(fp32)
        for method in ("minmax", "entropy"):
            models.update(calibrated_variants(str(fp32), reader, method,
                                              {f"SDK INT8 ({method}, {tag}, default for this CPU)":
                                               QuantConfig(method=method),
                                               f"SDK INT8 ({method}, {tag}, default for this CPU, + uint8 input)":
                                               QuantConfig(method=method, uint8_input=True)}, d, len(models)))
    steps = {"SDK INT8 (entropy, + Concat scales shared, channels unpadded)":
             "SDK INT8 (entropy, Concat scales separate, channels unpadded)",
             "SDK INT8 (entropy, default for this CPU)": "SDK INT8 (entropy, + Concat scales shared, channels unpadded)",
             "SDK INT8 (entropy, + LeakyRelu as Relu: not default)": "SDK INT8 (entropy, default for this CPU)",
             "SDK INT8 (entropy, default for this CPU, + uint8 input)": "SDK INT8 (entropy, default for this CPU)",
             **{f"SDK INT8 (entropy, {tag}, default for this CPU)": "SDK INT8 (entropy, default for this CPU)"
                for tag in finetuned}}

    ds = load_dataset(args.data, names=meta.names)
    # Timing: one call of each model in turn (rounds = runs), sessions without spinning (the Comparator's)
    with Comparator(models, ds, threads=args.threads) as cmp:  # one pre/post-processing, interleaved
        comparison = cmp.run(runs=args.runs, rounds=args.runs)
    rows = [{"model": r.label, "map50": r.map50, "map50_95": r.map50_95, "size_mb": r.size_mb, "ms_p50": r.p50_ms,
             "speed_vs_baseline_fp32": r.speedup, "gflops": round(model_gflops(models[r.label]), 3)}
            for r in comparison.rows]
    for r in rows:
        r["gflop_s"] = r["gflops"] / (r["ms_p50"] / 1e3)
    by_name = {r["model"]: r for r in rows}
    for label, before in steps.items():
        r, b = by_name[label], by_name[before]
        r["step_gain"] = b["ms_p50"] / r["ms_p50"]
        r["step_map50_pt"] = (r["map50"] - b["map50"]) * 100
    baselines = [r for r in rows if r["model"].startswith("official")]
    for r in rows:
        if r["model"].startswith("SDK INT8"):
            r["beats_every_baseline"] = all(r["ms_p50"] < b["ms_p50"] and r["map50"] >= b["map50"] for b in baselines)

    m = comparison.machine
    print_table([[r["model"], f"{r['ms_p50']:.1f}", f"{r['speed_vs_baseline_fp32']:.2f}x", f"{r['gflop_s']:.0f}",
                  f"{r['map50']:.4f}", f"{r['map50_95']:.4f}", r["size_mb"],
                  {True: "yes", False: "no"}.get(r.get("beats_every_baseline"), ""),
                  f"{r['step_gain']:.2f}x / {r['step_map50_pt']:+.1f} pt" if "step_gain" in r else ""] for r in rows],
                ["model", "ms p50", "speed vs official FP32", "GFLOP/s", "mAP@.5", "mAP@.5:.95", "MB",
                 "beats every baseline (speed and mAP@.5)", "step: speed / mAP@.5 vs the row it changes"])
    load = os.getloadavg()
    print(f"machine: {describe_machine(m)}; onnxruntime CPU {args.threads} threads, {spin_text(BENCH_SPIN)}, "
          f"{args.runs} calls per model one at a time in turn; int8 kernel: {int8_kernel(m['cpu_flags'])}; "
          f"{len(ds)} val images, {len(paths)} calib images; load average {' / '.join(f'{v:.1f}' for v in load)}")
    result = {"rows": rows, "cpu": m["cpu"], "cpu_flags": m["cpu_flags"], "threads": args.threads, "runs": args.runs,
              "calib_images": len(paths), "val_images": len(ds), "python": m["python"], "machine": m,
              "spinning": False, "interleave": "one call per model in turn", "load_avg": list(load),
              "machine_line": describe_machine(m, args.threads)}
    if args.profile:
        from sdk.quant.profile import PROFILE_OPS, op_profile, profile_row

        result["profiles"] = {k: profile_row(op_profile(models[k], args.threads, runs=20)) for k in models
                              if k == "SDK FP32" or "default for this CPU" in k or "channels unpadded" in k}
        print_table([[k, f"{p['kernel_ms']:.2f}", p["kernels"],
                      *[f"{p[op][0]:.2f} ({p[op][1]:.0%})" if p[op][0] else "" for op in (*PROFILE_OPS, "other")]]
                     for k, p in result["profiles"].items()],
                    ["profiled model", "kernel ms", "kernels", *PROFILE_OPS, "other"])
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1), "out")
    tmp.cleanup()
    print_json_last(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""PTQ vs QAT in one table: FP32, post-training INT8 and quantization-aware-trained INT8 of the same model, all
in the same explicit Q/DQ format (symmetric int8, zero point 0, per-channel weights, calibrated per-tensor conv
inputs; `sdk.quant.qat`), scored through onnxruntime on the val split and timed in one interleaved run.

PTQ and QAT share everything but the training: the same folded model, the same calibration images and ranges,
the same export. QAT trains for --epochs without validation and exports the final weights, so no epoch is
picked on the val images the table is scored on. `--sdk-ptq` adds `python -m sdk quantize --activations s8`
(onnxruntime quantize_static, all Conv/LeakyRelu/MaxPool/Concat/Resize quantized) as a reference row.

    python -m scripts.bench_qat [--weights W.pt] [--epochs 5] [--lr 1e-4] [--hyp mosaic=0] [--imgsz 416]
        [--threads 1] [--ort-threads 1] [--sdk-ptq entropy] [--control] [--out-dir runs/bench_qat]

Writes <out-dir>/bench_qat.md and bench_qat.json (and the ONNX files); prints the table, last line JSON.
"""
import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"))
    p.add_argument("--data", default=str(SHARED / "data" / "pennfudan"), help="dataset root (train and val)")
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hyp", nargs="*", default=[], metavar="KEY=VALUE",
                   help="training hyp overrides for QAT and the control, e.g. mosaic=0 (as `sdk qat --hyp`)")
    p.add_argument("--calib-images", type=int, default=32)
    p.add_argument("--calib-method", default="percentile", choices=("percentile", "max"))
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument("--max-images", type=int, default=None, help="train on the first N images (smoke runs)")
    p.add_argument("--sdk-ptq", default=None, choices=("minmax", "entropy", "percentile"),
                   help="also quantize with `sdk quantize --activations s8` using this calibration")
    p.add_argument("--control", action="store_true",
                   help="also fine-tune the FP32 model with the same recipe (no fake quant), then PTQ it: "
                        "separates what training does from what quantization-aware training does")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--ort-threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--runs", type=int, default=30, help="timed runs per model (5 interleaved rounds)")
    p.add_argument("--out-dir", default=str(REPO / "runs" / "bench_qat"))
    return p.parse_args(argv)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sdk_ptq_s8(fp32, out, paths, method):
    from calibrators.data_reader import ImageCalibrationReader
    from sdk.quant.layers import load_model, metadata_of
    from sdk.quant.quantize import QuantConfig, calibrate, quantize

    reader = ImageCalibrationReader(paths, metadata_of(load_model(fp32)), progress=False)
    cache = str(Path(out).with_suffix(".ranges.json"))
    calibrate(fp32, reader, method, cache)
    quantize(fp32, out, cache, config=QuantConfig(method=method, activations="s8"))
    return out


def main(argv=None):
    args = parse_args(argv)
    import copy

    import torch

    from sdk.bench import BENCH_SPIN
    from sdk.runners.onnxruntime import spin_text
    from sdk.compare import Comparator
    from sdk.data.datasets import load_dataset
    from sdk.data.images import read_image
    from sdk.export.onnx_export import export_onnx
    from sdk.fileio import write_text_atomic
    from sdk.models.checkpoint import load_checkpoint
    from sdk.quant import qat
    from sdk.quant.qat_train import QATTrainer
    from sdk.report import describe_machine, markdown_table, print_json_last, print_table, to_json
    from sdk.train.recipe import parse_hyp

    hyp = parse_hyp(args.hyp)
    torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, _ = load_checkpoint(args.weights)
    names = list(model.names)
    train = load_dataset(args.data, names=names, split="train")
    val = load_dataset(args.data, names=names, split="val")
    paths = qat.calibration_paths(train, args.calib_images, 0)
    models, notes = {}, {}

    log("FP32 export")
    models["FP32"] = str(export_onnx(copy.deepcopy(model), out / "fp32.onnx", imgsz=args.imgsz,
                                     source=Path(args.weights).name)[0])
    log("PTQ: fold, calibrate, export")
    t = time.time()
    ptq = qat.prepare_qat(copy.deepcopy(model))
    qat.calibrate(ptq, paths, args.imgsz, args.calib_method, args.percentile)
    notes["calibration_s"] = round(time.time() - t, 1)
    _, rep = qat.export_qat_onnx(ptq, out / "ptq_int8.onnx", args.imgsz, source=Path(args.weights).name,
                                 extra={"epochs": 0})
    models["PTQ INT8 (Q/DQ s8, no training)"] = str(out / "ptq_int8.onnx")
    notes["qdq"] = {k: rep[k] for k in ("quantize_linear", "quantized_convs", "convs", "zero_points",
                                         "per_channel_axes")}
    if args.sdk_ptq:
        log(f"sdk quantize --activations s8 --calib-method {args.sdk_ptq}")
        label = f"PTQ INT8 (sdk quantize s8, {args.sdk_ptq}, all ops)"
        models[label] = sdk_ptq_s8(models["FP32"], str(out / f"sdk_ptq_s8_{args.sdk_ptq}.onnx"), paths,
                                   args.sdk_ptq)

    log(f"QAT: {args.epochs} epochs")
    qmodel = copy.deepcopy(ptq)  # the same calibrated ranges as PTQ
    trainer = QATTrainer(qmodel, train, None, epochs=args.epochs, batch_size=args.batch_size, imgsz=args.imgsz,
                         lr=args.lr, hyp=hyp, warmup_epochs=0, max_train_images=args.max_images,
                         progress=False, out_dir=out / "qat", threads=args.threads)
    res = trainer.fit()
    notes["qat_train_s"], notes["qat_epoch_s"] = res["seconds"], round(res["seconds"] / args.epochs, 1)
    notes["qat_history"] = res["history"]
    qlabel = f"QAT INT8 (Q/DQ s8, {args.epochs} epochs)"
    _, rep = qat.export_qat_onnx(trainer.best_model(), out / "qat_int8.onnx", args.imgsz,
                                 source=Path(args.weights).name, extra={"epochs": args.epochs})
    models[qlabel] = str(out / "qat_int8.onnx")
    notes["qat_parity"] = qat.onnx_parity(trainer.best_model(), out / "qat_int8.onnx", val.image_paths()[:4],
                                          args.imgsz)

    if args.control:
        log(f"control: FP32 fine-tune, {args.epochs} epochs, same recipe")
        from sdk.train.trainer import Trainer

        ft = Trainer(copy.deepcopy(model), train, None, epochs=args.epochs, batch_size=args.batch_size,
                     imgsz=args.imgsz, lr=args.lr, hyp=hyp, warmup_epochs=0, max_train_images=args.max_images,
                     progress=False, save=False, threads=args.threads)
        ft.fit()
        tuned = copy.deepcopy(ft.eval_model).eval()
        models[f"FP32 fine-tuned ({args.epochs} epochs, control)"] = str(
            export_onnx(copy.deepcopy(tuned), out / "fp32_finetuned.onnx", imgsz=args.imgsz)[0])
        ptq_ft = qat.prepare_qat(tuned)
        qat.calibrate(ptq_ft, paths, args.imgsz, args.calib_method, args.percentile)
        qat.export_qat_onnx(ptq_ft, out / "ptq_finetuned.onnx", args.imgsz, extra={"epochs": 0})
        models["PTQ INT8 of the fine-tuned FP32 (control)"] = str(out / "ptq_finetuned.onnx")

    log(f"scoring and timing (interleaved, {spin_text(BENCH_SPIN)})")
    with Comparator(models, val, threads=args.ort_threads) as cmp:
        for label, sc in cmp.score().items():
            log(f"{label}: mAP@.5 {sc['map50']:.4f} mAP@.5:.95 {sc['map50_95']:.4f}")
        det = cmp.detector("FP32")
        x, _ = det.pre(read_image(val.image_paths()[0]))
        cmp.time(runs=args.runs, rounds=5, inputs={k: x for k in models})
        comparison = cmp.result()
    rows = [{"model": r.label, "map50": r.map50, "map50_95": r.map50_95, "size_mb": r.size_mb,
             "ms_p50": round(r.p50_ms, 1), "speed_vs_fp32": round(r.speedup, 2),
             "map50_vs_fp32_pt": round(r.map50_delta_pt, 2), "map50_95_vs_fp32_pt": round(r.map50_95_delta_pt, 2)}
            for r in comparison.rows]

    headers = ["model", "mAP@.5", "vs FP32 (pt)", "mAP@.5:.95", "vs FP32 (pt)", "ms p50", "speed vs FP32", "MB"]
    table = [[r["model"], f"{r['map50']:.4f}", f"{r['map50_vs_fp32_pt']:+.2f}", f"{r['map50_95']:.4f}",
              f"{r['map50_95_vs_fp32_pt']:+.2f}", f"{r['ms_p50']:.1f}", f"{r['speed_vs_fp32']:.2f}x", r["size_mb"]]
             for r in rows]
    print_table(table, headers)
    machine = (f"{describe_machine(comparison.machine)}; onnxruntime CPU with {args.ort_threads} intra-op "
               f"thread(s), {spin_text(BENCH_SPIN)}, torch with {args.threads} thread(s), load average "
               f"{os.getloadavg()[0]:.1f} at the end")
    print(f"machine: {machine}")
    result = {"rows": rows, "weights": Path(args.weights).name, "machine": machine, "imgsz": args.imgsz,
              "epochs": args.epochs, "lr": args.lr, "hyp": hyp, "batch_size": args.batch_size,
              "train_images": len(trainer.train_data), "val_images": len(val), "val_boxes": val.num_boxes,
              "calib_images": len(paths), "calib_method": args.calib_method, "percentile": args.percentile,
              "runs": args.runs,
              "control": args.control, "python": comparison.machine["python"], "machine_info": comparison.machine,
              **notes}
    write_text_atomic(out / "bench_qat.md", markdown_table(table, headers) + f"\nmachine: {machine}\n", "out_dir")
    write_text_atomic(out / "bench_qat.json", to_json(result, indent=1), "out_dir")
    print_json_last(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

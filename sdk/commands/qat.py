"""`python -m sdk qat`: quantization-aware training on the CPU -> a QAT checkpoint and an explicit Q/DQ ONNX
(symmetric int8, zero point 0: what onnxruntime and TensorRT explicit quantization both run)."""
from pathlib import Path

from ..deps import require
from ..errors import SDKError
from ..quant.methods import QAT_METHODS
from . import args as groups
from .common import print_json_last, print_table


def add_arguments(p):
    p.add_argument("--weights", required=True,
                   help="checkpoint: official YOLOv7 .pt or SDK checkpoint (pruned too); a QAT checkpoint keeps "
                        "its activation ranges unless --recalibrate")
    groups.add_train_data(p)  # --data/--split/--val-data/--val-split/--no-val/--max-images/--max-val-images
    p.add_argument("-o", "--output", required=True, help="explicit Q/DQ ONNX to write")
    p.add_argument("--out-dir", required=True, help="folder for the QAT checkpoints best.pt and last.pt")
    groups.add_finetune(p, epochs=5, lr=1e-4, warmup_epochs=0.0, nominal_batch=False)
    # lr 1e-4: 1 % of the from-scratch lr0, the usual QAT choice (1e-3 made the model drift on 120 images,
    # docs/qat.md); no warm-up: the official warm-up starts biases at lr 0.1.
    g = p.add_argument_group("calibration (from the training images)")
    groups.add_calibration(g, path=False, count=32, count_aliases=("--calib-images",), method="percentile",
                           methods=QAT_METHODS, seed=False)
    g.add_argument("--percentile", type=groups.real(0, 100, lo_open=True), default=99.99,
                   help="for --calib-method percentile, in (0, 100] (default 99.99)")
    g.add_argument("--recalibrate", action="store_true", help="re-calibrate a QAT checkpoint's ranges")
    p.add_argument("--parity-images", type=groups.OPTIONAL_COUNT, default=4,
                   help="val images run through torch and onnxruntime to check the export (0: skip)")
    groups.add_seed(p)
    groups.add_threads(p, None, "torch CPU threads")

def _check_args(args):
    if Path(args.output).suffix.lower() != ".onnx":
        raise SDKError(f"--output {args.output}: got suffix '{Path(args.output).suffix or '(none)'}', "
                       f"expected .onnx")
    if not Path(args.weights).is_file():
        raise SDKError(f"--weights {args.weights}: file not found, expected an official YOLOv7 .pt or an SDK "
                       f"checkpoint")


def run(args):
    from ..train.recipe import parse_hyp

    _check_args(args)
    hyp = parse_hyp(args.hyp)
    torch = require("torch", "quantization-aware training")
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..data.datasets import load_dataset
    from ..quant import qat
    from ..quant.qat_train import QATTrainer
    from ..train.trainer import as_dataset

    model, _, ranges = qat.load_qat_model(args.weights)
    stride = int(max(model.stride))
    if args.imgsz <= 0 or args.imgsz % stride:  # checked before calibration runs images at this size
        raise SDKError(f"--imgsz: got {args.imgsz}, expected a positive multiple of the model stride {stride}")
    names = list(model.names)
    train_ds = as_dataset(load_dataset(args.data, names=names, split=args.split), "train", names, "data",
                          args.max_images)
    val = None if args.no_val else (args.val_data or args.data)
    val_ds = as_dataset(load_dataset(val, names=names, split=args.val_split), "val", names, "val_data",
                        args.max_val_images) if val else None
    calib = {"method": args.calib_method, "images": args.calib_count, "seed": args.seed}
    if args.calib_method == "percentile":
        calib["percentile"] = args.percentile
    if ranges is None or args.recalibrate:
        qat.calibrate(model, qat.calibration_paths(train_ds, args.calib_count, args.seed), args.imgsz,
                      args.calib_method, args.percentile)
    else:
        calib = {"from": str(args.weights)}
    trainer = QATTrainer(model, train_ds, val_ds, epochs=args.epochs, batch_size=args.batch_size,
                         imgsz=args.imgsz, lr=args.lr, hyp=hyp, out_dir=args.out_dir,
                         warmup_epochs=args.warmup_epochs, seed=args.seed, augment=not args.no_augment,
                         threads=args.threads)
    res = trainer.fit()
    best = trainer.best_model()
    extra = {"calibration": calib, "epochs": args.epochs, "imgsz": args.imgsz, "weights": Path(args.weights).name}
    _, report = qat.export_qat_onnx(best, args.output, args.imgsz, source=Path(args.weights).name, extra=extra)
    parity_images = (val_ds or train_ds).image_paths()[:args.parity_images]
    if parity_images:
        report.update(qat.onnx_parity(best, args.output, parity_images, args.imgsz))

    rows = [[r["epoch"], f"{r.get('train_loss', 0):.4f}", f"{r.get('map50', float('nan')):.4f}",
             f"{r.get('map50_95', float('nan')):.4f}"] for r in res["history"]]
    print_table(rows, ["epoch", "train loss", "mAP@.5 (torch QAT)", "mAP@.5:.95 (torch QAT)"])
    print(f"QAT ONNX: {args.output} ({report['quantized_convs']}/{report['convs']} convs int8, "
          f"{report['quantize_linear']} QuantizeLinear, zero points {report['zero_points']}); "
          f"checkpoint: {res.get('best', '')}")
    if parity_images:
        print(f"onnxruntime vs torch on {len(parity_images)} images, boxes with score >= 0.25: centres within "
              f"{report['max_centre_px_conf']:.3f} px, sizes within {100 * report['max_wh_rel_conf']:.1f} % "
              f"({report['max_box_px_conf']:.2f} px; mean over all boxes {report['mean_box_px']:.4f} px), "
              f"scores within {report['max_score_diff']:.4f}")
    print_json_last({**res, "onnx": report, "calibration": calib})
    return 0

"""`python -m sdk parity`: the same images through PyTorch (when torch imports and --weights is given),
onnxruntime FP32 and onnxruntime INT8, with ONE pre-processing and ONE post-processing (`sdk.compare.Comparator`):
mAP of each and the largest raw-output difference from the reference (PyTorch, else ORT FP32)."""
import sys

from .args import COUNT, add_data, add_quantization
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p, calib_required=False)
    add_data(p)
    p.add_argument("--int8", default=None, help="INT8 ONNX to compare (default: quantize --model with --calib)")
    p.add_argument("--weights", default=None, help="PyTorch checkpoint for the PyTorch column (needs torch)")
    p.add_argument("--max-images", type=COUNT, default=None, help="only the first N images of --data")
    p.add_argument("--out-dir", required=True, help="folder for parity.md / .json / .png")


def _models(args, int8, meta):
    """{label: model} in column order: PyTorch (when torch imports and --weights is given), ORT FP32, ORT INT8."""
    import importlib.util

    models = {}
    if args.weights:
        if importlib.util.find_spec("torch") is None:
            print("parity: torch is not installed, PyTorch column skipped", file=sys.stderr)
        else:
            from ..models.checkpoint import load_checkpoint
            from ..runners.pytorch import TorchRunner

            models["pytorch"] = TorchRunner(load_checkpoint(args.weights, fuse=True)[0], meta, path=args.weights)
    models["ort fp32"] = args.model
    models["ort int8"] = int8
    return models


def run(args):
    import os
    import tempfile

    from ..compare import CONFIDENT, Comparator
    from ..data.datasets import load_dataset
    from ..errors import SDKError
    from ..precision.plan import PrecisionPlan
    from ..quant.layers import check_float_model, load_model, metadata_of
    from ..report import write_outputs
    from .args import workspace_from_args

    model = load_model(args.model)
    check_float_model(model, args.model)
    meta = metadata_of(model)
    with tempfile.TemporaryDirectory(prefix="sdk-parity-") as tmp:
        int8 = args.int8
        if int8 is None:
            if not args.calib:
                raise SDKError("--int8/--calib: got neither, expected an INT8 ONNX or calibration images")
            with workspace_from_args(args) as ws:
                ws.calibrate()
                int8 = os.path.join(tmp, "int8.onnx")
                ws.variant(PrecisionPlan(default="int8"), output=int8)
        elif not os.path.isfile(int8):
            raise SDKError(f"--int8 {int8}: file not found, expected an INT8 ONNX")
        ds = load_dataset(args.data, names=meta.names, split=args.split, images=args.images)
        if args.max_images is not None:
            ds.samples = ds.samples[:args.max_images]
        models = _models(args, int8, meta)
        with Comparator(models, ds, threads=args.threads) as cmp:
            result = cmp.run(time=False, outputs=True)
    ref_label = result.reference
    rows = [{"backend": r.label, "map50": r.map50, "map50_95": r.map50_95,
             "max_diff_boxes_px": r.outputs["boxes_px"], "max_diff_scores": r.outputs["scores"],
             "max_diff_boxes_px_all": r.outputs["boxes_px_all"],
             "compared": r.outputs.get("compared", "raw outputs"), "unmatched": r.outputs.get("unmatched", 0)}
            for r in result.rows]
    table = [[r["backend"], f"{r['map50']:.4f}", f"{r['map50_95']:.4f}", f"{r['max_diff_boxes_px']:.3f}",
              f"{r['max_diff_scores']:.4f}"] for r in rows]
    headers = ["backend", "mAP@.5", "mAP@.5:.95", f"max box diff px vs {ref_label} (obj >= {CONFIDENT})",
               f"max score diff vs {ref_label}"]

    def plot(ax):
        ax.bar([r["backend"] for r in rows], [r["map50"] for r in rows], color="tab:blue")
        ax.set_ylim(min(r["map50"] for r in rows) - 0.05, 1.0)
        ax.set_ylabel("mAP@.5")

    payload = {"reference": ref_label, "rows": rows, "images": len(ds), "int8_model": args.int8 or "quantized here",
               "machine": result.machine}
    files = write_outputs(args.out_dir, "parity", "Parity: PyTorch vs onnxruntime FP32 vs INT8", headers, table,
                          payload, plot)
    print_table(table, headers)
    print_json_last({**payload, "files": files})
    return 0

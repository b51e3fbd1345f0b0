"""`python -m sdk parity`: the same images through PyTorch (when torch imports and --weights is given),
onnxruntime FP32 and onnxruntime INT8, with ONE pre-processing and ONE post-processing: mAP of each and the
largest raw-output difference from the reference (PyTorch, else ORT FP32)."""
import sys

from ..quant.cli_args import add_calibration_args
from .common import add_data_args, print_json_last, print_table


CONFIDENT = 0.25  # objectness above which a candidate box counts for the box difference


def add_arguments(p):
    add_calibration_args(p, required=False)
    add_data_args(p)
    p.add_argument("--int8", default=None, help="INT8 ONNX to compare (default: quantize --model with --calib)")
    p.add_argument("--weights", default=None, help="PyTorch checkpoint for the PyTorch column (needs torch)")
    p.add_argument("--max-images", type=int, default=None, help="only the first N images of --data")
    p.add_argument("--out-dir", required=True, help="folder for parity.md / .json / .png")


def _backends(args, ws_tmp):
    """{label: fn(x) -> raw (1, boxes, 5+nc) array}."""
    import importlib.util

    from ..layouts import canonical_infer
    from ..runners.onnxruntime import OnnxRuntimeRunner

    fns = {}
    if args.weights:
        if importlib.util.find_spec("torch") is None:
            print("parity: torch is not installed, PyTorch column skipped", file=sys.stderr)
        else:
            import torch

            from ..models.checkpoint import load_checkpoint

            model, _ = load_checkpoint(args.weights, fuse=True)
            model = model.float().eval()

            def torch_fn(x):
                with torch.no_grad():
                    return model(torch.from_numpy(x)).numpy()

            fns["pytorch"] = torch_fn
    for label, path in (("ort fp32", args.model), ("ort int8", ws_tmp)):
        runner = OnnxRuntimeRunner(path, threads=args.threads).load()
        fns[label] = canonical_infer(runner)  # any layout -> the (1, boxes, 5+nc) rows (sdk/layouts.py)
    return fns


def run(args):
    import os
    import tempfile

    import numpy as np

    from ..data.datasets import load_dataset
    from ..data.images import read_image
    from ..errors import SDKError
    from ..evaluation.evaluate import EVAL_CONF, EVAL_IOU, class_mapping, score_predictions
    from ..postprocess import postprocess
    from ..preprocess import Preprocessor
    from ..quant.analyses import write_outputs
    from ..quant.cli_args import workspace_from_args
    from ..quant.layers import check_float_model, load_model, metadata_of

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
                ws.variant(ws_plan(), output=int8)
        elif not os.path.isfile(int8):
            raise SDKError(f"--int8 {int8}: file not found, expected an INT8 ONNX")
        fns = _backends(args, int8)
        ds = load_dataset(args.data, names=meta.names, split=args.split, images=args.images)
        if args.max_images is not None:
            if args.max_images < 1:
                raise SDKError(f"--max-images: got {args.max_images}, expected at least 1")
            ds.samples = ds.samples[:args.max_images]
        mapping = class_mapping(meta.names, ds)
        pre = Preprocessor(meta)
        ref_label = next(iter(fns))
        preds = {k: [] for k in fns}
        diff = {k: {"boxes_px": 0.0, "scores": 0.0, "boxes_px_all": 0.0} for k in fns}
        compared = set()
        for s in ds.samples:
            x, lb = pre(read_image(s.path))
            raw = {k: fn(x) for k, fn in fns.items()}
            # Boxes the reference is confident about are the ones that matter: far-off low-objectness
            # candidates can differ by hundreds of pixels in w/h and never survive NMS.
            confident = raw[ref_label][..., 4] >= CONFIDENT
            for k, out in raw.items():
                if out.shape == raw[ref_label].shape:  # NMS inside a graph: rows differ, detections compared only
                    compared.add(k)
                    d = np.abs(out - raw[ref_label])
                    diff[k]["boxes_px_all"] = max(diff[k]["boxes_px_all"], float(d[..., :4].max()))
                    if confident.any():
                        diff[k]["boxes_px"] = max(diff[k]["boxes_px"], float(d[..., :4][confident].max()))
                    diff[k]["scores"] = max(diff[k]["scores"], float(d[..., 4:].max()))
                det = postprocess(out[0], lb, meta.names, EVAL_CONF, EVAL_IOU, 300)
                preds[k].append({"boxes": det.boxes.astype(np.float64), "scores": det.scores.astype(np.float64),
                                 "classes": mapping[det.class_ids] if len(det) else det.class_ids})
        for k in set(fns) - compared:
            diff[k] = {key: float("nan") for key in diff[k]}
        rows = []
        for k in fns:
            sc = score_predictions(ds, preds[k])
            rows.append({"backend": k, "map50": sc["map50"], "map50_95": sc["map50_95"],
                         "max_diff_boxes_px": diff[k]["boxes_px"], "max_diff_scores": diff[k]["scores"],
                         "max_diff_boxes_px_all": diff[k]["boxes_px_all"]})
    table = [[r["backend"], f"{r['map50']:.4f}", f"{r['map50_95']:.4f}", f"{r['max_diff_boxes_px']:.3f}",
              f"{r['max_diff_scores']:.4f}"] for r in rows]
    headers = ["backend", "mAP@.5", "mAP@.5:.95", f"max box diff px vs {ref_label} (obj >= {CONFIDENT})",
               f"max score diff vs {ref_label}"]

    def plot(ax):
        ax.bar([r["backend"] for r in rows], [r["map50"] for r in rows], color="tab:blue")
        ax.set_ylim(min(r["map50"] for r in rows) - 0.05, 1.0)
        ax.set_ylabel("mAP@.5")

    payload = {"reference": ref_label, "rows": rows, "images": len(ds), "int8_model": args.int8 or "quantized here"}
    files = write_outputs(args.out_dir, "parity", "Parity: PyTorch vs onnxruntime FP32 vs INT8", headers, table,
                          payload, plot)
    print_table(table, headers)
    print_json_last({**payload, "files": files})
    return 0


def ws_plan():
    from ..precision.plan import PrecisionPlan

    return PrecisionPlan(default="int8")

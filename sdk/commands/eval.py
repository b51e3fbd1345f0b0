"""`python -m sdk eval`: mAP@.5 and mAP@.5:.95 (COCO, and the official YOLOv7 metric) on labelled data."""
from ..data.datasets import load_dataset
from ..evaluation.evaluate import EVAL_CONF, EVAL_IOU, evaluate
from .args import add_data, add_model_args
from .common import detector_from_args, print_json_last, print_table


def add_arguments(p):
    add_model_args(p, conf=EVAL_CONF, iou=EVAL_IOU)
    add_data(p)
    p.add_argument("--save-json", default=None,
                   help="write predictions as COCO results json, and the ground truth beside it as "
                        "<stem>.gt.json (image records with file_name, same ids): pycocotools runs on the pair as is")
    p.add_argument("--save-gt", default=None, help="where the ground-truth COCO json goes (default: beside "
                                                   "--save-json)")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="write pr_curve.png, f1/p/r_curve.png and confusion_matrix.png here")


def run(args):
    det = detector_from_args(args)
    ds = load_dataset(args.data, names=list(det.names), split=args.split, images=args.images)
    r = evaluate(det, ds, save_json=args.save_json, save_gt=args.save_gt, plots_dir=args.plots)
    print_table([[ds.layout, r["images"], r["boxes"], f"{r['map50']:.4f}", f"{r['map50_95']:.4f}",
                  f"{r['official_map50']:.4f}", f"{r['official_map50_95']:.4f}", f"{r['precision']:.3f}",
                  f"{r['recall']:.3f}"]],
                ["data", "images", "boxes", "mAP@.5", "mAP@.5:.95", "YOLOv7 mAP@.5", "YOLOv7 mAP@.5:.95", "P", "R"])
    print("mAP columns: COCO metric (pycocotools-equivalent); YOLOv7 columns: the official test.py metric")
    print_json_last({"map50": r["map50"], "map50_95": r["map50_95"], "images": r["images"], "boxes": r["boxes"],
                     "official_map50": r["official_map50"], "official_map50_95": r["official_map50_95"],
                     "precision": r["precision"], "recall": r["recall"], "model": args.model,
                     "backend": det.runner.backend, "conf": args.conf, "iou": args.iou,
                     "per_class": _per_class(ds.names, r), "gt_json": r.get("gt_json"), "plots": r.get("plots")})
    return 0


def _per_class(names, r):
    """Per-class AP from the COCO evaluator (None for a class with no targets)."""
    return {n: {"ap50": a50, "ap50_95": a} for n, a50, a in zip(names, r["per_class_ap50"], r["per_class"])}

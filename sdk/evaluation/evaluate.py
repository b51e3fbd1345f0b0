"""Run a detector over a labelled dataset and score it with both metrics."""
import json
from pathlib import Path

import numpy as np

from ..data.images import read_image
from ..errors import SDKError
from ..fileio import write_text_atomic
from .metrics import coco_map, yolo_map

EVAL_CONF = 0.001  # official test.py settings
EVAL_IOU = 0.65


def class_mapping(model_names, dataset):
    """Model class index -> dataset class index (by name when names agree, else by position)."""
    ds_names = list(dataset.names)
    if dataset.layout in ("coco", "voc") and all(n in ds_names for n in model_names):
        return np.asarray([ds_names.index(n) for n in model_names], np.int64)
    if len(model_names) < len(ds_names):
        raise SDKError(f"data {dataset.root}: has {len(ds_names)} classes, expected at most the model's "
                       f"{len(model_names)} ({', '.join(model_names)})")
    return np.arange(len(model_names), dtype=np.int64)


def predictions_to_coco(dataset, preds, decimals=3):
    out = []
    for s, p in zip(dataset.samples, preds):
        for box, score, c in zip(p["boxes"], p["scores"], p["classes"]):
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append({"image_id": s.image_id, "category_id": dataset.category_ids[int(c)],
                        "bbox": [round(x1, decimals), round(y1, decimals), round(x2 - x1, decimals),
                                 round(y2 - y1, decimals)], "score": round(float(score), 5)})
    return out


def score_predictions(dataset, preds):
    gts = [{"boxes": s.boxes, "classes": s.classes, "crowd": s.crowd} for s in dataset.samples]
    nc = len(dataset.names)
    coco = coco_map(gts, preds, nc)
    yolo = yolo_map(gts, preds, nc)
    return {"map50": coco["map50"], "map50_95": coco["map50_95"], "official_map50": yolo["map50"],
            "official_map50_95": yolo["map50_95"], "precision": yolo["precision"], "recall": yolo["recall"],
            "per_class_ap50": coco["per_class_ap50"], "per_class": coco["per_class"]}


def run_predictions(detect_fn, dataset, mapping, progress=True):
    """`detect_fn(bgr) -> Detections` over every sample; returns per-image prediction dicts."""
    from ..progress import progress_bar

    preds = []
    for s in progress_bar(dataset.samples, desc="eval", disable=not progress):
        d = detect_fn(read_image(s.path))
        preds.append({"boxes": d.boxes.astype(np.float64), "scores": d.scores.astype(np.float64),
                      "classes": mapping[d.class_ids] if len(d) else d.class_ids})
    return preds


def gt_path_for(save_json):
    """Where the ground truth goes beside a predictions file: `preds.json` -> `preds.gt.json`."""
    p = Path(save_json)
    return p.with_name(p.stem + ".gt.json")


def evaluate(detector, dataset, save_json=None, progress=True, save_gt=None, plots_dir=None):
    """mAP of a Detector on a LabelledDataset (use conf 0.001 / IoU 0.65 for numbers comparable to test.py).

    `save_json`: COCO-results predictions; the ground truth is written beside it as COCO json (`save_gt`, default
    `<stem>.gt.json`) with `file_name` in each image record and the same image ids, so pycocotools runs on the pair
    as is (COCO-json datasets keep their own ids). `plots_dir`: PR curves, F1-vs-confidence, confusion matrix.
    """
    mapping = class_mapping(list(detector.names), dataset)
    preds = run_predictions(detector, dataset, mapping, progress)
    result = score_predictions(dataset, preds)
    result.update(images=len(dataset), boxes=dataset.num_boxes,
                  predictions=int(sum(len(p["scores"]) for p in preds)))
    if save_json:
        write_text_atomic(save_json, json.dumps(predictions_to_coco(dataset, preds)), "save_json")
        save_gt = save_gt or gt_path_for(save_json)
    if save_gt:
        write_text_atomic(save_gt, json.dumps(dataset.to_coco()), "save_gt")
        result["gt_json"] = str(save_gt)
    if plots_dir:
        from .plots import save_eval_plots

        result["plots"] = [str(p) for p in save_eval_plots(dataset, preds, plots_dir)]
    return result

"""mAP of a PyTorch YOLO model during training, through the SDK's own evaluation (same letterbox and NMS as
the deployed ONNX model)."""
import numpy as np

from ..evaluation.evaluate import EVAL_CONF, EVAL_IOU, class_mapping, run_predictions, score_predictions
from ..metadata import ModelMetadata
from ..postprocess import postprocess
from ..preprocess import Preprocessor


def torch_detect_fn(model, imgsz, conf=EVAL_CONF, iou=EVAL_IOU, max_det=300):
    """`fn(bgr) -> Detections` with a torch model in eval mode."""
    import torch

    meta = ModelMetadata(names=list(model.names), imgsz=(imgsz, imgsz), stride=int(max(model.stride)))
    pre = Preprocessor(meta)

    def detect(bgr):
        x, lb = pre(bgr)
        with torch.no_grad():
            pred = model(torch.from_numpy(x))[0].numpy()
        return postprocess(pred, lb, meta.names, conf, iou, max_det)

    return detect


def fitness(result):
    """The official train.py choice of 'best': 0.1 x mAP@.5 + 0.9 x mAP@.5:.95."""
    return 0.1 * result["map50"] + 0.9 * result["map50_95"]


def validate(model, dataset, imgsz, progress=False):
    was_training = model.training
    model.eval()
    try:
        preds = run_predictions(torch_detect_fn(model, imgsz), dataset, class_mapping(list(model.names), dataset),
                                progress)
    finally:
        model.train(was_training)
    r = score_predictions(dataset, preds)
    out = {k: float(r[k]) for k in ("map50", "map50_95", "official_map50", "official_map50_95", "precision",
                                     "recall")}
    out["fitness"] = fitness(out)
    out["predictions"] = int(np.sum([len(p["scores"]) for p in preds]))
    return out

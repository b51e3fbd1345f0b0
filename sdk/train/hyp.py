"""Training hyper-parameters: the official YOLOv7 `data/hyp.scratch.tiny.yaml` values."""

HYP_TINY = {
    "lr0": 0.01,  # initial learning rate (SGD)
    "lrf": 0.01,  # final learning rate = lr0 * lrf (cosine)
    "momentum": 0.937,
    "weight_decay": 0.0005,
    "warmup_epochs": 3.0,
    "warmup_momentum": 0.8,
    "warmup_bias_lr": 0.1,
    "box": 0.05,  # CIoU box loss gain
    "cls": 0.5,  # class BCE gain
    "cls_pw": 1.0,
    "obj": 1.0,  # objectness BCE gain (scaled with image size)
    "obj_pw": 1.0,
    "anchor_t": 4.0,  # a target matches an anchor when their side ratios are within this factor
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "translate": 0.1,
    "scale": 0.5,
    "fliplr": 0.5,
    "mosaic": 1.0,
}


def scaled_loss_gains(hyp, nc, nl, imgsz):
    """train.py scales the gains to the number of classes, detection levels and image size."""
    out = dict(hyp)
    out["box"] = hyp["box"] * 3.0 / nl
    out["cls"] = hyp["cls"] * nc / 80.0 * 3.0 / nl
    out["obj"] = hyp["obj"] * (imgsz / 640.0) ** 2 * 3.0 / nl
    return out

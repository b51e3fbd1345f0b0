"""YOLO post-processing in vectorised numpy: confidence filter, class-aware NMS, boxes back to the image.

Follows the official `non_max_suppression`: score = objectness x class score (objectness alone for one-class
models, whose class score carries no information), candidates above `conf`, greedy NMS per class
(class offset trick), at most `max_det` boxes.
"""
import numpy as np

from .detections import Detections

MAX_WH = 4096.0  # class offset for batched NMS, larger than any input side
MAX_NMS = 30000  # candidates kept before NMS, highest score first


def xywh2xyxy(x):
    y = np.empty_like(x)
    half = x[:, 2:4] / 2
    y[:, 0:2] = x[:, 0:2] - half
    y[:, 2:4] = x[:, 0:2] + half
    return y


def box_iou_one(box, boxes):
    """IoU of one xyxy box against many."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / (area + areas - inter + 1e-9)


def nms(boxes, scores, iou_thres, max_det=300):
    """Greedy NMS; returns indices of kept boxes, highest score first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < max_det:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[box_iou_one(boxes[i], boxes[rest]) <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def yolo_candidates(pred, conf_thres, multi_label=False):
    """(boxes xyxy, scores, class ids) of one image's raw `(boxes, 5+nc)` output above `conf_thres`."""
    pred = pred[pred[:, 4] > conf_thres]
    nc = pred.shape[1] - 5
    if nc == 1:
        cls_scores = pred[:, 4:5]
    else:
        cls_scores = pred[:, 5:] * pred[:, 4:5]
    boxes = xywh2xyxy(pred[:, :4])
    if multi_label and nc > 1:
        i, j = np.nonzero(cls_scores > conf_thres)
        return boxes[i], cls_scores[i, j], j
    j = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(j)), j]
    keep = scores > conf_thres
    return boxes[keep], scores[keep], j[keep]


def postprocess(pred, letterbox, names=(), conf_thres=0.25, iou_thres=0.45, max_det=300, classes=None,
                agnostic=False, multi_label=False):
    """One image's `(boxes, 5+nc)` network output -> Detections in original-image pixels."""
    boxes, scores, cls = yolo_candidates(np.asarray(pred, np.float32), conf_thres, multi_label)
    if classes is not None:
        keep = np.isin(cls, classes)
        boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
    if len(scores) > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        boxes, scores, cls = boxes[top], scores[top], cls[top]
    if not len(scores):
        return Detections.empty(names)
    offset = 0.0 if agnostic else cls[:, None].astype(np.float32) * MAX_WH
    keep = nms(boxes + offset, scores, iou_thres, max_det)
    out = letterbox.to_original(boxes[keep]) if letterbox is not None else boxes[keep]
    return Detections(out.astype(np.float32), scores[keep].astype(np.float32), cls[keep].astype(np.int64),
                      tuple(names))

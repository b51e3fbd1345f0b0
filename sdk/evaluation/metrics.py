"""Detection metrics in numpy.

`coco_map` follows pycocotools' bbox evaluation (area 'all', 100 detections per image, greedy matching in score
order, crowd/difficult boxes ignored, 101-point interpolated precision). `yolo_map` follows the official YOLOv7
test.py (each prediction keeps its best-IoU target for all thresholds, AP by trapezoidal integration of the
101-point interpolated curve), so both published columns can be reproduced.
"""
import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a, b):
    """Pairwise IoU of xyxy boxes, (len(a), len(b))."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float64)
    a, b = a.astype(np.float64), b.astype(np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _coco_iou(dt, gt, crowd):
    """pycocotools IoU: for crowd targets the union is the detection's own area."""
    iou = box_iou(dt, gt)
    if crowd.any() and len(dt):
        a, b = dt.astype(np.float64), gt.astype(np.float64)
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
        area_d = np.prod(a[:, 2:] - a[:, :2], axis=1)
        iou[:, crowd] = (inter / area_d[:, None])[:, crowd]
    return iou


def coco_map(gts, preds, num_classes, max_dets=100):
    """COCO mAP. `gts`/`preds`: per image (in image-id order) dicts with boxes (xyxy), classes, crowd / scores.

    Returns {'map50', 'map50_95', 'per_class': [ap50_95 or None], 'per_class_ap50': [...]}.
    """
    T = len(IOU_THRESHOLDS)
    precision = -np.ones((T, len(RECALL_POINTS), num_classes))
    for k in range(num_classes):
        scores, matched, ignored, npig = [], [], [], 0
        for gt, pr in zip(gts, preds):
            gsel, psel = gt["classes"] == k, pr["classes"] == k
            gboxes, gcrowd = gt["boxes"][gsel], gt["crowd"][gsel]
            order = np.argsort(-pr["scores"][psel], kind="mergesort")[:max_dets]
            dboxes, dscores = pr["boxes"][psel][order], pr["scores"][psel][order]
            gorder = np.argsort(gcrowd, kind="mergesort")  # non-ignored targets first
            gboxes, gcrowd = gboxes[gorder], gcrowd[gorder]
            npig += int((~gcrowd).sum())
            iou = _coco_iou(dboxes, gboxes, gcrowd)
            dtm = np.zeros((T, len(dboxes)), bool)
            dtig = np.zeros((T, len(dboxes)), bool)
            for t, thr in enumerate(IOU_THRESHOLDS):
                gtm = np.zeros(len(gboxes), bool)
                for d in range(len(dboxes)):
                    best, m = min(thr, 1 - 1e-10), -1
                    for g in range(len(gboxes)):
                        if gtm[g] and not gcrowd[g]:
                            continue
                        if m > -1 and not gcrowd[m] and gcrowd[g]:
                            break
                        if iou[d, g] < best:
                            continue
                        best, m = iou[d, g], g
                    if m == -1:
                        continue
                    dtig[t, d] = gcrowd[m]
                    dtm[t, d] = True
                    gtm[m] = True
            scores.append(dscores)
            matched.append(dtm)
            ignored.append(dtig)
        if npig == 0:
            continue
        s = np.concatenate(scores) if scores else np.zeros(0)
        inds = np.argsort(-s, kind="mergesort")
        dtm = np.concatenate(matched, axis=1)[:, inds]
        dtig = np.concatenate(ignored, axis=1)[:, inds]
        tps = np.cumsum(dtm & ~dtig, axis=1).astype(float)
        fps = np.cumsum(~dtm & ~dtig, axis=1).astype(float)
        for t in range(T):
            tp, fp = tps[t], fps[t]
            rc = tp / npig
            pr = tp / (fp + tp + np.spacing(1))
            q = np.zeros(len(RECALL_POINTS))
            if len(pr):
                pr = np.maximum.accumulate(pr[::-1])[::-1]
                idx = np.searchsorted(rc, RECALL_POINTS, side="left")
                valid = idx < len(pr)
                q[valid] = pr[idx[valid]]
            precision[t, :, k] = q
    per_class, per_class50 = [], []
    for k in range(num_classes):
        p = precision[:, :, k]
        per_class.append(float(p.mean()) if (p > -1).any() else None)
        per_class50.append(float(p[0].mean()) if (p[0] > -1).any() else None)
    valid = precision > -1
    return {"map50_95": float(precision[valid].mean()) if valid.any() else 0.0,
            "map50": float(precision[0][valid[0]].mean()) if valid[0].any() else 0.0,
            "per_class": per_class, "per_class_ap50": per_class50}


def _compute_ap(recall, precision):
    mrec = np.concatenate(([0.0], recall, [recall[-1] + 0.01]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return np.trapezoid(np.interp(x, mrec, mpre), x)


def match_official(gts, preds):
    """test.py's matching: (tp (n, T) bool, conf, predicted class, target classes), sorted by confidence."""
    T = len(IOU_THRESHOLDS)
    tp_all, conf_all, pcls_all, tcls_all = [], [], [], []
    for gt, pr in zip(gts, preds):
        keep = ~gt["crowd"]
        tboxes, tcls = gt["boxes"][keep], gt["classes"][keep]
        order = np.argsort(-pr["scores"], kind="stable")
        pboxes, pscores, pcls = pr["boxes"][order], pr["scores"][order], pr["classes"][order]
        correct = np.zeros((len(pboxes), T), bool)
        detected = set()
        for c in np.unique(tcls):
            ti, pi = np.nonzero(tcls == c)[0], np.nonzero(pcls == c)[0]
            if not len(pi):
                continue
            iou = box_iou(pboxes[pi], tboxes[ti])
            best, idx = iou.max(1), iou.argmax(1)
            for j in np.nonzero(best > IOU_THRESHOLDS[0])[0]:
                d = int(ti[idx[j]])
                if d not in detected:
                    detected.add(d)
                    correct[pi[j]] = best[j] > IOU_THRESHOLDS
                    if len(detected) == len(tcls):
                        break
        tp_all.append(correct)
        conf_all.append(pscores)
        pcls_all.append(pcls)
        tcls_all.append(tcls)
    tp = np.concatenate(tp_all) if tp_all else np.zeros((0, T), bool)
    conf = np.concatenate(conf_all) if conf_all else np.zeros(0)
    pcls = np.concatenate(pcls_all) if pcls_all else np.zeros(0, int)
    tcls = np.concatenate(tcls_all) if tcls_all else np.zeros(0, int)
    order = np.argsort(-conf, kind="stable")
    return tp[order], conf[order], pcls[order], tcls


def official_curves(gts, preds):
    """Per target class: AP at each IoU threshold, precision and recall against confidence (at IoU .5, on the grid
    `px`), and the precision-recall curve at IoU .5, as the official ap_per_class computes them."""
    tp, conf, pcls, tcls = match_official(gts, preds)
    T = len(IOU_THRESHOLDS)
    px = np.linspace(0, 1, 1000)
    classes, ap, p_curve, r_curve, pr = [], [], [], [], []
    for c in np.unique(tcls):
        sel = pcls == c
        n_l, n_p = int((tcls == c).sum()), int(sel.sum())
        classes.append(int(c))
        if n_p == 0 or n_l == 0:
            ap.append(np.zeros(T))
            p_curve.append(np.zeros_like(px))
            r_curve.append(np.zeros_like(px))
            pr.append((np.zeros(0), np.zeros(0)))
            continue
        fpc = (1 - tp[sel]).cumsum(0)
        tpc = tp[sel].cumsum(0)
        recall = tpc / (n_l + 1e-16)
        prec = tpc / (tpc + fpc)
        r_curve.append(np.interp(-px, -conf[sel], recall[:, 0], left=0))
        p_curve.append(np.interp(-px, -conf[sel], prec[:, 0], left=1))
        ap.append(np.array([_compute_ap(recall[:, j], prec[:, j]) for j in range(T)]))
        pr.append((recall[:, 0], prec[:, 0]))
    return {"classes": classes, "ap": np.stack(ap) if ap else np.zeros((0, T)), "px": px,
            "precision": np.stack(p_curve) if p_curve else np.zeros((0, len(px))),
            "recall": np.stack(r_curve) if r_curve else np.zeros((0, len(px))), "pr": pr}


def yolo_map(gts, preds, num_classes):
    """The official YOLOv7 test.py metric: returns {'map50', 'map50_95', 'precision', 'recall'}."""
    c = official_curves(gts, preds)
    ap, p_curve, r_curve = c["ap"], c["precision"], c["recall"]
    if not len(ap):
        return {"map50": 0.0, "map50_95": 0.0, "precision": 0.0, "recall": 0.0}
    p, r = p_curve, r_curve
    f1 = 2 * p * r / (p + r + 1e-16)
    i = int(f1.mean(0).argmax())
    return {"map50": float(ap[:, 0].mean()), "map50_95": float(ap.mean()), "precision": float(p[:, i].mean()),
            "recall": float(r[:, i].mean())}


def confusion_matrix(gts, preds, num_classes, conf=0.25, iou_thres=0.45):
    """The official ConfusionMatrix: (nc+1, nc+1) counts, rows predicted class, columns true class, the last
    row/column 'background' (missed targets / false positives), at conf 0.25 and IoU 0.45 as test.py uses."""
    m = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for gt, pr in zip(gts, preds):
        keep = ~gt["crowd"]
        tb, tc = gt["boxes"][keep], gt["classes"][keep].astype(int)
        sel = pr["scores"] > conf
        pb, pc = pr["boxes"][sel], pr["classes"][sel].astype(int)
        iou = box_iou(tb, pb)
        t_idx, p_idx = np.nonzero(iou > iou_thres)
        matches = np.stack([t_idx, p_idx, iou[t_idx, p_idx]], 1) if len(t_idx) else np.zeros((0, 3))
        if len(matches):  # each target and each prediction at most once, best IoU first (as official)
            matches = matches[matches[:, 2].argsort()[::-1]]
            matches = matches[np.unique(matches[:, 1], return_index=True)[1]]
            matches = matches[matches[:, 2].argsort()[::-1]]
            matches = matches[np.unique(matches[:, 0], return_index=True)[1]]
        mt, mp = matches[:, 0].astype(int), matches[:, 1].astype(int)
        for i, c in enumerate(tc):
            j = np.nonzero(mt == i)[0]
            if len(j):
                m[pc[mp[j[0]]], c] += 1
            else:
                m[num_classes, c] += 1  # target missed
        for i, c in enumerate(pc):
            if not (mp == i).any():
                m[c, num_classes] += 1  # prediction on background
    return m

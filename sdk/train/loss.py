"""The YOLOv7 training loss (the official `ComputeLoss`, which `hyp.scratch.tiny.yaml` trains with):

- target assignment: a ground-truth box goes to every anchor whose width and height ratios to it are within
  `anchor_t`, at its own grid cell and at the two neighbouring cells nearest to its centre (so each target
  gets up to 3 cells x matching anchors per level);
- box: 1 - CIoU between the decoded prediction and the target;
- objectness: BCE against the (detached, clamped) CIoU at assigned cells and 0 elsewhere, levels weighted
  4.0 / 1.0 / 0.4 (P3 / P4 / P5);
- class: BCE on assigned cells (only with more than one class).
"""
import math

import torch
from torch import nn

LEVEL_BALANCE = {3: [4.0, 1.0, 0.4]}
# Offsets of the centre cell and its four neighbours, in units of the half cell `g`.
NEIGHBOURS = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32)


def bbox_ciou(box1, box2, eps=1e-7):
    """Complete IoU of paired boxes given as (n, 4) cx, cy, w, h."""
    b1x1, b1x2 = box1[:, 0] - box1[:, 2] / 2, box1[:, 0] + box1[:, 2] / 2
    b1y1, b1y2 = box1[:, 1] - box1[:, 3] / 2, box1[:, 1] + box1[:, 3] / 2
    b2x1, b2x2 = box2[:, 0] - box2[:, 2] / 2, box2[:, 0] + box2[:, 2] / 2
    b2y1, b2y2 = box2[:, 1] - box2[:, 3] / 2, box2[:, 1] + box2[:, 3] / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * \
            (torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)).clamp(0)
    w1, h1 = box1[:, 2], box1[:, 3] + eps
    w2, h2 = box2[:, 2], box2[:, 3] + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)  # enclosing box
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = (box2[:, 0] - box1[:, 0]) ** 2 + (box2[:, 1] - box1[:, 1]) ** 2  # centre distance squared
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


class YoloLoss:
    """`loss, items = YoloLoss(model, hyp)(level_maps, targets)`; targets (n, 6): image, class, cx, cy, w, h
    (normalised 0..1). `loss` is summed over the batch (x batch size, as official); items: box, obj, cls."""

    def __init__(self, model, hyp, gr=1.0):
        det = model.detect
        self.nc, self.nl, self.na = det.nc, det.nl, det.na
        self.anchors = det.anchors  # (nl, na, 2) in grid units
        self.hyp = hyp
        self.gr = gr  # objectness target = (1 - gr) + gr * IoU
        self.balance = LEVEL_BALANCE.get(self.nl, [4.0, 1.0, 0.25, 0.06, 0.02])
        self.bce_cls = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([hyp["cls_pw"]]))
        self.bce_obj = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([hyp["obj_pw"]]))

    def __call__(self, maps, targets):
        device = targets.device
        lbox, lobj, lcls = (torch.zeros(1, device=device) for _ in range(3))
        tcls, tbox, indices, anchors = self.build_targets(maps, targets)
        for i, pi in enumerate(maps):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros_like(pi[..., 0])
            n = b.shape[0]
            if n:
                ps = pi[b, a, gj, gi]
                pxy = ps[:, :2].sigmoid() * 2.0 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors[i]
                iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox[i])
                lbox += (1.0 - iou).mean()
                tobj[b, a, gj, gi] = (1.0 - self.gr) + self.gr * iou.detach().clamp(0).to(tobj.dtype)
                if self.nc > 1:
                    t = torch.zeros_like(ps[:, 5:])
                    t[torch.arange(n), tcls[i]] = 1.0
                    lcls += self.bce_cls(ps[:, 5:], t)
            lobj += self.bce_obj(pi[..., 4], tobj) * self.balance[i]
        lbox *= self.hyp["box"]
        lobj *= self.hyp["obj"]
        lcls *= self.hyp["cls"]
        bs = maps[0].shape[0]
        loss = lbox + lobj + lcls
        return loss * bs, {"box": lbox.item(), "obj": lobj.item(), "cls": lcls.item()}

    def build_targets(self, maps, targets):
        na, nt = self.na, targets.shape[0]
        device = targets.device
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7, device=device)
        anchor_idx = torch.arange(na, device=device).float().view(na, 1).repeat(1, nt)
        # (na, nt, 7): every target once per anchor, with the anchor index appended
        t_all = torch.cat((targets.repeat(na, 1, 1), anchor_idx[:, :, None]), 2)
        g = 0.5
        off = NEIGHBOURS.to(device) * g
        for i in range(self.nl):
            anchors = self.anchors[i]
            ny, nx = maps[i].shape[2:4]
            gain[2:6] = torch.tensor([nx, ny, nx, ny], device=device, dtype=torch.float32)
            t = t_all * gain
            if nt:
                r = t[:, :, 4:6] / anchors[:, None]
                keep = torch.max(r, 1.0 / r).max(2)[0] < self.hyp["anchor_t"]
                t = t[keep]
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy
                # neighbour cells: left/up when the centre sits in the cell's left/upper half, right/down likewise
                j, k = ((gxy % 1.0 < g) & (gxy > 1.0)).T
                l, m = ((gxi % 1.0 < g) & (gxi > 1.0)).T
                sel = torch.stack((torch.ones_like(j), j, k, l, m))
                t = t.repeat((5, 1, 1))[sel]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[sel]
            else:
                t = t_all[0]
                offsets = 0
            b, c = t[:, :2].long().T
            gxy = t[:, 2:4]
            gwh = t[:, 4:6]
            gij = (gxy - offsets).long()
            gi, gj = gij.T
            a = t[:, 6].long()
            gj = gj.clamp(0, ny - 1)
            gi = gi.clamp(0, nx - 1)
            indices.append((b, a, gj, gi))
            tbox.append(torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch

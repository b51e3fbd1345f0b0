"""Output distillation for YOLO: a teacher (e.g. the unpruned model) guides a student during fine-tuning.

`OutputDistillation(teacher)` is a trainer loss hook (`sdk.train.trainer`: `hook(model, imgs, targets, preds)
-> (extra_loss, {name: float})`). On the same batch, the frozen teacher's raw per-level maps are compared with
the student's:

- objectness: binary KL(teacher || student) of the sigmoid probabilities, softened by a temperature T (x T^2,
  as Hinton et al.), over every anchor cell - it also teaches the student where there is *no* object;
- classes: the same binary KL per class, weighted by the teacher's objectness (class scores only matter where
  there is an object);
- boxes: L2 between the decoded box parameters (xy offset in cells, wh relative to the anchor) where the
  teacher is confident (objectness x best class >= `box_conf`), so the student copies good boxes, not noise.

Binary KL (not plain BCE) so a student identical to its teacher has exactly zero loss. Student and teacher
must share the head layout (anchors, levels, classes): the pruned-student / unpruned-teacher case.
"""
from dataclasses import dataclass, field

from ..errors import SDKError


@dataclass
class OutputDistillation:
    teacher: object
    weight: float = 1.0  # overall gain on the distillation loss
    obj_gain: float = 1.0
    cls_gain: float = 1.0
    box_gain: float = 0.05
    temperature: float = 1.0
    box_conf: float = 0.5
    last: dict = field(default_factory=dict)

    def __post_init__(self):
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if self.temperature <= 0:
            raise SDKError(f"distillation temperature: got {self.temperature}, expected > 0")

    def teacher_maps(self, imgs):
        """Raw per-level maps from the teacher, BatchNorm in eval mode (its statistics must not move)."""
        import torch

        self.teacher.eval()
        self.teacher.detect.train()  # the head returns raw maps in training mode; nothing in it has state
        try:
            with torch.no_grad():
                return self.teacher(imgs.to(next(self.teacher.parameters()).device))
        finally:
            self.teacher.detect.eval()

    def __call__(self, model, imgs, targets, preds):
        t_maps = self.teacher_maps(imgs)
        if len(t_maps) != len(preds) or any(t.shape != s.shape for t, s in zip(t_maps, preds)):
            raise SDKError(f"distillation teacher: got head maps {[tuple(t.shape) for t in t_maps]}, expected the "
                           f"student's {[tuple(s.shape) for s in preds]} (same anchors, levels and classes)")
        T = self.temperature
        lobj, lcls, lbox = (preds[0].new_zeros(()) for _ in range(3))
        for s, t in zip(preds, t_maps):
            t = t.to(s.dtype)
            lobj = lobj + binary_kl(s[..., 4] / T, t[..., 4] / T).mean() * T * T
            t_obj = t[..., 4].sigmoid()
            if s.shape[-1] > 5:
                kl = binary_kl(s[..., 5:] / T, t[..., 5:] / T).mean(-1) * T * T
                lcls = lcls + (kl * t_obj).sum() / t_obj.sum().clamp(min=1.0)
            conf = t_obj * (t[..., 5:].sigmoid().amax(-1) if s.shape[-1] > 5 else 1.0)
            confident = conf >= self.box_conf
            if confident.any():
                lbox = lbox + (box_params(s[confident]) - box_params(t[confident])).pow(2).sum(-1).mean()
        bs = imgs.shape[0]
        parts = {"obj": lobj * self.obj_gain, "cls": lcls * self.cls_gain, "box": lbox * self.box_gain}
        loss = sum(parts.values()) * self.weight * bs  # x batch size, like the YOLO loss it is added to
        self.last = {f"kd_{k}": float(v.detach()) for k, v in parts.items()}
        return loss, dict(self.last)


def binary_kl(student_logits, teacher_logits):
    """Elementwise KL(Bernoulli(sigmoid(t)) || Bernoulli(sigmoid(s))), computed from logits with log-sigmoids."""
    import torch.nn.functional as F

    pt = teacher_logits.sigmoid()
    log_pt, log_1mpt = F.logsigmoid(teacher_logits), F.logsigmoid(-teacher_logits)
    log_ps, log_1mps = F.logsigmoid(student_logits), F.logsigmoid(-student_logits)
    return pt * (log_pt - log_ps) + (1 - pt) * (log_1mpt - log_1mps)


def box_params(raw):
    """YOLOv7 box decoding without the grid and anchor scale: xy offset in cells, wh as a multiple of the anchor."""
    import torch

    xy = raw[..., 0:2].sigmoid() * 2 - 0.5
    wh = (raw[..., 2:4].sigmoid() * 2) ** 2
    return torch.cat((xy, wh), -1)


def check_teacher(teacher, student, path):
    """Distillation compares the raw head maps cell by cell: the heads must be alike."""
    import torch

    ts, ss = teacher.detect, student.detect
    if ts.nc != ss.nc:
        raise SDKError(f"teacher {path}: has {ts.nc} classes ({', '.join(map(str, teacher.names))}), expected "
                       f"the student's {ss.nc} ({', '.join(map(str, student.names))})")
    if (ts.nl, ts.na) != (ss.nl, ss.na) or not torch.allclose(ts.anchors, ss.anchors) or \
            list(teacher.stride) != list(student.stride):
        raise SDKError(f"teacher {path}: its head has {ts.nl} levels x {ts.na} anchors (strides "
                       f"{[int(s) for s in teacher.stride]}), expected the student's {ss.nl} x {ss.na} with the "
                       f"same anchors and strides")

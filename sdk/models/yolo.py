"""A YOLOv7 model built from the official cfg dict (the `yaml` attribute official checkpoints carry).

The cfg strings (module names, activations such as "nn.LeakyReLU(0.1)", "nc", "anchors") are parsed against
an allow-list instead of being `eval`-ed, so a checkpoint's cfg cannot run code.
"""
import copy
import math
import re

import torch
from torch import nn

from ..errors import SDKError
from .common import MP, SP, SPPCSPC, Concat, Conv, ImplicitA, ImplicitM, RepConv

ACTIVATIONS = {"LeakyReLU": nn.LeakyReLU, "ReLU": nn.ReLU, "SiLU": nn.SiLU, "Identity": nn.Identity,
               "Hardswish": nn.Hardswish, "Sigmoid": nn.Sigmoid}
_ACT_RE = re.compile(r"^nn\.(\w+)\(([^()]*)\)$")


class Detect(nn.Module):
    """YOLO detection head. `IDetect` (implicit knowledge) is the same head with ImplicitA/M around the convs.

    Training mode returns the raw per-level maps; eval mode returns decoded boxes `(N, boxes, 5 + nc)` as
    `cx, cy, w, h` in input pixels, objectness and class scores (sigmoid), written without in-place slice
    assignment so the exported graph has no ScatterND.
    """

    implicit = False

    def __init__(self, nc=80, anchors=(), ch=()):
        super().__init__()
        self.nc = nc
        self.no = nc + 5
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        a = torch.tensor(anchors).float().view(self.nl, -1, 2)
        self.register_buffer("anchors", a)  # in grid units once the stride is known
        self.register_buffer("anchor_grid", a.clone().view(self.nl, 1, -1, 1, 1, 2))  # in pixels
        self.stride = None
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)
        if self.implicit:
            self.ia = nn.ModuleList(ImplicitA(x) for x in ch)
            self.im = nn.ModuleList(ImplicitM(self.no * self.na) for _ in ch)
        self.fused = False

    def raw_maps(self, x):
        """The per-level conv outputs as (bs, na, no, ny, nx)."""
        out = []
        for i in range(self.nl):
            xi = x[i]
            if self.implicit and not self.fused:
                xi = self.im[i](self.m[i](self.ia[i](xi)))
            else:
                xi = self.m[i](xi)
            bs, _, ny, nx = xi.shape
            out.append(xi.view(bs, self.na, self.no, ny, nx))
        return out

    def level_maps(self, x):
        """The per-level maps as (bs, na, ny, nx, no): what the loss and the official format take."""
        return [r.permute(0, 1, 3, 4, 2).contiguous() for r in self.raw_maps(x)]

    def forward(self, x):
        if self.training:
            return self.level_maps(x)
        return self.decode(self.raw_maps(x))

    def decode(self, raw):
        """(bs, na, no, ny, nx) maps -> (bs, boxes, no), boxes ordered as the official (anchor, y, x) per level.

        Decoded channel-first and permuted once at the end: the element-wise ops then run over contiguous ny x nx
        planes; decoded after the permute (as the official head) every op broadcasts over an innermost axis of 2,
        which onnxruntime runs element by element (1.6 of the 12 ms of a 50 %-pruned INT8 model on 2 cores).
        The same float operations on the same values: the outputs are the official decode's."""
        z = []
        for i, xi in enumerate(raw):
            bs, na, no, ny, nx = xi.shape
            yv, xv = torch.meshgrid(torch.arange(ny, device=xi.device), torch.arange(nx, device=xi.device),
                                    indexing="ij")
            grid = torch.stack((xv, yv), 0).view(1, 1, 2, ny, nx).to(xi.dtype)
            anchors = self.anchor_grid[i].view(1, na, 2, 1, 1)  # (1, na, 1, 1, 2) in the buffer: same values
            y = xi.sigmoid()
            xy = (y[:, :, 0:2] * 2.0 - 0.5 + grid) * float(self.stride[i])
            wh = (y[:, :, 2:4] * 2) ** 2 * anchors
            z.append(torch.cat((xy, wh, y[:, :, 4:]), 2).permute(0, 1, 3, 4, 2).reshape(bs, -1, no))
        return torch.cat(z, 1)

    def fuse(self):
        """Fold ImplicitA/ImplicitM into the 1x1 convs (exactly, both are affine)."""
        if not self.implicit or self.fused:
            return
        with torch.no_grad():
            for i, conv in enumerate(self.m):
                w = conv.weight.view(conv.out_channels, -1)
                a = self.ia[i].implicit.view(-1)
                m = self.im[i].implicit.view(-1)
                conv.bias.copy_((conv.bias + w @ a) * m)
                conv.weight.mul_(m.view(-1, 1, 1, 1))
        self.fused = True


class IDetect(Detect):
    implicit = True


MODULES = {"Conv": Conv, "Concat": Concat, "MP": MP, "SP": SP, "SPPCSPC": SPPCSPC, "RepConv": RepConv,
           "Detect": Detect, "IDetect": IDetect, "nn.Upsample": nn.Upsample, "nn.MaxPool2d": nn.MaxPool2d}
CHANNEL_MODULES = (Conv, SPPCSPC, RepConv)


def _parse_arg(a, cfg):
    if not isinstance(a, str):
        return a
    if a == "None":
        return None
    if a in ("nc", "anchors"):
        return cfg[a]
    m = _ACT_RE.match(a.strip())
    if m:
        name, params = m.groups()
        if name not in ACTIVATIONS:
            raise SDKError(f"model cfg: activation nn.{name} is not supported, expected one of "
                           f"{', '.join('nn.' + k for k in ACTIVATIONS)}")
        values = [float(v) for v in params.split(",") if v.strip()]
        return ACTIVATIONS[name](*values)
    if not re.fullmatch(r"[A-Za-z_]\w*", a):
        raise SDKError(f"model cfg: argument '{a[:60]}' is not supported, expected a number, None, nc, anchors, "
                       f"a plain word such as 'nearest' or an activation nn.<Name>(<numbers>)")
    return a  # plain words such as 'nearest'


def with_activation(model: "YOLO", activation: str) -> "YOLO":
    """`model` (in place) with every cfg activation replaced by `activation` ("ReLU", "nn.LeakyReLU(0.1)", ...),
    in its modules and in its cfg (so its checkpoints rebuild with it). The weights stay: the point is to fine-tune
    them for the new activation (a Relu network quantizes better on CPUs: the conv's requantization absorbs it)."""
    spec = activation.strip()
    spec = spec if spec.startswith("nn.") else f"nn.{spec}"
    spec = spec if spec.endswith(")") else f"{spec}()"
    make = lambda: _parse_arg(spec, model.yaml)  # noqa: E731
    try:  # the cfg parser's allow-list decides, but the error names this parameter, not the cfg
        if not (_ACT_RE.match(spec) and isinstance(make(), nn.Module)):
            raise ValueError(spec)
    except (SDKError, ValueError, TypeError):
        raise SDKError(f"activation: got '{activation}', expected one of {', '.join(ACTIVATIONS)}, e.g. ReLU or "
                       f"LeakyReLU(0.1)") from None
    replaced = set()

    def rewrite(node):
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        if isinstance(node, str) and (found := _ACT_RE.match(node.strip())):
            replaced.add(found.group(1))
            return spec
        return node

    for part in ("backbone", "head"):
        model.yaml[part] = rewrite(model.yaml.get(part, []))
    old = tuple(ACTIVATIONS[n] for n in replaced)
    for m in model.modules():
        if old and isinstance(getattr(m, "act", None), old):
            m.act = make()
    return model


def make_divisible(x, divisor=8):
    return math.ceil(x / divisor) * divisor


def parse_model(cfg, ch=3):
    """Build the layer list from a cfg dict; returns (nn.Sequential, save indices)."""
    for key in ("nc", "anchors", "backbone", "head"):
        if key not in cfg:
            raise SDKError(f"model cfg: key '{key}' is missing, expected a YOLOv7 cfg with nc, anchors, "
                           f"backbone and head")
    nc, anchors = cfg["nc"], cfg["anchors"]
    gd, gw = cfg.get("depth_multiple", 1.0), cfg.get("width_multiple", 1.0)
    na = (len(anchors[0]) // 2) if isinstance(anchors, list) else anchors
    no = na * (nc + 5)
    layers, save, chs = [], [], [ch]
    for i, (f, n, name, args) in enumerate(cfg["backbone"] + cfg["head"]):
        if name not in MODULES:
            raise SDKError(f"model cfg layer {i}: module '{name}' is not supported, expected one of "
                           f"{', '.join(MODULES)}")
        m = MODULES[name]
        args = [_parse_arg(a, cfg) for a in args]
        n = max(round(n * gd), 1) if n > 1 else n
        c_in = chs[f] if isinstance(f, int) else None
        if m in CHANNEL_MODULES:
            c1, c2 = c_in, args[0]
            # Official cfgs round widths to multiples of 8; pruned cfgs carry exact widths at gw == 1.
            if c2 != no and gw != 1.0:
                c2 = make_divisible(c2 * gw, 8)
            args = [c1, c2, *args[1:]]
            if m is SPPCSPC:
                args.insert(2, n)
                n = 1
        elif m is Concat:
            c2 = sum(chs[x] for x in f)
        elif m in (Detect, IDetect):
            args = list(args[:2]) + [[chs[x] for x in f]]
            if isinstance(args[1], int):
                args[1] = [list(range(args[1] * 2))] * len(f)
            c2 = None
        else:
            c2 = c_in
        module = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
        module.i, module.f, module.type = i, f, name
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(module)
        if i == 0:
            chs = []
        chs.append(c2)
    return nn.Sequential(*layers), sorted(set(save))


class YOLO(nn.Module):
    """YOLOv7-family detector; `model.N` parameter names match official checkpoints."""

    def __init__(self, cfg, ch=3, names=None):
        super().__init__()
        self.yaml = copy.deepcopy(cfg)
        self.model, self.save = parse_model(self.yaml, ch)
        self.names = list(names) if names else [str(i) for i in range(self.yaml["nc"])]
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):  # official initialize_weights(): the checkpoints are trained so
                m.eps, m.momentum = 1e-3, 0.03
        det = self.detect
        s = 256
        with torch.no_grad():
            self.eval()
            maps = det.level_maps(self._backbone_features(torch.zeros(1, ch, s, s)))
        det.stride = torch.tensor([s / m.shape[2] for m in maps])
        det.anchors /= det.stride.view(-1, 1, 1)
        self.stride = det.stride
        self.train()

    @property
    def detect(self):
        return self.model[-1]

    def _backbone_features(self, x):
        y = []
        for m in self.model[:-1]:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        det = self.detect
        return [x if j == -1 else y[j] for j in det.f]

    def forward(self, x):
        return self.detect(self._backbone_features(x))

    def fuse(self):
        """Fold BatchNorm into convs and implicit layers into the head (inference only)."""
        for m in self.model.modules():
            if isinstance(m, Conv):
                m.fuse()
            elif isinstance(m, Detect):
                m.fuse()
        return self

    @property
    def is_fused(self):
        return not any(isinstance(m, nn.BatchNorm2d) for m in self.modules())

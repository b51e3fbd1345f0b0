"""Foreign YOLO layouts side by side: the shared checkpoint exported the way other exporters write it, each file
scored by the SDK's evaluator (no SDK metadata in the files: the layout is recognised from the graph) and timed
with onnxruntime in ONE interleaved run, next to the SDK's own export.

The YOLOv7 repository is not available here (no network), so its exporters are emulated on the same network:
  yolo (--grid)   official IDetect decode with in-place slice assignment (ScatterND), outputs (decoded, raw maps)
  anchor-free     the same decode rewritten to the YOLOv8 layout: (B, 4+nc, N), no objectness, scores = obj
                  (one class; obj x cls otherwise), transposed
  nms-ort         official --end2end for onnxruntime: the --grid decode + NonMaxSuppression / Gather, (n, 7) rows
  raw             export.py without --grid: the per-level maps, decoded by the SDK with the checkpoint's anchors

    python -m scripts.bench_layouts [--imgsz 416] [--runs 30] [--threads 2] [--out docs/layouts_bench.json]

Prints one markdown table (mAP@.5, mAP@.5:.95, delta vs the SDK export, ms p50, ratio) and ends with a JSON line.
Absolute times depend on the machine and its load: compare the ratios within one run.
"""
import argparse
import json
import os
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))
FOREIGN = ("yolo", "anchor-free", "nms-ort", "raw")


# ---- emulated exporters (torch) -----------------------------------------------------------------------------
def _official_decode(det, maps):
    """The official IDetect eval-mode decode: sigmoid, then in-place slice assignment (exports as ScatterND)."""
    import torch

    z = []
    for i, xi in enumerate(maps):
        bs, na, ny, nx, no = xi.shape
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
        y = xi.sigmoid()
        y[..., 0:2] = (y[..., 0:2] * 2.0 - 0.5 + grid) * float(det.stride[i])
        y[..., 2:4] = (y[..., 2:4] * 2) ** 2 * det.anchor_grid[i]
        z.append(y.view(bs, -1, no))
    return torch.cat(z, 1)


class _OrtNMS(__import__("torch").autograd.Function if __import__("importlib").util.find_spec("torch") else object):
    """NonMaxSuppression as the official ONNX_ORT writes it (a traced stand-in forward, the real op in the graph)."""

    @staticmethod
    def forward(ctx, boxes, scores, max_out, iou, score):
        import torch

        n = min(8, boxes.shape[1])
        return torch.stack([torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64),
                            torch.arange(n, dtype=torch.int64)], 1)

    @staticmethod
    def symbolic(g, boxes, scores, max_out, iou, score):
        return g.op("NonMaxSuppression", boxes, scores, max_out, iou, score)


def _forward_for(kind, det, max_det=300, iou=0.65, conf=0.001):
    import torch

    def forward(self, x):
        maps = self.level_maps(x)
        if kind == "raw":
            return tuple(maps)
        y = _official_decode(self, maps)
        if kind == "yolo":
            return (y, *maps)  # official --grid: export=False, forward returns (decoded, raw maps)
        nc = y.shape[-1] - 5
        scores = y[..., 4:5] if nc == 1 else y[..., 5:] * y[..., 4:5]
        if kind == "anchor-free":
            return torch.cat([y[..., :4], scores], -1).transpose(1, 2)
        # official ONNX_ORT: corners, best class, class offset, NMS, gather
        convert = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [-0.5, 0, 0.5, 0], [0, -0.5, 0, 0.5]],
                               dtype=torch.float32)
        boxes = y[..., :4] @ convert
        best, cls = scores.max(2, keepdim=True)
        nms_boxes = boxes + cls.float() * 4096.0
        sel = _OrtNMS.apply(nms_boxes, best.transpose(1, 2).contiguous(), torch.tensor([max_det]),
                            torch.tensor([iou]), torch.tensor([conf]))
        b, k = sel[:, 0], sel[:, 2]
        return torch.cat([b.unsqueeze(1).float(), boxes[b, k, :], cls[b, k, :].float(), best[b, k, :]], 1)

    return forward


def export_foreign(weights, kind, out, imgsz=416, opset=13, max_det=300, iou=0.65, conf=0.001):
    """Write `kind` (one of FOREIGN) of the checkpoint to `out` the way the other exporter does: no SDK metadata."""
    import warnings

    import onnx
    import torch

    from sdk.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(weights, fuse=True)
    model = model.float().eval()
    det = model.detect
    det.forward = types.MethodType(_forward_for(kind, det, max_det, iou, conf), det)
    names = {"yolo": ["output", "level0", "level1", "level2"], "raw": ["output", "level1", "level2"],
             "anchor-free": ["output0"], "nms-ort": ["output"]}[kind]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, imgsz, imgsz), str(out), opset_version=opset,
                          input_names=["images"], output_names=names, dynamo=False,
                          dynamic_axes={"output": {0: "n"}} if kind == "nms-ort" else None)
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    if kind in ("yolo", "nms-ort") and "ScatterND" not in ops:
        raise AssertionError(f"{kind}: the emulated official decode lost its ScatterND (ops {sorted(ops)})")
    if kind == "nms-ort" and "NonMaxSuppression" not in ops:
        raise AssertionError("nms-ort: no NonMaxSuppression in the graph")
    return Path(out)


def checkpoint_anchors(weights):
    """Anchors in pixels per level, smallest stride first, from the checkpoint's cfg (what --anchors takes)."""
    from sdk.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(weights)
    return [[float(v) for v in level] for level in model.yaml["anchors"]]


# ---- the benchmark --------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"))
    ap.add_argument("--data", default=str(SHARED / "data" / "pennfudan" / "images" / "val"))
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)

    import numpy as np

    from sdk.bench import time_interleaved  # noqa: F401 - probe
    from sdk.data.datasets import load_dataset
    from sdk.detector import Detector
    from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU, evaluate
    from sdk.layouts import ModelOptions

    raise SystemExit("see main_run")  # replaced below


if __name__ == "__main__":
    sys.exit(main())

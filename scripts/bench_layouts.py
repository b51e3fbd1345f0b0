"""Foreign YOLO layouts side by side: the shared checkpoint exported the way other exporters write it, each file
scored by the SDK's evaluator (no SDK metadata in the files: the layout is recognised from the graph) and timed
with onnxruntime in ONE interleaved run, next to the SDK's own export.

The YOLOv7 repository is not available here (no network), so its exporters are emulated on the same network:
  yolo (--grid)   official IDetect decode with in-place slice assignment (ScatterND), outputs (decoded, raw maps)
  anchor-free     the same decode rewritten to the YOLOv8 layout: (B, 4+nc, N), no objectness, scores = obj
                  (one class; obj x cls otherwise), transposed
  nms-ort         official --end2end for onnxruntime: the --grid decode + NonMaxSuppression / Gather, (n, 7) rows
  raw             export.py without --grid: the per-level maps, decoded by the SDK with the checkpoint's anchors
  efficientnms    (for engines; not in the table) the outputs of the EfficientNMS_TRT plugin (num_dets, det_boxes,
                  det_scores, det_classes) computed with ONNX ops, so the fake TensorRT engine can run them

    python -m scripts.bench_layouts [--imgsz 416] [--runs 30] [--out docs/layouts_bench.json]

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


def _ort_nms():
    """NonMaxSuppression as the official ONNX_ORT writes it: a traced stand-in forward, the real op in the graph."""
    import torch

    class OrtNMS(torch.autograd.Function):
        @staticmethod
        def forward(ctx, boxes, scores, max_out, iou, score):
            n = min(8, boxes.shape[1])
            return torch.stack([torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64),
                                torch.arange(n, dtype=torch.int64)], 1)

        @staticmethod
        def symbolic(g, boxes, scores, max_out, iou, score):
            return g.op("NonMaxSuppression", boxes, scores, max_out, iou, score)

    return OrtNMS


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
        sel = _ort_nms().apply(nms_boxes, best.transpose(1, 2).contiguous(), torch.tensor([max_det]),
                            torch.tensor([iou]), torch.tensor([conf]))
        b, k = sel[:, 0], sel[:, 2]
        if kind == "nms-ort":
            return torch.cat([b.unsqueeze(1).float(), boxes[b, k, :], cls[b, k, :].float(), best[b, k, :]], 1)
        # EfficientNMS_TRT's outputs (batch 1), written with ONNX ops so onnxruntime and the fake engine run them
        n = sel.shape[0]
        pad = max_det - n
        det_boxes = torch.nn.functional.pad(boxes[b, k, :], (0, 0, 0, pad)).unsqueeze(0)
        det_scores = torch.nn.functional.pad(best[b, k, 0], (0, pad)).unsqueeze(0)
        det_classes = torch.nn.functional.pad(cls[b, k, 0].int(), (0, pad)).unsqueeze(0)
        num = torch.full((1, 1), 1, dtype=torch.int32) * n
        return num, det_boxes, det_scores, det_classes

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
             "anchor-free": ["output0"], "nms-ort": ["output"],
             "efficientnms": ["num_dets", "det_boxes", "det_scores", "det_classes"]}[kind]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, imgsz, imgsz), str(out), opset_version=opset,
                          input_names=["images"], output_names=names, dynamo=False,
                          dynamic_axes={"output": {0: "n"}} if kind == "nms-ort" else None)
    proto = onnx.load(str(out))
    if kind == "efficientnms":  # the plugin's outputs are fixed-size (max_output_boxes), as engines declare them
        for o, dims in zip(proto.graph.output, ((1, 1), (1, max_det, 4), (1, max_det), (1, max_det))):
            for d, v in zip(o.type.tensor_type.shape.dim, dims):
                d.Clear()
                d.dim_value = v
        onnx.save(proto, str(out))
    ops = {n.op_type for n in proto.graph.node}
    if kind in ("yolo", "nms-ort", "efficientnms") and "ScatterND" not in ops:
        raise AssertionError(f"{kind}: the emulated official decode lost its ScatterND (ops {sorted(ops)})")
    if kind in ("nms-ort", "efficientnms") and "NonMaxSuppression" not in ops:
        raise AssertionError(f"{kind}: no NonMaxSuppression in the graph")
    return Path(out)


def checkpoint_anchors(weights):
    """Anchors in pixels per level, smallest stride first, from the checkpoint's cfg (what --anchors takes)."""
    from sdk.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(weights)
    return [[float(v) for v in level] for level in model.yaml["anchors"]]


# ---- the benchmark --------------------------------------------------------------------------------------------
def _session(path, threads):
    """An onnxruntime session with idle spinning off, so sessions timed interleaved do not steal each other's
    cores (see the brief: spinning threads distort interleaved timings)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def time_layouts(models, x, detectors, runs, rounds=5):
    """{label: (model ms p50, decode+NMS ms p50)} timed in interleaved rounds in this one process."""
    import time

    import numpy as np

    sessions = {k: _session(p, 2) for k, p in models.items()}
    model_ms = {k: [] for k in models}
    post_ms = {k: [] for k in models}
    for k, sess in sessions.items():  # warm-up
        sess.run(None, {"images": x})
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for k, sess in sessions.items():
            det = detectors[k]
            names = [o.name for o in sess.get_outputs()]
            for _ in range(per_round):
                t0 = time.perf_counter()
                outs = dict(zip(names, sess.run(None, {"images": x})))
                t1 = time.perf_counter()
                from sdk.postprocess import postprocess

                postprocess(det.layout.decode(outs)[0], None, det.names, 0.25, 0.45)
                t2 = time.perf_counter()
                model_ms[k].append((t1 - t0) * 1e3)
                post_ms[k].append((t2 - t1) * 1e3)
    return {k: (float(np.median(model_ms[k])), float(np.median(post_ms[k]))) for k in models}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"))
    ap.add_argument("--data", default=str(SHARED / "data" / "pennfudan" / "images" / "val"))
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)

    from sdk.data.datasets import load_dataset
    from sdk.data.images import read_image
    from sdk.report import describe_machine
    from sdk.detector import Detector
    from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU, evaluate
    from sdk.export.onnx_export import export_onnx
    from sdk.layouts import ModelOptions
    from sdk.models.checkpoint import load_checkpoint

    ds = load_dataset(args.data)
    anchors = checkpoint_anchors(args.weights)
    with tempfile.TemporaryDirectory(prefix="bench-layouts-") as tmp:
        models = {"sdk export": Path(tmp) / "sdk.onnx"}
        export_onnx(load_checkpoint(args.weights, fuse=True)[0], models["sdk export"], imgsz=args.imgsz)
        for kind in FOREIGN:
            models[kind] = export_foreign(args.weights, kind, Path(tmp) / f"{kind}.onnx", imgsz=args.imgsz)
        dets, scores = {}, {}
        for label, path in models.items():
            opts = ModelOptions() if label == "sdk export" else ModelOptions(
                names=["person"], anchors=anchors if label == "raw" else None)
            dets[label] = Detector(str(path), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU, threads=2, options=opts)
            scores[label] = evaluate(dets[label], ds, progress=False)
        x, _ = dets["sdk export"].pre(read_image(ds.samples[0].path))
        times = time_layouts(models, x, dets, args.runs)
    base = scores["sdk export"]["map50"]
    base_ms = times["sdk export"][0] + times["sdk export"][1]
    rows = []
    for label in models:
        m, p = times[label]
        rows.append({"layout": label if label == "sdk export" else dets[label].layout.name,
                     "map50": scores[label]["map50"], "map50_95": scores[label]["map50_95"],
                     "delta_map50_pt": 100 * (scores[label]["map50"] - base), "model_ms": m, "post_ms": p,
                     "ratio_vs_sdk": (m + p) / base_ms})
    print("| layout | mAP@.5 | mAP@.5:.95 | d mAP@.5 (pt) | model ms p50 | decode+NMS ms p50 | total vs SDK |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['layout']} | {r['map50']:.4f} | {r['map50_95']:.4f} | {r['delta_map50_pt']:+.2f} | "
              f"{r['model_ms']:.2f} | {r['post_ms']:.2f} | {r['ratio_vs_sdk']:.2f}x |")
    info = {"images": len(ds), "imgsz": args.imgsz, "runs": args.runs, "threads": 2, "spinning": "off",
            "machine": describe_machine(threads=2), "rows": rows}
    print(f"{len(ds)} val images at {args.imgsz}, conf {EVAL_CONF} IoU {EVAL_IOU}; onnxruntime CPU 2 threads, "
          f"spinning off, {args.runs} interleaved runs each (decode+NMS at conf 0.25)")
    if args.out:
        from sdk.fileio import write_text_atomic

        write_text_atomic(args.out, json.dumps(info, indent=1), "--out")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

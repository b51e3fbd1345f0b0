"""Where a frame's time goes outside the network, before and after the pre/post-processing rewrite, in ONE run.

    python -m scripts.bench_prepost [--model m.onnx] [--runs 60] [--threads 2] [--no-spinning] [--out prepost.json]

Frames: the shared person video (768x432), the same frames upscaled to 1920x1080 (the INTER_AREA shrink path of
a large camera frame) and the Penn-Fudan val images. For each set, interleaved one call at a time on one onnxruntime
session (production settings): model-only on a fixed input, end-to-end with today's pre/post-processing
(`sdk.detector.Detector`, the official one-pass INTER_AREA), end-to-end as the camera pipeline and `bench`
pre-process (resize="area-pyramid": exact 2x halvings of a frame at least twice the input, then INTER_AREA),
end-to-end with the original numpy code (kept frozen in tests/test_prepost_equivalence.py), and each stage
alone at the default confidence (0.25) and the evaluation one (0.001, hundreds of NMS candidates). Prints one
table; the last line is JSON. Without --model it exports the shared checkpoint at 416 into a temporary folder.
--no-spinning opens the session as the camera pipeline does (idle onnxruntime threads yield the cores to
OpenCV's resize threads between inferences).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))


def times_ms(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def video_frames(path, n):
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"error: {path}: got no frames, expected a readable video")
    return frames


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="SDK-exported ONNX (default: export the shared checkpoint)")
    p.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"))
    p.add_argument("--video", default=str(SHARED / "data" / "videos" / "one-by-one-person-detection.mp4"))
    p.add_argument("--images", default=str(SHARED / "data" / "pennfudan" / "images" / "val"))
    p.add_argument("--runs", type=int, default=60, help="timed calls per cell")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-spinning", action="store_true", help="onnxruntime's idle threads do not spin (as in the "
                                                               "camera pipeline)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import cv2

    from scripts.bench_pipeline import model_or_export
    from sdk.bench import percentiles
    from sdk.data.images import list_images, read_image
    from sdk.detector import Detector
    from sdk.postprocess import postprocess, yolo_candidates
    from sdk.preprocess import REALTIME_RESIZE, letterbox
    from sdk.report import describe_machine
    from tests.test_prepost_equivalence import reference_input, reference_nms

    tmp = tempfile.TemporaryDirectory(prefix="bench-prepost-")
    model = model_or_export(args.model, args.weights, tmp.name)
    det = Detector(model, backend="ort", threads=args.threads, **({"spin": False} if args.no_spinning else {}))
    realtime = Detector(None, runner=det.runner, resize=REALTIME_RESIZE)  # the same session
    meta = det.meta

    def old_pre(img):
        lb_img, lb = letterbox(img, tuple(meta.imgsz), tuple(meta.letterbox_color))
        return reference_input(lb_img, float(meta.scale), meta.channel_order.upper() == "RGB"), lb

    def old_post(pred, lb, conf, iou):
        boxes, scores, _ = yolo_candidates(np.asarray(pred, np.float32), conf)
        keep = reference_nms(boxes, scores, iou)
        return lb.to_original(boxes[keep])

    def old_e2e(img):
        x, lb = old_pre(img)
        return old_post(det.infer_raw(x)[0], lb, det.conf, det.iou)

    video = video_frames(args.video, 16)
    sets = {"video 768x432": video, "video upscaled 1920x1080": [cv2.resize(f, (1920, 1080)) for f in video],
            "Penn-Fudan val images": [read_image(q) for q in list_images(args.images)[:16]]}
    rows = []
    for label, frames in sets.items():
        x0, _ = det.pre(frames[0])
        preds = [(det.infer_raw(det.pre(f)[0])[0], det.pre(f)[1]) for f in frames]  # (raw output, letterbox)
        cycle = {"i": 0}

        def nxt():
            cycle["i"] = (cycle["i"] + 1) % len(frames)
            return cycle["i"]

        work = {
            "model only": lambda: det.infer_raw(x0),
            "end-to-end (SDK)": lambda: det(frames[nxt()]),
            "end-to-end (SDK, area-pyramid: camera, bench)": lambda: realtime(frames[nxt()]),
            "end-to-end (original numpy pre/post)": lambda: old_e2e(frames[nxt()]),
            "pre (SDK)": lambda: det.pre(frames[nxt()]),
            "pre (SDK, area-pyramid)": lambda: realtime.pre(frames[nxt()]),
            "pre (original)": lambda: old_pre(frames[nxt()]),
            "post conf 0.25 (SDK)": lambda: postprocess(*preds[nxt()], meta.names, 0.25, 0.45),
            "post conf 0.25 (original)": lambda: old_post(*preds[nxt()], 0.25, 0.45),
            "post conf 0.001 (SDK)": lambda: postprocess(*preds[nxt()], meta.names, 0.001, 0.65),
            "post conf 0.001 (original)": lambda: old_post(*preds[nxt()], 0.001, 0.65),
        }
        times = {k: [] for k in work}
        for fn in work.values():
            times_ms(fn, 2)  # warm-up
        for i in range(args.runs):  # one of each per step, the order rotating: load drifts hit every cell alike
            keys = list(work)
            for k in keys[i % len(keys):] + keys[:i % len(keys)]:
                times[k] += times_ms(work[k], 1)
        stats = {k: percentiles(v)["p50_ms"] for k, v in times.items()}
        cands = int(np.mean([len(yolo_candidates(pr, 0.001)[1]) for pr, _ in preds]))
        rows.append({"frames": label, "shape": list(frames[0].shape), "candidates_at_0.001": cands, "p50_ms": stats,
                     "e2e_over_model": stats["end-to-end (SDK)"] / stats["model only"],
                     "e2e_over_model_realtime": stats["end-to-end (SDK, area-pyramid: camera, bench)"]
                     / stats["model only"],
                     "e2e_over_model_original": stats["end-to-end (original numpy pre/post)"] / stats["model only"]})
    det.close()
    tmp.cleanup()

    keys = list(rows[0]["p50_ms"])
    print(f"{model}, onnxruntime CPU {args.threads} threads{', spinning off' if args.no_spinning else ''}, "
          f"{args.runs} calls per cell, interleaved one call at a time; p50 ms")
    print("| " + " | ".join(["p50 ms"] + [r["frames"] for r in rows]) + " |")
    print("|" + "---|" * (len(rows) + 1))
    for k in keys:
        print("| " + " | ".join([k] + [f"{r['p50_ms'][k]:.2f}" for r in rows]) + " |")
    print("| " + " | ".join(["end-to-end / model only (SDK)"] + [f"{r['e2e_over_model']:.3f}" for r in rows]) + " |")
    print("| " + " | ".join(["end-to-end / model only (SDK, area-pyramid)"]
                            + [f"{r['e2e_over_model_realtime']:.3f}" for r in rows]) + " |")
    print("| " + " | ".join(["end-to-end / model only (original)"]
                            + [f"{r['e2e_over_model_original']:.3f}" for r in rows]) + " |")
    print("| " + " | ".join(["NMS candidates at conf 0.001 (mean)"] + [str(r["candidates_at_0.001"]) for r in rows])
          + " |")
    where = describe_machine(threads=args.threads)
    print(f"machine: {where}")
    result = {"model": model, "threads": args.threads, "spinning": not args.no_spinning, "runs": args.runs,
              "rows": rows, "machine": where, "load_avg": list(os.getloadavg())}
    if args.out:
        from sdk.fileio import write_text_atomic

        write_text_atomic(args.out, json.dumps(result, indent=1), "--out")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

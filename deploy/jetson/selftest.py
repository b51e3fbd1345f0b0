"""Jetson self-test: from the shared model, build FP32, FP16 and INT8 engines, then measure mAP and FPS of each
next to onnxruntime, with the per-layer precisions TensorRT applied. This is how a user proves the TensorRT path
on hardware:

    deploy/jetson/selftest --onnx yolov7-tiny.onnx --data /path/to/pennfudan --calib-images /path/to/pennfudan/images/train

It refuses to run off a Jetson (the numbers would mean nothing); tests drive `run_selftest` with the fakes.
"""
import argparse
import platform
import sys
import time
from pathlib import Path

from sdk.report import print_json_last, print_table
from sdk.errors import SDKError

DEFAULT_PRECISIONS = ("fp32", "fp16", "int8")


def on_jetson(root="/"):
    return platform.machine() == "aarch64" and (Path(root) / "etc/nv_tegra_release").is_file()


def _subset(dataset, count):
    if count and count < len(dataset.samples):
        dataset.samples = dataset.samples[:count]
    return dataset


def _measure(detector, dataset, frames, runs):
    from sdk.bench import bench_detector
    from sdk.evaluation.evaluate import evaluate

    metrics = evaluate(detector, dataset, progress=False)
    timing = bench_detector(detector, frames, runs=runs, warmup=max(2, runs // 10))
    return {"map50": round(metrics["map50"], 4), "map50_95": round(metrics["map50_95"], 4),
            "model_ms": round(timing["model"]["mean_ms"], 2), "fps": round(timing["end_to_end"]["fps"], 1)}


def run_selftest(onnx, data, workdir, calib_images=None, precisions=DEFAULT_PRECISIONS, images=None, runs=50,
                 calib_batches=16, calib_batch_size=None, layer_precision=(), split="val", progress=True):
    """Build each engine, evaluate and time it next to onnxruntime; returns the table rows (dicts)."""
    from sdk.data.datasets import load_dataset
    from sdk.data.images import read_image
    from sdk.detector import Detector
    from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU
    from sdk.tensorrt import build_engine

    dataset = _subset(load_dataset(data, split=split), images)
    frames = [read_image(s.path) for s in dataset.samples[:8]]
    workdir = Path(workdir)
    rows = []
    with Detector(str(onnx), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU) as det:
        rows.append({"model": "onnxruntime (reference)", "precision": "fp32", **_measure(det, dataset, frames, runs),
                     "layers": "-", "overrides": "-", "build_s": "-"})
    for precision in precisions:
        engine = workdir / f"{Path(onnx).stem}-{precision}.engine"
        int8 = precision in ("int8", "best")
        t0 = time.perf_counter()
        report = build_engine(onnx, engine, precision=precision, calib_images=calib_images if int8 else None,
                              calib_cache=str(engine.with_suffix(".calib")) if int8 else None,
                              calib_batches=calib_batches, calib_batch_size=calib_batch_size,
                              layer_precision=list(layer_precision) if int8 else [],
                              timing_cache=str(workdir / "selftest.timing"), progress=progress)
        build_s = round(time.perf_counter() - t0, 1)
        with Detector(str(engine), backend="trt", conf=EVAL_CONF, iou=EVAL_IOU) as det:
            row = {"model": f"TensorRT {report['tensorrt']} on {(report['device'] or {}).get('name', '?')}",
                   "precision": precision, **_measure(det, dataset, frames, runs)}
        row.update(layers=" ".join(f"{k}:{v}" for k, v in sorted(report["layer_precisions"].items())),
                   overrides=report["overrides_applied"], build_s=build_s)
        rows.append(row)
    return rows


def add_arguments(p):
    p.add_argument("--onnx", required=True, help="the model exported with 'python -m sdk export' (e.g. at 416)")
    p.add_argument("--data", required=True, help="labelled data for mAP (YOLO folder, COCO json, VOC)")
    p.add_argument("--split", default="val")
    p.add_argument("--calib-images", required=True,
                   help="INT8 calibration images, not the evaluation images (e.g. pennfudan/images/train)")
    p.add_argument("--precisions", default=",".join(DEFAULT_PRECISIONS), help="comma list of fp32,fp16,int8,best")
    p.add_argument("--layer-precision", action="append", default=[], help="INT8 overrides, e.g. 'block:head:fp16'")
    p.add_argument("--images", type=int, default=None, help="evaluate on the first N images only")
    p.add_argument("--runs", type=int, default=100, help="timed runs per model")
    p.add_argument("--workdir", default="selftest-engines", help="where engines and caches go")


def run(args):
    if not on_jetson():
        raise SDKError(f"selftest: got a {platform.machine()} machine without /etc/nv_tegra_release, expected a "
                       f"Jetson with JetPack (this test proves TensorRT on hardware)")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    rows = run_selftest(args.onnx, args.data, args.workdir, args.calib_images, precisions,
                        args.images, args.runs, layer_precision=args.layer_precision, split=args.split)
    keys = ["model", "precision", "map50", "map50_95", "model_ms", "fps", "layers", "overrides", "build_s"]
    print_table([[r[k] for k in keys] for r in rows], keys)
    print_json_last({"selftest": rows})
    return 0


def main(argv=None):
    from sdk.cli import guarded

    parser = argparse.ArgumentParser(prog="deploy/jetson/selftest", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return guarded(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())

"""FP32 vs INT8 (onnxruntime QDQ) for an image classifier: held-out top-1 and model latency side by side.

    python -m scripts.bench_classify    # from the repo root; the demo: Penn-Fudan person vs background crops
    python -m scripts.bench_classify --model m.onnx --data root/ --calib root/   # yours, class folders

The demo builds a two-class folder dataset from the shared Penn-Fudan COCO labels (person boxes, and
background crops that overlap no person; train images for training/calibration, val images held out), trains
a small 3-conv CNN with torch for 16 short epochs, exports it with SDK classification metadata, then
quantizes it with `sdk.classify.quantize` and scores both with `sdk.classify.evaluate_folder`. Latency is
`sdk.bench.interleaved_model_bench` (rounds of each model interleaved), reported as a ratio because the
machine is shared. Prints a markdown table and, last, one JSON line.
"""
import argparse
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from sdk.classify import Classifier, evaluate_folder, folder_dataset
from sdk.classify.demo import demo_crops, train_demo_classifier
from sdk.classify.quantize import quantize_classifier
from sdk.data.images import read_image

SHARED = Path(os.environ.get("SDK_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def compare(model, data, calib, int8_out, calib_count=64, runs=200):
    from sdk.bench import interleaved_model_bench

    paths = [p for p, _ in folder_dataset(calib, what="calib")]
    paths = sorted(random.Random(0).sample(paths, min(calib_count, len(paths))))
    quantize_classifier(model, int8_out, paths)
    rows = {}
    # sessions timed side by side: no idle spinning (sdk.bench.benchmark_runner)
    clfs = {k: Classifier(m, backend="ort", threads=1, spin=False) for k, m in (("fp32", model), ("int8", int8_out))}
    x = clfs["fp32"].pre(read_image(paths[0]))[0]
    timing = interleaved_model_bench({k: (c.runner, x) for k, c in clfs.items()}, runs=runs)
    for k, c in clfs.items():
        ev = evaluate_folder(c, data)
        rows[k] = {"top1": ev["top1"], "images": ev["images"], "size_kb": os.path.getsize(c.runner.path) / 1024,
                   "p50_ms": timing[k]["p50_ms"]}
        c.close()
    rows["int8"]["speedup_vs_fp32"] = rows["fp32"]["p50_ms"] / rows["int8"]["p50_ms"]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="classifier ONNX with SDK metadata (default: train the demo CNN)")
    ap.add_argument("--data", help="held-out folder-per-class root (demo: Penn-Fudan val crops)")
    ap.add_argument("--calib", help="calibration folder-per-class root (demo: Penn-Fudan train crops)")
    ap.add_argument("--work", help="folder for crops and models (default: a temporary folder)")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.model:
            model, data, calib = Path(args.model), args.data, args.calib or args.data
        else:
            import torch

            torch.set_num_threads(1)  # two shared cores: a second torch thread spin-waits
            crops = demo_crops(SHARED / "data" / "pennfudan", work / "crops")
            model = train_demo_classifier(crops / "train", work / "demo-cnn.onnx")
            data, calib = crops / "val", crops / "train"
        rows = compare(model, data, calib, work / (model.stem + ".int8.onnx"), runs=args.runs)
    from sdk.report import describe_machine, print_json_last, print_table

    where = f"{describe_machine()}, onnxruntime CPU, 1 thread, no spinning"
    print(f"classifier FP32 vs INT8 QDQ ({where})")
    print_table([[k, f"{r['top1']:.4f}", r["images"], f"{r['size_kb']:.1f}", f"{r['p50_ms']:.3f}",
                  f"{rows['fp32']['p50_ms'] / r['p50_ms']:.2f}x"] for k, r in rows.items()],
                ["model", "top-1", "images", "size KB", "p50 ms (interleaved)", "speed vs fp32"])
    print_json_last({"where": where, **rows})


if __name__ == "__main__":
    main()

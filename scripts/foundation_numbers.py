"""Measure the foundation numbers: mAP of the exported shared model vs the official evaluator, and latency.

    python scripts/foundation_numbers.py [--shared ../shared] [--out-dir runs/foundation]

Exports the shared checkpoint at 416, evaluates it on the Penn-Fudan val split (conf 0.001, IoU 0.65 as the
official test.py), reads the official square-input numbers from ../shared/models/README.md, benchmarks
onnxruntime CPU with 2 threads, and prints a markdown table plus one JSON line.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path


def sdk(*args):
    p = subprocess.run([sys.executable, "-m", "sdk", *map(str, args)], capture_output=True, text=True)
    if p.returncode:
        sys.exit(p.stderr.strip().splitlines()[-1])
    return json.loads(p.stdout.strip().splitlines()[-1])


def official_square(shared):
    text = (shared / "models" / "README.md").read_text()
    cells = [c.strip() for c in next(x for x in text.splitlines() if x.startswith("| square")).strip("|").split("|")]
    return {"map50": float(cells[5]), "map50_95": float(cells[6]), "coco50": float(cells[7]),
            "coco50_95": float(cells[8])}


def cpu_name():
    from sdk.report import describe_machine

    return describe_machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--out-dir", default="runs/foundation")
    ap.add_argument("--runs", type=int, default=100)
    a = ap.parse_args()
    shared, out = Path(a.shared), Path(a.out_dir)
    onnx = out / "yolov7-tiny.onnx"
    sdk("export", "--weights", shared / "models" / "yolov7-tiny-pennfudan.pt", "--imgsz", 416, "-o", onnx,
        "--check-images", shared / "data" / "pennfudan" / "images" / "val")
    ev = sdk("eval", "--model", onnx, "--data", shared / "data" / "pennfudan" / "images" / "val",
             "--save-json", out / "preds.json")
    bench = sdk("bench", "--model", onnx, "--threads", 2, "--runs", a.runs, "--source",
                shared / "data" / "pennfudan" / "images" / "val")
    off = official_square(shared)
    print("| metric | SDK (onnxruntime) | official test.py (square) | difference |")
    print("|---|---|---|---|")
    for name, ours, ref in (("mAP@.5 (YOLOv7 metric)", ev["official_map50"], off["map50"]),
                            ("mAP@.5:.95 (YOLOv7 metric)", ev["official_map50_95"], off["map50_95"]),
                            ("mAP@.5 (COCO / pycocotools)", ev["map50"], off["coco50"]),
                            ("mAP@.5:.95 (COCO / pycocotools)", ev["map50_95"], off["coco50_95"])):
        print(f"| {name} | {ours:.4f} | {ref:.3f} | {100 * (ours - ref):+.2f} pt |")
    print(f"\nlatency on {cpu_name()}, onnxruntime CPU, 2 threads, 416x416:")
    print(f"model only p50 {bench['model_p50_ms']:.1f} ms / p95 {bench['model_p95_ms']:.1f} ms "
          f"({bench['model_fps']:.1f} FPS); end-to-end p50 {bench['e2e_p50_ms']:.1f} ms / p95 "
          f"{bench['e2e_p95_ms']:.1f} ms ({bench['e2e_fps']:.1f} FPS)")
    print(json.dumps({"eval": ev, "bench": bench, "official": off, "cpu": cpu_name()}))


if __name__ == "__main__":
    main()

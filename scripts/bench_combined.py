"""Pruning + INT8 together (the 'all combined' row): prune by feature-map clustering, fine-tune, quantize, against
the unpruned FP32 model and the official export.py FP32, all timed in ONE run.

    python -m scripts.bench_combined [--levels 0.3,0.5,0.7,0.7r16] [--round N] [--epochs 20] [--calib-method entropy] [--runs 40]
                                      [--activation ReLU] [--uint8-input] [--work /tmp/edge-prune-bench]
                                      [--docs-dir docs/pruning/combined]

The chain per level is what a user runs, one SDK command each (kept in --work, so a rerun resumes):
  python -m sdk prune --criterion fmc --level L --data ...   (BatchNorm re-estimated on 64 training images)
  python -m sdk train --weights pruned.pt --epochs E ...     (batch 8, lr0 0.01, 1 warm-up epoch, cosine, EMA,
                                                             mosaic=0, seed 0: the recipe of docs/pruning.md, sdk.experiments.prune_steps)
  python -m sdk export, then python -m sdk quantize (the default form for this CPU, conv channels padded for its
                                                    fast INT8 kernel, 32 calibration images, seed 0)
A level written 0.7r16 prunes with --round 16 (kept channels a multiple of 16), next to the exact 0.7 row.
--activation ReLU fine-tunes each pruned level with ReLU in place of the LeakyReLU (`train --activation ReLU`: the
fine-tune that recovers the pruned accuracy also learns the new activation, which onnxruntime's INT8 conv absorbs)
and adds the unpruned model fine-tuned the same way (scripts.bench_int8's --relu-epochs run).
--uint8-input adds each INT8 model again in the byte-input form (`quantize --uint8-input`: uint8 NHWC input, the
input's float conversion and QuantizeLinear cancelled, exact), so its gain is measured in the same run.
Rows: official export.py FP32 (the speed reference), unpruned SDK FP32 and INT8, and per level FP32 and INT8.
Every checkpoint is exported again by this tree (seconds) and quantized again from the kept ranges, so a changed
export or INT8 path is always what is measured. Latency: onnxruntime CPU, batch 1, 416, model only, sessions
timed one call each in turn, their threads spinning in runs only (sdk.quant.speed, sdk.bench.benchmark_runner);
ratios of the p50s and of the fastest calls (the latter nearer an idle machine when other jobs share the cores).
mAP: Penn-Fudan val through onnxruntime (conf 0.001, IoU 0.65), with a bootstrap over the val images (200
resamples, seed 0) for the noise of a 30-image split. Writes <docs-dir>/combined.md and .json; the last stdout
line is JSON.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))


def score(path, val):
    """mAP@.5 and mAP@.5:.95 on `val` through onnxruntime (what `sdk eval` reports), plus the spread of mAP@.5
    over 200 bootstrap resamples of the val images (seed 0): the noise of a small split."""
    import types

    import numpy as np

    from sdk.detector import Detector
    from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU, class_mapping, run_predictions, score_predictions

    with Detector(str(path), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU, threads=2) as det:
        preds = run_predictions(det, val, class_mapping(list(det.names), val), progress=False)
    r = score_predictions(val, preds)
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(200):
        idx = rng.integers(0, len(val), len(val))
        sub = types.SimpleNamespace(samples=[val.samples[i] for i in idx], names=val.names)
        boot.append(score_predictions(sub, [preds[i] for i in idx])["map50"])
    return {"map50": round(r["map50"], 4), "map50_95": round(r["map50_95"], 4),
            "map50_boot_std": round(float(np.std(boot)), 4)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"))
    p.add_argument("--data", default=str(SHARED / "data" / "pennfudan"))
    p.add_argument("--levels", default="0.3,0.5,0.7",
                   help="pruning levels, comma-separated; LEVELrN rounds that level's kept channels to a multiple "
                        "of N (prune --round N), e.g. 0.7r16")
    p.add_argument("--round", type=int, default=0, help="prune --round for the levels without rN (default 0: exact)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--calib-method", default="entropy", choices=("entropy", "minmax", "percentile"))
    p.add_argument("--calib-count", type=int, default=32)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads for timing")
    p.add_argument("--train-threads", type=int, default=1, help="torch threads for pruning and fine-tuning")
    p.add_argument("--activation", default=None, help="fine-tune with this activation (e.g. ReLU; default: the cfg's)")
    p.add_argument("--uint8-input", action="store_true",
                   help="also each INT8 model in the byte-input form (quantize --uint8-input), timed in the same run")
    p.add_argument("--work", default="/tmp/edge-prune-bench")
    p.add_argument("--docs-dir", default="docs/pruning/combined")
    args = p.parse_args(argv)

    import torch

    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.bench import BENCH_SPIN
    from sdk.experiments.prune_steps import Recipe
    from sdk.export.onnx_export import export_onnx
    from sdk.models.checkpoint import load_checkpoint
    from sdk.quant.cpu import choose_form, read_cpu
    from sdk.report import describe_machine
    from sdk.runners.onnxruntime import spin_text
    from sdk.quant.flops import model_gflops
    from sdk.quant.layers import load_model, metadata_of
    from sdk.quant.quantize import QuantConfig, calibrate, quantize
    from sdk.quant.speed import time_side_by_side
    from scripts.bench_int8 import export_official_style, fine_tuned

    torch.set_num_threads(args.train_threads)
    levels = [parse_level(v, args.round) for v in args.levels.split(",") if v.strip()]
    work = Path(args.work)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    recipes = {lv: Recipe(args.weights, args.data, work, args.epochs, lv[0], threads=args.train_threads, log=log,
                          round_to=lv[1], activation=args.activation) for lv in levels}
    first = recipes[levels[0]]
    base = first.unpruned()
    val = first.val()
    tmp = tempfile.TemporaryDirectory(prefix="bench-combined-")
    d = Path(tmp.name)
    calib = calibration_images(str(Path(args.data) / "images" / "train"), args.calib_count, 0, "--calib")

    def add_int8(label, fp32, name, params, level):
        """Calibrate once (the ranges are kept in --work: they depend only on the FP32 model and the images), then
        quantize with this tree's `quantize` every run (seconds), so a changed INT8 path is always measured; with
        --uint8-input also the byte-input form of the same ranges (its own row)."""
        cache = work / "int8" / f"{name}-{args.calib_method}-c{args.calib_count}.ranges.json"
        if not cache.is_file():
            log(f"{name}: calibrating ({args.calib_method})")
            cache.parent.mkdir(parents=True, exist_ok=True)
            reader = ImageCalibrationReader(calib, metadata_of(load_model(fp32)), progress=False)
            calibrate(fp32, reader, args.calib_method, str(cache))
        for byte_in in (False, True) if args.uint8_input else (False,):
            out = d / f"{name}-int8{'-u8in' if byte_in else ''}.onnx"
            quantize(fp32, out, str(cache), config=QuantConfig(method=args.calib_method, uint8_input=byte_in))
            models[label + (", uint8 input" if byte_in else "")] = (str(out), params, level)

    def export(checkpoint, name):
        """The checkpoint exported by this tree's exporter (seconds), not the ONNX kept in --work when it was
        trained: a changed export path is always measured, as a changed INT8 path is."""
        return str(export_onnx(load_checkpoint(checkpoint)[0], d / f"{name}.onnx", imgsz=416,
                               source=Path(checkpoint).name)[0])

    base_onnx = export(args.weights, "unpruned")
    props = {pp.key: pp.value for pp in load_model(base_onnx).metadata_props}
    official = export_official_style(args.weights, str(d / "official_fp32.onnx"), 416, props)
    models = {"official export.py FP32": (official, base["params"], 0.0),
              "unpruned SDK FP32": (base_onnx, base["params"], 0.0)}
    add_int8("unpruned SDK INT8", base_onnx, "unpruned", base["params"], 0.0)
    act = f" {args.activation}" if args.activation else ""
    if args.activation:
        ckpt = fine_tuned(args.weights, args.data, args.epochs, args.activation, work / "unpruned-ft")
        onnx_fp32 = export(ckpt, "unpruned-act")
        models[f"unpruned{act} FP32"] = (onnx_fp32, base["params"], 0.0)
        add_int8(f"unpruned{act} INT8", onnx_fp32, f"unpruned-{args.activation.lower()}", base["params"], 0.0)
    train_info = {}
    for (lv, round_to), r in recipes.items():
        ft = r.finetune("fmc")
        name = f"fmc-{int(round(lv * 100))}" + (f" round {round_to}" if round_to else "") + act
        onnx_fp32 = export(work / r.finetune_name("fmc") / "best.pt", name.replace(" ", "-"))
        models[f"{name} FP32"] = (onnx_fp32, ft["score"]["params"], lv)
        add_int8(f"{name} INT8", onnx_fp32, name.replace(" round ", "r").replace(" ", "-"), ft["score"]["params"], lv)
        hist = ft["finetune"]["history"]
        train_info[name] = {"best_epoch": ft["finetune"]["best_epoch"], "last_map50": hist[-1].get("map50"),
                            "train_min": round(ft["finetune"]["seconds"] / 60, 1),
                            "before_finetune_map50": r.oneshot("fmc")["before_finetune"]["map50"]}

    rows = []
    for label, (path, params, lv) in models.items():
        log(f"scoring {label}")
        rows.append({"model": label, "level": lv, "params": params, "gflops": round(model_gflops(path), 3),
                     "mb": round(os.path.getsize(path) / 2**20, 2), **score(path, val)})
    log(f"timing {len(models)} models, {args.runs} interleaved calls each, {spin_text(BENCH_SPIN)}")
    timed = time_side_by_side({k: v[0] for k, v in models.items()}, args.threads, args.runs)
    p50 = {k: v["p50_ms"] for k, v in timed.items()}
    fastest = {k: v["min_ms"] for k, v in timed.items()}
    for r in rows:
        r["ms_p50"] = round(p50[r["model"]], 2)
        r["ms_min"] = round(fastest[r["model"]], 2)
        # on a loaded machine the long FP32 calls are hit harder than the short INT8 ones (p50 ratios read high);
        # the fastest call of each model is the nearest to an idle machine
        r["speed_vs_official_fp32_min"] = round(fastest["official export.py FP32"] / fastest[r["model"]], 2)
        r["speed_vs_official_fp32"] = round(p50["official export.py FP32"] / p50[r["model"]], 2)
        r["speed_vs_unpruned_fp32"] = round(p50["unpruned SDK FP32"] / p50[r["model"]], 2)
        r["map50_vs_official_pt"] = round((r["map50"] - rows[0]["map50"]) * 100, 1)
    from sdk.quant.profile import op_profile, profile_row

    fits = {kind: cost_fit([r for r in rows if r["model"].endswith(kind) and not r["model"].startswith("official")
                            and act in r["model"]])
            for kind in ("FP32", "INT8")}

    log(f"profiling (onnxruntime op profile, 20 calls each, {spin_text(BENCH_SPIN)})")
    profiles = {label: profile_row(op_profile(path, args.threads, runs=20)) for label, (path, _, _) in models.items()
                if label != "official export.py FP32"}
    form = choose_form(read_cpu())
    result = {"rows": rows, "profiles": profiles, "cost_fit": fits, "training": train_info, "epochs": args.epochs,
              "activation": args.activation, "uint8_input": args.uint8_input, "calib_method": args.calib_method,
              "calib_images": len(calib), "runs": args.runs, "threads": args.threads, "int8_form": form.to_dict(),
              "spinning": spin_text(BENCH_SPIN),
              "machine": describe_machine(threads=args.threads), "load_avg": list(os.getloadavg())}
    write(result, Path(args.docs_dir))
    tmp.cleanup()
    print(json.dumps(result))
    return 0


def cost_fit(rows):
    """Least-squares ms p50 = fixed + per_gflop * GFLOPs over `rows` (one precision, every level): the fixed part
    is what a frame costs however few FLOPs are left (kernel launches, layout changes, element-wise passes)."""
    import numpy as np

    if len(rows) < 2:
        return None
    g = np.array([r["gflops"] for r in rows])
    ms = np.array([r["ms_p50"] for r in rows])
    per_gflop, fixed = np.polyfit(g, ms, 1)
    return {"fixed_ms": round(float(fixed), 2), "ms_per_gflop": round(float(per_gflop), 2), "models": len(rows)}


def parse_level(text, round_to=0):
    """'0.5' -> (0.5, round_to); '0.7r16' -> (0.7, 16)."""
    level, _, rnd = text.strip().partition("r")
    return float(level), int(rnd) if rnd else round_to


def write(result, docs_dir):
    from sdk.fileio import write_text_atomic

    head = ["model", "level", "params", "GFLOPs @416", "MB", "ms p50", "speed vs official FP32",
            "speed vs unpruned FP32", "ms min", "speed vs official FP32 (min)", "mAP@.5 (bootstrap std)", "mAP@.5:.95", "mAP@.5 vs official"]
    act = f" with {result['activation']}" if result.get("activation") else ""
    lines = [f"Pruning (FMC, {result['epochs']}-epoch fine-tune{act}) + INT8 ({result['calib_method']} calibration, "
             f"{result['calib_images']} images, form {result['int8_form']['activations']} activations / "
             f"{'7' if result['int8_form']['reduce_range'] else '8'}-bit weights for this CPU). "
             f"{result['runs']} interleaved calls per model, {result['spinning']}, "
             f"{result['threads']} threads. "
             f"Machine: {result['machine']}; load average at the end "
             f"{' / '.join(f'{v:.1f}' for v in result['load_avg'])} (shared with other jobs).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        lines.append("| " + " | ".join(str(v) for v in [
            r["model"], f"{r['level']:.0%}", f"{r['params']:,}", f"{r['gflops']:.2f}", r["mb"], f"{r['ms_p50']:.1f}",
            f"{r['speed_vs_official_fp32']:.2f}x", f"{r['speed_vs_unpruned_fp32']:.2f}x",
            f"{r['ms_min']:.1f}", f"{r['speed_vs_official_fp32_min']:.2f}x",
            f"{r['map50']:.4f} ({r['map50_boot_std']:.3f})", f"{r['map50_95']:.4f}",
            f"{r['map50_vs_official_pt']:+.1f} pt"]) + " |")
    lines += ["", "| pruned model | mAP@.5 before fine-tune | best epoch | last-epoch mAP@.5 | train min |",
              "|---|---|---|---|---|"]
    for name, t in result["training"].items():
        lines.append(f"| {name} | {t['before_finetune_map50']:.3f} | {t['best_epoch']} | {t['last_map50']:.3f} | "
                     f"{t['train_min']} |")
    fits = result.get("cost_fit") or {}
    if any(fits.values()):
        lines += ["", "Cost model over the levels of this run (least squares, ms p50 = fixed + per-GFLOP x GFLOPs): " +
                  "; ".join(f"{k} {f['fixed_ms']:.2f} ms fixed + {f['ms_per_gflop']:.2f} ms/GFLOP ({f['models']} "
                            f"models)" for k, f in fits.items() if f) +
                  ". The fixed part does not shrink with pruning: it bounds the speed-up any level can reach."]
    if result.get("profiles"):
        from sdk.quant.profile import PROFILE_OPS

        lines += ["", "Where the time goes (onnxruntime's op profile, sdk.quant.profile: kernel ms per call and share; "
                      "profiling adds a small cost per kernel, so the sums read above the ms p50 column):", "",
                  "| model | kernel ms | kernels per call | " + " | ".join(PROFILE_OPS) + " | other |",
                  "|---|---|---|" + "---|" * (len(PROFILE_OPS) + 1)]
        for label, p in result["profiles"].items():
            cells = [f"{p[op][0]:.2f} ({p[op][1]:.0%})" if p[op][0] else "" for op in (*PROFILE_OPS, "other")]
            lines.append(f"| {label} | {p['kernel_ms']:.2f} | {p['kernels']} | " + " | ".join(cells) + " |")
    docs_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(docs_dir / "combined.md", "\n".join(lines) + "\n", "docs")
    write_text_atomic(docs_dir / "combined.json", json.dumps(result, indent=1), "docs")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

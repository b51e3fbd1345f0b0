"""The pruning trade-off table: levels x criteria, each pruned model fine-tuned with the same budget, exported to
ONNX, scored on the val split and timed side by side on onnxruntime CPU.

Level 0 is the unpruned model (one row, shared by both criteria): the checkpoint as given, or fine-tuned with
the same budget as the pruned ones when `finetune_unpruned` is set. Latency: `sdk.bench.interleaved_model_bench`
runs all models in rounds, interleaved, so machine noise hits all alike; the table gives the ratio to the
unpruned model.
"""
import copy
import json
import os
from pathlib import Path

from ..errors import SDKError
from ..fileio import write_text_atomic
from ..prune.plan import check_level


def parse_levels(text):
    try:
        levels = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise SDKError(f"levels: got '{text}', expected comma-separated ratios such as 0,0.5,0.6")
    if not levels:
        raise SDKError(f"levels: got '{text}', expected at least one ratio")
    for lv in levels:
        check_level(lv, "levels")
    return sorted(set(levels))


def run_sweep(model, train_data, val_data, out_dir, levels, criteria=("fmc", "l1"), epochs=3, batch_size=8,
              imgsz=416, lr=None, warmup_epochs=1.0, hyp=None, round_to=0, stats_images=64,
              max_train_images=None, max_val_images=None, bench_runs=30, seed=0, finetune_unpruned=False,
              progress=True, log=print):
    """Returns the result dict (rows + settings); writes models and nothing else (see `write_outputs`)."""
    from ..train.trainer import Trainer, as_dataset
    from ..train.validate import validate
    from ..prune.api import make_criterion, prune_model
    from ..prune.measure import count_gflops, count_params
    from ..prune.recalibrate import recalibrate_batchnorm

    out_dir = Path(out_dir)
    names = list(model.names)
    train = as_dataset(train_data, "train", names, "data", max_train_images)
    val = as_dataset(val_data, "val", names, "val_data", max_val_images)
    crit_objs = {}
    for c in criteria:
        crit_objs[c] = make_criterion(c, model, train, imgsz, stats_images, seed, progress)
    jobs = [("none", 0.0)] if 0.0 in levels else []
    jobs += [(c, lv) for lv in levels if lv > 0 for c in criteria]
    rows = []
    for crit, level in jobs:
        name = "unpruned" if crit == "none" else f"{crit}-{int(round(level * 100))}"
        log(f"[{len(rows) + 1}/{len(jobs)}] {name}")
        if crit == "none":
            pruned = copy.deepcopy(model)
        else:
            pruned, _ = prune_model(model, crit_objs[crit], level, round_to=round_to, imgsz=imgsz)
            recalibrate_batchnorm(pruned, train, imgsz)
        row = {"name": name, "criterion": crit, "level": level, "params": count_params(pruned),
               "gflops": round(count_gflops(pruned, imgsz), 4)}
        before = validate(pruned, val, imgsz)
        row["map50_pruned"] = round(before["map50"], 4)
        if epochs > 0 and (crit != "none" or finetune_unpruned):
            trainer = Trainer(pruned, train, val, epochs=epochs, batch_size=batch_size, imgsz=imgsz, lr=lr,
                              warmup_epochs=warmup_epochs, hyp=hyp, out_dir=out_dir / "checkpoints" / name, seed=seed,
                              progress=progress)
            res = trainer.fit()
            pruned = trainer.best_model()
            row.update(best_epoch=res["best_epoch"], train_seconds=res["seconds"])
        row.update(export_and_score(pruned, val, out_dir / "onnx" / f"{name}.onnx", imgsz))
        rows.append(row)
        # rows so far, so an interrupted sweep still leaves its numbers (latency comes at the end)
        write_text_atomic(out_dir / "prune_sweep.partial.json", json.dumps(rows, indent=1), "out_dir")
        log(f"    params {row['params']:,}  GFLOPs {row['gflops']:.2f}  mAP@.5 {row['map50']:.3f} "
            f"(right after pruning {row['map50_pruned']:.3f})")
    bench_rows(rows, bench_runs)
    settings = {"levels": levels, "criteria": list(criteria), "epochs": epochs, "batch_size": batch_size,
                "imgsz": imgsz, "lr": lr, "warmup_epochs": warmup_epochs, "hyp": hyp or {}, "round_to": round_to,
                "finetune_unpruned": finetune_unpruned,
                "train_images": len(train), "val_images": len(val), "val_boxes": val.num_boxes,
                "stats_images": stats_images, "bench_runs": bench_runs, "seed": seed,
                "machine": machine_description()}
    return {"settings": settings, "rows": rows}


def export_and_score(model, val, onnx_path, imgsz):
    """Export to ONNX and score on `val` through onnxruntime (the deployed path; conf 0.001, IoU 0.65)."""
    from ..compare import score_model
    from ..export.onnx_export import export_onnx

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(copy.deepcopy(model), onnx_path, imgsz=imgsz, source=onnx_path.stem)
    r = score_model(str(onnx_path), val, threads=None)
    return {"map50": round(r["map50"], 4), "map50_95": round(r["map50_95"], 4), "onnx": str(onnx_path),
            "onnx_mb": round(os.path.getsize(onnx_path) / 2**20, 3)}


def bench_rows(rows, runs):
    """Latency of each row's ONNX, interleaved; speed-up (mean latency) relative to 'unpruned' (or the first)."""
    from ..compare import Comparator

    with Comparator({r["name"]: r["onnx"] for r in rows}, threads=None) as cmp:
        times = cmp.time(runs=runs, warmup=3, rounds=5)
    base = times.get("unpruned", times[rows[0]["name"]])["mean_ms"]
    for r in rows:
        t = times[r["name"]]
        r.update(latency_ms=round(t["mean_ms"], 3), p50_ms=round(t["p50_ms"], 3), fps=round(t["fps"], 2),
                 speedup=round(base / t["mean_ms"], 3))


def machine_description():
    from ..report import describe_machine

    return describe_machine()


COLUMNS = [("name", "model"), ("level", "level"), ("params", "params"), ("gflops", "GFLOPs"),
           ("map50_pruned", "mAP@.5 before fine-tune"), ("map50", "mAP@.5"), ("map50_95", "mAP@.5:.95"),
           ("latency_ms", "latency ms"), ("fps", "FPS"), ("speedup", "speed-up"), ("onnx_mb", "ONNX MB")]


def table_rows(result):
    out = []
    for r in result["rows"]:
        out.append([r["name"], f"{r['level']:.0%}", f"{r['params']:,}", f"{r['gflops']:.2f}",
                    f"{r['map50_pruned']:.3f}", f"{r['map50']:.3f}", f"{r['map50_95']:.3f}",
                    f"{r['latency_ms']:.1f}", f"{r['fps']:.1f}", f"{r['speedup']:.2f}x", f"{r['onnx_mb']:.2f}"])
    return out


def markdown(result):
    from ..report import markdown_table

    s = result["settings"]
    unpruned = "fine-tuned too" if s.get("finetune_unpruned") else "the checkpoint as given"
    hyp = ", ".join(f"{k}={v:g}" for k, v in (s.get("hyp") or {}).items())
    note = (f"Pruning sweep: {s['train_images']} training images, pruned models fine-tuned {s['epochs']} "
            f"epoch(s) at {s['imgsz']}, batch {s['batch_size']}{', ' + hyp if hyp else ''} (unpruned: {unpruned}); "
            f"val {s['val_images']} images / {s['val_boxes']} boxes "
            f"(COCO mAP, pycocotools; 'before fine-tune' = right after pruning and BatchNorm re-estimation); "
            f"latency: onnxruntime CPU, batch 1, {s['bench_runs']} interleaved runs "
            f"each (no thread spinning), on {s['machine']}.")
    return markdown_table(table_rows(result), [h for _, h in COLUMNS], note=note)


def plot(result, out_dir):
    """mAP@.5 vs params and mAP@.5 vs latency, one line per criterion (the unpruned point on both)."""
    from ..report import plot_png

    paths = []
    base = [r for r in result["rows"] if r["criterion"] == "none"]
    for key, label, fname in (("params", "parameters", "map_vs_params.png"),
                              ("latency_ms", "onnxruntime CPU latency (ms)", "map_vs_latency.png")):
        def draw(ax, key=key, label=label):
            for crit in result["settings"]["criteria"]:
                pts = sorted(base + [r for r in result["rows"] if r["criterion"] == crit], key=lambda r: r[key])
                ax.plot([r[key] for r in pts], [r["map50"] for r in pts], "o-",
                        label={"fmc": "feature-map clustering", "l1": "L1 norm"}.get(crit, crit))
            ax.set_xlabel(label)
            ax.set_ylabel("mAP@.5 (val)")
            if key == "params":
                ax.set_xscale("log")
            ax.grid(alpha=0.3)
            ax.legend()

        paths.append(plot_png(Path(out_dir) / fname, draw, size=(5.5, 4)))
    return paths


def write_outputs(result, out_dir):
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "prune_sweep.md", markdown(result), "out_dir")
    result["plots"] = plot(result, out_dir)
    write_text_atomic(out_dir / "prune_sweep.json", json.dumps(result, indent=1), "out_dir")
    return {"markdown": str(out_dir / "prune_sweep.md"), "json": str(out_dir / "prune_sweep.json"),
            "plots": result["plots"]}

"""The gradual-pruning table of docs/gradual.md: one-shot pruning to 50 % then E epochs of fine-tuning, against
gradual pruning to 50 % along the cubic schedule over the same E epochs (`python -m sdk prune --gradual`).

    python scripts/bench_gradual.py [--epochs 20] [--criteria fmc,l1] [--work /tmp/edge-prune-bench]

Same data, budget (epochs, batch, recipe) and criterion for both; the gradual run prunes in --updates events up
to --end of its steps, then fine-tunes the final width. Every model is exported to ONNX, scored on Penn-Fudan
val and timed side by side (interleaved) on onnxruntime. Steps are kept in --work and shared with
scripts/bench_distill.py (the one-shot fine-tune is the same run). Writes <docs-dir>/bench_gradual.md and .json.
"""
import argparse
import json
from pathlib import Path

from sdk.fileio import write_text_atomic
from sdk.commands.args import add_recipe as add_recipe_args
from sdk.commands.args import recipe_from_flags as recipe_from_args
from sdk.experiments.prune_steps import curve, machine
from sdk.report import markdown_table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_recipe_args(p)
    p.add_argument("--updates", type=int, default=10, help="pruning events of the cubic schedule")
    p.add_argument("--end", type=float, default=0.6, help="last event, as a fraction of the fine-tune steps")
    p.add_argument("--bench-runs", type=int, default=30)
    p.add_argument("--docs-dir", default="docs/gradual")
    args = p.parse_args(argv)
    r = recipe_from_args(args)
    rows = [{"name": "unpruned", "schedule": "-", **r.unpruned()}]
    events = {}
    for crit in [c.strip() for c in args.criteria.split(",") if c.strip()]:
        for kind in ("one-shot", "gradual"):
            if kind == "one-shot":
                res = r.finetune(crit)
                hist = res["finetune"]["history"]
                seconds = res["finetune"]["seconds"]
            else:
                res = r.gradual(crit, args.updates, args.end)
                hist = res["gradual"]["finetune"]["history"]
                seconds = res["gradual"]["finetune"]["seconds"]
                events[crit] = res["gradual"]["events"]
            best = max(hist, key=lambda h: h.get("fitness", -1)) if kind == "one-shot" else None
            rows.append({"name": f"{r.tag(crit)}-{'oneshot' if kind == 'one-shot' else 'gradual'}", "schedule": kind,
                         "criterion": crit, **res["score"], "last_map50": hist[-1].get("map50"),
                         "best_epoch": (best or {}).get("epoch") or res["gradual"]["finetune"].get("best_epoch"),
                         "train_min": round(seconds / 60, 1), "curve": curve(hist)})
    from sdk.experiments.prune_sweep import bench_rows

    bench_rows(rows, args.bench_runs)
    write(rows, events, args)


def write(rows, events, args):
    head = ["model", "schedule", "params", "GFLOPs", "mAP@.5", "mAP@.5:.95", "best epoch",
            "last-epoch mAP@.5 (PyTorch)", "train min", "latency ms", "speed-up"]
    note = (f"One-shot vs gradual (cubic) pruning to {args.level:.0%}, the same {args.epochs} fine-tune epochs: "
            f"Penn-Fudan train -> val at {args.imgsz}, batch 8, SGD lr0 0.01, 1 warm-up epoch, cosine, EMA, "
            f"mosaic=0. Gradual: {args.updates} pruning events up to {args.end:.0%} of the steps, surgery at each, "
            f"criterion statistics and BatchNorm re-estimated on 32 training images at each. mAP through the "
            f"exported ONNX on onnxruntime (COCO mAP, conf 0.001, IoU 0.65); latency: batch 1, {args.bench_runs} "
            f"interleaved runs per model (no thread spinning). Torch threads {args.threads}. Ran on {machine()}.")
    table = [[x["name"], x["schedule"], f"{x['params']:,}", f"{x['gflops']:.2f}", f"{x['map50']:.3f}",
              f"{x['map50_95']:.3f}", x.get("best_epoch", "-"),
              f"{x['last_map50']:.3f}" if x.get("last_map50") is not None else "-", x.get("train_min", "-"),
              f"{x['latency_ms']:.1f}", f"{x['speedup']:.2f}x"] for x in rows]
    lines = markdown_table(table, head, note=note).splitlines()
    lines += ["", "mAP@.5 per epoch (val, EMA weights, PyTorch):", ""]
    lines += [f"- {x['name']}: {x['curve']}" for x in rows if x.get("curve")]
    for crit, ev in events.items():
        lines += ["", f"Pruning events of {crit}-gradual (step: scheduled level -> filter sparsity reached, params): "
                  + "; ".join(f"{e['step']}: {e['target']:.3f} -> {e['filter_sparsity']:.3f}, {e['params']:,}"
                              for e in ev)]
    out = Path(args.docs_dir)
    write_text_atomic(out / "bench_gradual.md", "\n".join(lines) + "\n", "--docs-dir")
    write_text_atomic(out / "bench_gradual.json", json.dumps({"rows": rows, "events": events,
                                                              "settings": vars(args)}, indent=1), "--docs-dir")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()

"""The distillation table of docs/distill.md: a 50 %-pruned student fine-tuned E epochs with and without the
unpruned teacher (`python -m sdk distill` vs `python -m sdk train`), same data, budget and recipe.

    python scripts/bench_distill.py [--epochs 20] [--criteria fmc,l1] [--work /tmp/edge-prune-bench]

Per criterion: `prune` (one-shot, BatchNorm re-estimated), then `train` and `distill` from the same pruned
checkpoint; every model is exported to ONNX and scored on Penn-Fudan val with onnxruntime. Steps are kept in
--work, so a rerun (or scripts/bench_gradual.py, which shares the one-shot fine-tune) resumes. Writes
<docs-dir>/bench_distill.md and .json. Use --threads 1 on a shared machine.
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
    add_recipe_args(p, weights_help="the unpruned teacher")
    p.add_argument("--kd-weights", default="0,1",
                   help="comma-separated distillation gains, one row each (0: plain fine-tune, no teacher)")
    p.add_argument("--cached-only", action="store_true", help="only rows whose runs are done: re-render the table")
    p.add_argument("--docs-dir", default="docs/distill")
    args = p.parse_args(argv)
    r = recipe_from_args(args, cached_only=args.cached_only)
    base = r.unpruned()
    rows = [{"name": "unpruned", "criterion": "-", "kd": "-", "epochs": 0, **base, "map50_pruned": base["map50"]}]
    for crit in [c.strip() for c in args.criteria.split(",") if c.strip()]:
        for w in [float(v) for v in args.kd_weights.split(",") if v.strip()]:
            teacher = args.weights if w > 0 else None
            try:
                pruned, ft = r.oneshot(crit), r.finetune(crit, teacher, w)
            except LookupError as e:  # --cached-only: not run (yet)
                print(f"{e.args[0]}: not run, left out of the table", flush=True)
                continue
            hist = ft["finetune"]["history"]
            name = f"{r.tag(crit)}-{'kd' if teacher else 'ft'}" + (f"-w{w:g}" if teacher and w != 1 else "")
            rows.append({"name": name,
                         "criterion": crit, "kd": f"yes, weight {w:g}" if teacher else "no", "epochs": args.epochs,
                         **ft["score"],
                         "map50_pruned": pruned["before_finetune"]["map50"],
                         "best_epoch": ft["finetune"]["best_epoch"], "last_map50": hist[-1].get("map50"),
                         "train_min": round(ft["finetune"]["seconds"] / 60, 1), "curve": curve(hist)})
            write(rows, args, base)


def write(rows, args, base):
    head = ["model", "criterion", "distillation", "epochs", "params", "mAP@.5 before fine-tune", "mAP@.5",
            "mAP@.5:.95", "mAP@.5 vs unpruned", "best epoch", "last-epoch mAP@.5 (PyTorch)", "train min"]
    note = (f"Distillation at {args.level:.0%}: Penn-Fudan train -> val at {args.imgsz}; mAP through the exported "
            f"ONNX on onnxruntime (COCO mAP, conf 0.001, IoU 0.65). Fine-tune: batch 8, SGD lr0 0.01, 1 warm-up "
            f"epoch, cosine, EMA, mosaic=0; distillation: sdk.train.distill.OutputDistillation defaults, teacher = the "
            f"unpruned model. Torch threads {args.threads}. Ran on {machine()}.")
    table = [[x["name"], x["criterion"], x["kd"], x["epochs"], f"{x['params']:,}", f"{x['map50_pruned']:.3f}",
              f"{x['map50']:.3f}", f"{x['map50_95']:.3f}", f"{(x['map50'] - base['map50']) * 100:+.1f} pt",
              x.get("best_epoch", "-"), f"{x['last_map50']:.3f}" if x.get("last_map50") is not None else "-",
              x.get("train_min", "-")] for x in rows]
    lines = markdown_table(table, head, note=note).splitlines()
    lines += ["", "mAP@.5 per epoch (val, EMA weights, PyTorch):", ""]
    lines += [f"- {x['name']}: {x['curve']}" for x in rows if x.get("curve")]
    out = Path(args.docs_dir)
    write_text_atomic(out / "bench_distill.md", "\n".join(lines) + "\n", "--docs-dir")
    write_text_atomic(out / "bench_distill.json", json.dumps({"rows": rows, "settings": vars(args)}, indent=1),
                      "--docs-dir")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()

"""`python -m sdk mixed --max-drop 0.5`: the fastest mixed-precision plan within an mAP@.5 budget (greedy on
per-layer sensitivity from full INT8), beside the 'heaviest K layers INT8' plan with the same INT8 count."""
from .args import NON_NEGATIVE, add_data, add_quantization, integer, workspace_from_args
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p)
    add_data(p)
    p.add_argument("--max-drop", type=NON_NEGATIVE, default=0.5, help="mAP@.5 budget in points vs FP32 (default 0.5)")
    p.add_argument("--runs", type=integer(1, 10**6), default=30, help="timed runs per model (interleaved)")
    p.add_argument("--plan-out", default=None, help="write the chosen plan as YAML here")
    p.add_argument("--out-dir", required=True, help="folder for mixed.md / .json / .png")


def run(args):
    import yaml

    from ..errors import SDKError
    from ..fileio import write_text_atomic
    from ..precision.plan import PrecisionPlan
    from ..experiments.precision import conv_layers, greedy_plan, sensitivity
    from ..report import write_outputs

    if args.max_drop < 0:
        raise SDKError(f"--max-drop: got {args.max_drop}, expected a budget >= 0 points")
    with workspace_from_args(args) as ws:
        ws.calibrate()
        full_path, _ = ws.variant(PrecisionPlan(default="int8"))
        base = ws.score(ws.model)
        full_drop = (base["map50"] - ws.score(full_path)["map50"]) * 100
        layer_rows = []
        if full_drop > args.max_drop:  # only then is the per-layer sweep needed
            _, layer_rows = sensitivity(ws, "layer")
        plan, greedy_path, _, kept_float, trail = greedy_plan(ws, args.max_drop, layer_rows, full_path)
        n_convs = len(conv_layers(ws.layers))
        k = n_convs - len(kept_float)
        heavy = PrecisionPlan.from_specs([f"heaviest:{k}:int8"], default="fp32")
        # K = every Conv is the full INT8 model again: reuse it rather than quantize and score it twice
        heavy_path = full_path if k == n_convs else ws.variant(heavy)[0]
        paths = {"fp32": ws.model, "int8 (all)": full_path, "greedy": greedy_path, f"heaviest {k}": heavy_path}
        ms = ws.latency(paths, runs=args.runs)
        rows = []
        for label, path in paths.items():
            s = ws.score(path)
            rows.append({"plan": label, "map50": s["map50"], "map50_95": s["map50_95"],
                         "drop_pt": (base["map50"] - s["map50"]) * 100, "ms": ms[label],
                         "speedup": ms["fp32"] / ms[label], "within_budget": (base["map50"] - s["map50"]) * 100
                         <= args.max_drop})
    if args.plan_out:
        write_text_atomic(args.plan_out, yaml.safe_dump(plan.to_dict(), sort_keys=False), "--plan-out")
    table = [[r["plan"], f"{r['map50']:.4f}", f"{r['drop_pt']:+.2f}", f"{r['map50_95']:.4f}", f"{r['ms']:.1f}",
              f"{r['speedup']:.2f}x", "yes" if r["within_budget"] else "no"] for r in rows]
    headers = ["plan", "mAP@.5", "drop (pt)", "mAP@.5:.95", "ORT CPU ms", "speed vs FP32", "within budget"]

    def plot(ax):
        ax.plot([t["fp32_layers"] for t in trail], [t["drop_pt"] for t in trail], marker="o")
        ax.axhline(args.max_drop, color="tab:red", linestyle="--", label=f"budget {args.max_drop} pt")
        ax.set_xlabel("Conv layers moved back to FP32 (most sensitive first)")
        ax.set_ylabel("mAP@.5 drop (pt)")
        ax.legend()

    payload = {"max_drop_pt": args.max_drop, "rows": rows, "greedy_plan": plan.to_dict(),
               "greedy_fp32_layers": kept_float, "trail": trail, "heaviest_k": k, "conv_layers": n_convs,
               "layer_sensitivity": layer_rows}
    files = write_outputs(args.out_dir, "mixed", f"Mixed precision within {args.max_drop} pt mAP@.5", headers,
                          table, payload, plot)
    print_table(table, headers)
    print_json_last({**payload, "files": files})
    return 0

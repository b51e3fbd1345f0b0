"""`python -m sdk partial`: FP32, full INT8 and block-wise INT8 plans: mAP, size and onnxruntime CPU latency
measured in one run (interleaved), with ratios to FP32."""
from .args import add_data, add_quantization, integer, workspace_from_args
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p)
    add_data(p)
    p.add_argument("--runs", type=integer(1, 10**6), default=30, help="timed runs per model (interleaved in 5 rounds)")
    p.add_argument("--out-dir", required=True, help="folder for partial.md / .json / .png")


def run(args):
    from ..experiments.precision import PARTIAL_PLANS, block_plan
    from ..report import write_outputs

    rows = []
    with workspace_from_args(args) as ws:
        ws.calibrate()
        paths = {}
        for label, blocks in PARTIAL_PLANS.items():
            path, report = ws.variant(None if blocks is None else block_plan(blocks))
            paths[label] = path
            rows.append({"plan": label, "size_mb": report["size_mb"], **ws.score(path)})
        ms = ws.latency(paths, runs=args.runs)
    base = rows[0]
    for r in rows:
        r.update(ms=ms[r["plan"]], speedup=ms["fp32"] / ms[r["plan"]], drop_pt=(base["map50"] - r["map50"]) * 100)
    table = [[r["plan"], f"{r['map50']:.4f}", f"{r['drop_pt']:+.2f}", f"{r['map50_95']:.4f}", r["size_mb"],
              f"{r['ms']:.1f}", f"{r['speedup']:.2f}x"] for r in rows]
    headers = ["plan", "mAP@.5", "drop (pt)", "mAP@.5:.95", "MB", "ORT CPU ms", "speed vs FP32"]

    def plot(ax):
        for r in rows:
            ax.scatter(r["speedup"], r["map50"], s=40)
            ax.annotate(r["plan"], (r["speedup"], r["map50"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel("speed vs FP32 (x, onnxruntime CPU)")
        ax.set_ylabel("mAP@.5")

    payload = {"rows": rows, "threads": args.threads, "calib_images": len(ws.calib_paths), "images": len(ws.dataset)}
    files = write_outputs(args.out_dir, "partial", "Partial INT8: accuracy vs speed", headers, table, payload, plot)
    print_table(table, headers)
    print_json_last({**payload, "files": files})
    return 0

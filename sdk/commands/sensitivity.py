"""`python -m sdk sensitivity`: mAP@.5 with one block (or one Conv layer) INT8 at a time, the rest FP32."""
from .args import COUNT, add_data, add_quantization, workspace_from_args
from .common import print_json_last, print_table


def add_arguments(p):
    add_quantization(p)
    add_data(p)
    p.add_argument("--level", choices=("block", "layer"), default="block", help="one block or one Conv layer")
    p.add_argument("--limit", type=COUNT, default=None, help="layer level: only the first N Conv layers")
    p.add_argument("--out-dir", required=True, help="folder for sensitivity.md / .json / .png")


def run(args):
    from ..experiments.precision import sensitivity
    from ..report import write_outputs

    with workspace_from_args(args) as ws:
        ws.calibrate()
        base, rows = sensitivity(ws, args.level, args.limit)
    table = [[r["unit"], f"{r['map50']:.4f}", f"{r['map50_95']:.4f}", f"{r['drop_pt']:+.2f}"] for r in rows]
    headers = [args.level + " INT8 (rest FP32)", "mAP@.5", "mAP@.5:.95", "mAP@.5 drop (pt)"]
    table.insert(0, ["none (FP32)", f"{base['map50']:.4f}", f"{base['map50_95']:.4f}", "+0.00"])

    def plot(ax):
        ax.barh([r["unit"] for r in rows][::-1], [r["drop_pt"] for r in rows][::-1], color="tab:red")
        ax.set_xlabel("mAP@.5 drop vs FP32 (points)")
        ax.tick_params(axis="y", labelsize=6 if len(rows) > 20 else 9)

    payload = {"level": args.level, "fp32": base, "rows": rows, "calib_images": len(ws.calib_paths),
               "images": len(ws.dataset)}
    files = write_outputs(args.out_dir, "sensitivity", f"INT8 sensitivity per {args.level}", headers, table,
                          payload, plot)
    print_table(table, headers)
    print_json_last({**payload, "files": files})
    return 0

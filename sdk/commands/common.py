"""What commands share besides their arguments (sdk.commands.args): opening the detector the flags describe,
and the report helpers (sdk.report) under their familiar names."""
import sys

from ..errors import SDKError
from ..report import print_json_last, print_table  # noqa: F401  (re-exported for commands)
from .args import add_model_args  # noqa: F401  (re-exported: camera and soak compose it)
from .args import add_data as add_data_args  # noqa: F401


def detector_from_args(args, **detector_kw):
    from ..detector import Detector
    from .args import model_options_from_args

    kw = {"threads": args.threads} if getattr(args, "threads", None) else {}
    kw.update(detector_kw)  # e.g. the camera's spin and resize
    det = Detector(args.model, backend=args.backend, conf=args.conf, iou=args.iou, max_det=args.max_det,
                   options=model_options_from_args(args), **kw)
    print(f"backend: {det.runner.describe()} ({det.backend_reason})", file=sys.stderr)
    return det


def check_range(name, value, lo, hi):
    if not lo <= value <= hi:
        raise SDKError(f"{name}: got {value}, expected a value in [{lo}, {hi}]")


def print_results(res, extra_columns=()):
    """A training run's per-epoch table (plus extra history columns, e.g. distillation losses) and JSON line."""
    cols = [k for k in extra_columns if any(k in r for r in res["history"])]
    rows = [[r["epoch"], f"{r.get('train_loss', 0):.4f}", *(f"{r.get(k, float('nan')):.4f}" for k in cols),
             f"{r.get('map50', float('nan')):.4f}", f"{r.get('map50_95', float('nan')):.4f}"]
            for r in res["history"]]
    print_table(rows, ["epoch", "train loss", *cols, "mAP@.5", "mAP@.5:.95"])
    print(f"best: epoch {res['best_epoch']} -> {res.get('best', '')}")
    print_json_last(res)

"""Arguments and output helpers shared by commands."""
import json
import sys


def add_model_args(parser, conf=0.25, iou=0.45, imgsz=True):
    from .inspect import add_model_format_args

    parser.add_argument("--model", required=True, help="ONNX model or TensorRT engine")
    parser.add_argument("--backend", choices=("auto", "ort", "trt"), default="auto",
                        help="auto: TensorRT for engines (or an engine beside the ONNX when TensorRT is "
                             "installed), else onnxruntime")
    parser.add_argument("--conf", type=float, default=conf, help=f"confidence threshold (default {conf})")
    parser.add_argument("--iou", type=float, default=iou, help=f"NMS IoU threshold (default {iou})")
    parser.add_argument("--max-det", type=int, default=300, help="at most this many boxes per image")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    add_model_format_args(parser, imgsz=imgsz)  # models from other exporters (sdk/layouts.py)


def add_data_args(parser, required=True, flag="--data"):
    parser.add_argument(flag, required=required,
                        help="labelled data: a YOLO images folder (labels at images->labels) or dataset root, a "
                             "data yaml, a COCO json, or a Pascal VOC folder (Annotations/*.xml)")
    parser.add_argument("--split", default="val", help="split for data yaml / VOC ImageSets / dataset roots")
    parser.add_argument("--images", default=None, help="image folder for a COCO json (default: found beside it)")


def detector_from_args(args):
    from ..detector import Detector
    from .inspect import model_options_from_args

    kw = {"threads": args.threads} if getattr(args, "threads", None) else {}
    det = Detector(args.model, backend=args.backend, conf=args.conf, iou=args.iou, max_det=args.max_det,
                   options=model_options_from_args(args), **kw)
    print(f"backend: {det.runner.describe()} ({det.backend_reason})", file=sys.stderr)
    return det


def check_range(name, value, lo, hi):
    from ..errors import SDKError

    if not lo <= value <= hi:
        raise SDKError(f"{name}: got {value}, expected a value in [{lo}, {hi}]")


def print_table(rows, headers):
    """A plain markdown table on stdout."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |")


def print_json_last(obj):
    """Commands end with one JSON object on its own line, for scripts."""
    sys.stdout.flush()
    print(json.dumps(obj, default=_json_default))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)

"""`python -m sdk inspect MODEL`: what the SDK sees in an ONNX model or TensorRT engine -- inputs, outputs, the
layout recognised and why, classes, precision, SDK metadata -- and the command that writes the missing metadata
into a copy of the file, so later commands need no flags (Polygraphy's `inspect model`, for detectors).

Also the argument group every `--model` command shares for models from other exporters (`--layout`, `--names`,
`--anchors`, `--imgsz`, `--channel-order`, `--input-scale`)."""
import shlex
import sys


def add_model_format_args(parser, imgsz=True):
    """Flags that say what a model file does not (all optional: the file or the YOLO defaults decide)."""
    from ..layouts import ALIASES, LAYOUTS

    g = parser.add_argument_group("models from other exporters (what the file does not say)")
    g.add_argument("--layout", default=None, choices=list(LAYOUTS) + sorted(ALIASES),
                   help="output layout (default: recognised from the graph; see docs/models.md)")
    g.add_argument("--names", default=None,
                   help="class names: a comma list, a text file (one name a line) or a data yaml (default: the "
                        "file's SDK metadata, else class0..)")
    g.add_argument("--anchors", default=None,
                   help="anchors for raw level-map outputs: w,h pairs per level split by '/' "
                        "(10,13,16,30,33,23/30,61,62,45,59,119/116,90,156,198,373,326), a cfg yaml, or the .pt "
                        "checkpoint whose cfg has them")
    if imgsz:
        g.add_argument("--imgsz", type=int, default=None, help="input size for models whose size is dynamic")
    g.add_argument("--channel-order", default=None, choices=("RGB", "BGR"),
                   help="colour order the network expects (default RGB, the YOLO convention)")
    g.add_argument("--input-scale", type=float, default=None,
                   help="pixel multiplier (default 1/255 for float inputs, 1 for uint8 inputs)")


def model_options_from_args(args):
    """`ModelOptions` from the group above (attributes a command lacks count as not given)."""
    from ..layouts import ModelOptions, parse_anchors, parse_names

    names = getattr(args, "names", None)
    anchors = getattr(args, "anchors", None)
    imgsz = getattr(args, "imgsz", None)
    if isinstance(imgsz, (list, tuple)):
        imgsz = imgsz[0] if len(imgsz) == 1 else tuple(imgsz[:2])
    return ModelOptions(layout=getattr(args, "layout", None), names=parse_names(names) if names else None,
                        anchors=_anchors(anchors) if anchors else None,
                        imgsz=(imgsz, imgsz) if isinstance(imgsz, int) else imgsz,
                        channel_order=getattr(args, "channel_order", None),
                        scale=getattr(args, "input_scale", None))


def _anchors(value):
    from ..layouts import parse_anchors

    if str(value).endswith(".pt"):
        from ..train.heads import checkpoint_anchors  # torch: only for this spelling

        return checkpoint_anchors(value)
    return parse_anchors(value)


def add_arguments(p):
    p.add_argument("model", help="ONNX model or TensorRT engine")
    p.add_argument("--write-metadata", default=None, metavar="OUT.onnx",
                   help="write a copy of the ONNX model with SDK metadata (names, input size, layout, anchors, "
                        "pre-processing) so later commands need no flags")
    p.add_argument("--json", action="store_true", help="print only the JSON report")
    add_model_format_args(p)


def run(args):
    from ..inspect_model import inspect_model, write_metadata

    options = model_options_from_args(args)
    report = inspect_model(args.model, options)
    if args.write_metadata:
        report["written"] = str(write_metadata(args.model, args.write_metadata, options))
    if not args.json:
        print(format_report(report, args))
    from .common import print_json_last

    print_json_last(report)
    return 0


def format_report(r, args):
    lines = [f"model: {r['model']} ({r['kind']}, {r['precision']})"]
    lines += [f"  input  {i['name']} {i['shape']} {i['dtype']}" for i in r["inputs"]]
    lines += [f"  output {o['name']} {o['shape']} {o['dtype']}" for o in r["outputs"]]
    lines.append(f"layout: {r['layout']} -- {r['reason']}")
    if r.get("nms"):
        lines.append(f"  NMS inside the graph: {r['nms']}")
    lines.append(f"classes ({len(r['names'])}): {', '.join(r['names'][:20])}{' ...' if len(r['names']) > 20 else ''}"
                 f"{'' if r['names_from'] == 'file' else '  [' + r['names_from'] + ']'}")
    lines.append(f"input size {r['imgsz'][0]}x{r['imgsz'][1]}, {r['channel_order']}, pixels x {r['scale']:.6g}, "
                 f"letterbox pad 114")
    lines.append("SDK metadata: " + ("yes" if r["sdk_metadata"] else "none"))
    for note in r["notes"]:
        if not note.startswith("no SDK metadata in the file:"):  # the lines above say it
            lines.append(f"note: {note}")
    if r.get("written"):
        lines.append(f"wrote {r['written']} with SDK metadata")
    elif r["kind"] == "onnx" and r["foreign"]:
        lines.append("add the metadata (later commands then need no flags):")
        lines.append("  " + metadata_command(r, args))
    return "\n".join(lines)


def metadata_command(r, args):
    from pathlib import Path

    out = str(Path(r["model"]).with_name(Path(r["model"]).stem + "-sdk.onnx"))
    parts = ["python -m sdk inspect", r["model"], "--write-metadata", out,
             "--names", ",".join(r["names"]), "--layout", r["layout"]]
    if r.get("anchors"):
        parts += ["--anchors", "/".join(",".join(f"{v:g}" for v in lv) for lv in r["anchors"])]
    elif r["layout"] == "raw":
        parts += ["--anchors", "CHECKPOINT.pt"]  # or w,h pairs per level: the file does not have them
    if getattr(args, "imgsz", None):
        parts += ["--imgsz", str(args.imgsz)]
    if getattr(args, "channel_order", None):
        parts += ["--channel-order", args.channel_order]
    if getattr(args, "input_scale", None) is not None:
        parts += ["--input-scale", f"{args.input_scale:g}"]
    return " ".join(shlex.quote(p) if i > 0 else p for i, p in enumerate(parts))


def main(argv=None):  # pragma: no cover - `python -m sdk inspect` is the entry point
    from ..cli import main as cli_main

    return cli_main(["inspect", *(sys.argv[1:] if argv is None else argv)])

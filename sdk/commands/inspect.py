"""`python -m sdk inspect MODEL`: what the SDK sees in an ONNX model or TensorRT engine -- inputs, outputs, the
layout recognised and why, classes, precision, SDK metadata -- and the command that writes the missing metadata
into a copy of the file, so later commands need no flags (Polygraphy's `inspect model`, for detectors).

The argument group every `--model` command shares for models from other exporters (`--layout`, `--names`,
`--anchors`, `--imgsz`, `--channel-order`, `--input-scale`) is `sdk.commands.args.add_model_format`."""
import shlex
import sys

from .args import add_model_format as add_model_format_args  # the group lives with the others
from .args import model_options_from_args


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
    from ..report import print_json_last

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

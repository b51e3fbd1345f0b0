"""`python -m sdk <command>`: one CLI for every job. Commands live in `sdk.commands.<name>` and are imported
only when run, so `--help` and the runtime commands never pull in torch or TensorFlow."""
import argparse
import importlib
import sys

from .errors import SDKError

# name -> (module, one-line help). A module defines add_arguments(parser) and run(args) -> exit code.
COMMANDS = {
    "export": ("sdk.commands.export", "PyTorch checkpoint (or TensorFlow/Keras model) -> ONNX"),
    "detect": ("sdk.commands.detect", "detect objects in images, folders, globs or videos"),
    "eval": ("sdk.commands.eval", "mAP on a labelled dataset (YOLO txt, COCO json or Pascal VOC xml)"),
    "bench": ("sdk.commands.bench", "latency and FPS: model-only and end-to-end"),
    "build": ("sdk.commands.build", "build a TensorRT engine (same as the build_engine command)"),
    "quantize": ("sdk.commands.quantize", "INT8 post-training quantization to a QDQ ONNX (onnxruntime, TensorRT)"),
    "sensitivity": ("sdk.commands.sensitivity", "mAP with one block or layer quantized at a time"),
    "partial": ("sdk.commands.partial", "partial quantization table: backbone / neck / head INT8"),
    "mixed": ("sdk.commands.mixed", "search the fastest mixed-precision plan within an mAP budget"),
    "parity": ("sdk.commands.parity", "the same images through PyTorch, onnxruntime FP32/INT8 (and TensorRT)"),
    "overflow": ("sdk.commands.overflow", "per-layer int8 accumulator overflow analysis"),
    "train": ("sdk.commands.train", "train or fine-tune a YOLOv7 model on the CPU"),
    "prune": ("sdk.commands.prune", "filter pruning by feature-map clustering or L1 norm"),
    "prune-sweep": ("sdk.commands.prune_sweep", "pruning levels x criteria: the trade-off table"),
    "qat": ("sdk.commands.qat", "quantization-aware training to a QDQ ONNX"),
    "distill": ("sdk.commands.distill", "knowledge distillation of a pruned student from a teacher"),
    "classify": ("sdk.commands.classify", "run or benchmark an image classifier ONNX (top-k)"),
    "camera": ("sdk.commands.camera", "real-time detection from a camera or stream (samples/camera_detect.py)"),
    "soak": ("sdk.commands.soak", "run the camera pipeline for N minutes and report memory"),
    "doctor": ("sdk.commands.doctor", "check this machine: runtimes, accelerators, cameras"),
    "inspect": ("sdk.commands.inspect", "what the SDK sees in a model: layout, classes, metadata (and adds it)"),
    "export-triton": ("sdk.commands.export_triton", "a Triton Inference Server model repository for a model"),
    "triton-server": ("sdk.commands.triton_server", "the local Triton server: create its environment, serve a repository"),
}


def _available():
    return {name: v for name, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m sdk", description="Edge detector deployment SDK")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module, help_text) in _available().items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def run_command(name, argv):
    from .commands.args import CommandParser  # value checks as one-line errors, parameter names as flags

    module = importlib.import_module(COMMANDS[name][0])
    parser = CommandParser(prog=f"python -m sdk {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    with parser.flags_in_errors():
        return module.run(args)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in _available():
        parser.print_usage(sys.stderr)
        print(f"error: command '{name}' is not known, expected one of {', '.join(_available())}", file=sys.stderr)
        return 2
    return guarded(lambda: run_command(name, argv[1:]))


def guarded(fn):
    """Run a command: SDK errors become one line on stderr and exit status 1, never a traceback."""
    try:
        code = fn()
        return int(code or 0)
    except SDKError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

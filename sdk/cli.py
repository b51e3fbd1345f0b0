"""`python -m sdk <command>`: one CLI for every job. Commands live in `sdk.commands.<name>` and are imported
only when run, so `--help` and the runtime commands never pull in torch or TensorFlow."""
import argparse
import errno
import importlib
import os
import signal
import sys
import threading
import traceback

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
    return parser.parse_and_run(module.run, argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, verbose = _take_verbose(argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in _available():
        parser.print_usage(sys.stderr)
        print(f"error: command '{name}' is not known, expected one of {', '.join(_available())}", file=sys.stderr)
        return 2
    return guarded(lambda: run_command(name, argv[1:]), verbose=verbose)


def _take_verbose(argv):
    """`--verbose` anywhere before `--` (global, so no command parser sees it); SDK_VERBOSE=1 does the same."""
    end = argv.index("--") if "--" in argv else len(argv)
    verbose = "--verbose" in argv[:end]
    rest = [a for a in argv[:end] if a != "--verbose"] + argv[end:]
    return rest, verbose or os.environ.get("SDK_VERBOSE", "") not in ("", "0")


MAX_LINE = 200  # error lines stay readable; the whole message is behind --verbose


class Terminated(BaseException):
    """SIGTERM/SIGHUP raised into the command, so `with` blocks remove partial outputs and temporary folders.

    A BaseException (like KeyboardInterrupt), so `except Exception` handlers in commands do not swallow it.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, _frame):
    # Ignore repeats while the command unwinds, so a second signal cannot cut its clean-up short.
    for s in _STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _install_signal_handlers():
    """Batch commands: SIGTERM/SIGHUP (a closed ssh session) become a clean shutdown, exit 128 + signum.

    The camera pipeline installs its own handlers while it runs (stop, then finalise the recording).
    Where the file-size limit is exceeded (RLIMIT_FSIZE) the write fails with EFBIG instead of killing us.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {}
    for s in _STOP_SIGNALS:
        if signal.getsignal(s) is signal.SIG_IGN:  # nohup: the user asked to ignore it
            continue
        previous[s] = signal.signal(s, _raise_terminated)
    if hasattr(signal, "SIGXFSZ"):
        previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return lambda: [signal.signal(s, h) for s, h in previous.items()]


def one_line(message, limit=MAX_LINE):
    """Collapse a message to one line of at most `limit` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 30].rstrip() + " ... (--verbose shows all)"


def _say(line):
    try:
        print(line, file=sys.stderr)
        sys.stderr.flush()
    except (OSError, ValueError):  # the terminal went away (SIGHUP): the exit status still tells
        pass


def _os_error_line(e):
    where = e.filename or "file"
    reason = e.strerror or type(e).__name__
    expected = {errno.ENOSPC: "free space on its filesystem", errno.EDQUOT: "disk quota left",
                errno.EFBIG: "a file size within the limit (ulimit -f)", errno.EROFS: "a writable filesystem",
                errno.EACCES: "a readable/writable location", errno.EPERM: "a readable/writable location",
                errno.EMFILE: "a higher open-file limit (ulimit -n)"}.get(e.errno, "a working file system")
    return f"{where}: got {reason} (errno {e.errno}), expected {expected}"


def guarded(fn, verbose=None):
    """Run a command: errors become one line on stderr and exit status 1, never a traceback.

    SDK errors (bad input) and OS errors (a full disk, no permission) name what failed; anything else is a bug and
    says so. `verbose` (the global --verbose, or SDK_VERBOSE=1) prints the traceback as well.
    """
    if verbose is None:
        verbose = os.environ.get("SDK_VERBOSE", "") not in ("", "0")
    restore = _install_signal_handlers()
    try:
        code = fn()
        return int(code or 0)
    except SDKError as e:
        return _fail(one_line(e), verbose)
    except Terminated as e:
        _say(f"terminated by {signal.Signals(e.signum).name}; partial outputs removed")
        return 128 + e.signum
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return 1
    except MemoryError:
        return _fail("out of memory: got an input too large for this machine, expected a smaller input", verbose)
    except RecursionError:
        return _fail("input nested too deeply: got a recursion overflow, expected a flatter input", verbose)
    except OSError as e:
        return _fail(one_line(_os_error_line(e)), verbose)
    except Exception as e:  # a bug: still one line, the traceback behind --verbose
        return _fail(one_line(f"internal error, a bug in the SDK (--verbose shows the traceback): "
                              f"{type(e).__name__}: {e}"), verbose)
    finally:
        restore()


def _fail(line, verbose):
    if verbose:
        traceback.print_exc()
    _say(f"error: {line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())

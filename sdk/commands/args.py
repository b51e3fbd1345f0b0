"""The command line's vocabulary, defined once: argument groups (model, backend, detection, data, calibration,
fine-tuning, source, sink) that every command composes, value checks for every numeric flag, and the mapping
from the library's parameter names to flag names for error messages.

Rules (one for every command):
- A flag has one name, one meaning and one default wherever it appears; where a command keeps an older
  spelling, it is an alias listed in the flag's help (`--calib-images` = `--calib` in build and classify).
- A numeric value outside its range (NaN, infinity, negative counts, probabilities above 1, thread counts the
  machine cannot start) ends as the one-line error `error: --conf: got nan, expected ...` with exit status 1,
  before anything is loaded. The shape of the command line (an unknown flag, a missing required one, a value
  not among the choices) stays argparse's usage error, exit status 2.
- The library names its parameters in errors (`calib_method: got 'kl', ...`); `CommandParser.flag_names()` maps
  them to this command's flags when the CLI reports them (`--calib-method: got 'kl', ...`).

Only light modules are imported here: `--help` and the runtime commands never load torch, TensorFlow or onnx.
"""
import argparse
import contextlib
import math
import re

from ..errors import SDKError

# ---------------------------------------------------------------- vocabularies (library constants)
from ..runners import BACKENDS
from ..quant.methods import CALIB_METHODS, canonical_method

MAX_THREADS = 256  # onnxruntime / torch thread pools far above the core count crash the process (seen: 100000)
MAX_IMGSZ = 8192
DEFAULT_IMGSZ = 416  # the size the shared model was trained at; every command (export included) uses it
CONF_DEFAULT, IOU_DEFAULT = 0.25, 0.45

_VALUE_ERROR = "value-check: "  # marks our value checks' messages inside argparse's error path


class FlagValue(argparse.ArgumentTypeError):
    """A numeric flag's value is out of range: reported as the one-line error, not as a usage error."""

    def __init__(self, received, expected):
        super().__init__(f"{_VALUE_ERROR}got {received}, expected {expected}")


def _number(text, kind):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise FlagValue(f"'{text}'", f"{'an integer' if kind is int else 'a number'}") from None


def integer(lo=None, hi=None):
    """An argparse `type=`: an int in [lo, hi] (None: unbounded on that side)."""

    def parse(text):
        v = _number(text, int)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise FlagValue(v, _range_words(lo, hi, "an integer"))
        return v

    parse.__name__ = "integer"
    return parse


def tensorrt_version(text):
    """An argparse `type=`: a TensorRT version as the cache header writes it, from '8502' / '100300' or '8.5.2' /
    '10.3' (TensorRT 8.0 to 99.x)."""
    import re  # noqa: PLC0415

    from ..tensorrt.calib_cache import header_version  # noqa: PLC0415

    if not re.fullmatch(r"\d+(\.\d+){0,3}", str(text).strip()):
        raise FlagValue(repr(text), "a TensorRT version such as 8502, 8.5.2, 100300 or 10.3")
    v = header_version(str(text).strip())
    if not 8000 <= v <= 999999:
        raise FlagValue(v, "a TensorRT version from 8.0 (8000) to 99.x (999999)")
    return v


def real(lo=None, hi=None, lo_open=False, hi_open=False):
    """An argparse `type=`: a finite float in the interval (open ends where asked); NaN and inf are refused."""

    def parse(text):
        v = _number(text, float)
        bad = not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or \
            (hi is not None and (v >= hi if hi_open else v > hi))
        if bad:
            raise FlagValue(v, _range_words(lo, hi, "a finite number", lo_open, hi_open))
        return v

    parse.__name__ = "real"
    return parse


def _range_words(lo, hi, what, lo_open=False, hi_open=False):
    if lo is not None and hi is not None:
        return f"{what} in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{what} {'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f"{what} {'<' if hi_open else '<='} {_num(hi)}"
    return what


def _num(x):
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def calib_method(text):
    """A calibration method of the one vocabulary; old spellings (qat's 'max') are accepted aliases."""
    return canonical_method(text)


COUNT = integer(1)  # a number of images, runs, epochs... at least one
OPTIONAL_COUNT = integer(0)  # 0 = skip
PROBABILITY = real(0, 1)
FRACTION = real(0, 1, hi_open=True)  # a pruning ratio
POSITIVE = real(0, lo_open=True)
NON_NEGATIVE = real(0)
THREADS = integer(1, MAX_THREADS)
IMGSZ = integer(1, MAX_IMGSZ)
SEED = integer(0, 2**32 - 1)  # numpy's generators refuse negative seeds


# ---------------------------------------------------------------- the parser commands are built on
class CommandParser(argparse.ArgumentParser):
    """argparse with the SDK's error rules: value checks end as one line and exit 1 (an SDKError), and
    library errors naming a parameter are reported with this command's flag for it."""

    def error(self, message):
        m = re.match(r"argument ([^:]+): " + re.escape(_VALUE_ERROR) + r"(.*)$", message, re.S)
        if m:
            names = m.group(1).split("/")
            raise SDKError(f"{'/'.join(n for n in names if n.startswith('--')) or names[0]}: {m.group(2)}")
        super().error(message)

    def flag_names(self):
        """{parameter name: flag} for every option of this command (argparse dests are the library's names)."""
        out = dict(PARAMETER_FLAGS)
        for action in self._actions:
            if action.option_strings and action.dest != "help":
                out[action.dest] = _canonical(action.option_strings)
        return out

    @contextlib.contextmanager
    def flags_in_errors(self):
        """Re-word an SDKError that starts with a parameter name ('calib_method: ...') with its flag."""
        try:
            yield
        except SDKError as e:
            e.args = (name_flags(str(e), self.flag_names()),) + tuple(e.args[1:])
            raise

    def parse_and_run(self, run, argv=None):
        """Parse `argv` and call `run(args)`, its errors worded with this parser's flags (call it inside
        sdk.cli.guarded, so that a bad value is one error line too)."""
        args = self.parse_args(argv)
        with self.flags_in_errors():
            return run(args)


def _canonical(option_strings):
    long = [o for o in option_strings if o.startswith("--")]
    return (long or list(option_strings))[0]


# Library parameters whose flag is not simply the dest (shared by every command).
PARAMETER_FLAGS = {"calib_images": "--calib", "calibrator": "--calib-method", "max_train_images": "--max-images",
                   "train_data": "--data", "token": "--http-token", "token_file": "--http-token-file",
                   "max_connections": "--http-max-connections", "max_per_client": "--http-max-per-client"}


def name_flags(message, flags):
    """'prune_begin/prune_end: got ...' -> '--prune-begin/--prune-end: got ...' for names in `flags`."""
    m = re.match(r"([a-z][a-z0-9_]*(?:/[a-z][a-z0-9_]*)*)(?=[: ]|$)", message)
    if not m:
        return message
    names = m.group(1).split("/")
    if not all(n in flags for n in names):
        return message
    return "/".join(flags[n] for n in names) + message[m.end():]


# ---------------------------------------------------------------- model, backend, detection
def add_model(p, help="ONNX model or TensorRT engine", required=True):
    p.add_argument("--model", required=required, help=help)


def add_backend(p, threads=None, threads_help=None):
    """--backend and --threads (onnxruntime intra-op threads; `threads` is the default: None = all cores)."""
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto: TensorRT for engines (or an engine beside the ONNX when TensorRT is "
                        "installed), else onnxruntime")
    add_threads(p, threads, threads_help or "onnxruntime intra-op threads")


def add_threads(p, default=None, help="CPU threads"):
    """--threads: CPU threads of the job's compute (onnxruntime intra-op threads when models run, torch threads
    when models train). The default is None (the runtime's own: all cores) except where a command measures
    models against each other (2: the published numbers' setting)."""
    p.add_argument("--threads", type=THREADS, default=default,
                   help=f"{help}, 1..{MAX_THREADS} (default {default if default else 'all cores'})")


def add_detection(p, conf=CONF_DEFAULT, iou=IOU_DEFAULT):
    p.add_argument("--conf", type=PROBABILITY, default=conf, help=f"confidence threshold in [0, 1] (default {conf})")
    p.add_argument("--iou", type=PROBABILITY, default=iou, help=f"NMS IoU threshold in [0, 1] (default {iou})")
    p.add_argument("--max-det", type=integer(1, 100000), default=300, help="at most this many boxes per image")


def add_model_args(p, conf=CONF_DEFAULT, iou=IOU_DEFAULT, imgsz=True):
    """A detector: --model, --backend, --threads, --conf, --iou, --max-det, and what a file from another
    exporter does not say (`add_model_format`; `imgsz=False` where the command has its own --imgsz)."""
    add_model(p)
    add_backend(p)
    add_detection(p, conf, iou)
    add_model_format(p, imgsz=imgsz)


def add_model_format(p, imgsz=True):
    """Flags that say what a model file does not (all optional: the file or the YOLO defaults decide)."""
    from ..layouts import ALIASES, LAYOUTS

    g = p.add_argument_group("models from other exporters (what the file does not say)")
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
        g.add_argument("--imgsz", type=IMGSZ, default=None, help="input size for models whose size is dynamic")
    g.add_argument("--channel-order", default=None, choices=("RGB", "BGR"),
                   help="colour order the network expects (default RGB, the YOLO convention)")
    g.add_argument("--input-scale", type=POSITIVE, default=None,
                   help="pixel multiplier (default 1/255 for float inputs, 1 for uint8 inputs)")


def model_options_from_args(args):
    """`ModelOptions` from the model-format flags (attributes a command lacks count as not given)."""
    from ..layouts import ModelOptions, parse_names

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


def add_imgsz(p, default=DEFAULT_IMGSZ, help="input size", nargs=None):
    kw = {"nargs": nargs} if nargs else {}
    p.add_argument("--imgsz", type=IMGSZ, default=default, help=f"{help} (default {default})", **kw)


def add_concurrency(p):
    from ..bench_concurrent import MAX_CONCURRENCY

    p.add_argument("--concurrency", type=integer(1, MAX_CONCURRENCY), default=None, metavar="N",
                   help="N clients at once (threads, one connection each for triton://): throughput and "
                        "p50/p95 latency per frame")


def add_runs(p, runs=100, warmup=None, help="timed runs"):
    p.add_argument("--runs", type=integer(1, 10**6), default=runs, help=f"{help} (default {runs})")
    if warmup is not None:
        p.add_argument("--warmup", type=integer(0, 10**6), default=warmup, help=f"untimed runs first (default {warmup})")


# ---------------------------------------------------------------- data
DATA_HELP = ("labelled data: a YOLO images folder (labels at images->labels) or dataset root, a data yaml, a COCO "
             "json, or a Pascal VOC folder (Annotations/*.xml)")


def add_data(p, required=True, flag="--data", split="val", help=DATA_HELP):
    p.add_argument(flag, required=required, help=help)
    p.add_argument("--split", default=split, help=f"split for data yaml / VOC ImageSets / dataset roots "
                                                  f"(default {split})")
    p.add_argument("--images", default=None, help="image folder for a COCO json (default: found beside it)")


def add_train_data(p, train=True):
    """Training and validation data (train, distill, qat and prune --gradual, which has its own --data)."""
    if train:
        p.add_argument("--data", required=True, help="training data: YOLO images folder or dataset root, data "
                                                     "yaml, COCO json or Pascal VOC folder")
        p.add_argument("--split", default="train", help="split of --data to train on (dataset roots, yaml, VOC)")
    p.add_argument("--val-data", default=None, help="validation data (default: --data with --val-split)")
    p.add_argument("--val-split", default="val")
    p.add_argument("--no-val", action="store_true", help="skip validation (best.pt = last weights)")
    p.add_argument("--max-images", type=COUNT, default=None, help="train on the first N images only")
    p.add_argument("--max-val-images", type=COUNT, default=None, help="validate on the first N images only")


# ---------------------------------------------------------------- calibration
CALIB_HELP = "calibration images: a folder, glob, or labelled dataset (YOLO, COCO json, VOC)"
METHOD_HELP = {"entropy": "entropy (KL thresholds as TensorRT's IInt8EntropyCalibrator2; the most accurate here, "
                          "a few minutes on 2 cores)",
               "minmax": "minmax (seconds; 'max' is an accepted alias)",
               "percentile": "percentile (clips the histogram's tail)"}


def add_calibration(p, required=True, count=32, method="entropy", methods=CALIB_METHODS, path=True,
                    aliases=(), count_aliases=(), method_aliases=(), seed=True):
    """The calibration vocabulary shared by build, quantize (and its analyses), qat and classify:
    --calib PATH (images), --calib-count N (a seeded random sample), --seed, --calib-method METHOD.
    `aliases`/`count_aliases` keep a command's older spellings working (listed in the help)."""
    if path:
        also = f" ({', '.join(aliases)}: the same, older spelling)" if aliases else ""
        p.add_argument("--calib", *aliases, dest="calib", required=required, default=None,
                       help=CALIB_HELP + also)
    if count is not None:
        also = f" ({', '.join(count_aliases)}: the same, older spelling)" if count_aliases else ""
        p.add_argument("--calib-count", *count_aliases, dest="calib_count", type=integer(1, 10**6), default=count,
                       help=f"calibrate on a seeded random sample of this many images (default {count}){also}")
    if seed:
        add_seed(p, "calibration sampling seed")
    choices = tuple(methods)
    also = f"; {', '.join(method_aliases)}: the same, older spelling" if method_aliases else ""
    p.add_argument("--calib-method", *method_aliases, dest="calib_method", type=calib_method, choices=choices,
                   default=method, help="activation ranges: " + ", ".join(METHOD_HELP[m] for m in choices) +
                   f" (default {method}{also})")


def add_seed(p, help="random seed"):
    p.add_argument("--seed", type=SEED, default=0, help=f"{help} (default 0)")


# ---------------------------------------------------------------- fine-tuning
def add_finetune(p, epochs=10, imgsz=True, lr=None, warmup_epochs=None, min_epochs=1, augment=True,
                 nominal_batch=True):
    """The fine-tune budget and recipe (train, distill, qat, prune --gradual, prune-sweep)."""
    p.add_argument("--epochs", type=integer(min_epochs, 10**5), default=epochs, help=f"epochs (default {epochs})")
    p.add_argument("--batch-size", type=integer(1, 4096), default=8, help="images per batch (default 8)")
    if imgsz:
        add_imgsz(p, help="training size")
    lr_default = "hyp lr0 0.01" if lr is None else f"{lr:g}"
    p.add_argument("--lr", type=POSITIVE, default=lr, help=f"initial learning rate (default {lr_default})")
    wu_default = "hyp: 3" if warmup_epochs is None else f"{warmup_epochs:g}"
    p.add_argument("--warmup-epochs", type=NON_NEGATIVE, default=warmup_epochs,
                   help=f"warm-up epochs (default {wu_default})")
    if nominal_batch:
        p.add_argument("--nominal-batch", type=integer(1, 10**5), default=None,
                       help="accumulate gradients to this many images per step (default: step every batch)")
    p.add_argument("--hyp", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override hyp.scratch.tiny values, e.g. mosaic=0.5 fliplr=0")
    if augment:
        p.add_argument("--no-augment", action="store_true", help="plain letterbox, no mosaic/flip/HSV")
    p.add_argument("--activation", default=None, metavar="NAME",
                   help="fine-tune with this activation instead of the cfg's, e.g. ReLU (INT8 on a CPU absorbs a "
                        "Relu into the conv; a LeakyRelu costs a lookup pass: docs/int8.md)")


def add_run(p, out_required=True, seed=True, resume=True):
    """Where a training run writes, how it resumes, its seed and torch's CPU threads."""
    p.add_argument("--out-dir", required=out_required, help="folder for best.pt and last.pt")
    if resume:
        p.add_argument("--resume", default=None,
                       help="last.pt of an interrupted run: continues it (same settings; --weights not needed)")
    if seed:
        add_seed(p)
    add_threads(p, None, "torch CPU threads")


def add_pruning(p):
    """Pruning criterion and rounding (prune, prune-sweep)."""
    from ..prune.criteria import CRITERIA  # numpy only

    p.add_argument("--criterion", choices=CRITERIA, default="fmc",
                   help="fmc: feature-map clustering (needs --data); l1: filter L1 norm")
    p.add_argument("--round", "--round-to", type=integer(0, 4096), default=0, dest="round_to",
                   help="keep a multiple of this many channels per layer (e.g. 16; default: exact, which measured "
                        "better here: docs/pruning/combined/combined.md; INT8 pads channels for its kernel anyway)")
    p.add_argument("--stats-images", type=COUNT, default=64, help="training images for the feature-map statistics")
    add_seed(p, "K-means++ seed")


# ---------------------------------------------------------------- source and sink (camera, soak, detect)
def add_source(p):
    """Where frames come from (camera, soak)."""
    p.add_argument("--source", default=None, metavar="URI",
                   help="csi://N, /dev/videoN, v4l2:///dev/videoN, rtsp://..., a video, an image, a folder or a "
                        "glob; options as ?width=1280&height=720&framerate=30 (default: csi://0 when present, "
                        "else the first /dev/video*)")
    p.add_argument("--loop", action="store_true", help="restart files and image folders at the end")
    p.add_argument("--max-frames", type=integer(1, 10**12), default=None, help="stop after this many processed frames")
    p.add_argument("--imgsz", type=IMGSZ, default=None,
                   help="input size; taken from the model's metadata (a different value is an error for "
                        "engines and static ONNX models)")
    p.add_argument("--reconnect", type=integer(0, 1000), default=5,
                   help="reconnect attempts for a lost live stream (back-off 0.5 s doubling to 8 s), then a clean exit")


def add_sink(p):
    """Where annotated frames and detections go (camera)."""
    p.add_argument("--output", action="append", default=[], metavar="URI",
                   help="where annotated frames go; repeatable: display://, out.mp4, detections.jsonl, "
                        "http://@:8080 (live view)")
    p.add_argument("--save", default=None, metavar="VIDEO", help="save the annotated video (same as --output VIDEO)")
    p.add_argument("--json", default=None, metavar="JSONL", help="detections as JSON lines (frame, time, boxes)")
    p.add_argument("--headless", action="store_true", help="no display window")
    p.add_argument("--http-token", default=None, help="access token for http:// outputs")
    p.add_argument("--no-overlay", action="store_true", help="do not draw FPS/latency on the frames")



# ---------------------------------------------------------------- flags -> library values
def recipe_from_args(args):
    """The FinetuneRecipe the fine-tuning and training-data flags describe."""
    from ..train.recipe import FinetuneRecipe, parse_hyp

    return FinetuneRecipe(epochs=args.epochs, batch_size=args.batch_size, imgsz=args.imgsz, lr=args.lr,
                          warmup_epochs=args.warmup_epochs, nominal_batch=getattr(args, "nominal_batch", None),
                          hyp=parse_hyp(args.hyp), augment=not getattr(args, "no_augment", False),
                          seed=getattr(args, "seed", 0), threads=args.threads,
                          max_images=getattr(args, "max_images", None),
                          max_val_images=getattr(args, "max_val_images", None),
                          activation=getattr(args, "activation", None))


def train_val_from_args(args, model):
    """(train, val or None) datasets from --data/--split/--val-data/--val-split/--no-val."""
    from ..train.recipe import load_train_val

    return load_train_val(model, args.data, args.split, args.val_data, args.val_split,
                          validate=not args.no_val)


# ---------------------------------------------------------------- INT8 post-training quantization (onnxruntime)
ANALYSIS_THREADS = 2  # analyses time models against each other: the published numbers' setting


def add_quantization(p, calib_required=True):
    """quantize / sensitivity / partial / mixed / parity / overflow: the FP32 model, calibration, the INT8 form."""
    from ..quant.methods import ORT_METHODS
    from ..quant.quantize import DEFAULT_OP_TYPES

    add_model(p, help="FP32 ONNX exported by 'python -m sdk export'")
    add_calibration(p, required=calib_required, count=32, method="entropy", methods=ORT_METHODS)
    from ..quant.cpu import TARGETS

    p.add_argument("--activations", choices=("auto", "u8", "s8"), default="auto",
                   help="activation type: auto (the fastest form for --for-cpu, sdk/quant/cpu.py), u8 (fast u8s8 "
                        "kernels on x86) or s8 (symmetric, as TensorRT)")
    p.add_argument("--for-cpu", default="host", choices=("host", *TARGETS),
                   help="produce the INT8 form for this CPU: host (read /proc/cpuinfo) or a named target")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per-channel)")
    p.add_argument("--reduce-range", action="store_true", default=None,
                   help="7-bit weights: no 16-bit saturation on AVX2 CPUs without VNNI (see 'overflow')")
    p.add_argument("--no-pad-channels", dest="pad_channels", action="store_false", default=None,
                   help="keep conv channel counts as they are (default: zero-pad them, exactly, to what the target "
                        "CPU's fast INT8 conv kernel takes; sdk/quant/pad.py)")
    p.add_argument("--op-types", default=",".join(DEFAULT_OP_TYPES),
                   help=f"ONNX op types to quantize (default {','.join(DEFAULT_OP_TYPES)})")
    add_threads(p, ANALYSIS_THREADS, "onnxruntime intra-op threads for scoring/timing")


def add_plan(p):
    p.add_argument("--plan", default=None, help="precision plan YAML (default: int8 everywhere)")
    p.add_argument("--layer-precision", action="append", default=[], metavar="PATTERN:PRECISION",
                   help="override, repeatable: 'model.77*:fp32', 'block:head:fp32', 'op:Concat:fp32', "
                        "'heaviest:10:int8', 're:<regex>:fp32'")


def quant_config_from_args(args):
    from ..quant.quantize import QuantConfig

    ops = tuple(o.strip() for o in args.op_types.split(",") if o.strip())
    if not ops:
        raise SDKError(f"--op-types: got '{args.op_types}', expected op types such as Conv,MaxPool")
    return QuantConfig(method=args.calib_method, activations=args.activations, per_channel=not args.per_tensor,
                       reduce_range=args.reduce_range, op_types=ops, target=getattr(args, "for_cpu", "host"),
                       pad_channels=getattr(args, "pad_channels", None),
                       uint8_input=getattr(args, "uint8_input", False))


def plan_from_args(args):
    from ..precision.plan import PrecisionPlan

    base = PrecisionPlan.load(args.plan) if args.plan else PrecisionPlan(default="int8")
    return base.extend(PrecisionPlan.from_specs(args.layer_precision)) if args.layer_precision else base


def calib_paths_from_args(args):
    from calibrators.data_reader import calibration_images

    return calibration_images(args.calib, args.calib_count, args.seed, what="--calib")


def workspace_from_args(args):
    """The quantization workspace (one calibration, many variants) for --model, --calib and --data."""
    from ..data.datasets import load_dataset
    from ..experiments.precision import Workspace
    from ..quant.layers import load_model, metadata_of

    names = metadata_of(load_model(args.model)).names
    ds = load_dataset(args.data, names=names, split=args.split, images=args.images)
    return Workspace(args.model, calib_paths_from_args(args), ds, quant_config_from_args(args), threads=args.threads)


# ---------------------------------------------------------------- the pruning table scripts
def add_recipe(p, weights_help=None):
    """The command-line face of `sdk.experiments.prune_steps.Recipe` (scripts/bench_distill.py, bench_gradual.py)."""
    p.add_argument("--weights", default="../shared/models/yolov7-tiny-pennfudan.pt", help=weights_help)
    p.add_argument("--data", default="../shared/data/pennfudan")
    p.add_argument("--epochs", type=COUNT, default=20)
    p.add_argument("--level", type=FRACTION, default=0.5)
    p.add_argument("--criteria", default="fmc,l1")
    add_imgsz(p)
    add_threads(p, 1, "torch CPU threads")
    p.add_argument("--max-images", type=COUNT, default=None, help="smoke runs: first N training images")
    p.add_argument("--max-val-images", type=COUNT, default=None)
    p.add_argument("--stats-images", type=COUNT, default=64)
    p.add_argument("--work", default="/tmp/edge-prune-bench", help="steps are kept here; reruns resume")


def recipe_from_flags(args, **kw):
    from pathlib import Path

    from ..experiments.prune_steps import Recipe

    return Recipe(args.weights, args.data, Path(args.work), args.epochs, args.level, args.imgsz, threads=args.threads,
                  max_images=args.max_images, max_val_images=args.max_val_images, stats_images=args.stats_images,
                  log=lambda m: print(m, flush=True), **kw)

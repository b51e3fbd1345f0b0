"""Arguments shared by the quantize / sensitivity / partial / mixed / parity / overflow commands."""
from ..errors import SDKError
from ..precision.plan import PrecisionPlan
from .cpu import TARGETS
from .quantize import ACTIVATION_TYPES, DEFAULT_OP_TYPES, METHODS, QuantConfig


def add_calibration_args(p, required=True):
    p.add_argument("--model", required=True, help="FP32 ONNX exported by 'python -m sdk export'")
    p.add_argument("--calib", required=required,
                   help="calibration images: a folder, glob, or labelled dataset (YOLO, COCO json, VOC)")
    p.add_argument("--calib-count", type=int, default=32, help="seeded random sample of this many images")
    p.add_argument("--seed", type=int, default=0, help="calibration sampling seed")
    p.add_argument("--calib-method", choices=METHODS, default="entropy",
                   help="activation ranges: entropy (KL thresholds as TensorRT; the most accurate here, a few "
                        "minutes on 2 cores), minmax (seconds) or percentile")
    p.add_argument("--activations", choices=ACTIVATION_TYPES, default="auto",
                   help="activation type: auto (the fastest form for --for-cpu), u8 (fast u8s8 kernels on x86) or "
                        "s8 (symmetric, as TensorRT)")
    p.add_argument("--for-cpu", default="host", choices=("host", *TARGETS),
                   help="produce the INT8 form for this CPU: host (read /proc/cpuinfo) or a named target")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per-channel)")
    p.add_argument("--reduce-range", action="store_true", default=None,
                   help="7-bit weights: no 16-bit saturation on AVX2 CPUs without VNNI (see 'overflow')")
    p.add_argument("--op-types", default=",".join(DEFAULT_OP_TYPES),
                   help=f"ONNX op types to quantize (default {','.join(DEFAULT_OP_TYPES)})")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads for scoring/timing")


def add_plan_args(p):
    p.add_argument("--plan", default=None, help="precision plan YAML (default: int8 everywhere)")
    p.add_argument("--layer-precision", action="append", default=[], metavar="PATTERN:PRECISION",
                   help="override, repeatable: 'model.77*:fp32', 'block:head:fp32', 'op:Concat:fp32', "
                        "'heaviest:10:int8', 're:<regex>:fp32'")


def config_from_args(args):
    if args.calib_count is not None and args.calib_count < 1:
        raise SDKError(f"--calib-count: got {args.calib_count}, expected at least 1")
    ops = tuple(o.strip() for o in args.op_types.split(",") if o.strip())
    if not ops:
        raise SDKError(f"--op-types: got '{args.op_types}', expected op types such as Conv,MaxPool")
    return QuantConfig(method=args.calib_method, activations=args.activations, per_channel=not args.per_tensor,
                       reduce_range=args.reduce_range, op_types=ops,
                       target=getattr(args, "for_cpu", "host"))


def plan_from_args(args):
    base = PrecisionPlan.load(args.plan) if args.plan else PrecisionPlan(default="int8")
    return base.extend(PrecisionPlan.from_specs(args.layer_precision)) if args.layer_precision else base


def calib_paths_from_args(args):
    from calibrators.data_reader import calibration_images

    return calibration_images(args.calib, args.calib_count, args.seed, what="--calib")


def workspace_from_args(args, data_required=True):
    from ..data.datasets import load_dataset
    from .analyses import Workspace
    from .layers import load_model, metadata_of

    names = metadata_of(load_model(args.model)).names
    ds = load_dataset(args.data, names=names, split=args.split, images=args.images)
    return Workspace(args.model, calib_paths_from_args(args), ds, config_from_args(args), threads=args.threads)

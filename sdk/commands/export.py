"""`python -m sdk export`: a checkpoint to ONNX, checked and compared against the source framework."""
from pathlib import Path

from ..deps import require
from ..errors import SDKError
from . import args as groups
from .common import print_json_last, print_table


def add_arguments(p):
    p.add_argument("--weights", required=True, help="official YOLOv7 .pt, SDK checkpoint, or (with --framework tf) "
                                                    "a SavedModel folder / Keras file")
    p.add_argument("-o", "--output", required=True, help="output .onnx path")
    p.add_argument("--framework", choices=("torch", "tf"), default="torch")
    p.add_argument("--imgsz", type=groups.IMGSZ, nargs="+", default=None,
                   help=f"input size: one value or H W (default {groups.DEFAULT_IMGSZ}; with --framework tf: the "
                        f"model's own, for a dynamic one 224)")
    p.add_argument("--opset", type=groups.integer(1, 10**3), default=None,
                   help="ONNX opset (default 13: TensorRT 8.5+ reads it)")
    p.add_argument("--dynamic-batch", action="store_true", help="make the batch dimension dynamic")
    p.add_argument("--check-images", default=None,
                   help="images for the onnxruntime-vs-source parity check (default: a synthetic image)")
    p.add_argument("--check-count", type=groups.COUNT, default=8, help="images used for the parity check")
    nms = p.add_argument_group("NMS inside a TensorRT engine (sdk/efficient_nms.py)")
    nms.add_argument("--trt-nms", default=None, metavar="OUT.onnx",
                     help="also write the model with TensorRT's EfficientNMS_TRT appended (end-to-end outputs "
                          "num_dets, det_boxes, det_scores, det_classes); build it with build_engine")
    nms.add_argument("--trt-nms-conf", type=groups.PROBABILITY, default=0.25)
    nms.add_argument("--trt-nms-iou", type=groups.real(0, 1, lo_open=True), default=0.45)
    nms.add_argument("--trt-nms-max-det", type=groups.integer(1, 4096), default=100)
    tf = p.add_argument_group("classifiers (--framework tf)")
    tf.add_argument("--names", default=None, help="class names, comma-separated (default: labels.txt beside the "
                                                   "model, else 0..n-1)")
    tf.add_argument("--resize", choices=("stretch", "center_crop", "letterbox"), default=None,
                    help="how frames become the input (default stretch, as Keras' image_dataset_from_directory)")
    tf.add_argument("--scale", type=groups.POSITIVE, default=None,
                    help="pixel scale the model expects (default 1/255; 1 when the model rescales itself)")


def run(args):
    if args.framework == "tf":
        return _run_tf(args)
    from ..data.images import list_images
    from ..export.onnx_export import DEFAULT_OPSET, export_onnx

    require("torch", "export")
    from ..models.checkpoint import load_checkpoint

    if not str(args.output).endswith(".onnx"):
        raise SDKError(f"--output: got '{args.output}', expected a path ending in .onnx")
    size = args.imgsz or [groups.DEFAULT_IMGSZ]
    imgsz = tuple(size * 2 if len(size) == 1 else size[:2])
    model, info = load_checkpoint(args.weights, fuse=True)
    images = list_images(args.check_images, "--check-images")[: args.check_count] if args.check_images else \
        _synthetic_images(imgsz)
    _, report = export_onnx(model, args.output, imgsz=imgsz, opset=args.opset or DEFAULT_OPSET,
                            dynamic_batch=args.dynamic_batch, source=Path(args.weights).name, check_images=images)
    report["checkpoint"] = info["source"]
    if args.trt_nms:
        from ..efficient_nms import add_efficient_nms

        report["trt_nms"] = add_efficient_nms(args.output, args.trt_nms, args.trt_nms_conf, args.trt_nms_iou,
                                              args.trt_nms_max_det)["output"]
    print_table([[k, v] for k, v in report.items()], ["export", "value"])
    print_json_last(report)
    return 0


def _synthetic_images(imgsz):
    """A reproducible textured frame for the parity check when the user gives no images."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(rng.integers(0, 255, (imgsz[0] + 37, imgsz[1] - 23, 3), dtype=np.uint8), (7, 7), 0)]


def _run_tf(args):
    from ..export.tf_export import DEFAULT_OPSET, export_tf  # noqa: PLC0415

    report = export_tf(args.weights, args.output, imgsz=args.imgsz, opset=args.opset or DEFAULT_OPSET,
                       dynamic_batch=args.dynamic_batch, check_images=args.check_images, check_count=args.check_count,
                       names=args.names.split(",") if args.names else None, resize=args.resize or "stretch",
                       scale=args.scale)
    print_table([[k, v] for k, v in report.items()], ["export", "value"])
    print_json_last(report)
    return 0

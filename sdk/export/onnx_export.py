"""PyTorch YOLO -> ONNX with decoding in the graph and pre-processing facts in `metadata_props`."""
import io
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import SDKError
from ..fileio import atomic_path
from ..metadata import ModelMetadata

DEFAULT_OPSET = 13  # read by TensorRT 8.5 (JetPack 5.1) through 10.x, and has per-axis Q/DQ


def export_onnx(model, output, imgsz=(640, 640), opset=DEFAULT_OPSET, dynamic_batch=False, source="",
                check_images=None, precision="fp32"):
    """Export a fused YOLO model; returns (path, report) where report has parity numbers when images are given."""
    import onnx
    import torch

    if isinstance(imgsz, int):
        imgsz = (imgsz, imgsz)
    stride = int(max(model.stride))
    if any(s % stride for s in imgsz):
        raise SDKError(f"imgsz: got {imgsz[0]}x{imgsz[1]}, expected multiples of the model stride {stride}")
    if not 11 <= opset <= 21:
        raise SDKError(f"opset: got {opset}, expected 11..21 (TensorRT 8.5 reads up to 17)")
    model = model.float().eval()
    if not model.is_fused:
        model.fuse()
    dummy = torch.zeros(1, 3, *imgsz)
    meta = ModelMetadata(names=list(model.names), imgsz=tuple(imgsz), stride=stride, source=source,
                         precision=precision, blocks=yolo_blocks(model.yaml))
    buf = io.BytesIO()
    dynamic_axes = {meta.input_name: {0: "batch"}, meta.output_name: {0: "batch"}} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # strides and grid sizes are static by design
        torch.onnx.export(model, (dummy,), buf, opset_version=opset, input_names=[meta.input_name],
                          output_names=[meta.output_name], dynamic_axes=dynamic_axes, do_constant_folding=True,
                          dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    proto.producer_name = "edge-sdk"
    if dynamic_batch:  # only the batch is dynamic: keep the traced rows/columns (layout recognition reads them)
        with torch.no_grad():
            traced = model(dummy)
        traced = traced[0] if isinstance(traced, (tuple, list)) else traced
        for dim, size in zip(proto.graph.output[0].type.tensor_type.shape.dim[1:], traced.shape[1:]):
            dim.dim_value = int(size)
    del proto.metadata_props[:]
    for k, v in meta.to_props().items():
        proto.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(proto, full_check=True)
    report = {"opset": opset, "imgsz": list(imgsz), "dynamic_batch": dynamic_batch,
              "params": int(sum(p.numel() for p in model.parameters()))}
    with atomic_path(output, "ONNX output") as tmp:
        onnx.save(proto, str(tmp))
        if check_images:
            report.update(parity_check(model, str(tmp), check_images, meta))
    report["path"] = str(output)
    report["size_mb"] = round(os.path.getsize(output) / 2**20, 2)
    return Path(output), report


def yolo_blocks(cfg):
    """Backbone = the cfg's backbone section; head = the final convs feeding the detection layer and the
    detection layer itself; neck = everything between."""
    nb = len(cfg["backbone"])
    layers = cfg["backbone"] + cfg["head"]
    det = len(layers) - 1
    det_from = layers[det][0]
    det_from = [det_from] if isinstance(det_from, int) else list(det_from)
    head = sorted({(f % det) for f in det_from} | {det})
    neck = [i for i in range(nb, det) if i not in head]
    return {"backbone": list(range(nb)), "neck": neck, "head": head}


def parity_check(model, onnx_path, images, meta):
    """Run the same pre-processed images (paths or BGR arrays) through torch and onnxruntime; max abs differences."""
    import torch

    from ..data.images import read_image
    from ..preprocess import Preprocessor
    from ..runners.onnxruntime import OnnxRuntimeRunner

    pre = Preprocessor(meta)
    worst_box, worst_score = 0.0, 0.0
    with OnnxRuntimeRunner(onnx_path) as runner:
        for img in images:
            x, _ = pre(read_image(img) if isinstance(img, (str, Path)) else img)
            with torch.no_grad():
                ref = model(torch.from_numpy(x)).numpy()
            out = runner.infer(x)[meta.output_name]
            diff = np.abs(ref - out)
            worst_box = max(worst_box, float(diff[..., :4].max()))
            worst_score = max(worst_score, float(diff[..., 4:].max()))
    return {"parity_images": len(images), "max_abs_diff_boxes_px": worst_box, "max_abs_diff_scores": worst_score}

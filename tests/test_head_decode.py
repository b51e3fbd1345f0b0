"""The detection head decodes channel-first (sdk.models.yolo.Detect.decode) and permutes once at the end: the same
boxes, bit for bit, as the official decode after the permute, and an exported graph whose element-wise decode ops
run over whole (ny, nx) planes, not over an innermost axis of 2 (1.6 of 12 ms in a pruned INT8 model, issue 19)."""
import copy

import onnx
from onnx import shape_inference

from scripts.bench_layouts import _official_decode as official_decode  # the official in-place decode

from .conftest import letterboxed_batch

ELEMENTWISE = {"Mul", "Add", "Sub", "Pow", "Sigmoid"}


def test_decode_equals_the_official_decode_on_real_images(yolo_model, pennfudan):
    import torch

    model = copy.deepcopy(yolo_model).float().eval()
    det = model.model[-1]
    images, _ = letterboxed_batch(pennfudan, list(model.names), "val", 4, 416)
    seen = {}
    hook = det.register_forward_hook(lambda m, inputs, out: seen.update(features=inputs[0]))
    with torch.no_grad():
        out = model(images)  # float RGB in [0, 1]
        out = out[0] if isinstance(out, tuple) else out
        hook.remove()
        reference = official_decode(det, det.level_maps(seen["features"]))
    assert out.shape == (4, 10647, 6)
    assert torch.equal(out, reference)  # every box, objectness and score bit for bit
    assert float(out[..., 4].max()) > 0.5  # real people were seen: the comparison is not of empty maps


def test_the_exported_decode_runs_over_planes(onnx_model):
    m = shape_inference.infer_shapes(onnx.load(str(onnx_model)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in m.graph.value_info}
    decode = [n for n in m.graph.node if n.op_type in ELEMENTWISE and n.name.startswith("/model.77/")]
    assert len(decode) >= 15  # sigmoid, xy (3 ops) and wh (3 ops) per level
    for n in decode:
        shape = shapes[n.output[0]]
        assert len(shape) == 5 and shape[-1] > 2 and shape[-1] == shape[-2], (n.name, shape)  # (1, na, c, ny, nx)
    # one Transpose per level, after the decode: the output stays (1, boxes, 5 + classes)
    transposes = [n for n in m.graph.node if n.op_type == "Transpose" and n.name.startswith("/model.77/")]
    assert len(transposes) == 3
    assert [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim] == [1, 10647, 6]

"""torch -> ONNX export: metadata, checker, parity with PyTorch on real images, opset and dynamic batch."""
import json

import numpy as np
import onnx
import pytest

from sdk.metadata import ModelMetadata
from sdk.runners.onnxruntime import OnnxRuntimeRunner

from .conftest import run_cli


def test_export_cli_writes_checked_model_with_metadata(onnx_model):
    proto = onnx.load(str(onnx_model))
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    meta = ModelMetadata.from_props(props)
    assert meta.names == ["person"] and meta.imgsz == (416, 416) and meta.stride == 32
    assert meta.letterbox_color == (114, 114, 114) and meta.channel_order == "RGB"
    assert abs(meta.scale - 1 / 255) < 1e-12
    assert meta.blocks["backbone"] == list(range(29)) and meta.blocks["head"] == [74, 75, 76, 77]
    assert proto.opset_import[0].version == 13
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 416, 416]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 10647, 6]
    # decoding is in the graph and written without ScatterND (TensorRT- and quantizer-friendly)
    ops = {n.op_type for n in proto.graph.node}
    assert "ScatterND" not in ops and "Sigmoid" in ops


def test_export_parity_on_real_images_and_dynamic_batch(tmp_path, checkpoint, val_images):
    out = tmp_path / "dyn.onnx"
    p = run_cli("export", "--weights", checkpoint, "--imgsz", "320", "-o", out, "--opset", "12",
                "--dynamic-batch", "--check-images", val_images, "--check-count", "3", check=True)
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["parity_images"] == 3
    assert report["max_abs_diff_scores"] < 1e-4 and report["max_abs_diff_boxes_px"] < 0.05
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 12
    with OnnxRuntimeRunner(out) as r:
        assert r.input.shape[0] is None
        y = r.infer(np.zeros((2, 3, 320, 320), np.float32))["output"]
        assert y.shape == (2, 3 * (40 * 40 + 20 * 20 + 10 * 10), 6)


@pytest.mark.parametrize("args,needle", [(["--imgsz", "415"], "multiples of the model stride"),
                                         (["--opset", "7"], "--opset: got 7"),
                                         (["-o", "model.txt"], "ending in .onnx")])
def test_export_bad_arguments(tmp_path, checkpoint, args, needle):
    from .conftest import assert_one_line_error

    out = ["-o", str(tmp_path / "m.onnx")] if "-o" not in args else []
    p = run_cli("export", "--weights", checkpoint, *out, *args)
    assert_one_line_error(p, needle)
    assert not list(tmp_path.iterdir())  # nothing half-written

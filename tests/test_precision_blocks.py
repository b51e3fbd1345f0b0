"""Precision plans resolved against the real exported model's layers (what quantize and TensorRT consume)."""
import onnx
import pytest
import yaml

from sdk.errors import SDKError
from sdk.precision.plan import PrecisionPlan, precision_counts
from sdk.quant.layers import onnx_layers
from sdk.quant.quantize import QuantConfig, plan_int8_nodes


@pytest.fixture(scope="module")
def proto(onnx_model):
    return onnx.load(str(onnx_model))


def test_block_plan_selects_exactly_that_block(proto):
    layers = onnx_layers(proto)
    resolved = PrecisionPlan.for_blocks(["head"]).resolve(layers)
    int8 = {n for n, p in resolved.items() if p == "int8"}
    assert int8 == {layer.name for layer in layers if layer.block == "head"}
    assert precision_counts(resolved) == {"fp32": len(layers) - len(int8), "int8": len(int8)}


def test_yaml_plan_round_trip_and_later_overrides_win(proto, tmp_path):
    plan = PrecisionPlan.from_dict({"default": "int8", "overrides": [{"block": "head", "precision": "fp32"},
                                                                     {"name": "/model.77/m.0/Conv",
                                                                      "precision": "int8"}]})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(plan.to_dict()))
    again = PrecisionPlan.load(tmp_path / "p.yaml")
    resolved = again.resolve(onnx_layers(proto))
    assert resolved["/model.77/m.0/Conv"] == "int8" and resolved["/model.77/m.1/Conv"] == "fp32"
    assert resolved["/model.0/conv/Conv"] == "int8"


def test_int8_set_keeps_decode_float_and_honours_op_types(proto):
    int8, _, layers = plan_int8_nodes(proto, PrecisionPlan(default="int8"), QuantConfig(op_types=("Conv",)))
    convs = [layer.name for layer in layers if layer.op_type == "Conv"]
    assert sorted(int8) == sorted(convs) and len(convs) == 58
    int8_all, _, _ = plan_int8_nodes(proto, PrecisionPlan(default="int8"), QuantConfig())
    assert not any(n.startswith("/model.77/") and not n.endswith("Conv") for n in int8_all)
    assert any("MaxPool" in n for n in int8_all) and any("Concat" in n for n in int8_all)


def test_unknown_precision_and_selector_are_one_line_errors():
    with pytest.raises(SDKError, match="expected one of fp32, fp16, int8"):
        PrecisionPlan.for_blocks(["head"], precision="int4")
    with pytest.raises(SDKError, match="expected one of block, name, regex, op, heaviest"):
        PrecisionPlan.from_dict({"overrides": [{"layer": "x", "precision": "fp32"}]})

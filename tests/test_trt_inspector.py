"""Reading layer precisions from TensorRT's engine-inspector JSON (format strings as TensorRT 8.5-10 print them)."""
import json

from sdk.tensorrt.inspector import engine_layers, format_precision, layer_precisions, precision_report

DETAILED = {"Layers": [
    {"Name": "Reformatting CopyNode for Input Tensor 0 to /model.0/conv/Conv + /model.0/act/LeakyRelu",
     "LayerType": "Reformat", "Inputs": [{"Name": "images", "Format/Datatype": "Row major linear FP32"}],
     "Outputs": [{"Name": "images_r", "Format/Datatype": "Four wide channel vectorized row major Int8 format"}]},
    {"Name": "/model.0/conv/Conv + /model.0/act/LeakyRelu", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "images_r", "Format/Datatype": "Four wide channel vectorized row major Int8 format"}],
     "Outputs": [{"Name": "/model.0/act/LeakyRelu_output_0",
                  "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}]},
    {"Name": "PWN(/model.77/Sigmoid, /model.77/Mul)", "LayerType": "PointWiseV2",
     "Inputs": [{"Name": "a", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
     "Outputs": [{"Name": "b", "Format/Datatype": "Row major linear FP32"}]},
    {"Name": "/model.77/m.0/Conv", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "c", "Format/Datatype": "Row major linear FP32"}], "Outputs": []},
]}


def test_format_strings():
    assert format_precision("Row major linear FP32") == "fp32"
    assert format_precision("Channel major FP16 format where channel % 2 == 0") == "fp16"
    assert format_precision("Two wide channel vectorized row major FP16 format") == "fp16"
    assert format_precision("Thirty-two wide channel vectorized row major Int8 format") == "int8"
    assert format_precision("Row major linear Half") == "fp16"
    assert format_precision("Row major linear Int32") == "int32"
    assert format_precision("something new") is None


def test_fused_names_map_back_to_network_layers():
    wanted = ["/model.0/conv/Conv", "/model.0/act/LeakyRelu", "/model.77/Sigmoid", "/model.77/Mul",
              "/model.77/m.0/Conv", "/model.5/MaxPool"]
    got = layer_precisions(json.dumps(DETAILED), wanted)
    assert got == {"/model.0/conv/Conv": "int8", "/model.0/act/LeakyRelu": "int8", "/model.77/Sigmoid": "fp16",
                   "/model.77/Mul": "fp16", "/model.77/m.0/Conv": "fp32", "/model.5/MaxPool": None}
    rows = precision_report({"/model.77/m.0/Conv": "fp32", "/model.77/Mul": "fp32", "/model.5/MaxPool": "fp16"},
                            got)
    assert [(r["layer"], r["engine"], r["applied"]) for r in rows] == [
        ("/model.5/MaxPool", "not found", False), ("/model.77/Mul", "fp16", False),
        ("/model.77/m.0/Conv", "fp32", True)]


def test_names_only_without_detailed_verbosity():
    layers = engine_layers({"Layers": ["/model.0/conv/Conv + /model.0/act/LeakyRelu"], "Bindings": ["images"]})
    assert layers == [("/model.0/conv/Conv + /model.0/act/LeakyRelu", None)]

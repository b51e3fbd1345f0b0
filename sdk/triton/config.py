"""Triton model configuration (`config.pbtxt`): the model's tensors, batching and instances, plus the SDK
metadata as `parameters`, so a client needs nothing but the server.

The text is written here rather than through Triton's protobuf classes so that exporting a repository needs no
tritonclient (a Jetson or a build box may not have it); `parse_config` reads it back with Triton's own
`model_config_pb2` (tritonclient) and the tests do that for every backend.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..errors import MissingDependency, SDKError
from ..metadata import ModelMetadata

# ONNX TensorProto element type -> Triton data type (model_config.proto DataType) and the wire name clients use.
ONNX_TO_TRITON = {1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 5: "TYPE_INT16", 6: "TYPE_INT32",
                  7: "TYPE_INT64", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64"}
TRITON_TO_NUMPY = {"FP32": "float32", "UINT8": "uint8", "INT8": "int8", "INT16": "int16", "INT32": "int32",
                   "INT64": "int64", "BOOL": "bool", "FP16": "float16", "FP64": "float64"}
BACKENDS = ("onnxruntime", "tensorrt", "python")
MODEL_FILES = {"onnxruntime": "model.onnx", "tensorrt": "model.plan", "python": "model.onnx"}
KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
META_PREFIX = ModelMetadata.PREFIX  # the config parameters use the same keys as the ONNX metadata_props


@dataclass
class TensorConfig:
    name: str
    data_type: str  # TYPE_FP32, ...
    dims: List[int]  # without the batch dimension when max_batch_size > 0; -1 for a variable dimension


@dataclass
class ModelConfig:
    name: str
    backend: str
    inputs: List[TensorConfig]
    outputs: List[TensorConfig]
    max_batch_size: int = 0
    instances: int = 1
    kind: str = "KIND_CPU"
    queue_delay_us: Optional[int] = None  # None: no dynamic batching
    preferred_batch_sizes: Sequence[int] = ()
    parameters: Dict[str, str] = field(default_factory=dict)

    def to_pbtxt(self) -> str:
        lines = [f"name: {_quote(self.name)}", f"backend: {_quote(self.backend)}",
                 f"max_batch_size: {int(self.max_batch_size)}"]  # model files keep Triton's default names
        for key, tensors in (("input", self.inputs), ("output", self.outputs)):
            lines.append(f"{key} [")
            lines.append(",\n".join(f"  {{\n    name: {_quote(t.name)}\n    data_type: {t.data_type}\n"
                                    f"    dims: [ {', '.join(str(int(d)) for d in t.dims)} ]\n  }}"
                                    for t in tensors))
            lines.append("]")
        if self.queue_delay_us is not None:
            preferred = "".join(f"\n  preferred_batch_size: {int(b)}" for b in self.preferred_batch_sizes)
            lines.append(f"dynamic_batching {{{preferred}\n  max_queue_delay_microseconds: "
                         f"{int(self.queue_delay_us)}\n}}")
        lines.append(f"instance_group [\n  {{\n    count: {int(self.instances)}\n    kind: {self.kind}\n  }}\n]")
        for key, value in self.parameters.items():
            lines.append(f"parameters {{\n  key: {_quote(key)}\n  value: {{ string_value: {_quote(value)} }}\n}}")
        return "\n".join(lines) + "\n"


def metadata_parameters(meta: ModelMetadata) -> Dict[str, str]:
    """The SDK metadata as config parameters: `sdk.<field>` -> JSON, the same keys the ONNX file carries."""
    return meta.to_props()


def metadata_from_parameters(params: Dict[str, str]) -> ModelMetadata:
    """Inverse of `metadata_parameters`, for a `{key: string_value}` mapping read from a server's config."""
    return ModelMetadata.from_props({k: v for k, v in params.items() if k.startswith(META_PREFIX)})


def _quote(text) -> str:
    """A protobuf text-format string literal (escapes per text_format's CEscape: backslash, quote, controls)."""
    out = []
    for ch in str(text):
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _model_config_pb2():
    try:
        from tritonclient.grpc import model_config_pb2  # noqa: PLC0415 - optional, the triton extra
    except ImportError:
        raise MissingDependency("tritonclient", "reading Triton model configurations",
                                "pip install -e '.[triton]'") from None
    return model_config_pb2


def parse_config(text: str, where: str = "config.pbtxt"):
    """Parse config.pbtxt text with Triton's own ModelConfig protobuf; a schema error is a one-line SDKError."""
    from google.protobuf import text_format  # noqa: PLC0415 - protobuf comes with tritonclient[grpc]

    pb2 = _model_config_pb2()
    try:
        return text_format.Parse(text, pb2.ModelConfig())
    except text_format.ParseError as e:
        raise SDKError(f"{where}: not a valid Triton model configuration ({e}), expected text in Triton's "
                       f"ModelConfig schema") from None


def config_parameters(config) -> Dict[str, str]:
    """`{key: string_value}` of a parsed ModelConfig (protobuf) or of the JSON dict the HTTP API returns."""
    if isinstance(config, dict):
        return {k: (v or {}).get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
    return {k: v.string_value for k, v in config.parameters.items()}


def describe(config: ModelConfig) -> dict:
    return {"name": config.name, "backend": config.backend, "max_batch_size": config.max_batch_size,
                       "inputs": [[t.name, t.data_type, t.dims] for t in config.inputs],
                       "outputs": [[t.name, t.data_type, t.dims] for t in config.outputs],
                       "instances": config.instances, "kind": config.kind}

"""export-triton: the repository layout and config.pbtxt of every backend, parsed with Triton's own ModelConfig
protobuf (tritonclient's model_config_pb2); bad input as one-line errors; triton:// URLs. No server needed."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sdk.errors import SDKError
from sdk.metadata import ModelMetadata
from sdk.triton.config import config_parameters, metadata_from_parameters, parse_config
from sdk.triton.repository import export_repository

from .conftest import assert_one_line_error, run_cli

pytest.importorskip("tritonclient.grpc", reason="the schema check needs tritonclient: pip install -e '.[triton]'")


def _read(model_dir):
    return parse_config((model_dir / "config.pbtxt").read_text(), str(model_dir))


def _dims(value_info):
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim]


def make_tiny_dynamic(path, names=('a "quoted" cat', "back\\slash", "café")):
    """A small dynamic-batch ONNX (Relu) with SDK metadata; by default odd class names (quotes, backslash, UTF-8)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 32, 32])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "c", "h", "w"])  # as torch marks them
    graph = helper.make_graph([helper.make_node("Relu", ["images"], ["output"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by the server environment's onnxruntime too
    meta = ModelMetadata(names=list(names), imgsz=(32, 32))
    for k, v in meta.to_props().items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path, meta


@pytest.fixture(scope="module")
def tiny_dynamic(tmp_path_factory):
    return make_tiny_dynamic(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.mark.parametrize("backend", ["onnxruntime", "python"])
def test_static_model_config_parses_with_triton_schema(onnx_model, tmp_path, backend):
    p = run_cli("export-triton", "--model", onnx_model, "--repo", tmp_path / "repo", "--backend", backend,
                "--name", "yolo", "--instances", "2", check=True)
    model_dir = tmp_path / "repo" / "yolo"
    assert json.loads(p.stdout.strip().splitlines()[-1])["model_dir"] == str(model_dir)
    cfg = _read(model_dir)
    graph = onnx.load(str(onnx_model), load_external_data=False).graph
    assert cfg.name == "yolo" and cfg.backend == backend
    assert [i.name for i in cfg.input] == [i.name for i in graph.input] == ["images"]
    assert [o.name for o in cfg.output] == [o.name for o in graph.output]
    assert cfg.input[0].data_type == cfg.output[0].data_type == 1 + 10  # TYPE_FP32 in model_config.proto
    assert cfg.instance_group[0].count == 2
    if backend == "python":  # model.py splits a batch over the fixed-batch-1 ONNX: the server still batches
        assert cfg.max_batch_size == 8 and cfg.HasField("dynamic_batching")
        assert list(cfg.input[0].dims) == _dims(graph.input[0])[1:] == [3, 416, 416]
        assert list(cfg.output[0].dims) == _dims(graph.output[0])[1:]
        assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_CPU
        assert (model_dir / "1" / "model.py").is_file()
    else:  # a fixed batch of 1 cannot be batched by the onnxruntime backend: full dims, no batcher
        assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
        assert list(cfg.input[0].dims) == _dims(graph.input[0]) == [1, 3, 416, 416]
        assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_GPU
        assert not (model_dir / "1" / "model.py").exists()
    assert (model_dir / "1" / "model.onnx").read_bytes() == onnx_model.read_bytes()
    # The SDK metadata travels as parameters: the same ModelMetadata the ONNX file carries.
    meta = metadata_from_parameters(config_parameters(cfg))
    onnx_meta = ModelMetadata.from_props({p.key: p.value for p in onnx.load(str(onnx_model)).metadata_props})
    assert meta == onnx_meta and meta.names == ["person"] and meta.imgsz == (416, 416)
    assert sorted(p.name for p in model_dir.rglob("*")) == sorted(
        ["1", "config.pbtxt", "model.onnx"] + (["model.py"] if backend == "python" else []))


def test_dynamic_batch_config_and_escaped_names(tiny_dynamic, tmp_path):
    path, meta = tiny_dynamic
    out = export_repository(path, tmp_path, backend="onnxruntime", max_batch=16, queue_delay_us=500, threads=2)
    cfg = _read(out.path)
    assert cfg.max_batch_size == 16 and list(cfg.input[0].dims) == [3, 32, 32]
    assert list(cfg.output[0].dims) == [3, 32, 32]  # dynamic output dims filled by one onnxruntime run
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert config_parameters(cfg)["intra_op_thread_count"] == "2"
    assert metadata_from_parameters(config_parameters(cfg)).names == meta.names  # quotes, backslash, UTF-8 intact
    default = export_repository(path, tmp_path / "b", name="m")
    assert _read(default.path).max_batch_size == 8  # the default for a dynamic-batch model


def test_tensorrt_config_from_engine_sidecar(tiny_dynamic, tmp_path):
    """The tensorrt backend reads the engine's build_engine sidecar (and the ONNX it names) without TensorRT;
    the engine bytes themselves are only copied (a real engine is served only on a real Triton install)."""
    from sdk.tensorrt.engine_meta import write_sidecar

    path, meta = tiny_dynamic
    engine = tmp_path / "tiny.engine"
    engine.write_bytes(b"not a real engine: copied, never parsed here")
    write_sidecar(engine, {"onnx": str(path), "tensorrt": "10.3.0", "input_shape": [-1, 3, 32, 32],
                           "metadata": meta.to_json(), "profile_max_batch": 4})
    out = export_repository(engine, tmp_path / "repo", backend="tensorrt", name="trt")
    cfg = _read(out.path)
    assert cfg.backend == "tensorrt" and cfg.max_batch_size == 4  # the engine profile's maximum
    assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_GPU
    assert (out.path / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert metadata_from_parameters(config_parameters(cfg)).names == meta.names
    with pytest.raises(SDKError, match="at most 4"):
        export_repository(engine, tmp_path / "repo2", backend="tensorrt", max_batch=8)
    assert not (tmp_path / "repo2").exists() or not any((tmp_path / "repo2").iterdir())


def test_schema_check_catches_a_broken_config():
    with pytest.raises(SDKError, match="not a valid Triton model configuration"):
        parse_config('name: "m"\nmax_batch_size: 8\ninstance_group [ { kind: KIND_TPU } ]\n')


def test_reexport_replaces_the_model_whole(tiny_dynamic, tmp_path):
    path, _ = tiny_dynamic
    export_repository(path, tmp_path, name="m", max_batch=2)
    (tmp_path / "m" / "1" / "stale.txt").write_text("old")
    export_repository(path, tmp_path, name="m", max_batch=4)
    assert _read(tmp_path / "m").max_batch_size == 4
    assert not (tmp_path / "m" / "1" / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folders left behind


@pytest.mark.parametrize("args,needles", [
    (["--max-batch", "4"], ["--max-batch", "got 4", "--dynamic-batch"]),
    (["--backend", "tensorrt"], ["--backend tensorrt", "expected a TensorRT engine"]),
    (["--name", "a/b"], ["--name", "'a/b'"]),
    (["--instances", "0"], ["--instances", "got 0"]),
])
def test_bad_input_is_one_line_and_writes_nothing(onnx_model, tmp_path, args, needles):
    p = run_cli("export-triton", "--model", onnx_model, "--repo", tmp_path / "repo", *args)
    assert_one_line_error(p, *needles)
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_missing_model_is_one_line(tmp_path):
    assert_one_line_error(run_cli("export-triton", "--model", tmp_path / "nope.onnx", "--repo", tmp_path),
                          "--model", "file not found")


@pytest.mark.parametrize("url,needle", [
    ("triton://127.0.0.1/", "expected triton://HOST:PORT/MODEL"),
    ("triton://127.0.0.1:99999/m", "port"),
    ("triton://127.0.0.1:8001/m?protocol=ws", "protocol=ws"),
    ("triton://127.0.0.1:8001/m?timeout=-1", "timeout=-1"),
    ("triton://127.0.0.1:8001/m?colour=red", "option 'colour'"),
])
def test_bad_triton_urls(url, needle):
    from sdk.runners.triton import TritonURL

    with pytest.raises(SDKError, match=needle.replace("?", r"\?").replace("+", r"\+")):
        TritonURL.parse(url)


def test_triton_url_defaults():
    from sdk.runners.triton import TritonURL

    assert TritonURL.parse("triton://gpu-host:8001/yolo").protocol == "grpc"
    assert TritonURL.parse("triton://gpu-host:8000/yolo").protocol == "http"
    u = TritonURL.parse("triton://[::1]:9000/yolo?protocol=http&timeout=2.5&reconnect=0")
    assert (u.address, u.protocol, u.timeout_s, u.reconnect) == ("[::1]:9000", "http", 2.5, 0)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_server_down_is_one_line_naming_the_url(val_images, protocol):
    from sdk.triton.server import free_port

    url = f"triton://127.0.0.1:{free_port()}/yolo?protocol={protocol}"  # nothing listens there
    err = assert_one_line_error(run_cli("detect", "--model", url, "--source", val_images, timeout=120),
                                url.split("?")[0], "unreachable")
    assert "expected a running Triton server" in err


def test_runner_validates_before_sending():
    """Shape, dtype and batch checks happen on the client with the URL in the message (no server needed)."""
    from sdk.runners.base import TensorSpec
    from sdk.runners.triton import TritonRunner

    r = TritonRunner("triton://127.0.0.1:1/yolo")
    r.inputs = [TensorSpec("images", (None, 3, 416, 416), np.dtype(np.float32))]
    r.max_batch_size = 4
    with pytest.raises(SDKError, match=r"triton://127.0.0.1:1/yolo.*got shape \(1, 3, 320, 320\)"):
        r.validate({"images": np.zeros((1, 3, 320, 320), np.float32)})
    with pytest.raises(SDKError, match="got batch 5, expected 1 to 4"):
        r.validate({"images": np.zeros((5, 3, 416, 416), np.float32)})
    with pytest.raises(SDKError, match="got dtype float64"):
        r.validate({"images": np.zeros((1, 3, 416, 416))})

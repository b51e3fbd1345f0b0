"""Write a Triton model repository for an SDK model:

    REPO/NAME/config.pbtxt      tensors, max_batch_size, dynamic_batching, instance_group, SDK metadata parameters
    REPO/NAME/1/model.onnx      onnxruntime and python backends (the python backend also gets 1/model.py)
    REPO/NAME/1/model.plan      tensorrt backend (the engine, built for the server's GPU and TensorRT)

The model directory is built beside its final place and renamed into it, so a failed export leaves no
half-written model for a server that polls the repository.
"""
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from ..errors import SDKError, bad_input
from ..metadata import ModelMetadata
from .config import BACKENDS, KINDS, MODEL_FILES, ONNX_TO_TRITON, ModelConfig, TensorConfig, metadata_parameters

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
DEFAULT_MAX_BATCH = 8
DEFAULT_QUEUE_DELAY_US = 1000
PYTHON_MODEL = Path(__file__).with_name("python_model.py")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class Tensor:
    name: str
    data_type: str
    shape: List[int]  # -1 for a dynamic dimension


@dataclass
class ExportedRepository:
    path: Path  # REPO/NAME
    config: ModelConfig
    notes: List[str]


def _onnx_tensors(onnx_path):
    import onnx  # noqa: PLC0415 - a runtime dependency, imported when used

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends for a corrupt file
        raise SDKError(f"model {onnx_path}: not a readable ONNX model ({type(e).__name__}), expected an .onnx "
                       f"file") from None
    initializers = {i.name for i in model.graph.initializer}

    def tensors(values):
        out = []
        for v in values:
            if v.name in initializers:
                continue
            tt = v.type.tensor_type
            dtype = ONNX_TO_TRITON.get(tt.elem_type)
            if dtype is None:
                raise SDKError(f"model {onnx_path}: tensor '{v.name}' has ONNX element type {tt.elem_type}, "
                               f"expected one Triton serves ({', '.join(sorted(set(ONNX_TO_TRITON.values())))})")
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tt.shape.dim]
            out.append(Tensor(v.name, dtype, dims))
        return out

    meta = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props})
    return tensors(model.graph.input), tensors(model.graph.output), meta


def _probe_output_dims(onnx_path, inputs, outputs):
    """Fill dynamic non-batch output dims (a dynamic-batch export marks every output dim dynamic) from one
    onnxruntime run at batch 1, so the config states the real shapes and clients can recognise the layout."""
    if not any(-1 in t.shape[1:] for t in outputs) or any(-1 in t.shape[1:] or not t.shape for t in inputs):
        return False
    import numpy as np  # noqa: PLC0415

    from ..runners.onnxruntime import _ort, session_options  # noqa: PLC0415
    from .config import TRITON_TO_NUMPY  # noqa: PLC0415

    try:
        session = _ort().InferenceSession(str(onnx_path), sess_options=session_options(1),
                                          providers=["CPUExecutionProvider"])
        feed = {t.name: np.zeros([1, *t.shape[1:]], TRITON_TO_NUMPY[t.data_type[len("TYPE_"):]]) for t in inputs}
        results = session.run([t.name for t in outputs], feed)
    except Exception as e:  # onnxruntime's own exception types: the config keeps the dynamic dims
        print(f"note: {onnx_path}: output dims stay dynamic (onnxruntime could not run it: {type(e).__name__})")
        return False
    for t, r in zip(outputs, results):
        t.shape = [t.shape[0], *(int(d) for d in r.shape[1:])]
    return True


def _engine_tensors(engine_path):
    """An engine's tensors come from the ONNX it was built from (named in build_engine's sidecar), since reading
    the engine itself needs TensorRT and the server's GPU."""
    from ..tensorrt.engine_meta import metadata_of, read_sidecar  # noqa: PLC0415 - plain JSON, no TensorRT

    record = read_sidecar(engine_path)
    if record is None:
        raise SDKError(f"model {engine_path}: no {engine_path}.json sidecar, expected an engine built by "
                       f"build_engine (it records the ONNX, class names and input size the config needs)")
    onnx_path = Path(record.get("onnx") or "")
    if not onnx_path.is_file():
        onnx_path = Path(engine_path).with_suffix(".onnx")
    if not onnx_path.is_file():
        raise SDKError(f"model {engine_path}: the ONNX it was built from ({record.get('onnx')}) is not found, "
                       f"expected it at that path or beside the engine as {onnx_path.name}")
    inputs, outputs, _ = _onnx_tensors(onnx_path)
    if record.get("input_shape") and inputs:
        inputs[0].shape = [int(d) for d in record["input_shape"]]
    _probe_output_dims(onnx_path, inputs, outputs)
    return inputs, outputs, metadata_of(record), record.get("profile_max_batch")


def _batching(tensors, backend, max_batch, profile_max, model):
    """(max_batch_size, note): Triton batches along a first dimension that every tensor shares."""
    first = {t.shape[0] if t.shape else None for t in tensors}
    if first == {-1}:  # a dynamic-batch export (or an engine with a batch profile)
        if backend == "tensorrt" and profile_max and max_batch and max_batch > profile_max:
            raise bad_input("max_batch", max_batch, f"at most {profile_max} (the engine's optimization profile)")
        if max_batch is None:
            max_batch = profile_max or DEFAULT_MAX_BATCH
        return max_batch, f"dynamic batch dimension: max_batch_size {max_batch}"
    if first == {1} and backend == "python":
        max_batch = DEFAULT_MAX_BATCH if max_batch is None else max_batch
        return max_batch, (f"the model has a fixed batch of 1: the python backend runs a batch of up to {max_batch} "
                           f"one frame at a time (export with --dynamic-batch to run it in one call)")
    if max_batch:
        raise bad_input("max_batch", max_batch, f"0 for {model}: its batch dimension is fixed "
                        f"({sorted(first, key=str)}); export with --dynamic-batch for server-side batching")
    return 0, "fixed batch dimension: max_batch_size 0, no server-side batching"


def build_config(model, backend="onnxruntime", name=None, max_batch=None, instances=1, kind="auto",
                 queue_delay_us=DEFAULT_QUEUE_DELAY_US, threads=None, spinning=True):
    """The ModelConfig for `model` (ONNX, or an engine for the tensorrt backend) and notes for the user."""
    model = Path(model)
    if backend not in BACKENDS:
        raise bad_input("backend", backend, " or ".join(BACKENDS))
    if not model.is_file():
        raise SDKError(f"model {model}: file not found, expected an ONNX model"
                       f"{' or a TensorRT engine' if backend == 'tensorrt' else ''}")
    if max_batch is not None and not 0 <= int(max_batch) <= 1 << 16:
        raise bad_input("max_batch", max_batch, "a batch size in [0, 65536]")
    if not 1 <= int(instances) <= 256:
        raise bad_input("instances", instances, "a count in [1, 256]")
    if queue_delay_us is not None and not 0 <= int(queue_delay_us) <= 10_000_000:
        raise bad_input("queue_delay_us", queue_delay_us, "microseconds in [0, 10000000]")
    name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", model.stem)
    if not _NAME.match(name):
        raise bad_input("name", repr(name), "letters, digits, '_', '.', '-' (a Triton model name)")
    is_engine = model.suffix.lower() in ENGINE_SUFFIXES
    profile_max = None
    if backend == "tensorrt":
        if not is_engine:
            raise SDKError(f"model {model}: got an ONNX model with --backend tensorrt, expected a TensorRT engine "
                           f"built on the server's GPU (build_engine --onnx {model} -o "
                           f"{model.with_suffix('.engine')})")
        inputs, outputs, meta, profile_max = _engine_tensors(model)
    else:
        if is_engine:
            raise SDKError(f"model {model}: got a TensorRT engine with --backend {backend}, expected an .onnx "
                           f"model (or --backend tensorrt)")
        inputs, outputs, meta = _onnx_tensors(model)
        _probe_output_dims(model, inputs, outputs)
    if not inputs or not outputs:
        raise SDKError(f"model {model}: got {len(inputs)} inputs and {len(outputs)} outputs, expected at least one "
                       f"of each")
    max_batch, note = _batching(inputs + outputs, backend, max_batch, profile_max, model)
    notes = [note]
    if not meta.has_sdk_props:
        notes.append("the model has no SDK metadata (class names, input size): clients will need it elsewhere")
    if kind == "auto":
        kind = "cpu" if backend == "python" else "gpu"
    if kind not in KINDS:
        raise bad_input("kind", kind, "auto, cpu or gpu")
    params = metadata_parameters(meta) if meta.has_sdk_props else {}
    if threads:
        params["intra_op_thread_count"] = str(int(threads))  # the onnxruntime backend's own parameter name
    if not spinning:
        params["allow_spinning"] = "0"  # read by model.py; the onnxruntime backend has no such parameter
    cut = 1 if max_batch > 0 else 0
    config = ModelConfig(
        name=name, backend=backend, max_batch_size=max_batch, instances=int(instances), kind=KINDS[kind],
        inputs=[TensorConfig(t.name, t.data_type, t.shape[cut:]) for t in inputs],
        outputs=[TensorConfig(t.name, t.data_type, t.shape[cut:]) for t in outputs],
        queue_delay_us=queue_delay_us if max_batch > 1 and queue_delay_us is not None else None,
        parameters=params)
    return config, notes


def export_repository(model, repo, backend="onnxruntime", name=None, max_batch=None, instances=1, kind="auto",
                      queue_delay_us=DEFAULT_QUEUE_DELAY_US, threads=None, spinning=True,
                      overwrite=True) -> ExportedRepository:
    """Write REPO/NAME (config.pbtxt, 1/<model file>, 1/model.py for the python backend); returns what it wrote."""
    config, notes = build_config(model, backend, name, max_batch, instances, kind, queue_delay_us, threads, spinning)
    repo = Path(repo)
    if repo.exists() and not repo.is_dir():
        raise SDKError(f"repo {repo}: is a file, expected a folder for the model repository")
    final = repo / config.name
    if final.exists() and not overwrite:
        raise SDKError(f"repo {repo}: model '{config.name}' exists already, expected a new name (or overwrite)")
    try:
        repo.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{config.name}.", dir=repo))
    except OSError as e:
        raise SDKError(f"repo {repo}: cannot write there ({e.strerror}), expected a writable folder") from None
    try:
        (tmp / "1").mkdir()
        shutil.copyfile(model, tmp / "1" / MODEL_FILES[backend])
        if backend == "python":
            shutil.copyfile(PYTHON_MODEL, tmp / "1" / "model.py")
        (tmp / "config.pbtxt").write_text(config.to_pbtxt())
        for p in [tmp, tmp / "1", *tmp.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)  # mkdtemp makes 0700: the server may run as another user
        old = None
        if final.exists():
            old = repo / f".{config.name}.old.{tmp.name.rsplit('.', 1)[-1]}"
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SDKError(f"repo {repo}: writing model '{config.name}' failed ({e.strerror}), expected a writable "
                       f"folder with space for the model") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportedRepository(final, config, notes)


def repository_model(repo, name) -> Optional[Path]:
    path = Path(repo) / name
    return path if (path / "config.pbtxt").is_file() else None

"""onnxruntime backend: CPU everywhere, CUDA / TensorRT execution providers when the install has them."""
import os

import numpy as np

from ..errors import SDKError
from ..metadata import ModelMetadata
from .base import Runner, TensorSpec

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
              "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def _ort():
    import onnxruntime  # noqa: PLC0415 - imported on first use, like every backend

    return onnxruntime


IN_RUN = "run"  # spin=IN_RUN: pool threads spin between a run's ops and stop the moment the run returns


def spin_mode(spin) -> str:
    """'on' (None: onnxruntime's default, or True), 'off' (False) or 'run' (IN_RUN); ValueError naming `spin`."""
    if spin is None or spin is True:
        return "on"
    if spin is False:
        return "off"
    if spin == IN_RUN:
        return IN_RUN
    raise ValueError(f"spin: got {spin!r}, expected None, True, False or {IN_RUN!r}")


def spin_text(spin) -> str:
    """How a `spin` setting reads in tables and descriptions."""
    return {"on": "spinning on", "off": "no spinning", IN_RUN: "spinning in runs only"}[spin_mode(spin)]


def session_options(threads=None, spin=None):
    """`spin`: how onnxruntime's intra-op pool threads wait for work.

    None keeps onnxruntime's default: they spin, in a run and after it, the lowest latency for a lone session, but
    the idle pool keeps the cores busy after the run returns. False: they never spin (each op wakes them through
    the OS). IN_RUN ("run"): they spin between the ops of a run and stop as soon as it returns (onnxruntime's
    `session.force_spinning_stop`, as onnxruntime_perf_test's --disable_spinning_between_run): a run keeps the
    cheap hand-over between ops, and a session timed beside others, or the pipeline's capture and drawing
    threads, get the cores between runs. Measured in docs/int8.md and docs/camera.md (issue 19)."""
    mode = spin_mode(spin)
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if spin is not None:
        for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
            so.add_session_config_entry(key, "0" if mode == "off" else "1")
    if mode == IN_RUN:
        so.add_session_config_entry("session.force_spinning_stop", "1")
    so.log_severity_level = 3
    return so


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, path, providers=None, threads=None, spin=None):
        super().__init__(path)
        self.requested_providers = providers
        spin_mode(spin)  # a bad value fails here, not at load
        self.spin = spin  # None: onnxruntime's default; IN_RUN for benchmarks and the pipeline (see session_options)
        self.threads = threads if threads is not None else int(os.environ.get("SDK_ORT_THREADS", "0")) or None
        self.session = None

    def _load(self):
        ort = _ort()
        if not os.path.isfile(self.path):
            raise SDKError(f"model {self.path}: file not found, expected an .onnx file")
        available = ort.get_available_providers()
        providers = self.requested_providers or [p for p in PREFERRED_PROVIDERS if p in available]
        try:
            self.session = ort.InferenceSession(self.path, sess_options=session_options(self.threads, self.spin),
                                                providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for corrupt models
            msg = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
            raise SDKError(f"model {self.path}: onnxruntime cannot load it ({msg}), expected a valid ONNX model")
        self.inputs = [TensorSpec(i.name, tuple(d if isinstance(d, int) else None for d in i.shape),
                                  np.dtype(_ORT_TYPES.get(i.type, np.float32))) for i in self.session.get_inputs()]
        self.outputs = [TensorSpec(o.name, tuple(d if isinstance(d, int) else None for d in o.shape),
                                   np.dtype(_ORT_TYPES.get(o.type, np.float32))) for o in self.session.get_outputs()]
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, what=f"model {self.path}")

    def _infer(self, feed):
        names = [o.name for o in self.outputs]
        return dict(zip(names, self.session.run(names, feed)))

    def _close(self):
        self.session = None

    def set_spin(self, spin) -> bool:
        """Open the session again with another spinning setting (onnxruntime fixes it when a session is created);
        True when it was reopened. `spin` as in `session_options`; None leaves the session as it is, and True
        keeps a session opened with onnxruntime's default (which spins)."""
        if spin is None or spin_mode(spin) == spin_mode(self.spin):
            return False
        self.spin = spin
        if self.loaded:
            self.close()
            self.load()
        return True

    def session_config(self, key: str):
        """A config entry of the open session as onnxruntime holds it (None when unset: its default)."""
        if self.session is None:
            return None
        try:
            return self.session.get_session_options().get_session_config_entry(key)
        except Exception:  # onnxruntime raises when the entry was never set
            return None

    @property
    def providers(self):
        return self.session.get_providers() if self.session else []

    def describe(self):
        threads = f", {self.threads} threads" if self.threads else ""
        spin = "" if self.spin is None else f", {spin_text(self.spin)}"
        return f"onnxruntime ({', '.join(self.providers)}{threads}{spin})"

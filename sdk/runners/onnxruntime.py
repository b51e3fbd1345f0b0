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


def session_options(threads=None, spin=None):
    """`spin`: None keeps onnxruntime's default (idle pool threads spin, the lowest latency for one session);
    False stops idle threads spinning, for sessions timed side by side in one process: a spinning idle pool
    steals the cores of the session being timed (times 2-3x high, ratios moved; issue 19, docs/int8.md)."""
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if spin is not None:
        for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
            so.add_session_config_entry(key, "1" if spin else "0")
    so.log_severity_level = 3
    return so


class OnnxRuntimeRunner(Runner):
    backend = "onnxruntime"

    def __init__(self, path, providers=None, threads=None, spin=None):
        super().__init__(path)
        self.requested_providers = providers
        self.spin = spin  # None: onnxruntime's default; False for interleaved benchmarks (see session_options)
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
        """Open the session again with another idle-thread setting (onnxruntime fixes it when a session is
        created); True when it was reopened. `spin` as in `session_options`; None and True both spin."""
        if spin is None or (spin is not False) == (self.spin is not False):
            return False
        self.spin = bool(spin)
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
        spin = ", no spinning" if self.spin is False else ""
        return f"onnxruntime ({', '.join(self.providers)}{threads}{spin})"

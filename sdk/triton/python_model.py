"""Triton Python-backend model written by `python -m sdk export-triton --backend python`: runs 1/model.onnx with
onnxruntime on the CPU, for servers without a GPU (and CPU-only Triton builds without the onnxruntime backend).

This file is copied into the repository as NAME/1/model.py and runs inside Triton's Python stub, not in the SDK.
The stub embeds the Python it was built against, whose site-packages may lack numpy and onnxruntime (the
`nvidia-pytriton` wheel's binary uses the system libpython): when they are missing, the site-packages of the
environment named by $EDGE_SDK_TRITON_ENV (default ~/.cache/edge-sdk/triton-venv) are added to sys.path.
"""
import glob
import json
import os
import sys


def _add_server_env():
    env = os.environ.get("EDGE_SDK_TRITON_ENV") or os.path.expanduser("~/.cache/edge-sdk/triton-venv")
    pattern = os.path.join(env, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    for site in sorted(glob.glob(pattern)):
        if site not in sys.path:
            sys.path.insert(0, site)


try:
    import numpy as np
    import onnxruntime as ort
except ImportError:
    _add_server_env()
    import numpy as np
    import onnxruntime as ort


class TritonPythonModel:
    def initialize(self, args):
        import triton_python_backend_utils as pb_utils  # provided by the stub

        self.pb = pb_utils
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        so = ort.SessionOptions()
        threads = int(params.get("intra_op_thread_count") or 0)
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        if params.get("allow_spinning") == "0":  # idle threads yield the cores (CPU servers shared with clients)
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3
        self.session = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        first = self.session.get_inputs()[0].shape[0]
        # A fixed-batch-1 ONNX still serves batches: it runs them one item at a time.
        self.fixed_batch = first if isinstance(first, int) and first > 0 else None

    def execute(self, requests):
        """Requests the dynamic batcher gathered run as one onnxruntime call (concatenated on the batch axis)."""
        pb = self.pb
        try:
            feeds = [{n: pb.get_input_tensor_by_name(r, n).as_numpy() for n in self.input_names} for r in requests]
            sizes = [len(f[self.input_names[0]]) for f in feeds]
            batch = {n: np.concatenate([f[n] for f in feeds]) for n in self.input_names}
            outputs = self._run(batch)
        except Exception as e:  # report to every client instead of crashing the stub
            return [pb.InferenceResponse(error=pb.TritonError(f"{type(e).__name__}: {e}")) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            responses.append(pb.InferenceResponse([pb.Tensor(n, np.ascontiguousarray(o[start:start + size]))
                                                   for n, o in zip(self.output_names, outputs)]))
            start += size
        return responses

    def _run(self, batch):
        n = len(batch[self.input_names[0]])
        if self.fixed_batch is None or n == self.fixed_batch:
            return self.session.run(self.output_names, batch)
        parts = [self.session.run(self.output_names, {k: v[i:i + 1] for k, v in batch.items()}) for i in range(n)]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(self.output_names))]

    def finalize(self):
        self.session = None

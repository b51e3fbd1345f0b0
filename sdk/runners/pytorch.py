"""A PyTorch model behind the Runner interface, for comparisons (parity of an export against its source).

Not a deployment backend: the runtime path never imports this module (it needs torch). The model's decoded
output (batch, boxes, 5 + classes) is the runner's one output, 'output', as the SDK's ONNX export writes it.
"""
import numpy as np

from .base import Runner, TensorSpec


class TorchRunner(Runner):
    backend = "pytorch"

    def __init__(self, model, metadata, path=None):
        """`model`: a loaded torch module (e.g. `load_checkpoint(w, fuse=True)[0]`); `metadata`: the
        ModelMetadata of the export it is compared with (class names, input size)."""
        super().__init__(path or "pytorch")
        self.model, self._meta = model, metadata

    def _load(self):
        from ..deps import require

        self._torch = require("torch", "the PyTorch column of a comparison")
        self.model = self.model.float().eval()
        h, w = self._meta.imgsz
        self.inputs = [TensorSpec("images", (1, 3, h, w), np.dtype(np.float32))]
        self.outputs = [TensorSpec("output", (1, None, 5 + len(self._meta.names)), np.dtype(np.float32))]
        self.metadata = self._meta

    def _infer(self, feed):
        with self._torch.no_grad():
            out = self.model(self._torch.from_numpy(feed["images"]))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return {"output": out.numpy()}

    def _close(self):
        pass

    def describe(self):
        return "pytorch (CPU)"

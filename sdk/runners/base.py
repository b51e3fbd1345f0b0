"""The runner interface every backend implements (Polygraphy style: load, infer, close, context manager)."""
import abc
from typing import NamedTuple

import numpy as np

from ..errors import SDKError


class TensorSpec(NamedTuple):
    name: str
    shape: tuple  # None or a string for dynamic dimensions
    dtype: np.dtype


class Runner(abc.ABC):
    """Load a model, run `infer({name: array}) -> {name: array}`, close.

    Subclasses implement `_load`, `_infer` and `_close`; this base validates every feed against the model's
    inputs so a wrong shape or dtype gives a one-line error naming the input, never a backend traceback.
    """

    backend = "?"

    def __init__(self, path):
        self.path = str(path)
        self.inputs = []
        self.outputs = []
        self.metadata = None
        self.loaded = False

    def load(self):
        if not self.loaded:
            self._load()
            self.loaded = True
        return self

    def close(self):
        if self.loaded:
            self._close()
            self.loaded = False

    def __enter__(self):
        return self.load()

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to report
            pass

    @property
    def input(self):
        return self.inputs[0]

    def describe(self):
        """Short text for logs: backend, providers/device, precision."""
        return self.backend

    def infer(self, feed):
        """Run the model. `feed` is `{input_name: array}` or, for one-input models, a bare array."""
        if not self.loaded:
            self.load()
        if isinstance(feed, np.ndarray):
            feed = {self.inputs[0].name: feed}
        self.validate(feed)
        return self._infer(feed)

    def validate(self, feed):
        names = {s.name for s in self.inputs}
        unknown = set(feed) - names
        if unknown:
            raise SDKError(f"{self.backend} runner input: got tensor '{sorted(unknown)[0]}', expected "
                           f"{', '.join(sorted(names))}")
        for spec in self.inputs:
            if spec.name not in feed:
                raise SDKError(f"{self.backend} runner input '{spec.name}': missing from the feed, expected an "
                               f"array of shape {format_shape(spec.shape)}")
            arr = feed[spec.name]
            if not isinstance(arr, np.ndarray):
                raise SDKError(f"{self.backend} runner input '{spec.name}': got {type(arr).__name__}, expected "
                               f"a numpy array")
            if arr.dtype != spec.dtype:
                raise SDKError(f"{self.backend} runner input '{spec.name}': got dtype {arr.dtype}, expected "
                               f"{np.dtype(spec.dtype)}")
            if len(arr.shape) != len(spec.shape) or any(
                    isinstance(d, int) and d >= 0 and d != a for d, a in zip(spec.shape, arr.shape)):
                raise SDKError(f"{self.backend} runner input '{spec.name}': got shape {tuple(arr.shape)}, "
                               f"expected {format_shape(spec.shape)}")

    @abc.abstractmethod
    def _load(self):
        ...

    @abc.abstractmethod
    def _infer(self, feed):
        ...

    @abc.abstractmethod
    def _close(self):
        ...


def format_shape(shape):
    return "(" + ", ".join(str(d) if isinstance(d, int) and d >= 0 else "?" for d in shape) + ")"

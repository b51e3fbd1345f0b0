"""pytest fixtures for the TensorRT tests (imported by the test files; conftest.py is shared and not changed)."""
import pytest

from . import FLAVOURS, install


@pytest.fixture(params=FLAVOURS, ids=lambda f: f"trt{f}")
def trt(request, monkeypatch):
    """A fresh fake tensorrt (each flavour in turn) plus fake cuda-python, in sys.modules for this test."""
    return install(monkeypatch, request.param)


@pytest.fixture
def trt85(monkeypatch):
    return install(monkeypatch, "8.5")


@pytest.fixture
def trt10(monkeypatch):
    return install(monkeypatch, "10.3")


def calls(trt, prefix):
    """The recorded calls whose name starts with `prefix`."""
    return [c for c in trt.CALLS if c[0].startswith(prefix)]


def flags_set(trt):
    return {c[1] for c in calls(trt, "IBuilderConfig.set_flag")}

"""What `pip install` pulls in: on a Jetson (aarch64) nothing may replace JetPack's OpenCV (its python3-opencv is
the build with GStreamer for CSI cameras), neither the runtime requirements nor any extra, not even through
their own dependencies (read from the installed packages' metadata where they are installed here)."""
import importlib.metadata
import re

import pytest
import setuptools
from packaging.requirements import Requirement

from .conftest import REPO

JETSON = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux"}
X86 = {"platform_machine": "x86_64", "sys_platform": "linux", "platform_system": "Linux"}
OPENCV = re.compile(r"^opencv(-contrib)?-python(-headless)?$", re.I)


@pytest.fixture(scope="module")
def setup_kwargs(monkeypatch_module):
    seen = {}
    monkeypatch_module.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    code = (REPO / "setup.py").read_text()
    exec(compile(code, str(REPO / "setup.py"), "exec"), {"__name__": "__main__"})  # noqa: S102 - our own file
    assert seen.get("install_requires"), "setup.py did not call setup(install_requires=...)"
    return seen


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _applies(req, env, extra=""):
    return req.marker is None or req.marker.evaluate({**env, "extra": extra})


def _transitive_opencv(name, env, seen):
    """OpenCV wheels `name` pulls in on `env`, following installed packages' metadata."""
    key = name.lower().replace("_", "-")
    if key in seen:
        return []
    seen.add(key)
    if OPENCV.match(key):
        return [key]
    try:
        requires = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []  # not installed here: its own requirements cannot be read offline
    found = []
    for text in requires:
        req = Requirement(text)
        if _applies(req, env):  # only its unconditional requirements (no extras of its own asked for)
            found += _transitive_opencv(req.name, env, seen)
    return found


def test_no_opencv_wheel_on_a_jetson_from_the_runtime_or_any_extra(setup_kwargs):
    runtime = [Requirement(r) for r in setup_kwargs["install_requires"]]
    pulled = [r.name for r in runtime if _applies(r, JETSON) and OPENCV.match(r.name)]
    assert not pulled, f"install_requires pulls {pulled} on aarch64"
    for extra, reqs in setup_kwargs["extras_require"].items():
        for text in reqs:
            req = Requirement(text)
            assert not OPENCV.match(req.name), f"extra [{extra}] names {req.name}"
            if _applies(req, JETSON, extra):
                assert not _transitive_opencv(req.name, JETSON, set()), f"extra [{extra}]: {req.name} pulls OpenCV"


def test_x86_still_gets_opencv_from_pip(setup_kwargs):
    runtime = [Requirement(r) for r in setup_kwargs["install_requires"]]
    assert [r.name for r in runtime if OPENCV.match(r.name) and _applies(r, X86)] == ["opencv-python-headless"]

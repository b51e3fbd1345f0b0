"""Shared fixtures. Tests that need ../shared fail loudly when it is missing (never skip silently)."""
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared")).resolve()
CHECKPOINT = SHARED / "models" / "yolov7-tiny-pennfudan.pt"
PENNFUDAN = SHARED / "data" / "pennfudan"
VAL_IMAGES = PENNFUDAN / "images" / "val"
TRAIN_IMAGES = PENNFUDAN / "images" / "train"
PERSON_VIDEO = SHARED / "data" / "videos" / "one-by-one-person-detection.mp4"
CAR_VIDEO = SHARED / "data" / "videos" / "car-detection.mp4"


def _on_jetson():
    return platform.machine() == "aarch64" and Path("/etc/nv_tegra_release").exists() and \
        importlib.util.find_spec("tensorrt") is not None


def pytest_collection_modifyitems(config, items):
    if _on_jetson():
        return
    skip = pytest.mark.skip(reason="needs a real Jetson with TensorRT and a GPU; this machine has neither")
    for item in items:
        if "jetson" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """2 shared cores: torch's second thread spin-waits on a busy machine (20x slower training seen here)."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        yield  # the tests that need torch skip themselves
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def require_shared(path):
    if not Path(path).exists():
        pytest.fail(f"shared asset {path} is missing: these tests need ../shared beside the repository "
                    f"(or SDK_SHARED=/path/to/shared)", pytrace=False)
    return Path(path)


@pytest.fixture(scope="session")
def checkpoint():
    return require_shared(CHECKPOINT)


@pytest.fixture(scope="session")
def val_images():
    return require_shared(VAL_IMAGES)


@pytest.fixture(scope="session")
def train_images():
    return require_shared(TRAIN_IMAGES)


@pytest.fixture(scope="session")
def person_video():
    return require_shared(PERSON_VIDEO)


@pytest.fixture(scope="session")
def pennfudan():
    return require_shared(PENNFUDAN)


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory, checkpoint):
    """The shared checkpoint exported once per session at 416x416 through the real CLI."""
    pytest.importorskip("torch", reason="export needs the torch extra")
    out = tmp_path_factory.mktemp("model") / "yolov7-tiny.onnx"
    run_cli("export", "--weights", str(checkpoint), "--imgsz", "416", "-o", str(out), check=True)
    return out


def run_cli(*args, check=False, env=None, timeout=600, module="sdk"):
    """Run `python -m sdk ...` in a subprocess; returns CompletedProcess (text)."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=str(REPO))
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    return p


def assert_one_line_error(proc, *needles):
    """Bad input: exit 1, no traceback, one 'error:' line that names the input."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


@pytest.fixture(scope="session")
def dynamic_onnx_model(tmp_path_factory, checkpoint):
    """The shared checkpoint exported with a dynamic batch dimension (several camera streams per inference)."""
    pytest.importorskip("torch", reason="export needs the torch extra")
    out = tmp_path_factory.mktemp("model-dynamic") / "yolov7-tiny-dynamic.onnx"
    run_cli("export", "--weights", str(checkpoint), "--imgsz", "416", "--dynamic-batch", "-o", str(out), check=True)
    return out


# ---- shared by several test modules (the loaded checkpoint, training batches, classification crops)
CROP_SIZE = 64  # the demo classifier's input size


@pytest.fixture(scope="session")
def crops(pennfudan, tmp_path_factory):
    """Penn-Fudan person / background crops, folder per class: train/ and val/ (val: images never trained on)."""
    from sdk.classify.demo import demo_crops

    return demo_crops(pennfudan, tmp_path_factory.mktemp("crops"))


@pytest.fixture(scope="session")
def yolo_model(checkpoint):
    """The shared checkpoint as a torch model, loaded once: tests that change it work on a copy.deepcopy."""
    pytest.importorskip("torch")
    from sdk.models.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)[0]


@pytest.fixture(scope="module")
def model(yolo_model):
    """A test module's own copy of the shared model (it may train or cut it)."""
    import copy

    return copy.deepcopy(yolo_model)


@pytest.fixture(scope="module")
def teacher(model):
    """The shared model as a distillation teacher (the module's copy)."""
    return model


def letterboxed_batch(data, names, split, count, imgsz):
    """(images, targets) torch tensors: the first `count` samples of a split, letterboxed as for training."""
    import torch

    from sdk.data.datasets import load_dataset
    from sdk.train.augment import letterboxed, to_batch

    ds = load_dataset(data, names=names, split=split)
    x, t = to_batch([letterboxed(s, imgsz) for s in ds.samples[:count]])
    return torch.from_numpy(x), torch.from_numpy(t)

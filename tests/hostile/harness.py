"""Run the real CLI on a hostile input and check that it failed the way the product promises.

Every case runs `python -m sdk ...` in a subprocess under an address-space limit (RLIMIT_AS) and a timeout, with
its own TMPDIR, and ends with `assert_refused` / `assert_clean`: exit 1 and one short `error:` line, no
traceback, no leftover partial output (`.part`, hidden temporaries) or temporary folder.

Limits measured on the 2-core dev machine (2026-12-02): `eval` on onnxruntime peaks at ~160 MB resident and runs
under `ulimit -v` 800 MB; importing torch + onnx + onnxruntime needs under 2 GB of address space.
"""
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ..conftest import REPO, VAL_IMAGES

AS_LIMIT = 2 * 2**30  # onnxruntime commands
AS_LIMIT_TORCH = 4 * 2**30  # commands that import torch (export, train)
MAX_ERROR_LINE = 200


def limits(as_bytes, fsize=None):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
        if fsize is not None:
            # A "full disk" without root: writes past `fsize` bytes fail (EFBIG; the CLI ignores SIGXFSZ).
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        os.setsid()  # its own process group, so a test can signal it and everything it started
    return apply


def run_sdk(tmp_path, *args, timeout=90, as_bytes=AS_LIMIT, fsize=None, env=None, popen=False):
    """`python -m sdk *args` with the limits; returns CompletedProcess (with `.seconds`), or a Popen."""
    tmpdir = Path(tmp_path) / "TMPDIR"
    tmpdir.mkdir(exist_ok=True)
    full_env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO), "SDK_ORT_THREADS": "1",
                "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "sdk", *map(str, args)]
    kw = dict(env=full_env, cwd=str(tmp_path), preexec_fn=limits(as_bytes, fsize), text=True,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if popen:
        return subprocess.Popen(cmd, **kw)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError(f"{' '.join(cmd)} did not finish within {timeout} s (a hang):\n{err[-2000:]}")
    proc = subprocess.CompletedProcess(cmd, p.returncode, out, err)
    proc.seconds = time.monotonic() - t0
    return proc


def leftovers(root):
    """Partial outputs and temporary folders left under `root` (the case's tmp_path, TMPDIR included)."""
    root = Path(root)
    found = [p for p in root.rglob("*") if p.name != ".ses" and (  # .ses: onnxruntime's session id, on import
             p.name.endswith(".part") or (p.name.startswith(".") and p.is_file()) or p.name.startswith(("sdk-", "tmp")))]
    return [str(p.relative_to(root)) for p in found]


def assert_refused(proc, tmp_path, *needles):
    """Exit 1, exactly one short `error:` line naming the input, no traceback, nothing half-written left."""
    tail = f"\nstdout: {proc.stdout[-800:]}\nstderr: {proc.stderr[-2000:]}"
    assert proc.returncode == 1, f"exit {proc.returncode}, expected 1{tail}"
    assert "Traceback" not in proc.stderr, tail
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, f"{len(errors)} error lines, expected 1{tail}"
    line = errors[0]
    assert len(line) <= MAX_ERROR_LINE + len("error: "), f"error line of {len(line)} characters: {line}"
    assert "internal error" not in line, line
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    assert not leftovers(tmp_path), leftovers(tmp_path)
    print(line)  # shown with pytest -s: the suite doubles as a catalogue of the messages
    return line


def assert_clean(proc, tmp_path):
    """A documented clean exit 0: no error line, no traceback, nothing partial left."""
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr and "error:" not in proc.stderr, proc.stderr[-2000:]
    assert not leftovers(tmp_path), leftovers(tmp_path)


# ------------------------------------------------------------------ generators (no binary blobs in the repo)
def val_image_names(n):
    return sorted(p.name for p in VAL_IMAGES.iterdir())[:n]


def yolo_dataset(root, n=2, labels=None):
    """A YOLO layout of `n` real Penn-Fudan val images; `labels` maps an image index to replacement text."""
    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i, name in enumerate(val_image_names(n)):
        shutil.copy(VAL_IMAGES / name, root / "images" / name)
        src = VAL_IMAGES.parent.parent / "labels" / "val" / (Path(name).stem + ".txt")
        text = (labels or {}).get(i, src.read_text())
        target = root / "labels" / (Path(name).stem + ".txt")
        target.write_bytes(text) if isinstance(text, bytes) else target.write_text(text)
    return root / "images"


def coco_dict(n=2):
    """The shared val COCO json cut to its first `n` images (and their annotations)."""
    import json

    d = json.loads((VAL_IMAGES.parent.parent / "instances_val.json").read_text())
    images = d["images"][:n]
    ids = {im["id"] for im in images}
    return {"images": images, "annotations": [a for a in d["annotations"] if a["image_id"] in ids],
            "categories": d["categories"]}


def write_coco(root, d):
    import json

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for im in d.get("images", []):
        name = im.get("file_name", "")
        if name and (VAL_IMAGES / name).is_file() and not (root / name).exists():
            shutil.copy(VAL_IMAGES / name, root / name)
    path = root / "instances_val.json"
    path.write_text(json.dumps(d))
    return path


def voc_dataset(root, boxes, name="person"):
    """A Pascal VOC folder with one real image and one object per box (xmin, ymin, xmax, ymax as text)."""
    root = Path(root)
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    image = val_image_names(1)[0]
    shutil.copy(VAL_IMAGES / image, root / "JPEGImages" / image)
    h, w = cv2.imread(str(VAL_IMAGES / image)).shape[:2]
    objs = "".join(f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}"
                   f"</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    (root / "Annotations" / (Path(image).stem + ".xml")).write_text(
        f"<annotation><filename>{image}</filename><size><width>{w}</width><height>{h}</height><depth>3</depth>"
        f"</size>{objs}</annotation>")
    return root, (w, h)


def images_folder(root, n=2):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in val_image_names(n):
        shutil.copy(VAL_IMAGES / name, root / name)
    return root


def noise_image(path, size=(64, 48)):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return path

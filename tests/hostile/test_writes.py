"""A full disk under every command that writes: exit 1 with one line, no partial output renamed into place.

With root (CI containers, this dev machine) the disk is a real tmpfs that fills up (ENOSPC); without it,
RLIMIT_FSIZE makes every write past the limit fail (EFBIG: the CLI ignores SIGXFSZ so the write fails instead
of the process being killed).
"""
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from .harness import AS_LIMIT_TORCH, assert_refused, images_folder, run_sdk, yolo_dataset


@pytest.fixture()
def full_disk(tmp_path):
    """(folder on a tiny filesystem or None, fsize limit or None): writes there fail after ~`size` bytes."""
    def make(size_kb):
        mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
        mnt.mkdir()
        if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)],
                                                capture_output=True).returncode == 0:
            mounts.append(mnt)
            return mnt, None
        return mnt, size_kb * 1024

    mounts = []
    yield make
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], capture_output=True)


def listing(folder):
    return sorted(p.name for p in Path(folder).rglob("*"))


def test_detect_save_dir_on_a_full_disk(tmp_path, onnx_model, full_disk):
    disk, fsize = full_disk(300)
    images = images_folder(tmp_path / "in", n=4)
    proc = run_sdk(tmp_path, "detect", "--model", onnx_model, "--source", images, "--save-dir", disk / "out",
                   fsize=fsize)
    assert_refused(proc, tmp_path, "--save-dir", "write")
    names = listing(disk / "out")
    assert "detections.jsonl" not in names and not [n for n in names if n.startswith(".")], names
    for name in names:  # whatever images did fit are whole ones
        assert (disk / "out" / name).stat().st_size == (images / name).stat().st_size or name.endswith(".png")


def test_eval_save_json_on_a_full_disk(tmp_path, onnx_model, full_disk):
    disk, fsize = full_disk(4)  # the predictions json of 2 images is ~10 kB
    proc = run_sdk(tmp_path, "eval", "--model", onnx_model, "--data", yolo_dataset(tmp_path / "d"),
                   "--save-json", disk / "preds.json", fsize=fsize)
    assert_refused(proc, tmp_path, "preds.json", "cannot write it")
    assert listing(disk) == []


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"], ids=["pyav-h264", "opencv-avi"])
def test_camera_save_on_a_full_disk_keeps_no_truncated_video(tmp_path, onnx_model, full_disk, person_video, name):
    """H.264 through PyAV reports the failed write; OpenCV's writer does not, so the finished file is checked."""
    disk, fsize = full_disk(12)  # 20 frames of mp4v are ~40 kB
    proc = run_sdk(tmp_path, "camera", "--model", onnx_model, "--source", person_video, "--headless",
                   "--save", disk / name, "--max-frames", "20", fsize=fsize, timeout=120)
    assert_refused(proc, tmp_path, name)
    assert listing(disk) == []


def test_export_on_a_full_disk(tmp_path, checkpoint, full_disk):
    disk, fsize = full_disk(1024)
    proc = run_sdk(tmp_path, "export", "--weights", checkpoint, "--imgsz", "64", "-o", disk / "m.onnx",
                   fsize=fsize, as_bytes=AS_LIMIT_TORCH, timeout=180)
    assert_refused(proc, tmp_path, "m.onnx", "cannot write it")
    assert listing(disk) == []


def test_quantize_on_a_full_disk(tmp_path, onnx_model, full_disk, train_images):
    disk, fsize = full_disk(1024)
    proc = run_sdk(tmp_path, "quantize", "--model", onnx_model, "--calib", train_images, "--calib-count", "32",
                   "--calib-method", "minmax", "-o", disk / "int8.onnx", fsize=fsize, timeout=180)
    assert_refused(proc, tmp_path, "int8.onnx", "cannot write it")
    assert listing(disk) == []


def test_train_on_a_full_disk(tmp_path, checkpoint, full_disk):
    disk, fsize = full_disk(1024)
    proc = run_sdk(tmp_path, "train", "--weights", checkpoint, "--data", yolo_dataset(tmp_path / "d"), "--no-val",
                   "--epochs", "1", "--batch-size", "2", "--imgsz", "64", "--no-augment", "--out-dir", disk / "run",
                   fsize=fsize, as_bytes=AS_LIMIT_TORCH, timeout=240)
    assert_refused(proc, tmp_path, "cannot write it")
    assert not [n for n in listing(disk) if n.endswith((".pt", ".part")) or n.startswith(".")], listing(disk)

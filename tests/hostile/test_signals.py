"""SIGTERM and SIGHUP (a closed ssh session) end batch commands cleanly: exit 128 + signum with one line, no
`.part` file, no temporary folder; the camera finalises the recording it has."""
import signal
import time
from pathlib import Path

import cv2
import pytest

from .harness import AS_LIMIT_TORCH, leftovers, run_sdk


def wait_for(cond, proc, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before the signal: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the command never reached the point to signal")


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_quantize_interrupted_leaves_no_part_file_or_temp_folder(signum, tmp_path, onnx_model, train_images):
    out = tmp_path / "out" / "int8.onnx"
    proc = run_sdk(tmp_path, "quantize", "--model", onnx_model, "--calib", train_images, "--calib-count", "64",
                   "--calib-method", "minmax", "-o", out, popen=True)
    wait_for(lambda: any((tmp_path / "TMPDIR").glob("sdk-quant-*")), proc)  # calibrating now
    time.sleep(0.5)
    proc.send_signal(signum)
    code, _, err = finish(proc)
    assert code == 128 + signum, (code, err[-2000:])
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("terminated by")] == \
        [f"terminated by {signal.Signals(signum).name}; partial outputs removed"], err[-2000:]
    assert not out.exists() and not leftovers(tmp_path), leftovers(tmp_path)


def test_export_sighup_leaves_nothing(tmp_path, checkpoint):
    out = tmp_path / "out" / "m.onnx"
    proc = run_sdk(tmp_path, "export", "--weights", checkpoint, "--imgsz", "64", "-o", out,
                   as_bytes=AS_LIMIT_TORCH, popen=True)
    wait_for(lambda: any(out.parent.glob(".m.onnx.*")), proc)  # the ONNX is being written
    proc.send_signal(signal.SIGHUP)
    code, _, err = finish(proc)
    assert code in (128 + signal.SIGHUP, 0), (code, err[-2000:])  # 0: it had already finished the file
    assert "Traceback" not in err
    assert out.exists() == (code == 0) and not leftovers(tmp_path), leftovers(tmp_path)


def test_camera_sighup_finalises_the_recording(tmp_path, onnx_model, person_video):
    out = tmp_path / "rec.mp4"
    proc = run_sdk(tmp_path, "camera", "--model", onnx_model, "--source", person_video, "--headless", "--save", out,
                   popen=True)
    wait_for(lambda: any(tmp_path.glob(".rec.mp4.*")), proc)  # recording
    time.sleep(2)
    proc.send_signal(signal.SIGHUP)
    code, stdout, err = finish(proc)
    assert code == 0 and "Traceback" not in err, (code, err[-2000:])
    assert '"stop_reason": "interrupted (SIGHUP)"' in stdout
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) >= 1 and cap.read()[0]
    cap.release()
    assert not leftovers(tmp_path), leftovers(tmp_path)

"""`python -m sdk camera` / samples/camera_detect.py / `python -m sdk soak` end to end, as a user runs them."""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest

from sdk.errors import SDKError
from sdk.video.gstreamer import opencv_has_gstreamer

from .conftest import REPO, assert_one_line_error, run_cli


def last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_headless_run_on_the_person_video_finds_people(onnx_model, person_video, tmp_path):
    out = tmp_path / "dets.jsonl"
    p = run_cli("camera", "--model", onnx_model, "--source", f"{person_video}?start=240", "--headless",
                "--max-frames", "20", "--json", out, check=True)
    stats = last_json(p.stdout)
    assert stats["frames_processed"] == 20 and stats["frames_read"] == 20 and stats["frames_dropped"] == 0
    assert stats["frames_with_detections"] >= 18 and stats["detections"]["person"] >= 18
    assert stats["model_fps"] > 0 and stats["e2e_fps"] > 0 and 0 < stats["p50_ms"] <= stats["p95_ms"]
    assert "backend: onnxruntime" in p.stderr and "TensorRT is not installed" in p.stderr
    assert "every frame, none dropped" in p.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 20 and all(r["counts"].get("person") for r in records[:18])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_leaves_a_playable_video(sig, onnx_model, person_video, tmp_path):
    video = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "sdk", "camera", "--model", str(onnx_model), "--source",
                             str(person_video), "--loop", "--headless", "--save", str(video)],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(n.startswith(".out.mp4") for n in os.listdir(tmp_path)):
            time.sleep(0.2)  # the temporary video appears with the first processed frame
        time.sleep(1.0)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    stats = last_json(stdout)
    assert stats["stop_reason"] == f"interrupted ({sig.name})" and stats["frames_processed"] >= 2
    assert os.listdir(tmp_path) == ["out.mp4"]
    cap = cv2.VideoCapture(str(video))
    decoded = 0
    while cap.read()[0]:
        decoded += 1
    assert decoded == stats["frames_processed"]


def test_sample_script_is_the_same_command(onnx_model, val_images, tmp_path):
    out = tmp_path / "annotated.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # as after `pip install -e .`
    p = subprocess.run([sys.executable, "samples/camera_detect.py", "--model", str(onnx_model), "--source",
                        f"{val_images}/FudanPed0000*.png", "--output", str(out), "--headless"],
                       cwd=str(REPO), capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    stats = last_json(p.stdout)
    n = len(list(val_images.glob("FudanPed0000*.png")))
    assert stats["frames_processed"] == n and stats["detections"]["person"] >= n
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n


@pytest.mark.parametrize("extra, needles", [
    (["--source", "/no/such/clip.mp4"], ["--source /no/such/clip.mp4", "file not found"]),
    (["--source", "/dev/video93"], ["camera not found (no /dev/video93)"]),
    (["--source", "rtsp://127.0.0.1:9/live?timeout=3"], ["--source rtsp://127.0.0.1:9/live", "connection refused"]),
    (["--source", "csi://0"], ["csi://0", "needs OpenCV built with GStreamer"]),
    (["--save", "/proc/nope/out.mp4"], ["--output /proc/nope/out.mp4", "expected a writable location"]),
    (["--output", "display://", "--headless"], ["--output display://", "with --headless"]),
    (["--imgsz", "640"], ["--imgsz", "got 640x640, expected 416x416", "fixed at that size"]),
])
def test_bad_input_is_one_line(onnx_model, person_video, extra, needles):
    args = ["camera", "--model", onnx_model, "--headless", "--max-frames", "1"]
    if "--source" not in extra:
        args += ["--source", person_video]
    if "--headless" in extra:
        args.remove("--headless")
    if extra[-1] == "csi://0" and opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer: csi:// fails later, at the camera")
    assert_one_line_error(run_cli(*args, *extra, timeout=120), *needles)


@pytest.mark.parametrize("extra, library, needles", [
    (["--source", "/no/such/clip.mp4"], "source /no/such/clip.mp4", ["--source /no/such/clip.mp4", "file not found"]),
    (["--save", "/proc/nope/out.mp4"], "output /proc/nope/out.mp4", ["--output /proc/nope/out.mp4", "writable"]),
    (["--conf", "2"], None, ["--conf: got 2"]),
])
def test_sample_names_flags_where_the_library_names_parameters(onnx_model, person_video, extra, library, needles):
    """The library's error names its parameter ('output ...'); the sample, like `sdk camera`, reports the flag."""
    if library:
        from sdk.video.sinks import create_sink
        from sdk.video.sources import open_source
        open_input = open_source if extra[0] == "--source" else create_sink
        with pytest.raises(SDKError) as e:
            open_input(extra[1])
        assert str(e.value).startswith(library + ":"), str(e.value)
    args = ["--model", str(onnx_model), "--headless", "--max-frames", "1"]
    args += [] if "--source" in extra else ["--source", str(person_video)]
    p = subprocess.run([sys.executable, "samples/camera_detect.py", *args, *extra], cwd=str(REPO),
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert_one_line_error(p, *needles)


def test_model_that_is_neither_onnx_nor_engine(tmp_path, person_video):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    p = run_cli("camera", "--model", bad, "--source", person_video, "--headless")
    assert_one_line_error(p, f"model {bad}", "expected an ONNX model (.onnx) or a TensorRT engine")


def test_no_camera_and_no_source(onnx_model):
    if any(n.startswith("video") for n in os.listdir("/dev")):
        pytest.skip("this machine has a camera")
    p = run_cli("camera", "--model", onnx_model, "--headless")
    assert_one_line_error(p, "--source: no camera found", "/dev/video*")  # the rest is cut to one line


def test_soak_reports_memory(onnx_model, person_video):
    p = run_cli("soak", "--model", onnx_model, "--source", f"{person_video}?start=1388", "--minutes", "0.1",
                check=True, timeout=180)
    stats = last_json(p.stdout)
    assert stats["stop_reason"] == "time limit" and 5.5 <= stats["elapsed_s"] <= 60
    assert stats["frames_processed"] > 6  # more than one pass over the 6-frame looped segment
    assert 0 < stats["rss_start_mb"] and 0 < stats["rss_end_mb"] and "memory_flat" in stats


def test_runtime_path_imports_neither_torch_nor_tensorflow():
    code = ("import sys, sdk.commands.camera, sdk.commands.soak, sdk.video.pipeline, sdk.video.sinks, "
            "sdk.video.stream_out, sdk.video.sources; bad = [m for m in ('torch', 'tensorflow') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=str(REPO), check=True, timeout=60)


@pytest.mark.jetson
def test_csi_camera_headless_on_jetson(tmp_path):
    engine = os.environ.get("SDK_TEST_ENGINE")
    if not engine:
        pytest.skip("set SDK_TEST_ENGINE to a TensorRT engine built by build_engine")
    p = run_cli("camera", "--model", engine, "--source", "csi://0", "--headless", "--max-frames", "30",
                "--save", tmp_path / "csi.mp4", check=True)
    stats = last_json(p.stdout)
    assert stats["frames_processed"] == 30 and stats["backend"] == "tensorrt"


def test_stream_lost_mid_run_reconnects_then_exits_1(onnx_model, person_video, monkeypatch, capsys):
    from sdk.cli import main
    from sdk.commands import camera
    from sdk.video.sources import LOST, CaptureSource
    from sdk.video.uri import parse_uri

    class DroppingStream(CaptureSource):
        """The real person video as a live stream that drops after 6 frames and never comes back."""

        def __init__(self):
            super().__init__(parse_uri(f"{person_video}?start=240&live=1"))
            self.sent, self.reopen_calls = 0, 0

        def read(self):
            self.sent += 1
            return (LOST, None) if self.sent > 6 else super().read()

        def reopen(self):
            self.reopen_calls += 1
            raise camera.SDKError("refused on purpose")

    stream = DroppingStream()
    monkeypatch.setattr(camera, "open_source", lambda text, what="source": stream.open())
    code = main(["camera", "--model", str(onnx_model), "--source", "rtsp://cam/live", "--headless",
                 "--reconnect", "2"])
    out, err = capsys.readouterr()
    assert out.strip(), err
    stats = last_json(out)
    assert code == 1 and stream.reopen_calls == 2 and stats["frames_read"] == 6
    assert stats["stop_reason"] == "stream lost, 2 reconnect attempts failed" and stats["frames_processed"] >= 1
    assert err.strip().splitlines()[-1] == ("error: --source rtsp://cam/live: stream lost, 2 reconnect attempts "
                                            "failed, expected the stream to come back")

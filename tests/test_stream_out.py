"""rtsp:// and rtp:// outputs, read back on loopback: the annotated frames of the shared person video come out of a
real GStreamer RTSP server (OpenCV's FFmpeg reads it) and a real RTP stream (PyAV reads it through the SDP file).

The RTSP tests need GStreamer with rtsp-server and python3-gi for some interpreter (Debian's packages: .ci/run
installs them); they skip, saying so, where none has them. No timed assertions: waits are bounded so a hang fails.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, assert_one_line_error, run_cli

from sdk.errors import SDKError
from sdk.video import stream_out
from sdk.video.sinks import create_sink, create_sinks

READ_OPTIONS = "rtsp_transport;tcp|analyzeduration;500000|probesize;200000"  # TCP: no lost packets on a busy box
WAIT_S = 40.0


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gstreamer():
    python, found = stream_out.find_gstreamer_python(os.environ.get(stream_out.GST_PYTHON_ENV) or None)
    if python is None:
        pytest.skip(f"no GStreamer RTSP server here ({'; '.join(found)}); on Debian: apt install "
                    f"{stream_out.APT_PACKAGES}")
    return python


@pytest.fixture
def ffmpeg_rtsp_tcp(monkeypatch):
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", READ_OPTIONS)


def read_rtsp(url, n, deadline):
    """Up to n decoded frames from an RTSP URL; retries while the mount is not there yet (it comes with a frame)."""
    frames = []
    while time.monotonic() < deadline and len(frames) < n:
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000,
                                                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
        while cap.isOpened() and len(frames) < n and time.monotonic() < deadline:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        if len(frames) < n:
            time.sleep(0.3)
    return frames


def read_rtp(sdp_path, n, deadline):
    import av

    frames = []
    with av.open(str(sdp_path), options={"protocol_whitelist": "file,udp,rtp", "reorder_queue_size": "0"},
                 timeout=10) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) >= n or time.monotonic() > deadline:
                break
    return frames


def psnr(a, b, mask=None):
    d = (a.astype(np.float32) - b.astype(np.float32)) ** 2
    mse = float(d[mask].mean() if mask is not None else d.mean())
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-6))


def stream_person_video(onnx_model, person_video, uri, read, n=24):
    """Run the pipeline on the person video into `uri` while `read(sink, n, deadline)` decodes frames on a thread;
    returns (decoded frames, [(raw, annotated)] of the frames sent last, the final stats)."""
    from sdk.detector import Detector
    from sdk.video.pipeline import Pipeline
    from sdk.video.sources import open_source

    source = open_source(f"{person_video}?start=240")
    sink = create_sink(uri)
    decoded, done, sent = [], threading.Event(), deque(maxlen=80)

    def reader():
        try:
            decoded.extend(read(sink, n, time.monotonic() + WAIT_S))
        finally:
            done.set()

    thread = threading.Thread(target=reader, daemon=True)
    with Detector(onnx_model) as detector:
        pipeline = Pipeline(detector, [source], [sink], info={"fps": source.fps, "size": source.size},
                            overlay=False, handle_signals=False)
        t_end = time.monotonic() + WAIT_S + 10
        for result in pipeline:
            sent.append((result.frame.image, result.image))
            if not thread.is_alive() and not done.is_set():
                thread.start()  # after open(): the server is up and the SDP file written
            if done.is_set() or time.monotonic() > t_end:
                pipeline.stop()
    thread.join(10)
    return decoded, list(sent), pipeline.final_stats


def assert_boxes_came_through(decoded, sent):
    """Each decoded frame is one of the annotated frames (PSNR > 30 dB), and where boxes were drawn it matches the
    drawing, not the camera image underneath."""
    assert decoded and decoded[0].shape == sent[0][1].shape == (432, 768, 3)
    checked = 0
    for frame in decoded[-6:]:
        best = max(sent, key=lambda pair: psnr(frame, pair[1]))
        raw, annotated = best
        assert psnr(frame, annotated) > 30, psnr(frame, annotated)
        drawn = np.abs(annotated.astype(int) - raw.astype(int)).max(axis=2) > 60  # box outlines and labels
        if drawn.sum() < 300:
            continue  # no person in that frame
        err_drawn = np.abs(frame.astype(int) - annotated.astype(int))[drawn].mean()
        err_raw = np.abs(frame.astype(int) - raw.astype(int))[drawn].mean()
        assert err_drawn < 0.4 * err_raw, (err_drawn, err_raw)
        checked += 1
    assert checked >= 3, "the person video from frame 240 shows a person: boxes were expected on the frames"


def test_rtsp_output_serves_the_annotated_frames(gstreamer, ffmpeg_rtsp_tcp, onnx_model, person_video):
    port = free_port()

    def read(sink, n, deadline):
        assert sink.url == f"rtsp://127.0.0.1:{port}/cam"
        return read_rtsp(sink.url, n, deadline)

    decoded, sent, stats = stream_person_video(onnx_model, person_video, f"rtsp://127.0.0.1:{port}/cam", read)
    assert len(decoded) >= 24
    assert_boxes_came_through(decoded, sent)
    (out,) = stats["outputs"]
    assert out["output"] == f"rtsp://127.0.0.1:{port}/cam" and out["frames_sent"] >= 24
    assert out["frames_sent"] + out["frames_dropped"] + out["frames_unwatched"] == stats["frames_processed"]


def test_rtp_output_with_its_sdp_file(onnx_model, person_video, tmp_path):
    pytest.importorskip("av", reason="rtp:// needs PyAV (the video extra)")
    port = free_port(socket.SOCK_DGRAM) & ~1  # RTP on an even port, RTCP on the next
    sdp = tmp_path / "cam.sdp"

    def read(sink, n, deadline):
        assert sink.sdp_path == str(sdp) and f"m=video {port} RTP/AVP 96" in sdp.read_text()
        return read_rtp(sdp, n, deadline)

    decoded, sent, stats = stream_person_video(onnx_model, person_video, f"rtp://127.0.0.1:{port}?sdp={sdp}", read)
    assert len(decoded) >= 24
    assert_boxes_came_through(decoded, sent)
    assert stats["outputs"][0]["frames_sent"] >= 24


def helper_pids(pid):
    """The RTSP helper processes among the children of `pid`."""
    out = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"stream_out_gst.py" in cmd:
                out.append(int(child))
    return out


def gone(pid, wait_s=10.0):
    """True once `pid` has exited (a zombie counts as exited: only its parent can reap it)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_camera_cli_rtsp_read_back_then_signal_leaves_no_helper(sig, gstreamer, ffmpeg_rtsp_tcp, onnx_model,
                                                                person_video):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sdk", "camera", "--model", str(onnx_model), "--source",
                             f"{person_video}?start=240", "--loop", "--headless", "--output",
                             f"rtsp://127.0.0.1:{port}/cam"], cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        frames = read_rtsp(f"rtsp://127.0.0.1:{port}/cam", 8, time.monotonic() + WAIT_S)
        helpers = helper_pids(proc.pid)
        # Ctrl-C in a terminal, `systemctl stop` (KillMode=control-group) or `kill -- -PGID`: the whole process
        # group, the helper included, which must outlive the SDK's drain (it stops when its stdin closes)
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(frames) == 8 and frames[0].shape == (432, 768, 3), err[-2000:]
    assert proc.returncode == 0, err[-2000:]
    assert f"rtsp: serving rtsp://127.0.0.1:{port}/cam (H.264 by " in err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["stop_reason"] == f"interrupted ({sig.name})"
    assert stats["outputs"][0]["frames_sent"] >= 8
    assert len(helpers) == 1 and gone(helpers[0]), "the RTSP helper process outlived the camera command"


def test_helper_outlives_sigterm_until_its_stdin_closes(gstreamer):
    """SIGTERM to the group (systemctl stop) reaches the helper while the SDK still drains: it must wait for the
    SDK to close its stdin, else a clean stop ends with 'the RTSP server process exited (-15)', exit 1."""
    sink = create_sink(f"rtsp://127.0.0.1:{free_port()}/t")
    sink.open({"fps": 30})
    helper = sink.server.proc.pid
    try:
        os.kill(helper, signal.SIGTERM)
        assert not gone(helper, 1.5), "the RTSP helper died of SIGTERM"
        sink.write(np.zeros((240, 320, 3), np.uint8), None, {})
    finally:
        sink.close()
    assert gone(helper, 5) and sink.server.proc.returncode == 0


def test_helper_stops_when_the_sdk_process_is_killed(gstreamer):
    """SIGKILL leaves no chance to clean up: the helper sees its stdin close and exits on its own."""
    port = free_port()
    code = (f"import sys, time; from sdk.video.sinks import create_sink; s = create_sink('rtsp://127.0.0.1:{port}/x');"
            "print(s.server.proc.pid, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(REPO), stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        helper = int(proc.stdout.readline())
        assert not gone(helper, 0.5)
        proc.kill()
        proc.wait(10)
        assert gone(helper, 10), "the RTSP helper outlived a killed SDK process"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_stalled_server_never_blocks_the_pipeline(gstreamer):
    """The helper stopped (SIGSTOP) with a full pipe: writes still return at once, frames are dropped and counted,
    and close() does not hang (the stuck helper is killed)."""
    sink = create_sink(f"rtsp://127.0.0.1:{free_port()}/stall")
    sink.open({"fps": 30})
    helper = sink.server.proc.pid
    frame = np.full((720, 1280, 3), 90, np.uint8)  # 2.7 MB: a pipe holds far less than one
    os.kill(helper, signal.SIGSTOP)
    try:
        finished = threading.Event()

        def writes():
            for _ in range(200):
                sink.write(frame, None, {})
            finished.set()

        threading.Thread(target=writes, daemon=True).start()
        assert finished.wait(20), "write() blocked behind a stalled RTSP server"
        stats = sink.output_stats()
        assert stats["frames_dropped"] >= 190 and stats["frames_sent"] <= 5, stats
        closer = threading.Thread(target=sink.close, daemon=True)
        closer.start()
        closer.join(20)
        assert not closer.is_alive(), "close() hung on a stalled RTSP server"
    finally:
        try:
            os.kill(helper, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert gone(helper, 5)


def test_frames_go_to_the_helper_only_while_the_mount_is_watched(gstreamer, ffmpeg_rtsp_tcp):
    """After the first frame (which publishes the mount) nothing goes down the pipe until a client watches; then
    frames flow and reach it; the helper was started with the encoder the SDK's probe found (no second probe)."""
    port = free_port()
    sink = create_sink(f"rtsp://127.0.0.1:{port}/w")
    probed = stream_out.find_gstreamer_python(os.environ.get(stream_out.GST_PYTHON_ENV) or None)[1]["encoder"]
    assert sink.server.command[-2:] == ["--encoder", probed] and sink.server.encoder == probed
    sink.open({"fps": 20})
    frame = np.full((240, 320, 3), 120, np.uint8)
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            sink.write(frame, None, {})
            time.sleep(0.02)

    try:
        sink.write(frame, None, {})
        deadline = time.monotonic() + WAIT_S
        while sink.output_stats()["frames_sent"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(50):
            sink.write(frame, None, {})
        idle = sink.output_stats()
        assert idle["frames_sent"] == 1 and idle["frames_unwatched"] == 50 and idle["clients"] == 0, idle
        threading.Thread(target=feed, daemon=True).start()
        (got,) = read_rtsp(f"rtsp://127.0.0.1:{port}/w", 1, time.monotonic() + WAIT_S)
        assert got.shape == (240, 320, 3) and abs(int(got[120, 160, 0]) - 120) < 10
        assert sink.output_stats()["frames_sent"] > 1
        deadline = time.monotonic() + WAIT_S  # the client has gone: its media is let go, sending stops again
        while sink.server.watched and time.monotonic() < deadline:
            time.sleep(0.05)
        before = sink.output_stats()
        time.sleep(0.5)
        after = sink.output_stats()
        assert not sink.server.watched and after["frames_sent"] <= before["frames_sent"] + 1, (before, after)
        assert after["frames_unwatched"] > before["frames_unwatched"]
    finally:
        stop.set()
        sink.close()


def test_reader_threads_end_before_their_pipes_close(gstreamer, monkeypatch):
    """close() joins the threads reading the helper's stdout/stderr before closing those pipes: a pipe closed under
    a reader used to print a ValueError traceback from its thread."""
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda a: errors.append(a.exc_value))
    for i in range(3):
        sink = create_sink(f"rtsp://127.0.0.1:{free_port()}/r{i}")
        sink.open({"fps": 30})
        sink.write(np.zeros((240, 320, 3), np.uint8), None, {})
        readers = sink.server.readers
        sink.close()
        assert not any(t.is_alive() for t in readers)
    assert errors == []


def test_a_server_that_dies_is_a_one_line_error(gstreamer):
    sink = create_sink(f"rtsp://127.0.0.1:{free_port()}/gone")
    sink.open({"fps": 30})
    frame = np.zeros((240, 320, 3), np.uint8)
    sink.write(frame, None, {})
    sink.server.proc.kill()
    try:
        with pytest.raises(SDKError) as e:
            for _ in range(500):  # the feeder notices the broken pipe at its next send
                sink.write(frame, None, {})
                time.sleep(0.01)
        assert str(e.value).startswith(f"output {sink.uri}: got 'the RTSP server process exited (-9)") and \
            "expected the RTSP server to keep running" in str(e.value), str(e.value)
    finally:
        sink.close()


def test_encoder_probe_needs_a_frame_encoded(gstreamer):
    """An element that exists but cannot encode (caps it cannot take here) is not chosen; x264enc is."""
    code = ("import runpy, sys; g = runpy.run_path(sys.argv[1]); Gst = g['_gst']()[1]; "
            "chain = dict(g['ENCODERS'])['x264enc']; "
            "print(g['encode_problem'](Gst, chain)); "
            "print(g['encode_problem'](Gst, 'videoconvert ! video/x-raw,format=I420,width=8,height=8 ! ' + chain))")
    p = subprocess.run([gstreamer, "-c", code, stream_out.HELPER], capture_output=True, text=True, timeout=60)
    ok, bad = p.stdout.strip().splitlines()[-2:]
    if "no element" in ok:
        pytest.skip("this GStreamer has no x264enc")
    assert ok == "None" and bad.startswith("failed to encode"), p.stdout + p.stderr


def test_streams_share_one_server_with_a_mount_each(gstreamer, ffmpeg_rtsp_tcp):
    port = free_port()
    sinks = create_sinks([f"rtsp://127.0.0.1:{port}/cam{{stream}}"], streams=2)
    try:
        assert [s.path for s in sinks] == ["/cam0", "/cam1"] and sinks[0].server is sinks[1].server
        assert [s.stream for s in sinks] == [0, 1]
        with pytest.raises(SDKError, match="expected one encoder per port"):
            create_sink(f"rtsp://127.0.0.1:{port}/other?encoder=openh264enc")
        with pytest.raises(SDKError, match="got mount path /cam1 twice"):
            create_sink(f"rtsp://127.0.0.1:{port}/cam1")
        for s in sinks:
            s.open({"fps": 10})
        stop = threading.Event()

        def feed():
            while not stop.is_set():
                for i, s in enumerate(sinks):  # stream 0 red, stream 1 green
                    frame = np.zeros((240, 320, 3), np.uint8)
                    frame[..., 2 - i] = 200
                    s.write(frame, None, {})
                time.sleep(0.05)

        threading.Thread(target=feed, daemon=True).start()
        try:
            for i in range(2):
                (frame,) = read_rtsp(f"rtsp://127.0.0.1:{port}/cam{i}", 1, time.monotonic() + WAIT_S)
                assert frame.shape == (240, 320, 3)
                assert abs(int(frame[120, 160, 2 - i]) - 200) < 20 and frame[120, 160, 1 + i] < 20, frame[120, 160]
        finally:
            stop.set()
    finally:
        for s in sinks:
            s.close()
    assert gone(sinks[0].server.proc.pid, 5)


def test_port_in_use_is_one_line(gstreamer):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SDKError, match=rf"^output rtsp://127.0.0.1:{port}/cam: got 'cannot listen on "
                                           rf"127.0.0.1 port {port}"):
            create_sink(f"rtsp://127.0.0.1:{port}/cam")


def test_no_gstreamer_is_one_line_before_the_model_loads(tmp_path):
    p = run_cli("camera", "--model", tmp_path / "not-there.onnx", "--source", "also-not-there.mp4", "--headless",
                "--output", "rtsp://@:8554/cam", env={stream_out.GST_PYTHON_ENV: "/nonexistent/python3"},
                timeout=120)
    line = assert_one_line_error(p, "--output rtsp://@:8554/cam: got no GStreamer RTSP server "
                                    "(/nonexistent/python3: not found)", "expected GStreamer 1.x with gst-rtsp-server")
    assert "not-there.onnx" not in line


@pytest.mark.parametrize("uri", ["rtsp://@:8554/cam", "rtsp://0.0.0.0:8554/cam", "rtsp://[::]:8554/cam",
                                 "mosaic:rtsp://@:8554/cam"])
def test_require_token_refuses_rtsp_beyond_loopback(uri):
    """RTSP has no authentication here: --http-require-token (always on in the systemd unit) refuses it off
    loopback, before any server starts."""
    with pytest.raises(SDKError) as e:
        create_sink(uri, require_token=True)
    message = str(e.value)
    assert message.startswith(f"output {uri.replace('mosaic:', '')}: got an address reachable from other "
                              f"machines") and \
        "RTSP without authentication, expected a loopback address" in message and \
        "(--http-require-token is set)" in message, message
    assert stream_out.parse_rtsp_output("rtsp://127.0.0.1:8554/cam")[0].local_only  # what stays allowed


def test_require_token_cli_refuses_rtsp_on_all_interfaces_before_the_model_loads(tmp_path):
    p = run_cli("camera", "--model", tmp_path / "not-there.onnx", "--source", "also-not-there.mp4", "--headless",
                "--output", "rtsp://@:8554/cam", "--http-require-token", timeout=120)
    line = assert_one_line_error(p, "--output rtsp://@:8554/cam: got an address reachable from other machines",
                                 "(--http-require-token is set)")
    assert "not-there.onnx" not in line


def test_require_token_refuses_rtp_multicast_not_a_named_receiver(tmp_path):
    pytest.importorskip("av", reason="rtp:// needs PyAV (the video extra)")
    with pytest.raises(SDKError, match=r"multicast group 239.0.0.1\) and RTP without authentication"):
        create_sink("rtp://239.0.0.1:5004", require_token=True)
    sink = create_sink(f"rtp://192.0.2.1:5004?sdp={tmp_path / 'a.sdp'}", require_token=True)  # unicast: allowed
    assert sink.address == "192.0.2.1"


def test_default_sdp_folder_is_private_to_the_user(tmp_path, monkeypatch):
    pytest.importorskip("av", reason="rtp:// needs PyAV (the video extra)")
    monkeypatch.setattr(stream_out.tempfile, "tempdir", str(tmp_path))
    sink = create_sink("rtp://127.0.0.1:5004")
    folder = tmp_path / f"edge-sdk-{os.getuid()}"
    assert sink.sdp_path == str(folder / "rtp-127.0.0.1-5004.sdp")
    assert folder.is_dir() and (folder.stat().st_mode & 0o777) == 0o700
    folder.chmod(0o777)  # e.g. planted by someone else, or loosened: never trusted
    with pytest.raises(SDKError) as e:
        create_sink("rtp://127.0.0.1:5004")
    assert str(e.value).startswith(f"output rtp://127.0.0.1:5004: sdp: got {folder} writable by others "
                                   f"(mode 777), expected a folder of uid {os.getuid()}"), str(e.value)
    folder.rmdir()
    folder.symlink_to(tmp_path)  # a link where the folder should be
    with pytest.raises(SDKError, match="not a folder"):
        create_sink("rtp://127.0.0.1:5004")


@pytest.mark.parametrize("uri, needles", [
    ("rtsp://@:8554", ["got mount path '(none)'", "expected rtsp://HOST:PORT/NAME"]),
    ("rtsp://@:99999/cam", ["got port '99999'"]),
    ("rtsp://::1:8554/cam", ["got an IPv6 address without brackets, expected rtsp://[ADDRESS]:PORT/NAME"]),
    ("rtsp://127.0.0.1:8554/cam?bitrate=fast", ["got bitrate=fast", "expected kbit/s"]),
    ("rtsp://127.0.0.1:8554/cam?encoder=vp8enc", ["got encoder=vp8enc", "expected one of nvv4l2h264enc, x264enc"]),
    ("rtsp://no-such-host.invalid:8554/cam", ["address 'no-such-host.invalid' is not an address of this machine"]),
    ("rtp://127.0.0.1", ["got '127.0.0.1', expected rtp://HOST:PORT"]),
    ("rtp://no-such-host.invalid:5004", ["address 'no-such-host.invalid' cannot be resolved"]),
    ("rtp://239.0.0.1:5004?ttl=0", ["got ttl=0"]),
    ("webrtc://@:8554/cam", ["got webrtc://", "WebRTC output is not implemented yet"]),
])
def test_bad_stream_outputs_are_one_line(uri, needles):
    with pytest.raises(SDKError) as e:
        create_sink(uri)
    message = str(e.value)
    assert message.startswith(f"output {uri}: ") and "\n" not in message
    for n in needles:
        assert n in message, message


def test_one_rtsp_output_for_two_streams_names_the_fix():
    with pytest.raises(SDKError, match=r"rtsp://@:8554/cam\{stream\}"):
        create_sinks(["rtsp://@:8554/cam"], streams=2)


def test_rtsp_launch_line():
    """The mount's pipeline: live appsrc with the frame's caps, a leaky queue, the encoder, the payloader."""
    from sdk.video.stream_out_gst import ENCODERS, launch_line

    chain = dict(ENCODERS)["x264enc"]
    line = launch_line(768, 432, 10000, chain, 4000)
    assert line.startswith("( appsrc name=src is-live=true format=time do-timestamp=true "
                           "caps=video/x-raw,format=BGR,width=768,height=432,framerate=10000/1000 ! queue ")
    assert "leaky=downstream" in line and "bitrate=4000 key-int-max=10" in line
    assert line.endswith("! rtph264pay name=pay0 pt=96 config-interval=1 )")
    jetson = launch_line(1280, 720, 30000, dict(ENCODERS)["nvv4l2h264enc"], 8000)
    assert "nvv4l2h264enc bitrate=8000000 insert-sps-pps=true iframeinterval=30" in jetson


def test_sample_script_streams_rtp(onnx_model, person_video, tmp_path):
    pytest.importorskip("av", reason="rtp:// needs PyAV (the video extra)")
    port = free_port(socket.SOCK_DGRAM) & ~1
    p = subprocess.run([sys.executable, "samples/camera_detect.py", "--model", str(onnx_model), "--source",
                        f"{person_video}?start=240", "--headless", "--max-frames", "5", "--output",
                        f"rtp://127.0.0.1:{port}?sdp={tmp_path / 'a.sdp'}"], cwd=str(REPO), capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"SDP for readers: {tmp_path / 'a.sdp'}" in p.stderr
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    (out,) = stats["outputs"]
    assert out["output"] == f"rtp://127.0.0.1:{port}?sdp={tmp_path / 'a.sdp'}"
    assert out["frames_sent"] + out["frames_dropped"] == 5 and out["frames_sent"] >= 2  # the last one always goes

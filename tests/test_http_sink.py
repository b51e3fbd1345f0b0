"""The HTTP live-view sink, driven by a small loop of our own over real detector output on the person video.

The loop (`Feeder`) does what the pipeline's render thread does: it calls `sink.write` with an annotated frame
(sdk.visualize), the frame's Detections and live stats (sdk.video.pipeline.RunStats), frame after frame.
Clients are plain sockets/urllib, as a browser, VLC or OpenCV would be.
"""
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from sdk.detector import Detector
from sdk.errors import SDKError
from sdk.video.http_sink import HttpSink
from sdk.video.pipeline import LIVE_WINDOW, RunStats
from sdk.visualize import draw_detections
from sdk.web.bind import parse_bind, resolve_bind

from .conftest import assert_one_line_error, run_cli

FRAME_SIZE = (768, 432)  # the shared person video
INFO = {"model": "yolov7-tiny.onnx", "backend": "onnxruntime", "precision": "fp32", "imgsz": [416, 416],
        "names": ["person"], "source": "one-by-one-person-detection.mp4", "fps": 10.0, "size": FRAME_SIZE}


@pytest.fixture(scope="module")
def annotated(onnx_model, person_video):
    """(annotated frame, Detections) for 8 frames spread over the person video, from the real detector."""
    cap = cv2.VideoCapture(str(person_video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    det = Detector(str(onnx_model), backend="ort")
    out = []
    for index in np.linspace(0, total - 1, 8).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        assert ok, f"cannot read frame {index} of {person_video}"
        dets = det(frame)
        out.append((draw_detections(frame.copy(), dets), dets))
    cap.release()
    det.close()
    assert sum(len(d) for _, d in out) > 0, "the detector found nobody in the person video"
    return out


class Feeder:
    """Calls sink.write like the pipeline does (a fresh frame copy each time, live stats), at about `fps`."""

    def __init__(self, sink, annotated, fps=30.0):
        self.sink, self.annotated, self.period = sink, annotated, 1.0 / fps
        self.stats = RunStats()
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-feeder", daemon=True)

    def _run(self):
        while not self._stop.is_set():
            image, dets = self.annotated[self.written % len(self.annotated)]
            t_read = time.perf_counter()
            counts = dets.counts()
            live = self.stats.snapshot({"frames_read": self.written + 1, "frames_dropped": 0, "frames_corrupt": 0,
                                        "reconnects": 0}, window=LIVE_WINDOW)
            live.update(counts=counts, frame_index=self.written, timestamp=round(time.time(), 3))
            self.sink.write(image.copy(), dets, live)
            self.written += 1
            self.stats.frame_done((time.perf_counter() - t_read) * 1e3, 0.1, counts)
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "sink.write blocked the pipeline thread"


def open_sink(token=None, uri="http://127.0.0.1:0"):
    sink = HttpSink(uri, token=token)
    sink.open(INFO)
    return sink


def get(url, token=None, header=False, timeout=10):
    """(status, content type, body); the token goes in the query string or an Authorization header."""
    if token and not header:
        url += ("&" if "?" in url else "?") + f"token={token}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token and header else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def stream_request(port, path="/stream.mjpg"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def read_mjpeg_frames(sock, count):
    """Parse `count` parts of a multipart/x-mixed-replace stream; returns (response head, [jpeg bytes])."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += _recv(sock)
    head, buf = buf.split(b"\r\n\r\n", 1)
    boundary = re.search(rb"boundary=([^\s;]+)", head).group(1)
    frames = []
    while len(frames) < count:
        while b"\r\n\r\n" not in buf:
            buf += _recv(sock)
        part_head, buf = buf.split(b"\r\n\r\n", 1)
        assert part_head.startswith(b"--" + boundary), part_head[:80]
        length = int(re.search(rb"Content-Length: (\d+)", part_head).group(1))
        while len(buf) < length + 2:
            buf += _recv(sock)
        frames.append(buf[:length])
        buf = buf[length + 2:]
    return head.decode(), frames


def _recv(sock):
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("stream ended")
    return data


def wait_for(predicate, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def server_threads():
    return [t for t in threading.enumerate() if t.name != "test-feeder" and t is not threading.main_thread()]


def test_page_stream_snapshot_and_json(annotated):
    sink = open_sink()
    base = sink.url
    try:
        assert get(base + "snapshot.jpg")[0] == 503  # nothing written yet
        with Feeder(sink, annotated):
            status, ctype, page = get(base)
            assert status == 200 and ctype.startswith("text/html")
            assert b"stream.mjpg" in page
            for field in (b'id="e2e_fps"', b'id="model_fps"', b'id="latency"', b'id="frames_dropped"',
                          b'id="counts"', b'id="precision"', b'id="imgsz"', b'id="backend"', b'id="model"'):
                assert field in page
            assert b"http://" not in page and b"https://" not in page  # offline: no CDN

            sock = stream_request(sink.port)
            head, jpegs = read_mjpeg_frames(sock, 5)
            sock.close()
            assert "multipart/x-mixed-replace" in head
            for jpeg in jpegs:
                image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                assert image is not None and image.shape[1::-1] == FRAME_SIZE

            status, ctype, body = get(base + "snapshot.jpg")
            assert status == 200 and ctype == "image/jpeg"
            assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape[1::-1] == FRAME_SIZE

            first = json.loads(get(base + "stats")[2])
            dets_seen = []
            for _ in range(len(annotated)):
                time.sleep(0.1)
                dets_seen.append(json.loads(get(base + "detections")[2]))
            second = json.loads(get(base + "stats")[2])
        for key in ("frames_read", "frames_processed", "frames_dropped", "model_fps", "e2e_fps", "p50_ms", "p95_ms",
                    "model", "backend", "precision", "imgsz", "source", "counts", "frame_index"):
            assert key in second, key
        assert second["backend"] == "onnxruntime" and second["imgsz"] == [416, 416]
        assert second["frames_processed"] > first["frames_processed"]
        assert second["frame_index"] > first["frame_index"] and second["e2e_fps"] > 0
        assert len({d["frame_index"] for d in dets_seen}) > 1
        boxes = [b for d in dets_seen for b in d["detections"]]
        assert boxes and all(b["class_name"] == "person" and len(b["xyxy"]) == 4 for b in boxes)
        assert len({json.dumps(d["detections"]) for d in dets_seen}) > 1  # the boxes follow the video
        assert get(base + "nope")[0] == 404
    finally:
        sink.close()


def test_token_protects_every_route(annotated):
    sink = open_sink(token="s3cret")
    try:
        with Feeder(sink, annotated):
            wait_for(lambda: sink.hub.seq > 0, what="a frame")
            for route in ("", "stream.mjpg", "snapshot.jpg", "stats", "detections"):
                assert get(sink.url + route)[0] == 401, route
                assert get(sink.url + route, token="wrong")[0] == 401, route
            for route in ("", "snapshot.jpg", "stats", "detections"):
                assert get(sink.url + route, token="s3cret")[0] == 200, route
                assert get(sink.url + route, token="s3cret", header=True)[0] == 200, route
            sock = stream_request(sink.port, "/stream.mjpg?token=s3cret")
            assert len(read_mjpeg_frames(sock, 2)[1]) == 2
            sock.close()
    finally:
        sink.close()


def test_encodes_only_while_watched_once_per_frame(annotated):
    sink = open_sink()
    try:
        with Feeder(sink, annotated) as feeder:
            wait_for(lambda: feeder.written >= 20, what="20 frames")
            assert sink.hub.frames_encoded == 0  # nobody watching: no JPEG work at all
            socks = [stream_request(sink.port) for _ in range(3)]
            for s in socks:
                read_mjpeg_frames(s, 10)
            for s in socks:
                s.close()
        # three viewers share one encoding per frame
        assert 10 <= sink.hub.frames_encoded <= feeder.written
    finally:
        sink.close()


def test_fifty_viewers_connect_and_drop_then_threads_return_to_baseline(annotated):
    baseline = {t.ident for t in server_threads()}
    sink = open_sink()
    errors = []

    def viewer(i):
        try:
            sock = stream_request(sink.port)
            read_mjpeg_frames(sock, 1 + i % 3)
            if i % 2:  # half vanish abruptly (RST), half close politely
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        except Exception as e:  # noqa: BLE001  (collected and asserted below)
            errors.append(e)

    try:
        with Feeder(sink, annotated):
            viewers = [threading.Thread(target=viewer, args=(i,)) for i in range(50)]
            for t in viewers:
                t.start()
            for t in viewers:
                t.join(timeout=60)
            assert not errors, errors[:3]
            wait_for(lambda: sink.server.viewers == 0, what="the dropped viewers to be noticed")
            # the server still serves a new viewer
            sock = stream_request(sink.port)
            assert len(read_mjpeg_frames(sock, 2)[1]) == 2
            sock.close()
    finally:
        sink.close()
    wait_for(lambda: {t.ident for t in server_threads()} <= baseline, timeout=5, what="threads back to baseline")


def _rss_mb():
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def test_viewer_that_stops_reading_neither_blocks_nor_grows_memory(annotated):
    baseline = {t.ident for t in server_threads()}
    sink = open_sink()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", sink.port))
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # ... and never reads
    try:
        with Feeder(sink, annotated, fps=100) as feeder:
            wait_for(lambda: feeder.written >= 30, what="the first frames")
            rss0 = _rss_mb()
            wait_for(lambda: feeder.written >= 330, timeout=60, what="300 more frames")
            grown = _rss_mb() - rss0
            # each frame is a fresh 1 MB array: a per-viewer queue would hold 300 MB by now
            assert grown < 60, f"memory grew {grown:.0f} MB with a stalled viewer"
            assert sink.hub.frames_encoded < feeder.written / 2  # the stalled viewer skips frames
            status, _, body = get(sink.url + "stats")  # others are still served
            assert status == 200 and json.loads(body)["viewers"] == 1
    finally:
        sink.close()  # must not hang on the stalled socket
        stalled.close()
    wait_for(lambda: {t.ident for t in server_threads()} <= baseline, timeout=5, what="threads back to baseline")


def test_bind_defaults_and_all_interfaces(capsys):
    assert parse_bind("http://127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("http://:9000") == ("127.0.0.1", 9000)
    assert parse_bind("http://localhost") == ("localhost", 8080)
    assert parse_bind("http://[::1]:81") == ("::1", 81)
    assert (resolve_bind("http://localhost").address, resolve_bind("http://localhost").scope) == ("127.0.0.1",
                                                                                                "loopback")
    assert resolve_bind("http://@:8080").address == "0.0.0.0" and resolve_bind("http://@:8080").scope == \
        "all interfaces"
    assert resolve_bind("http://0.0.0.0:8081").scope == "all interfaces"
    sink = open_sink(uri="http://@:0")
    try:
        assert sink.server.address[0] == "0.0.0.0"
        assert "all interfaces" in capsys.readouterr().err
        assert get(f"http://127.0.0.1:{sink.port}/stats")[0] == 200
    finally:
        sink.close()


@pytest.mark.parametrize("uri, needle", [("http://127.0.0.1:99999", "expected a number from 0 to 65535"),
                                         ("http://127.0.0.1:80a", "got port '80a'"),
                                         ("https://127.0.0.1:8080", "expected http://")])
def test_bad_uri_is_one_line_error(uri, needle):
    with pytest.raises(SDKError, match=re.escape(needle)) as e:
        HttpSink(uri)
    assert "\n" not in str(e.value) and uri in str(e.value)


def test_port_in_use_and_bad_address_are_one_line_errors():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(SDKError, match=f"port {port} is already in use") as e:
            open_sink(uri=f"http://127.0.0.1:{port}")
        assert "\n" not in str(e.value)
    finally:
        taken.close()
    with pytest.raises(SDKError, match="is not an address of this machine"):
        open_sink(uri="http://192.0.2.1:0")  # TEST-NET-1: never local


def test_cli_port_in_use_exits_1_with_one_line(onnx_model, person_video):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        proc = run_cli("camera", "--model", onnx_model, "--source", person_video, "--headless",
                       "--max-frames", "2", "--output", f"http://127.0.0.1:{port}", timeout=120)
    finally:
        taken.close()
    assert_one_line_error(proc, f"http://127.0.0.1:{port}", "already in use")
    proc = run_cli("camera", "--model", onnx_model, "--source", person_video, "--headless",
                   "--max-frames", "2", "--output", "http://not-a-host.invalid:8080", timeout=120)
    assert_one_line_error(proc, "not-a-host.invalid", "is not an address of this machine")


@pytest.mark.browser
def test_page_in_headless_chromium(annotated, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    sink = open_sink(token="tok")
    try:
        with Feeder(sink, annotated, fps=10):
            wait_for(lambda: sink.hub.seq > 0, what="a frame")
            proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                   "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                                   "--virtual-time-budget=5000", "--dump-dom", sink.url + "?token=tok"],
                                  capture_output=True, text=True, timeout=120)
    finally:
        sink.close()
    dom = proc.stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, (proc.returncode, proc.stderr[-2000:])
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))
    # the <img> decoded stream frames of the video's size, and the stats refreshed with moving frame numbers
    assert (int(attrs["video-width"]), int(attrs["video-height"])) == FRAME_SIZE, attrs
    assert int(attrs["stats-updates"]) >= 2 and int(attrs["frames-seen"]) >= 2, attrs
    assert re.search(r'id="backend">onnxruntime<', dom) and re.search(r'id="imgsz">416 x 416<', dom)
    assert re.search(r'id="e2e_fps">\d+\.\d<', dom), "e2e FPS not shown"

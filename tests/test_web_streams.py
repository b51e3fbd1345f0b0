"""The live view of a multi-stream run: one HTTP sink for every stream, an MJPEG endpoint and a tile per stream.

The end-to-end test runs the real `python -m sdk camera` on two different sources (a clip of the person video in
which one person leaves to the right past x = 640 at the clip's 15th frame, as tests/test_camera_tracks.py checks
frame by frame, and the cars video, in which the person detector sees nobody), with `--track --count-line`, and
reads it as a client would: each MJPEG endpoint, `/stats`, `/detections`, then the page in headless Chromium
(its DOM after the page's scripts ran, and a screenshot whose two video regions are compared with the streams).
"""
import json
import re
import socket
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from sdk.detections import Detections
from sdk.video.http_sink import HttpSink
from sdk.video.mosaic import MosaicSink
from sdk.video.sinks import create_sinks
from sdk.web.client import (data_attributes, find_chromium, get_json, run_chromium, start_camera, stop_camera,
                            wait_for_stats)

from .conftest import CAR_VIDEO, REPO, require_shared
from .test_http_sink import get, read_mjpeg_frames

SIZE = (768, 432)  # both shared videos
TOKEN = "tok"
DOOR = "640,0,640,432,door"


def mjpeg_frames(port, path, count=2):
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        head, jpegs = read_mjpeg_frames(sock, count)
    finally:
        sock.close()
    assert "multipart/x-mixed-replace" in head
    return [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]


def difference(a, b):
    """Mean absolute difference of two images at a common small size (grey levels)."""
    a, b = (cv2.resize(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), (96, 54), interpolation=cv2.INTER_AREA).astype(float)
            for x in (a, b))
    return float(np.mean(np.abs(a - b)))


@pytest.fixture(scope="module")
def two_stream_run(onnx_model, person_video, tmp_path_factory):
    """The camera CLI on two sources with tracks, a door line and a token-protected http:// output; ended with
    SIGTERM after the test. Yields (base url, process, stderr lines)."""
    cars = require_shared(CAR_VIDEO)
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    proc, url, log = start_camera(
        ["--model", onnx_model, "--source", f"{person_video}?start=425", "--source", cars, "--headless",
         "--track", "--count-line", DOOR, "--max-frames", "400", "--output", "http://127.0.0.1:0",
         "--http-token-file", token_file], cwd=REPO)
    try:
        yield url, proc, log
    finally:
        stop_camera(proc, timeout_s=60)  # SIGTERM, killed if it hangs: never left behind


def test_each_stream_has_its_mjpeg_stats_and_tracked_detections(two_stream_run):
    url, proc, log = two_stream_run
    port = int(re.search(r":(\d+)/$", url).group(1))
    # the person is in view in the clip's first 15 frames: catch a frame of stream 0 with a confirmed track
    # (bounded by time, not by polls: a loaded host processes far fewer frames per poll, CI failed on that)
    tracked = None
    stats = None
    past_crossing = False
    deadline = time.monotonic() + 120
    while not (tracked and past_crossing) and time.monotonic() < deadline:
        dets = get_json(url + "detections", TOKEN)
        assert [s["stream"] for s in dets["streams"]] == [0, 1]
        ids = [d.get("track_id") for d in dets["streams"][0]["detections"]]
        if tracked is None and any(i is not None and i >= 1 for i in ids):
            tracked = dets
        stats = get_json(url + "stats", TOKEN)
        past_crossing = all(s.get("frames_processed", 0) >= 25 for s in stats["streams"])
        time.sleep(0.005)
    assert tracked, f"no tracked person in /detections of stream 0: {dets}"
    assert past_crossing, f"the run did not reach frame 25 of both streams within 120 s: {stats}"
    assert all(d["class_name"] == "person" and len(d["xyxy"]) == 4 for d in tracked["streams"][0]["detections"])

    # /stats: one entry per stream with its own counters, latency and line counts; the top sums them
    s0, s1 = stats["streams"]
    for s, name in ((s0, "one-by-one-person-detection.mp4"), (s1, "car-detection.mp4")):
        for key in ("frames_read", "frames_processed", "frames_dropped", "e2e_fps", "p50_ms", "p95_ms", "counts",
                    "tracks_total", "lines", "frame_index"):
            assert key in s, (key, s)
        assert name in s["source"] and s["size"] == list(SIZE) and s["mjpeg"] == f"stream/{s['stream']}.mjpg"
        assert s["frames_dropped"] == 0 and s["e2e_fps"] > 0 and 0 < s["p50_ms"] <= s["p95_ms"]
    assert (s0["lines"]["door"]["in"], s0["lines"]["door"]["out"]) == (0, 1)  # the person who left, once
    assert s0["tracks_total"] >= 1
    assert stats["frames_processed"] == s0["frames_processed"] + s1["frames_processed"]
    assert stats["p95_ms"] == max(s0["p95_ms"], s1["p95_ms"])
    assert [(x["stream"], x["line"]) for x in stats["lines"]] == [(0, "door"), (1, "door")]
    assert stats["backend"] == "onnxruntime" and stats["imgsz"] == [416, 416]

    # each MJPEG endpoint serves its own stream; /stream.mjpg is stream 0 (as before streams existed)
    person, cars = mjpeg_frames(port, "/stream/0.mjpg")[-1], mjpeg_frames(port, "/stream/1.mjpg")[-1]
    legacy = mjpeg_frames(port, "/stream.mjpg", 1)[0]
    for image in (person, cars, legacy):
        assert image is not None and image.shape[1::-1] == SIZE
    assert difference(person, cars) > 25, difference(person, cars)  # a room and a car park
    assert difference(legacy, person) < difference(legacy, cars) / 3
    status, ctype, body = get(url + "snapshot/1.jpg", token=TOKEN)
    assert status == 200 and ctype == "image/jpeg"
    assert difference(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cars) < 15

    # every per-stream route passes the token check, and a stream the run lacks is a 404 naming the routes
    for route in ("stream/1.mjpg", "snapshot/1.jpg", "stream/0.mjpg"):
        assert get(url + route)[0] == 401, route
        assert get(url + route, token="wrong")[0] == 401, route
    for route in ("stream/2.mjpg", "snapshot/2.jpg", "stream/1.jpg", "snapshot/01x.jpg"):
        status, _, body = get(url + route, token=TOKEN)
        assert status == 404 and json.loads(body)["streams"] == 2, route
    assert proc.poll() is None, "".join(log)[-2000:]


@pytest.mark.browser
def test_page_shows_both_streams_in_headless_chromium(two_stream_run, tmp_path):
    if not find_chromium():
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium; CI installs it)")
    url, proc, log = two_stream_run
    wait_for_stats(url, lambda s: all(e.get("frames_processed", 0) >= 20 for e in s["streams"]), TOKEN)
    page = url + f"?token={TOKEN}"
    window = (1280, 560)
    done = run_chromium(page, tmp_path / "profile", window_size=window, budget_ms=5000)
    dom = done.stdout
    body = data_attributes(dom)
    assert body.get("streams") == "2", (done.returncode, done.stderr[-2000:], dom[:2000])
    rects = []
    for i, source in ((0, "one-by-one-person-detection.mp4"), (1, "car-detection.mp4")):
        tile = data_attributes(dom, f"tile-{i}")
        # the tile's <img> decoded its stream's frames, and the page refreshed its stats from /stats
        assert (int(tile["video-width"]), int(tile["video-height"])) == SIZE, tile
        assert int(tile["stats-updates"]) >= 2 and int(tile["frames-seen"]) >= 2, tile
        assert re.search(rf'id="s{i}-e2e_fps">\d+\.\d<', dom), f"stream {i}: FPS not filled"
        assert re.search(rf'id="s{i}-frames">\d+ / \d+ / 0<', dom), f"stream {i}: frame counters not filled"
        assert re.search(rf'id="s{i}-latency">\d+ / \d+ ms<', dom), f"stream {i}: latency not filled"
        assert re.search(rf'<section class="tile" id="tile-{i}".*?{re.escape(source)}', dom, re.S)
        rects.append([int(v) for v in tile["video-rect"].split(",")])
    assert re.search(r'id="s0-lines">door 0 / 1<', dom), "stream 0's door count not shown"
    assert re.search(r'id="s1-lines">door \d+ / \d+<', dom)
    assert re.search(r'id="streams">2<', dom) and re.search(r'id="backend">onnxruntime<', dom)

    # a screenshot of the same page and window: the two video regions are not blank and show their own stream
    shot = tmp_path / "shot.png"
    done = run_chromium(page, tmp_path / "profile2", screenshot=shot, window_size=window, budget_ms=4000)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1::-1] == window, (done.returncode, done.stderr[-2000:])
    person = mjpeg_frames(int(re.search(r":(\d+)/$", url).group(1)), "/stream/0.mjpg", 1)[0]
    cars = cv2.imdecode(np.frombuffer(get(url + "snapshot/1.jpg", token=TOKEN)[2], np.uint8), cv2.IMREAD_COLOR)
    crops = []
    for x, y, w, h in rects:
        assert w > 200 and h > 100 and x + w <= window[0] and y + h <= window[1], rects
        crop = image[y:y + h, x:x + w]
        assert float(crop.std()) > 15, "a video region of the screenshot is blank"
        crops.append(crop)
    assert difference(crops[0], person) < difference(crops[0], cars)
    assert difference(crops[1], cars) < difference(crops[1], person)
    assert proc.poll() is None, "".join(log)[-2000:]


class Frames:
    """Two distinct solid frames with stats as the pipeline hands them to a sink taking every stream."""

    def __init__(self):
        self.images = [np.full((SIZE[1], SIZE[0], 3), v, np.uint8) for v in (40, 200)]

    def write(self, sink, stream, index):
        stats = {"frames_read": index + 1, "frames_processed": index + 1, "frames_dropped": stream,
                 "frames_corrupt": 0, "reconnects": 0, "frames_with_detections": 0, "model_fps": 9.0,
                 "e2e_fps": 4.0 + stream, "p50_ms": 100.0 + stream, "p95_ms": 150.0 + 10 * stream, "infer_ms": 50.0,
                 "pre_ms": 1.0, "post_draw_ms": 1.0, "elapsed_s": 1.0, "detections": {},
                 "lines": {"door": {"in": stream, "out": 1, "in_by_class": {}, "out_by_class": {}}},
                 "tracks_total": 3, "counts": {}, "frame_index": index, "timestamp": 1000.0 + index + stream / 10,
                 "stream": stream, "stream_name": f"cam{stream}", "source": f"cam{stream}.mp4",
                 "streams": [], "batch": {"size": None}, "events": []}
        sink.write(self.images[stream].copy(), Detections.empty(), stats)


INFO = {"model": "m.onnx", "backend": "onnxruntime", "precision": "fp32", "imgsz": [416, 416], "names": ["person"],
        "source": ["cam0.mp4", "cam1.mp4"], "size": SIZE,
        "streams": [{"source": f"cam{i}.mp4", "size": SIZE, "fps": 10.0, "stream": i, "stream_name": f"cam{i}"}
                    for i in range(2)]}


def test_one_sink_takes_every_stream_and_routes_them_to_their_endpoints():
    sinks = create_sinks(["http://127.0.0.1:0"], streams=2)
    assert len(sinks) == 1 and sinks[0].stream is None  # one server for the run, not one per stream
    sink = sinks[0]
    sink.open(INFO)
    frames = Frames()
    try:
        assert get(sink.url + "snapshot/1.jpg")[0] == 503  # no frame of stream 1 yet
        for i in range(3):
            frames.write(sink, 0, i)
        frames.write(sink, 1, 0)
        grey = [cv2.imdecode(np.frombuffer(get(sink.url + f"snapshot/{i}.jpg")[2], np.uint8), 0) for i in (0, 1)]
        assert abs(float(grey[0].mean()) - 40) < 3 and abs(float(grey[1].mean()) - 200) < 3
        stats = json.loads(get(sink.url + "stats")[2])
        assert [(s["stream"], s["name"], s["frames_processed"]) for s in stats["streams"]] == \
            [(0, "cam0", 3), (1, "cam1", 1)]
        assert stats["frames_processed"] == 4 and stats["frames_dropped"] == 1 and stats["e2e_fps"] == 9.0
        assert (stats["p50_ms"], stats["p95_ms"]) == (101.0, 160.0)  # the worst stream's
        assert stats["lines"] == [{"stream": 0, "line": "door", "in": 0, "out": 1, "in_by_class": {},
                                   "out_by_class": {}},
                                  {"stream": 1, "line": "door", "in": 1, "out": 1, "in_by_class": {},
                                   "out_by_class": {}}]
        assert stats["tracks_total"] == 6 and stats["source"] == ["cam0.mp4", "cam1.mp4"]
        dets = json.loads(get(sink.url + "detections")[2])
        assert dets["stream"] == 0 and dets["frame_index"] == 2  # the newest frame of any stream
        assert [d["frame_index"] for d in dets["streams"]] == [2, 0]
        # the Host check (DNS rebinding) guards the per-stream routes as every other
        for route in ("/stream/1.mjpg", "/snapshot/1.jpg", "/stream/0.mjpg"):
            sock = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
            sock.sendall(f"GET {route} HTTP/1.1\r\nHost: rebind.attacker.example:{sink.port}\r\n\r\n".encode())
            assert sock.recv(64).startswith(b"HTTP/1.0 403"), route
            sock.close()
    finally:
        sink.close()


def test_single_stream_and_mosaic_keep_one_stream():
    # a sink made per stream by a {stream} placeholder, and the inner sink of mosaic:, each show one stream
    per_stream = HttpSink("http://127.0.0.1:0")
    mosaic = MosaicSink("mosaic:http://127.0.0.1:0")
    frames = Frames()
    try:
        per_stream.stream = 1  # as create_sinks sets it for `http://...{stream}`
        per_stream.open(INFO["streams"][1])
        frames.write(per_stream, 1, 0)  # stats say stream 1: this sink's only stream
        assert per_stream.streams == 1
        assert json.loads(get(per_stream.url + "stats")[2])["streams"][0]["frames_processed"] == 1
        mosaic.open(INFO)
        assert mosaic.inner.streams == 1
        frames.write(mosaic, 0, 0)
        frames.write(mosaic, 1, 0)
        stats = json.loads(get(mosaic.inner.url + "stats")[2])
        assert len(stats["streams"]) == 1 and stats["source"] == "mosaic of 2 streams"
        tiled = cv2.imdecode(np.frombuffer(get(mosaic.inner.url + "snapshot.jpg")[2], np.uint8), 0)
        assert tiled.shape[1] == 2 * mosaic.tile[0]
        assert get(mosaic.inner.url + "stream/1.mjpg")[0] == 404
    finally:
        per_stream.close()
        mosaic.close()


def test_page_is_offline_and_builds_tiles_from_stats():
    sink = HttpSink("http://127.0.0.1:0")
    sink.open(INFO)
    try:
        status, ctype, page = get(sink.url)
    finally:
        sink.close()
    assert status == 200 and ctype.startswith("text/html")
    assert b"http://" not in page and b"https://" not in page and b"<link" not in page  # no CDN, works offline
    assert b'id="tile-template"' in page and b"stream/" in page and b'fetch("stats"' in page


def test_start_camera_gives_up_on_a_run_that_prints_nothing(tmp_path, monkeypatch):
    """The wait is bounded even when no stderr line ever comes (it used to be checked only after a line)."""
    silent = tmp_path / "silent-python"
    silent.write_text("#!/bin/sh\nexec sleep 120\n")
    silent.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(silent))
    outcome = []

    def wait():
        try:
            start_camera(["--headless"], timeout_s=1.0)
        except RuntimeError as e:
            outcome.append(str(e))

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "start_camera waited past its timeout for a run that prints nothing"
    assert outcome and "no live view address on stderr in 1 s" in outcome[0], outcome

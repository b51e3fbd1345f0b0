"""Issue 13, security 2: unauthenticated clients must not be able to take the pipeline's file descriptors.

The attack as reported: with RLIMIT_NOFILE at 64, 70 half-open sockets on the live view made the looping video
fail to reopen ("OpenCV cannot open it"). Here the real `python -m sdk camera` runs under that limit (soft = hard,
so it cannot raise it) on a 6-frame clip of the shared person video, looped to 30 frames (4 reopens), while this
process keeps 70 half-open sockets on its live view the whole time, replacing every one the server drops.
Before the fix the run died with "Too many open files".
"""
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import threading
import time

import cv2

from .conftest import REPO

ATTACKERS = 70
CLIP_FRAMES = 6


def _limit_descriptors(soft, hard):
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return apply


def _clip(person_video, path, frames=CLIP_FRAMES):
    cap = cv2.VideoCapture(str(person_video))
    writer = None
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok, f"cannot read {person_video}"
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    cap.release()
    return path


class HalfOpenFlood:
    """Keeps `count` connections open that never finish their headers; one in two sends a partial request."""

    def __init__(self, port, count=ATTACKERS):
        self.port, self.count = port, count
        self.dropped_by_server = 0
        self.refused_503 = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self, i):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except OSError:
            return None
        if i % 2:
            sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ... and never the end
        return sock

    def _run(self):
        socks = {}
        while not self._stop.is_set():
            for i in range(self.count):
                if socks.get(i) is None:
                    socks[i] = self._connect(i)
            live = [s for s in socks.values() if s is not None]
            readable, _, _ = select.select(live, [], [], 0.1) if live else ([], [], [])
            for i, s in list(socks.items()):
                if s in readable:  # the server answered (503) or closed it: count it and open another
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    self.refused_503 += data.startswith(b"HTTP/1.0 503")
                    self.dropped_by_server += 1
                    s.close()
                    socks[i] = None
        for s in socks.values():
            if s is not None:
                s.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def test_half_open_flood_under_64_descriptors_does_not_stop_the_looping_video(onnx_model, person_video, tmp_path):
    clip = _clip(person_video, tmp_path / "clip.mp4")
    cmd = [sys.executable, "-m", "sdk", "camera", "--model", str(onnx_model), "--source", str(clip), "--loop",
           "--headless", "--max-frames", str(5 * CLIP_FRAMES), "--output", "http://127.0.0.1:0"]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_limit_descriptors(64, 64))
    log = []
    try:
        port = None
        for line in proc.stderr:
            log.append(line)
            m = re.search(r"live view on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "".join(log)
        with HalfOpenFlood(port) as flood:
            out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = "".join(log) + err
    assert proc.returncode == 0, err[-3000:]
    final = json.loads(out.strip().splitlines()[-1])
    assert final["frames_processed"] == 5 * CLIP_FRAMES, final  # 4 reopens of the clip under the flood
    assert "cannot open" not in err
    # the defence was exercised: clients beyond the descriptor budget got a 503 (header deadlines: test_web_security)
    assert flood.refused_503 > 0, (flood.refused_503, flood.dropped_by_server)


RAISE_SCRIPT = """
import resource, sys
from sdk.video.http_sink import HttpSink
before = resource.getrlimit(resource.RLIMIT_NOFILE)
sink = HttpSink("http://127.0.0.1:0")
print(before[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0], sink.server.descriptor_limits)
sink.close()
"""


def test_soft_descriptor_limit_is_raised_to_the_hard_limit_at_start():
    proc = subprocess.run([sys.executable, "-c", RAISE_SCRIPT], cwd=str(REPO), capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_descriptors(64, 512))
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after, reported = proc.stdout.split(maxsplit=2)
    assert (int(before), int(after)) == (64, 512)
    assert reported.strip() == "(64, 512)"
    # where the hard limit is the soft one, nothing can be raised and nothing fails
    proc = subprocess.run([sys.executable, "-c", RAISE_SCRIPT], cwd=str(REPO), capture_output=True, text=True,
                          timeout=60, preexec_fn=_limit_descriptors(64, 64))
    assert proc.returncode == 0 and proc.stdout.split()[:2] == ["64", "64"], proc.stderr[-2000:]

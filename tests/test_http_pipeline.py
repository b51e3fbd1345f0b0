"""End to end: the real camera pipeline (`python -m sdk camera`) with an http:// output, checked as a client."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import cv2
import numpy as np

from .conftest import REPO


def fetch(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_camera_pipeline_serves_live_view(onnx_model, person_video, tmp_path):
    # port 0: the OS picks a free port and the sink logs the address it really listens on
    token_file = tmp_path / "http-token"
    token_file.write_text("tok\n")  # the token from a file, as the systemd unit passes it
    token_file.chmod(0o600)
    # ?live=1 plays the file at its 10 fps: a fast machine would otherwise finish before the first request
    cmd = [sys.executable, "-m", "sdk", "camera", "--model", str(onnx_model), "--source", f"{person_video}?live=1",
           "--headless", "--max-frames", "40", "--output", "http://127.0.0.1:0", "--http-token-file", str(token_file)]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url, log = None, []
        for line in proc.stderr:
            log.append(line)
            m = re.search(r"live view on (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
                break
        assert url, "".join(log)
        assert "token required" in log[-1]

        assert fetch(url + "stats")[0] == 401  # token enforced on the real run
        status, body = fetch(url + "snapshot.jpg", token="tok")
        deadline = time.monotonic() + 60
        while status != 200 and time.monotonic() < deadline:  # the first frame needs the model loaded
            time.sleep(0.2)
            status, body = fetch(url + "snapshot.jpg", token="tok")
        assert status == 200, body
        frame = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert frame.shape[1::-1] == (768, 432)

        first = json.loads(fetch(url + "stats", token="tok")[1])
        first_dets = json.loads(fetch(url + "detections", token="tok")[1])
        time.sleep(1.5)
        second = json.loads(fetch(url + "stats", token="tok")[1])
        second_dets = json.loads(fetch(url + "detections", token="tok")[1])
        assert second["frames_processed"] > first["frames_processed"], (first, second)
        assert second_dets["frame_index"] > first_dets["frame_index"]
        assert first["backend"] == "onnxruntime" and first["imgsz"] == [416, 416]

        with urllib.request.urlopen(url + "stream.mjpg?token=tok", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert r.read(2) == b"--"
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    final = json.loads(out.strip().splitlines()[-1])  # the sample's last line; /stats served the same fields
    assert final["frames_processed"] == 40
    assert set(final) - {"stop_reason"} <= set(second), set(final) - set(second)

"""The live view from outside: start a run that serves one, read its JSON, load its page in headless Chromium
(the DOM after the page's scripts ran, or a screenshot).

Used by the tests (a real browser runs the page's JavaScript against a real run) and by
scripts/screenshot_liveview.py (the picture in docs/camera.md). Debian's package is `chromium`.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

from ..errors import SDKError

NAMES = ("chromium", "chromium-browser", "google-chrome")
QUIET = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--force-device-scale-factor=1")


def find_chromium() -> Optional[str]:
    """The path of a Chromium binary on PATH, or None."""
    return next((p for p in map(shutil.which, NAMES) if p), None)


def run_chromium(url: str, profile_dir: Path, *, screenshot: Optional[Path] = None,
                 window_size: Sequence[int] = (1280, 720), budget_ms: int = 5000,
                 timeout_s: float = 120.0, chromium: Optional[str] = None) -> subprocess.CompletedProcess:
    """Load `url` for `budget_ms` of virtual time (the page's timers and fetches run), then print the DOM to
    stdout, or write a PNG screenshot to `screenshot`. `profile_dir` keeps this browser's profile apart."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise SDKError(f"chromium: got none of {', '.join(NAMES)} on PATH, expected headless Chromium "
                       f"(apt-get install -y chromium)")
    what = [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    cmd = [chromium, *QUIET, f"--user-data-dir={profile_dir}", f"--window-size={window_size[0]},{window_size[1]}",
           f"--virtual-time-budget={int(budget_ms)}", *what, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


def data_attributes(dom: str, element_id: Optional[str] = None) -> dict:
    """The `data-*` attributes of <body> (or of the element with this id) in a dumped DOM, names as written."""
    pattern = r"<body([^>]*)>" if element_id is None else rf'<[a-z]+\b([^>]*\bid="{re.escape(element_id)}"[^>]*)>'
    tag = re.search(pattern, dom)
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', tag.group(1))) if tag else {}


def start_camera(args: Sequence[str], cwd: Optional[Path] = None, timeout_s: float = 120.0):
    """Start `python -m sdk camera ARGS` (ARGS with an http:// output) and wait until its live view listens;
    returns (process, base URL, stderr lines so far, still growing). A thread reads stderr all along (so the run
    never blocks on a full pipe, and a run that prints nothing cannot hang the wait past `timeout_s`): end the
    process with stop_camera, never communicate(), which would read stderr against that thread."""
    cmd = [sys.executable, "-m", "sdk", "camera", *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log, lines = [], queue.Queue()

    def drain():
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)  # EOF: the run ended

    proc.stderr_reader = threading.Thread(target=drain, name="camera-stderr", daemon=True)
    proc.stderr_reader.start()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            break
        if line is None:
            break
        found = re.search(r"live view on (http://[^\s]+/)", line)
        if found:
            return proc, found.group(1), log
    proc.kill()
    proc.wait()
    proc.stderr_reader.join(10)
    raise RuntimeError(f"{' '.join(cmd)}: no live view address on stderr in {timeout_s:.0f} s:\n"
                       f"{''.join(log)[-3000:]}")


def stop_camera(proc: subprocess.Popen, timeout_s: float = 60.0) -> str:
    """SIGTERM a run from start_camera (it stops cleanly on it) and wait; returns its stdout (the stats line last).
    Killed when it has not exited within `timeout_s`; its stderr lines are complete in start_camera's list after."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(10)
    drain = getattr(proc, "stderr_reader", None)
    if drain is not None:
        drain.join(10)
    return "".join(out)


def get_json(url: str, token: Optional[str] = None, timeout_s: float = 10.0) -> dict:
    """GET a JSON route (the token, if any, as a Bearer header)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        return json.loads(r.read())


def wait_for_stats(url: str, ready, token: Optional[str] = None, timeout_s: float = 90.0,
                   period_s: float = 0.25) -> dict:
    """Poll `url`stats until `ready(stats)` is true; returns those stats (TimeoutError with the last ones)."""
    deadline, stats = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            stats = get_json(url + "stats", token)
            if ready(stats):
                return stats
        except OSError:
            pass  # not serving yet
        time.sleep(period_s)
    raise TimeoutError(f"{url}stats: the awaited state did not come within {timeout_s:.0f} s; last: {stats}")

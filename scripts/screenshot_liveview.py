"""The picture of the live view in docs/camera.md: two streams with tracks and a count line, shot by headless
Chromium from a real run.

    python scripts/screenshot_liveview.py --model yolov7-tiny.onnx [--video person.mp4] [--out docs/img/...png]

Runs `python -m sdk camera` on two clips of the shared person video (frames 845 and 425 on: in each one person
leaves to the right past x = 640 at about the clip's 15th frame), every frame processed (files drop no frame, so
the tracks and counts do not depend on the machine's speed), `--track --count-line 640,0,640,432,door` and an
http:// output on a free loopback port; waits until `/stats` shows the door count of every stream and someone in
view, then loads the page in headless Chromium and writes the screenshot (colours reduced to a palette when
Pillow is installed, so the PNG stays small), then stops the run with SIGTERM. Prints what it shot, last a JSON
line. `--starts 425 --window-size 1280,720 --out docs/http.png` makes the one-stream picture of docs/http.md.
"""
import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from sdk.fileio import write_bytes_atomic
from sdk.web.client import run_chromium, start_camera, stop_camera, wait_for_stats

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))
DEFAULT_VIDEO = SHARED / "data" / "videos" / "one-by-one-person-detection.mp4"
DOOR = "640,0,640,432,door"


def door_count(entry):
    door = (entry.get("lines") or {}).get("door", {})
    return door.get("in", 0) + door.get("out", 0)


def counted(stats, streams):
    """The door line of every stream has counted someone, and a stream has someone in view now."""
    entries = stats.get("streams") or []
    return (len(entries) == streams and all(door_count(e) >= 1 for e in entries)
            and any(e.get("counts") for e in entries))


def palette_png(png, colors):
    """The PNG with its colours reduced to `colors` (Pillow), or unchanged when Pillow is not installed."""
    try:
        from PIL import Image  # noqa: PLC0415  (optional: only to keep the committed picture small)
    except ImportError:
        print("note: Pillow is not installed: the screenshot is kept with all its colours", file=sys.stderr)
        return png
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors).save(out, "PNG", optimize=True)
    return out.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the detector (ONNX or engine) the run uses")
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="the video both streams play")
    p.add_argument("--starts", default="845,425", help="first frame of each stream (comma-separated)")
    p.add_argument("--out", default=str(REPO / "docs" / "img" / "liveview-two-streams.png"))
    p.add_argument("--window-size", default="1280,540", help="browser window WIDTH,HEIGHT")
    p.add_argument("--colors", type=int, default=128, help="palette size of the written PNG")
    args = p.parse_args(argv)
    starts = [int(s) for s in args.starts.split(",")]
    sources = [a for start in starts for a in ("--source", f"{args.video}?start={start}")]
    proc, url, log = start_camera(["--model", args.model, *sources, "--headless", "--track", "--count-line", DOOR,
                                   "--max-frames", "300", "--output", "http://127.0.0.1:0"], cwd=REPO)
    try:
        stats = wait_for_stats(url, lambda s: counted(s, len(starts)))
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "shot.png"
            width, height = (int(v) for v in args.window_size.split(","))
            done = run_chromium(url, Path(tmp) / "profile", screenshot=shot, window_size=(width, height),
                                budget_ms=2000)
            if not shot.exists():
                raise SystemExit(f"error: chromium wrote no screenshot ({done.returncode}): {done.stderr[-1500:]}")
            png = palette_png(shot.read_bytes(), args.colors)
        write_bytes_atomic(args.out, png, "--out")
    finally:
        out = stop_camera(proc, timeout_s=60)  # SIGTERM; joins start_camera's stderr reader (no communicate())
    lines = [e.get("lines") for e in stats["streams"]]
    print(f"wrote {args.out} ({len(png) / 1024:.0f} KiB, {width}x{height}); door counts per stream: {lines}")
    final = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    print(json.dumps({"out": str(args.out), "bytes": len(png), "streams": len(starts), "lines": lines,
                      "run_stop_reason": final.get("stop_reason"), "run_exit": proc.returncode}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

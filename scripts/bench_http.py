"""What watching costs: end-to-end FPS of the camera pipeline with the http:// live view and no viewer, vs the
same with 3 viewers reading /stream.mjpg, alternated in one run so both see the same machine load.

    python scripts/bench_http.py --model yolov7-tiny.onnx [--source video.mp4] [--frames 100] [--rounds 2]

The viewers run in a separate process (as a browser would), each reading the stream as fast as it can.
Prints a table and, last, one JSON line with both FPS figures and the ratio (target: >= 0.90).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

from sdk.commands import camera
from sdk.report import print_json_last, print_table
from sdk.video.http_sink import HttpSink

SHARED = os.environ.get("SDK_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
DEFAULT_SOURCE = os.path.join(SHARED, "data", "videos", "one-by-one-person-detection.mp4")


def viewer_main(port, count):
    """Child process: `count` threads each read the MJPEG stream until stdin closes; prints bytes/parts read."""
    received = [0] * count
    parts = [0] * count

    def read(i):
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        while True:
            data = sock.recv(1 << 16)
            if not data:
                return
            received[i] += len(data)
            parts[i] += data.count(b"--frame\r\n")

    for i in range(count):
        threading.Thread(target=read, args=(i,), daemon=True).start()
    sys.stdin.read()  # the parent closes stdin when its run is over
    print(json.dumps({"bytes": received, "frames": parts}))


def run_once(args, viewers):
    parser = argparse.ArgumentParser()
    camera.add_arguments(parser)
    cam_args = parser.parse_args(["--model", args.model, "--source", args.source, "--headless",
                                  "--max-frames", str(args.frames), "--backend", args.backend])
    sink = HttpSink("http://127.0.0.1:0")  # bound now; the viewers connect as soon as it serves
    child = None
    if viewers:
        child = subprocess.Popen([sys.executable, __file__, "--viewer", str(sink.port), str(viewers)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        stats, _ = camera.run_pipeline(cam_args, [sink])
    finally:
        seen = json.loads(child.communicate("", timeout=60)[0]) if child else {"frames": []}
    return stats, seen["frames"], sink.hub.frames_encoded


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--viewer":
        return viewer_main(int(sys.argv[2]), int(sys.argv[3]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--source", default=DEFAULT_SOURCE)
    p.add_argument("--backend", default="auto")
    p.add_argument("--frames", type=int, default=100, help="processed frames per run")
    p.add_argument("--rounds", type=int, default=2, help="alternated (no viewer, 3 viewers) pairs")
    p.add_argument("--viewers", type=int, default=3)
    args = p.parse_args()

    fps = {0: [], args.viewers: []}
    rows = []
    for r in range(args.rounds):
        for n in (0, args.viewers):
            stats, frames_seen, encoded = run_once(args, n)
            fps[n].append(stats["e2e_fps"])
            rows.append([r, n, stats["frames_processed"], stats["e2e_fps"], stats["p50_ms"], encoded,
                         frames_seen or "-"])
    print_table(rows, ["round", "viewers", "frames", "e2e_fps", "p50_ms", "jpeg_encoded", "frames_per_viewer"])
    base = sum(fps[0]) / len(fps[0])
    watched = sum(fps[args.viewers]) / len(fps[args.viewers])
    ratio = watched / base if base else 0.0
    print(f"e2e FPS: no viewer {base:.2f}, {args.viewers} viewers {watched:.2f}, ratio {ratio:.3f} "
          f"({'within' if ratio >= 0.9 else 'OVER'} the 10 % budget)", file=sys.stderr)
    print_json_last({"e2e_fps_no_viewer": round(base, 2), f"e2e_fps_{args.viewers}_viewers": round(watched, 2),
                     "ratio": round(ratio, 3), "frames_per_run": args.frames, "rounds": args.rounds,
                     "source": os.path.basename(args.source), "model": os.path.basename(args.model)})


if __name__ == "__main__":
    sys.exit(main())

"""Local onnxruntime vs a Triton server on loopback, in one run:

  1. local onnxruntime, one client (the device runs the network itself);
  2. triton:// (python backend running the same ONNX with onnxruntime), one client, gRPC;
  3. 1, 2 and 4 concurrent clients against one server with dynamic batching.

Each client is a Detector (pre/post on the client) running end-to-end frames of the shared val images; latency
is per frame, throughput is frames / wall time. The server's statistics give the batch sizes it executed.
Everything runs on this machine (client and server share the cores): read ratios, not absolute times.

    python scripts/bench_triton.py                      # exports the shared checkpoint (dynamic batch, 416)
    python scripts/bench_triton.py --onnx m.onnx --runs 20 --out docs/triton/bench.json
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SDK_SHARED", REPO.parent / "shared"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", default=None, help="a dynamic-batch SDK ONNX for the server (default: export the "
                                                "shared checkpoint)")
    p.add_argument("--local-onnx", default=None, help="the same network with a fixed batch of 1, for the local "
                                                      "client (default: export it too)")
    p.add_argument("--images", default=str(SHARED / "data" / "pennfudan" / "images" / "val"))
    p.add_argument("--runs", type=int, default=16, help="frames per client")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--clients", default="1,2,4")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads, local and on the server")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--queue-delay-us", type=int, default=2000)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)

    from sdk.bench_concurrent import bench_concurrent
    from sdk.data.images import list_images, read_image
    from sdk.detector import Detector
    from sdk.runners.onnxruntime import OnnxRuntimeRunner, _ort, session_options
    from sdk.triton.repository import export_repository
    from sdk.triton.server import TritonServer, ensure_server_env

    work = Path(tempfile.mkdtemp(prefix="bench-triton."))

    def exported(given, name, *flags):
        if given:
            return Path(given)
        import subprocess

        out = work / name
        subprocess.run([sys.executable, "-m", "sdk", "export", "--weights",
                        str(SHARED / "models" / "yolov7-tiny-pennfudan.pt"), "--imgsz", "416", *flags, "-o", str(out)],
                       check=True, cwd=str(REPO), capture_output=True)
        return out

    onnx = exported(args.onnx, "yolov7-tiny-dynamic.onnx", "--dynamic-batch")
    local_onnx = exported(args.local_onnx, "yolov7-tiny.onnx")
    frames = [read_image(f) for f in list_images(args.images)[:16]]
    clients = [int(c) for c in args.clients.split(",")]

    # Spinning off on both sides: client and server share the cores here (idle spinning threads steal them).
    local = OnnxRuntimeRunner(local_onnx, threads=args.threads).load()
    so = session_options(args.threads)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    local.session = _ort().InferenceSession(str(local_onnx), sess_options=so, providers=["CPUExecutionProvider"])

    repo = work / "repo"
    export_repository(onnx, repo, backend="python", name="yolov7-tiny", max_batch=args.max_batch, instances=1,
                      queue_delay_us=args.queue_delay_us, threads=args.threads, spinning=False)
    rows = []
    with TritonServer(repo, ensure_server_env()) as server:
        url = server.url("yolov7-tiny", "grpc")

        def stats():
            with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/v2/models/yolov7-tiny/stats") as r:
                batches = json.loads(r.read())["model_stats"][0].get("batch_stats", [])
            return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in batches}

        def run(label, make, n):
            before = stats()
            r = bench_concurrent(make, frames, n, runs=args.runs, warmup=args.warmup)
            time.sleep(0.5)  # the server records statistics after answering
            executed = {k: v - before.get(k, 0) for k, v in stats().items() if v > before.get(k, 0)}
            r.update(label=label, server_batches=executed if label != "local onnxruntime" else {})
            rows.append(r)
            print(f"{label:<28} clients {n}: {r['throughput_fps']:6.2f} FPS, p50 {r['p50_ms']:7.1f} ms, "
                  f"p95 {r['p95_ms']:7.1f} ms, server batches {r['server_batches']}", file=sys.stderr)

        run("local onnxruntime", lambda i: Detector(str(local_onnx), runner=local), 1)
        opened = []

        def remote(i):
            opened.append(Detector(url))
            return opened[-1]

        for n in clients:
            run("triton:// (gRPC, loopback)", remote, n)
        for d in opened:
            d.close()
    local.close()

    base = rows[0]["throughput_fps"]
    print("| model | clients | throughput FPS | vs local | p50 ms | p95 ms | model call p50 ms | server batch "
          "sizes (count) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        batches = ", ".join(f"{k}: {v}" for k, v in sorted(r["server_batches"].items())) or "-"
        print(f"| {r['label']} | {r['concurrency']} | {r['throughput_fps']:.2f} | {r['throughput_fps'] / base:.2f}x | "
              f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['infer_p50_ms']:.1f} | {batches} |")
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                                time.gmtime()),
              "onnx": str(onnx), "local_onnx": str(local_onnx), "runs_per_client": args.runs, "threads": args.threads,
              "max_batch": args.max_batch, "queue_delay_us": args.queue_delay_us, "rows": rows}
    if args.out:
        from sdk.fileio import write_text_atomic

        write_text_atomic(args.out, json.dumps(result, indent=1, default=str) + "\n", "--out")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

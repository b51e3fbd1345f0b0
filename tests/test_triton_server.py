"""A real Triton Inference Server (the tritonserver 2.51 CPU binary from the nvidia-pytriton wheel, in its own
numpy<2 environment) on free loopback ports, serving a repository written by `export-triton --backend python`.

Skipped, with the reason, only where the server cannot be started; under CI (CI=true) that is a failure.
Every request loop here is bounded; every address is 127.0.0.1.
"""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from sdk.errors import SDKError

from .conftest import REPO, assert_one_line_error, run_cli
from .test_triton_config import make_tiny_dynamic

pytest.importorskip("tritonclient.grpc", reason="the triton:// runner needs tritonclient: pip install -e '.[triton]'")
MODEL = "yolov7-tiny"
TINY = "tiny-dynamic"


def _server_install():
    from sdk.triton.server import ensure_server_env

    try:
        return ensure_server_env()
    except SDKError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Triton tests, but the server cannot be set up: {e}", pytrace=False)
        pytest.skip(f"the Triton server cannot be set up here: {e}")


@pytest.fixture(scope="module")
def install():
    return _server_install()


@pytest.fixture(scope="module")
def repo(onnx_model, tmp_path_factory):
    """The suite's shared 416 ONNX (fixed batch 1: model.py runs a server batch frame by frame) and a tiny
    dynamic-batch model (model.py runs a server batch in one onnxruntime call)."""
    from sdk.triton.repository import export_repository  # the CLI itself: tests/test_triton_config.py

    out = tmp_path_factory.mktemp("triton-repo")
    export_repository(onnx_model, out, backend="python", name=MODEL, max_batch=8, threads=1)
    tiny, _ = make_tiny_dynamic(tmp_path_factory.mktemp("tiny") / "tiny.onnx", names=("thing",))
    export_repository(tiny, out, backend="python", name=TINY, queue_delay_us=20000)
    return out


def _start(repo, install, **kw):
    from sdk.triton.server import TritonServer

    server = TritonServer(repo, install, **kw)
    try:
        return server.start()
    except SDKError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"tritonserver cannot start here: {e}")


@pytest.fixture(scope="module")
def server(repo, install):
    s = _start(repo, install)
    yield s
    s.stop()


def _stats(server, model=MODEL, settle=None):
    """Triton's statistics endpoint; with `settle(stats)`, polls (bounded) until the server has recorded the
    requests just answered (it updates statistics after sending the response)."""
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/v2/models/{model}/stats",
                                    timeout=10) as r:
            stats = json.loads(r.read())["model_stats"][0]
        if settle is None or settle(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.1)


def _frames_executed(stats):
    """Frames the server has run for a model: batch size x executions, summed over its batch statistics."""
    return sum(int(b["batch_size"]) * int(b["compute_infer"]["count"]) for b in stats.get("batch_stats", []))


def _run_clients(client, n, timeout):
    """`client(i)` in n threads at once; returns the exceptions they raised."""
    errors = []

    def guarded(i):
        try:
            client(i)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return errors


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_runner_matches_local_onnxruntime(server, onnx_model, protocol):
    from sdk.runners import load_runner
    from sdk.runners.onnxruntime import OnnxRuntimeRunner

    runner, reason = load_runner(server.url(MODEL, protocol))
    local = OnnxRuntimeRunner(onnx_model).load()
    try:
        assert "Triton" in reason and runner.metadata == local.metadata  # metadata from the server's config
        assert runner.max_batch_size == 8 and runner.input.shape == (None, 3, 416, 416)
        x = np.random.default_rng(1).random((3, 3, 416, 416), dtype=np.float32)
        before = int(_stats(server).get("inference_count", 0))
        remote = runner.infer(x)["output"]  # three frames: one request
        after = _stats(server, settle=lambda st: int(st.get("inference_count", 0)) >= before + 3)
        assert int(after["inference_count"]) - before == 3
        expected = np.concatenate([local.infer(x[i:i + 1])["output"] for i in range(3)])  # fixed batch 1 here
        np.testing.assert_allclose(remote, expected, rtol=1e-5, atol=1e-4)
    finally:
        runner.close()
        local.close()


def test_eval_through_triton_equals_local(server, onnx_model, val_images):
    local = run_cli("eval", "--model", onnx_model, "--data", val_images, check=True)
    remote = run_cli("eval", "--model", server.url(MODEL, "grpc"), "--data", val_images, check=True)
    a, b = _last_json(local.stdout), _last_json(remote.stdout)
    assert b["backend"] == "triton" and a["images"] == b["images"] == 30
    assert a["map50"] > 0.5
    for key in ("map50", "map50_95", "official_map50", "official_map50_95"):
        assert abs(a[key] - b[key]) <= 1e-4, (key, a[key], b[key])


def test_camera_pipeline_through_triton(server, onnx_model, person_video, tmp_path):
    """The shared video through the camera pipeline, locally and through the server: the same boxes per frame."""
    frames = 14
    source = f"{person_video}?start=60"  # people enter from frame ~63 on
    runs = {}
    for label, model in (("local", onnx_model), ("triton", server.url(MODEL, "http"))):
        out = tmp_path / f"{label}.jsonl"
        p = run_cli("camera", "--model", model, "--source", source, "--headless", "--max-frames", frames,
                    "--json", out, check=True, timeout=300)
        summary = _last_json(p.stdout)
        assert summary["frames_processed"] == frames and summary["backend"] == ("triton" if label == "triton"
                                                                                else "onnxruntime")
        runs[label] = [[(d["class_id"], d["xyxy"]) for d in json.loads(line)["detections"]]
                       for line in out.read_text().splitlines()]
    assert len(runs["triton"]) == frames and sum(map(len, runs["triton"])) > 0
    for remote, local in zip(runs["triton"], runs["local"]):
        assert [c for c, _ in remote] == [c for c, _ in local]
        np.testing.assert_allclose([b for _, b in remote], [b for _, b in local], atol=0.05)


def test_concurrent_clients_are_batched_by_the_server(server):
    """Four clients at once, one frame per request: Triton's dynamic batcher executes some batches > 1."""
    from sdk.runners.triton import TritonRunner

    x = np.random.default_rng(2).random((1, 3, 416, 416), dtype=np.float32)
    first = _stats(server)
    before = {b["batch_size"]: b["compute_infer"]["count"] for b in first.get("batch_stats", [])}

    def client(i):
        with TritonRunner(server.url(MODEL, "grpc" if i % 2 else "http")) as r:
            for _ in range(6):
                r.infer(x)

    errors = _run_clients(client, 4, timeout=300)
    assert not errors, errors
    done = lambda st: _frames_executed(st) >= _frames_executed(first) + 24  # noqa: E731
    after = {b["batch_size"]: b["compute_infer"]["count"] for b in _stats(server, settle=done)["batch_stats"]}
    executed = {size: n - before.get(size, 0) for size, n in after.items() if n > before.get(size, 0)}
    assert sum(size * n for size, n in executed.items()) == 24  # every request ran exactly once
    assert max(executed) > 1, executed


def test_server_batch_of_a_dynamic_model_returns_each_client_its_own_outputs(server):
    """Clients' requests merged into one onnxruntime call (dynamic-batch ONNX) come back split correctly."""
    from sdk.runners.triton import TritonRunner

    results = {}

    def client(i):
        with TritonRunner(server.url(TINY, "grpc")) as r:
            assert r.metadata.names == ["thing"] and r.input.shape == r.outputs[0].shape == (None, 3, 32, 32)
            for k in range(5):
                x = np.random.default_rng(100 * i + k).standard_normal((2, 3, 32, 32), dtype=np.float32)
                results[(i, k)] = (x, r.infer(x)["output"])

    errors = _run_clients(client, 3, timeout=120)
    assert not errors, errors
    assert len(results) == 15
    for x, y in results.values():
        np.testing.assert_array_equal(y, np.maximum(x, 0))
    done = lambda st: _frames_executed(st) >= 30  # noqa: E731
    sizes = {b["batch_size"] for b in _stats(server, TINY, settle=done)["batch_stats"]}
    assert max(sizes) > 2, sizes  # at least two clients' requests (2 frames each) ran together


def test_bench_concurrency(server):
    p = run_cli("bench", "--model", server.url(MODEL, "grpc"), "--concurrency", "2", "--runs", "4", "--warmup",
                "1", check=True, timeout=300)
    r = _last_json(p.stdout)
    assert r["concurrency"] == 2 and r["requests"] == 8
    assert r["throughput_fps"] > 0 and 0 < r["p50_ms"] <= r["p95_ms"]


def test_errors_name_the_url(server, val_images):
    url = server.url("no-such-model", "grpc")
    err = assert_one_line_error(run_cli("detect", "--model", url, "--source", val_images), url, "not ready")
    assert MODEL in err  # the ready models are listed
    from sdk.runners.triton import TritonRunner

    with TritonRunner(server.url(MODEL, "http")) as r:
        with pytest.raises(SDKError, match=r"triton://127.0.0.1:\d+/yolov7-tiny.*got shape \(1, 3, 320, 320\)"):
            r.infer(np.zeros((1, 3, 320, 320), np.float32))
        with pytest.raises(SDKError, match="refused the request"):  # past the client's check: the server's
            r._request({"images": np.zeros((1, 3, 320, 320), np.float32)})
    with TritonRunner(server.url(MODEL, "grpc") + "&timeout=0.001&reconnect=0") as r:
        with pytest.raises(SDKError, match=r"within 0.001 s \(timeout\)"):
            r.infer(np.zeros((1, 3, 416, 416), np.float32))


def test_server_restart_is_reconnected(repo, install):
    """The connection drops (server killed) and comes back (restarted on the same ports): the runner's next
    request waits with back-off, reconnects and succeeds."""
    from sdk.runners.triton import TritonRunner

    first = _start(repo, install)
    x = np.zeros((1, 3, 416, 416), np.float32)
    runner = TritonRunner(first.url(MODEL, "grpc") + "&reconnect=6").load()
    try:
        expected = runner.infer(x)["output"]
        first.kill()
        second = {}

        def restart():
            time.sleep(0.3)
            second["server"] = _start(repo, install, http_port=first.http_port, grpc_port=first.grpc_port)

        t = threading.Thread(target=restart)
        t.start()
        out = runner.infer(x)["output"]
        t.join(timeout=180)
        assert runner.reconnects == 1
        np.testing.assert_array_equal(out, expected)
    finally:
        runner.close()
        first.kill()
        if "server" in second:
            second["server"].stop()


def test_server_killed_mid_stream_then_clean_exit(repo, install, person_video, tmp_path):
    """The camera pipeline loses its server for good: the runner retries with back-off, then the command ends
    with one error line naming the URL, exit 1, no traceback, and no half-written output left behind."""
    s = _start(repo, install)
    out = tmp_path / "dets.jsonl"
    url = s.url(MODEL, "grpc") + "&reconnect=2&timeout=10"
    cmd = [sys.executable, "-m", "sdk", "camera", "--model", url, "--source", str(person_video), "--headless",
           "--max-frames", "400", "--json", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))

    def lines_written():  # the JSON lines sink writes beside its target and renames it when the run ends well
        return sum(len(p.read_text().splitlines()) for p in tmp_path.glob(".dets.jsonl*"))

    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and lines_written() < 3:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert lines_written() >= 3
        t_kill = time.monotonic()
        s.kill()
        stdout, stderr = proc.communicate(timeout=120)
        took = time.monotonic() - t_kill
    finally:
        if proc.poll() is None:
            proc.kill()
        s.kill()
    p = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    err = assert_one_line_error(p, url.split("?")[0], "unreachable after 2 reconnect attempts")
    assert "expected the server back" in err
    assert took >= 1.5  # the back-off waited 0.5 s + 1 s before giving up
    assert list(tmp_path.iterdir()) == []  # the error discarded the partial detections file

"""Several sources through one batched model: a stalled and an ended stream never block the others, batched
results equal one-frame-at-a-time results, per-stream outputs and stats."""
import json
import threading
import time

import cv2
import numpy as np
import pytest

from sdk.detector import Detector
from sdk.video.pipeline import Pipeline, batch_plan
from sdk.video.sinks import Sink
from sdk.video.sources import END, OK, FrameSource

from .conftest import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def frames(person_video):
    """Six real frames with one person each (the person video from frame 240)."""
    cap = cv2.VideoCapture(str(person_video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 240)
    out = [cap.read()[1] for _ in range(6)]
    cap.release()
    assert all(f is not None for f in out)
    return out


def with_fixed_batch(dynamic_model, batch, folder):
    """The dynamic-batch export with its batch dimension fixed (what a batch-N engine or ONNX looks like)."""
    import onnx

    model = onnx.load(str(dynamic_model))
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    out = folder / f"yolov7-tiny-b{batch}.onnx"
    onnx.save(model, str(out))
    return out


@pytest.fixture(scope="module")
def fixed_batch_model(dynamic_onnx_model, tmp_path_factory):
    return with_fixed_batch(dynamic_onnx_model, 2, tmp_path_factory.mktemp("model-b2"))


@pytest.fixture(scope="module")
def batch_one_model(dynamic_onnx_model, tmp_path_factory):
    return with_fixed_batch(dynamic_onnx_model, 1, tmp_path_factory.mktemp("model-b1"))


class ScriptedSource(FrameSource):
    """Real frames from a script: `count` frames, then END; `stall_after` frames in, read() blocks until
    `release` is set (a camera whose network went quiet)."""

    def __init__(self, frames, count, live=False, stall_after=None, delay=0.0):
        self.frames, self.count, self.live, self.stall_after, self.delay = frames, count, live, stall_after, delay
        self.release = threading.Event()
        self.sent = 0
        self.stalled_at = None
        self.fps, self.size, self.description = 10.0, (768, 432), "scripted"

    def read(self):
        if self.stall_after is not None and self.sent == self.stall_after:
            self.stalled_at = time.perf_counter()
            self.release.wait(60)
        if self.sent >= self.count:
            return END, None
        time.sleep(self.delay)
        self.sent += 1
        return OK, self.frames[(self.sent - 1) % len(self.frames)].copy()


STEADY = 6  # frames of the stream that neither stalls nor ends early


class Recorder(Sink):
    def __init__(self):
        self.writes = []

    def write(self, frame_bgr_annotated, detections, stats):
        self.writes.append((stats.get("stream"), stats["frame_index"], len(detections)))


def run_streams(model, reference_model, frames, expect_batch):
    det = Detector(str(model), backend="ort")
    # paced like a real file read (30 ms a frame): a file's capture queue holds 8 frames, so an unpaced source could
    # read all of them before the stalling camera's thread has even run, and nothing would be "after the stall"
    steady = ScriptedSource(frames, count=STEADY, delay=0.03)
    short = ScriptedSource(frames, count=2)  # ends early
    stall = ScriptedSource(frames, count=4, live=True, stall_after=1)  # a camera that stalls after 1 frame
    recorder = Recorder()
    pipeline = Pipeline(det, [steady, short, stall], [recorder], handle_signals=False)
    assert pipeline.batch_size == expect_batch
    results, batches_after_stall = [], 0
    for r in pipeline:
        results.append(r)
        if stall.stalled_at is not None and r.stream == 0 and r.frame.t_read > stall.stalled_at:
            batches_after_stall += 1
        if r.stream == 0 and r.frame.index == STEADY - 1:
            stall.release.set()  # the stalled camera comes back (then ends) once the steady stream is done
    stats = pipeline.final_stats
    per_stream = {i: [r for r in results if r.stream == i] for i in range(3)}
    # every frame of the files, in order; the steady stream went on while the camera was stalled
    assert [len(per_stream[i]) for i in range(2)] == [STEADY, 2]
    assert [r.frame.index for r in per_stream[0]] == list(range(STEADY))
    assert batches_after_stall >= STEADY - 2
    # the camera: latest-frame policy once it is back (frames arriving faster than inference are dropped),
    # never its newest frame
    cam = stats["streams"][2]
    assert cam["frames_read"] == 4 and cam["frames_processed"] + cam["frames_dropped"] == 4
    assert per_stream[2][0].frame.index == 0 and per_stream[2][-1].frame.index == 3
    assert [s["frames_processed"] for s in stats["streams"]][:2] == [STEADY, 2]
    assert stats["frames_processed"] == STEADY + 2 + cam["frames_processed"]
    assert all(s["stop_reason"] == "end of source" for s in stats["streams"])
    assert sorted(w[:2] for w in recorder.writes) == sorted((r.stream, r.frame.index) for r in results)
    # batched inference gives the boxes one-frame-at-a-time inference gives
    single = Detector(str(reference_model), backend="ort")
    for r in per_stream[0][:1] + per_stream[1][:1]:
        ref = single(r.frame.image)
        assert len(ref) == len(r.detections) >= 1
        np.testing.assert_allclose(r.detections.boxes, ref.boxes, atol=0.05)
    single.close()
    det.close()
    return stats


def test_dynamic_batch_runs_every_stream_at_once(dynamic_onnx_model, frames):
    stats = run_streams(dynamic_onnx_model, dynamic_onnx_model, frames, expect_batch=3)
    assert stats["batch"]["size"] == 3 and stats["batch"]["padded_to"] is None
    # several streams per inference (how many at once depends on which capture threads are ahead: timing)
    assert stats["batch"]["largest"] >= 2 and 1.0 < stats["batch"]["mean_frames"] <= 3


def test_fixed_batch_model_takes_up_to_its_batch_padded(fixed_batch_model, dynamic_onnx_model, frames):
    stats = run_streams(fixed_batch_model, dynamic_onnx_model, frames, expect_batch=2)
    assert stats["batch"]["padded_to"] == 2 and stats["batch"]["largest"] == 2
    assert 1.0 < stats["batch"]["mean_frames"] <= 2


def test_batch_one_model_runs_streams_in_turn(batch_one_model, frames):
    size, pad, text = batch_plan(1, 2)
    assert (size, pad) == (1, None) and "2 streams run in turn" in text
    det = Detector(str(batch_one_model), backend="ort")
    a, b = ScriptedSource(frames, count=4), ScriptedSource(frames, count=4)
    order = [r.stream for r in Pipeline(det, [a, b], handle_signals=False)]
    det.close()
    assert sorted(order) == [0] * 4 + [1] * 4
    assert order[:4].count(0) == 2  # alternating, not one stream first


def test_cli_two_streams_with_placeholder_outputs(dynamic_onnx_model, person_video, tmp_path):
    p = run_cli("camera", "--model", dynamic_onnx_model, "--source", f"{person_video}?start=240",
                "--source", f"{person_video}?start=600", "--headless", "--max-frames", "4",
                "--save", tmp_path / "cam{stream}.mp4", "--json", tmp_path / "d.jsonl", check=True)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert "batch: dynamic-batch model, up to 2 stream(s) per inference" in p.stderr
    assert [s["frames_processed"] for s in stats["streams"]] == [4, 4] and stats["frames_processed"] == 8
    for s in stats["streams"]:
        assert s["e2e_fps"] >= 0 and 0 < s["p50_ms"] <= s["p95_ms"]
    for i in range(2):
        cap = cv2.VideoCapture(str(tmp_path / f"cam{i}.mp4"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    records = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert sorted((r["stream"], r["frame"]) for r in records) == [(i, f) for i in range(2) for f in range(4)]


@pytest.mark.parametrize("extra, needles", [
    (["--save", "out.mp4"], ["--output out.mp4", "one output for 2 streams", "{stream}", "mosaic:out.mp4"]),
    (["--output", "webrtc://@:8554/cam"], ["--output webrtc://@:8554/cam", "WebRTC output is not implemented"]),
    (["--count-line", "1,2,3"], ["--count-line 1,2,3", "expected x1,y1,x2,y2[,name]"]),
    (["--count-line", "5:0,1,2,3"], ["--count-line 5:0,1,2,3", "got stream 5", "expected 0..1"]),
])
def test_bad_multi_stream_flags_are_one_line(dynamic_onnx_model, person_video, extra, needles):
    p = run_cli("camera", "--model", dynamic_onnx_model, "--source", person_video, "--source", person_video,
                "--headless", "--max-frames", "1", *extra, timeout=120)
    assert_one_line_error(p, *needles)

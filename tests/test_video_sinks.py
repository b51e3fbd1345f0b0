"""Sinks by URI, the sink interface the pipeline honours, and the pipeline itself on the shared person video."""
import json
import os
import time

import cv2
import pytest

from sdk.detections import Detections
from sdk.detector import Detector
from sdk.errors import SDKError
from sdk.video import sinks
from sdk.video.pipeline import Pipeline
from sdk.video.sinks import JsonLinesSink, Sink, VideoFileSink, create_sink, register_sink, sink_kind
from sdk.video.sources import ThreadedCapture, open_source

INFO_KEYS = {"model", "backend", "precision", "imgsz", "names", "source", "fps", "size"}
STATS_KEYS = {"frames_read", "frames_processed", "frames_dropped", "model_fps", "e2e_fps", "p50_ms", "p95_ms",
              "counts", "frame_index"}


class RecordingSink(Sink):
    """Registered as record:// by the test: keeps what the pipeline hands a sink."""

    def __init__(self, uri, token=None):
        self.uri, self.token, self.info, self.writes, self.closed = uri, token, None, [], False

    def open(self, info):
        self.info = info

    def write(self, frame_bgr_annotated, detections, stats):
        self.writes.append((frame_bgr_annotated.shape, detections, dict(stats)))

    def close(self):
        self.closed = True


@pytest.mark.parametrize("text, kind", [("display://", "display"), ("out.mp4", "file"), ("clip.avi", "file"),
                                        ("dets.jsonl", "jsonl"), ("http://@:8080", "http"),
                                        ("http://0.0.0.0:8080", "http"), ("http://127.0.0.1:8080", "http")])
def test_sink_kind_by_scheme_or_extension(text, kind):
    assert sink_kind(text) == kind


def test_registry_names_http_sink_lazily():
    assert sinks.SINKS["http"] == "sdk.video.http_sink:HttpSink"
    with pytest.raises(SDKError, match="output out.png: got a path ending in '.png'"):
        sink_kind("out.png")
    with pytest.raises(SDKError, match="got 'ftp://', expected one of"):
        sink_kind("ftp://host/x")


def test_create_sink_passes_the_token_to_sinks_that_take_one(monkeypatch, tmp_path):
    monkeypatch.setitem(sinks.SINKS, "record", f"{__name__}:RecordingSink")
    sink = create_sink("record://x", token="s3cret")
    assert isinstance(sink, RecordingSink) and sink.token == "s3cret" and sink.uri == "record://x"
    assert isinstance(create_sink(str(tmp_path / "o.mp4"), token="s3cret"), VideoFileSink)


def test_missing_sink_module_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sinks.SINKS, "nope", "sdk.video.no_such_sink:Nope")
    with pytest.raises(SDKError, match="its sink sdk.video.no_such_sink:Nope is not installed"):
        create_sink("nope://x")


def test_unwritable_outputs_fail_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SDKError, match="cannot create folder"):
        VideoFileSink(str(blocker / "sub" / "out.mp4"))
    with pytest.raises(SDKError, match="is a folder, expected a file path"):
        JsonLinesSink(str(tmp_path))
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(SDKError, match="not writable"):
            VideoFileSink(str(ro / "out.mp4"))


def test_display_sink_explains_why_there_is_no_window(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SDKError, match=r"output display://: no display \(\$DISPLAY is not set\).*--headless"):
        create_sink("display://")


def test_pipeline_feeds_sinks_the_agreed_interface(onnx_model, person_video, tmp_path, monkeypatch):
    monkeypatch.setitem(sinks.SINKS, "record", f"{__name__}:RecordingSink")
    recorder = create_sink("record://test")
    video_sink, json_sink = VideoFileSink(str(tmp_path / "out.mp4")), JsonLinesSink(str(tmp_path / "d.jsonl"))
    det = Detector(str(onnx_model), backend="ort")
    source = open_source(f"{person_video}?start=240")
    info = {"model": str(onnx_model), "backend": det.runner.backend, "precision": det.meta.precision,
            "imgsz": list(det.pre.shape), "names": list(det.names), "source": str(person_video),
            "fps": source.fps, "size": source.size}
    stats = Pipeline(det, ThreadedCapture(source), [recorder, video_sink, json_sink], info=info, max_frames=12,
                     handle_signals=False).run()

    assert stats["frames_processed"] == 12 and stats["frames_dropped"] == 0
    assert stats["stop_reason"] == "max frames" and stats["detections"].get("person", 0) >= 10
    assert recorder.info == info and set(recorder.info) == INFO_KEYS and recorder.closed
    assert len(recorder.writes) == 12
    for i, (shape, dets, live) in enumerate(recorder.writes):
        assert shape == (432, 768, 3) and isinstance(dets, Detections)
        assert STATS_KEYS <= set(live) and live["frame_index"] == i
        assert live["counts"] == dets.counts()
    assert recorder.writes[-1][2]["frames_processed"] == 11  # the live stats before this frame finishes

    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, first = cap.read()
    assert ok and first.shape == (432, 768, 3)
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in lines] == list(range(12))
    assert all(d["class_name"] == "person" and len(d["xyxy"]) == 4 for r in lines for d in r["detections"])
    assert sorted(os.listdir(tmp_path)) == ["d.jsonl", "out.mp4"]  # no temporary files left behind


def test_register_sink_adds_a_scheme(monkeypatch):
    monkeypatch.setattr(sinks, "SINKS", dict(sinks.SINKS))
    register_sink("record", f"{__name__}:RecordingSink")
    assert sink_kind("record://x") == "record"


def test_pipeline_on_a_live_source_drops_stale_frames_only(onnx_model, person_video, monkeypatch):
    """A camera faster than the model: frames are dropped, none is lost, the newest is always the one processed."""
    from sdk.video.sources import END, OK, FrameSource

    reader = open_source(f"{person_video}?start=240")
    real = [reader.read()[1] for _ in range(4)]
    reader.close()

    class FastCamera(FrameSource):
        live, description, fps, size = True, "fake 200 fps camera", 200.0, (768, 432)

        def __init__(self):
            self.i = 0

        def read(self):
            if self.i >= 150:
                return END, None
            time.sleep(0.005)
            self.i += 1
            return OK, real[self.i % len(real)]

    monkeypatch.setitem(sinks.SINKS, "record", f"{__name__}:RecordingSink")
    recorder = create_sink("record://live")
    det = Detector(str(onnx_model), backend="ort")
    stats = Pipeline(det, ThreadedCapture(FastCamera()), [recorder], info={"source": "fake"},
                     handle_signals=False).run()
    assert stats["frames_read"] == 150 and stats["frames_dropped"] > 50
    assert stats["frames_processed"] + stats["frames_dropped"] == 150
    indices = [live["frame_index"] for _, _, live in recorder.writes]
    assert indices == sorted(set(indices)) and indices[-1] == 149  # in order, and the last frame is not lost
    assert all(len(d) >= 1 for _, d, _ in recorder.writes)  # real frames with a person in each


class FailingSink(RecordingSink):
    """A sink whose device fails on the third frame (a full disk, an unplugged drive)."""

    def write(self, frame_bgr_annotated, detections, stats):
        super().write(frame_bgr_annotated, detections, stats)
        if len(self.writes) == 3:
            raise OSError(28, "No space left on device")


def test_a_failing_output_stops_the_run_and_leaves_no_partial_files(onnx_model, person_video, tmp_path):
    outputs = [FailingSink("disk://full"), VideoFileSink(str(tmp_path / "out.mp4")),
               JsonLinesSink(str(tmp_path / "d.jsonl"))]
    det = Detector(str(onnx_model), backend="ort")
    pipeline = Pipeline(det, ThreadedCapture(open_source(str(person_video))), outputs, info={"fps": 10.0},
                        handle_signals=False)
    with pytest.raises(SDKError) as e:
        pipeline.run()
    assert str(e.value) == ("output disk://full: writing failed (No space left on device), expected a writable "
                            "output")
    assert len(outputs[0].writes) == 3 and outputs[0].closed
    assert os.listdir(tmp_path) == []


def test_a_sink_that_cannot_open_leaves_no_partial_outputs(tmp_path):
    from .test_video_sources import CountingSource

    class PortInUse(Sink):
        def open(self, info):
            raise SDKError("--output http://@:8080: port 8080 is in use, expected a free port")

    outputs = [JsonLinesSink(str(tmp_path / "d.jsonl")), PortInUse()]
    with pytest.raises(SDKError, match="port 8080 is in use"):
        Pipeline(None, ThreadedCapture(CountingSource(live=False)), outputs, handle_signals=False).run()
    assert os.listdir(tmp_path) == []

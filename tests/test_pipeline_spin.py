"""The camera pipeline runs its onnxruntime session with spinning in runs only (scripts/bench_spin.py: as fast as
onnxruntime's default on a quiet 2-core host, and the idle pool never takes the cores of the capture and drawing
threads; spinning off paid for every op's wake-up), read back from the session onnxruntime holds; other sessions
keep onnxruntime's default; the setting can be overridden from the API and the CLI."""
import argparse

import pytest

from sdk.commands import camera
from sdk.detector import Detector
from sdk.video.pipeline import PIPELINE_SPIN, Pipeline
from sdk.video.sources import open_source

SPIN = "session.intra_op.allow_spinning"
STOP = "session.force_spinning_stop"


def run_two_frames(det, video, **kw):
    return Pipeline(det, open_source(str(video)), handle_signals=False, max_frames=2, **kw).run()


def test_a_detector_keeps_onnxruntimes_default(onnx_model):
    with Detector(str(onnx_model), backend="ort") as det:
        assert det.runner.spin is None and det.runner.session_config(SPIN) is None


def test_the_pipeline_spins_in_runs_only_and_still_detects(onnx_model, person_video):
    assert PIPELINE_SPIN == "run"
    with Detector(str(onnx_model), backend="ort") as det:
        before = det.runner.session
        stats = run_two_frames(det, person_video)
        assert det.runner.session is not before  # onnxruntime fixes the setting at creation: reopened once
        assert det.runner.session_config(SPIN) == "1" and det.runner.session_config(STOP) == "1"
        assert "spinning in runs only" in det.runner.describe()
        assert stats["frames_processed"] == 2


def test_a_session_opened_as_the_pipeline_runs_it_is_not_reopened(onnx_model, person_video):
    with Detector(str(onnx_model), backend="ort", spin="run") as det:
        session = det.runner.session
        run_two_frames(det, person_video)
        assert det.runner.session is session and det.runner.session_config(STOP) == "1"


@pytest.mark.parametrize("opened,spin,expected", [(None, True, (None, None)), (None, None, (None, None)),
                                                   (False, True, ("1", None)), (False, None, ("0", None)),
                                                   ("run", False, ("0", None)), (True, "run", ("1", "1"))])
def test_the_pipeline_setting_can_be_overridden(onnx_model, person_video, opened, spin, expected):
    """spin=True keeps a default session (it spins already: None is onnxruntime's default, which spins) and
    turns spinning back on in one opened without; None leaves any session as it was opened."""
    with Detector(str(onnx_model), backend="ort", spin=opened) as det:
        session = det.runner.session
        run_two_frames(det, person_video, spin=spin)
        assert (det.runner.session_config(SPIN), det.runner.session_config(STOP)) == expected
        assert (det.runner.session is session) == (spin is None or (opened is None and spin is True))


@pytest.mark.parametrize("flag,expected", [([], ("1", "1")), (["--spinning", "on"], ("1", None)),
                                           (["--spinning", "off"], ("0", None))])
def test_camera_flags_open_the_session_as_the_pipeline_runs_it(onnx_model, person_video, flag, expected,
                                                               monkeypatch):
    p = argparse.ArgumentParser()
    camera.add_arguments(p)
    args = p.parse_args(["--model", str(onnx_model), "--source", str(person_video), "--headless",
                         "--max-frames", "2", *flag])
    seen = {}

    def on_start(pipeline):
        runner = pipeline.detector.runner
        seen.update(config=(runner.session_config(SPIN), runner.session_config(STOP)),
                    reopened=runner.session is not seen.get("session"))

    original = camera.detector_from_args

    def recording(*a, **kw):  # the session the command opened, to tell a reopened one from it
        det = original(*a, **kw)
        seen["session"] = det.runner.session
        return det

    monkeypatch.setattr(camera, "detector_from_args", recording)
    stats, _ = camera.run_pipeline(args, sinks=[], on_start=on_start)
    assert seen["config"] == expected and not seen["reopened"]
    assert stats["frames_processed"] == 2

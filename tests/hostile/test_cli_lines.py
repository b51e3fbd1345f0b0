"""The CLI's error contract itself: one line of at most ~200 characters, the detail behind the global --verbose,
and soak's final memory measured while the detector is still alive."""
import json

from .harness import MAX_ERROR_LINE, assert_refused, noise_image, run_sdk


def test_long_error_lines_are_cut_and_verbose_shows_the_rest(tmp_path, onnx_model):
    deep = tmp_path / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    source = deep / "missing.png"
    proc = run_sdk(tmp_path, "detect", "--model", onnx_model, "--source", source)
    line = assert_refused(proc, tmp_path, "(--verbose shows all)")
    assert len(line) <= MAX_ERROR_LINE + len("error: ")
    verbose = run_sdk(tmp_path, "--verbose", "detect", "--model", onnx_model, "--source", source)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr and str(source) in verbose.stderr  # the whole message, and where
    assert len([x for x in verbose.stderr.splitlines() if x.startswith("error:")]) == 1


def test_verbose_may_follow_the_command(tmp_path, onnx_model):
    proc = run_sdk(tmp_path, "detect", "--model", onnx_model, "--source", tmp_path / "nope.png", "--verbose")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "unrecognized arguments" not in proc.stderr


def test_soak_measures_memory_before_closing_the_detector(tmp_path, onnx_model, val_images):
    """Measured after close(), the end RSS came out 23 MB below the warm-up one, which would hide a leak."""
    proc = run_sdk(tmp_path, "soak", "--model", onnx_model, "--source", val_images, "--minutes", "0.1",
                   timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["stop_reason"] == "time limit" and r["frames_processed"] > 0
    assert r["rss_end_mb"] > r["rss_start_mb"] + 10  # the model and its session are still in memory
    assert r["rss_growth_after_warmup_mb"] > -5, r

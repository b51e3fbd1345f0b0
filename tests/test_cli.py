"""The user's commands end to end: detect, bench, the runtime without torch, and bad input."""
import json
import subprocess
import sys
import textwrap

import cv2

from .conftest import REPO, assert_one_line_error, run_cli

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch', 'tensorflow', 'torchvision', 'torch_pruning'):
                raise ImportError(f'{name} is blocked in this test')
    sys.meta_path.insert(0, Block())
""")


def test_runtime_path_never_imports_torch(onnx_model, val_images):
    code = BLOCK_TORCH + textwrap.dedent(f"""
        import sdk, sdk.runners, sdk.detector, sdk.preprocess, sdk.postprocess, sdk.evaluation.evaluate
        import sdk.commands.detect, sdk.commands.eval, sdk.commands.bench, calibrators
        from sdk.cli import main
        assert main(['eval', '--model', {str(onnx_model)!r}, '--data', {str(val_images)!r}]) == 0
        assert main(['bench', '--model', {str(onnx_model)!r}, '--runs', '3', '--warmup', '1']) == 0
        assert main(['detect', '--model', {str(onnx_model)!r}, '--source', {str(val_images)!r}]) == 0
        assert main(['export', '--weights', 'x.pt', '-o', 'x.onnx']) == 1  # clear error, not a crash
        bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')]
        assert not bad, bad
        print('NO-TORCH-OK')
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "NO-TORCH-OK" in p.stdout
    assert "torch is not installed here; it is needed for export" in p.stderr


def test_detect_folder_writes_annotated_images_and_json_lines(onnx_model, val_images, tmp_path):
    out = tmp_path / "det"
    p = run_cli("detect", "--model", onnx_model, "--source", val_images, "--save-dir", out, check=True)
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 30 and summary["per_class"]["person"] >= 50
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == 30 and sum(len(x["detections"]) for x in lines) == summary["boxes"]
    first = lines[0]["detections"][0]
    assert set(first) == {"xyxy", "score", "class_id", "class_name"} and first["class_name"] == "person"
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 30
    src = cv2.imread(str(val_images / pngs[0].name))
    assert cv2.imread(str(pngs[0])).shape == src.shape and (cv2.imread(str(pngs[0])) != src).any()


def test_detect_video_writes_a_playable_annotated_video(onnx_model, person_video, tmp_path):
    clip = tmp_path / "clip.mp4"
    cap = cv2.VideoCapture(str(person_video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 600)
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (768, 432))
    for _ in range(12):
        ok, frame = cap.read()
        assert ok
        w.write(frame)
    w.release()
    out = tmp_path / "out"
    p = run_cli("detect", "--model", onnx_model, "--source", clip, "--save-dir", out, check=True)
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["frames"] == 12 and summary["per_class"].get("person", 0) >= 6
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_bench_prints_table_and_json(onnx_model):
    p = run_cli("bench", "--model", onnx_model, "--runs", "5", "--warmup", "1", "--threads", "2", check=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    for k in ("model_p50_ms", "model_p95_ms", "model_fps", "e2e_p50_ms", "e2e_p95_ms", "e2e_fps"):
        assert r[k] > 0
    assert r["e2e_p50_ms"] >= r["model_p50_ms"] * 0.5 and r["imgsz"] == [416, 416]
    assert "| model only" in p.stdout and "| end-to-end" in p.stdout
    assert any("too short to trust (5 runs" in w for w in r["warnings"]) and "warning: the run is too short" in p.stderr


def test_timing_warnings_catch_impossible_and_short_runs():
    from sdk.bench_checks import timing_warnings

    ok = {"p50_ms": 30.0, "mean_ms": 31.0}
    assert timing_warnings(ok, {"p50_ms": 33.0, "mean_ms": 34.0}, runs=100) == []
    (w,) = timing_warnings(ok, {"p50_ms": 29.0, "mean_ms": 30.0}, runs=100)
    assert "reads faster than model-only" in w
    (w,) = timing_warnings({"p50_ms": 1.0, "mean_ms": 1.0}, {"p50_ms": 2.0, "mean_ms": 2.0}, runs=100)
    assert "too short to trust (100 runs, 0.3 s timed): use --runs 667" in w


def test_bad_input_is_one_line_exit_1(tmp_path, onnx_model, val_images, checkpoint):
    assert_one_line_error(run_cli("export", "--weights", tmp_path / "none.pt", "-o", tmp_path / "m.onnx"),
                          "none.pt", "file not found")
    corrupt = tmp_path / "c.pt"
    corrupt.write_bytes(b"garbage")
    assert_one_line_error(run_cli("export", "--weights", corrupt, "-o", tmp_path / "m.onnx"), "c.pt")
    bad_onnx = tmp_path / "bad.onnx"
    bad_onnx.write_bytes(b"not onnx")
    assert_one_line_error(run_cli("detect", "--model", bad_onnx, "--source", val_images), "bad.onnx")
    assert_one_line_error(run_cli("detect", "--model", tmp_path / "m.xyz", "--source", val_images), "m.xyz")
    assert_one_line_error(run_cli("detect", "--model", onnx_model, "--source", tmp_path / "nowhere"), "nowhere")
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"\xff\xd8 truncated")
    assert_one_line_error(run_cli("detect", "--model", onnx_model, "--source", unreadable), "broken.jpg")
    out = tmp_path / "preds.json"
    p = run_cli("eval", "--model", onnx_model, "--data", tmp_path / "nodata", "--save-json", out)
    assert_one_line_error(p, "nodata")
    assert not out.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.onnx", "broken.jpg", "c.pt"]


def test_help_lists_commands_without_heavy_imports():
    code = BLOCK_TORCH + "from sdk.cli import main; main(['--help'])"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0 and "export" in p.stdout and "eval" in p.stdout and "bench" in p.stdout


def test_doctor_reports_the_cpu_fallback_and_jetson_checks(tmp_path):
    r = run_cli("doctor")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    found = {c["check"]: c for c in report["checks"]}
    assert report["backend"] == "onnxruntime" and not report["jetson"]
    assert "CPUExecutionProvider" in found["onnxruntime providers"]["found"]
    # A fake Jetson tree without TensorRT: the device checks run and the missing TensorRT fails the doctor.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 3.1, GCID: 1, BOARD: t186ref\n")
    r = run_cli("doctor", "--root", str(tmp_path))
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 1 and report["jetson"] and "TensorRT (python)" in report["failed"]

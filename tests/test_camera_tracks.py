"""`--track --count-line` on the shared person video, checked against what the video shows.

Looked at frame by frame: people walk in from the bottom edge, stop at the table, then leave to the right past
x = 640 (the pillar's right edge). Three clips each hold one such exit, at frames 439-440, 691-692 and 858-859
(the frame the shared model's box centre passes x = 640). A vertical line drawn top to bottom at x = 640 counts
that move (left-hand side to right-hand side, looking down the line) as `out`. So each clip must give one track,
one id throughout, and exactly one `out` for the person class, at that frame.
"""
import json

import pytest

from .conftest import run_cli

pytest.importorskip("scipy.optimize", reason="--track needs scipy (pip install -e '.[track]')")

CLIPS = [(425, 15), (675, 17), (845, 14)]  # (first frame, index of the crossing frame within the clip)
DOOR = "640,0,640,432,door"


def test_three_people_leaving_are_counted_once_each_with_one_id(dynamic_onnx_model, person_video, tmp_path):
    sources = [a for start, _ in CLIPS for a in ("--source", f"{person_video}?start={start}")]
    p = run_cli("camera", "--model", dynamic_onnx_model, *sources, "--headless", "--max-frames", "25",
                "--track", "--count-line", DOOR, "--output", f"mot:{tmp_path}/tracks{{stream}}.txt",
                "--json", tmp_path / "d.jsonl", check=True, timeout=600)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    assert [(c["stream"], c["line"], c["in"], c["out"], c["out_by_class"]) for c in stats["lines"]] == \
        [(i, "door", 0, 1, {"person": 1}) for i in range(3)]
    assert [s["tracks_total"] for s in stats["streams"]] == [1, 1, 1]  # one person, one id: no switches

    records = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    events = [(r["stream"], e) for r in records for e in r.get("events", ())]
    assert sorted((s, e["frame"], e["track"], e["line"], e["direction"], e["class"]) for s, e in events) == \
        sorted((i, crossing, 1, "door", "out", "person") for i, (_, crossing) in enumerate(CLIPS))
    for _, e in events:
        assert e["event"] == "line" and e["video_time"] == pytest.approx(e["frame"] / 10.0) and e["time"] > 0
    tracked = [d for r in records for d in r["detections"] if d.get("track_id", -1) >= 0]
    assert len(tracked) >= 3 * 18 and {d["track_id"] for d in tracked} == {1}

    for i in range(3):  # MOT Challenge text, read back the way motmetrics reads it when installed
        rows = [line.split(",") for line in (tmp_path / f"tracks{i}.txt").read_text().splitlines()]
        assert len(rows) >= 18 and all(len(r) == 10 and r[1] == "1" and r[7:] == ["-1"] * 3 for r in rows)
        frames = [int(r[0]) for r in rows]
        assert frames == sorted(frames) and frames[0] == 1 and all(float(r[4]) > 0 for r in rows)
    mm = pytest.importorskip("motmetrics", reason="motmetrics reads the MOT file back when installed")
    df = mm.io.loadtxt(str(tmp_path / "tracks0.txt"), fmt="mot15-2D")
    assert len(df) == len((tmp_path / "tracks0.txt").read_text().splitlines())


def test_mot_output_implies_tracking_and_a_zone_reports_dwell(onnx_model, person_video, tmp_path):
    # the person stands at the table (bottom centre around x 450, y 415) from frame 250 to 430
    p = run_cli("camera", "--model", onnx_model, "--source", f"{person_video}?start=300", "--headless",
                "--max-frames", "20", "--zone", "300,380,620,380,620,432,300,432,table",
                "--output", f"mot:{tmp_path}/t.txt", check=True, timeout=300)
    stats = json.loads(p.stdout.strip().splitlines()[-1])
    zone = stats["streams"][0]["zones"]["table"]
    assert stats["zones"] == [{"stream": 0, "zone": "table", "inside": 1, "entries": 1}]
    assert zone["inside_by_class"] == {"person": 1} and zone["dwell_s"]["1"] == pytest.approx(1.9, abs=0.15)
    assert (tmp_path / "t.txt").read_text().count("\n") >= 18

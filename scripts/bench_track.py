"""What `--track --count-line` costs the camera pipeline: the same pipeline with and without tracking and
counting, alternating rounds in ONE run, and where the tracking time goes.

    python -m scripts.bench_track [--model m.onnx] [--frames 40] [--rounds 12] [--crowd 40]

Each round runs the full pipeline (decode, letterbox, inference, NMS, drawing with the overlay, JSON-lines sink)
on the shared person video twice over the same frames, once plain and once with ByteTrack, a count line at the
door (x = 640, where people leave) and the trails, ids and counts drawn, the order alternating. Reported: the
end-to-end FPS (steady state, the pipeline's own stats) of each, medians over rounds, and the cost of tracking as
1 - the median of the paired per-round FPS ratios (target: at most 5 %); beside it the process CPU time per
frame, whose ratio other jobs on a shared machine disturb far less than they disturb FPS (on a dedicated,
CPU-bound device the two costs agree). Then the tracking work alone, replayed
outside the pipeline: tracker update, line counting and drawing, ms per frame, on the video's detections and on
a scripted crowd of `--crowd` people walking through a 1920x1080 frame (the video shows one person at a time),
each also as a share of the plain pipeline's frame time. The sessions run as the pipeline runs them (spinning
off). Without --model it exports the shared checkpoint at 416. The last line is JSON.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

DOOR = "640,0,640,432,door"  # tests/test_camera_tracks.py: people leave to the right past x = 640


def crowd(people, frames, seed=0):
    """A scripted crowd on a 1920x1080 frame: (boxes, scores, class ids) per frame, one person in 12 missed."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [1800, 950], (people, 2))
    vel = rng.uniform(-6, 6, (people, 2))
    size = rng.uniform([25, 60], [80, 200], (people, 2))
    out = []
    for f in range(frames):
        seen = rng.uniform(size=people) > 0.08
        xy = start + vel * f + rng.normal(0, 1.5, (people, 2))
        scores = np.where(rng.uniform(size=people) < 0.15, rng.uniform(0.12, 0.39, people),
                          rng.uniform(0.41, 0.95, people))
        out.append((np.concatenate([xy, xy + size], 1)[seen].astype(np.float32), scores[seen].astype(np.float32),
                    np.zeros(int(seen.sum()), np.int64)))
    return out


def replay_ms(sequence, image, names, line_text, frame_rate):
    """Tracking work per frame outside the pipeline: (tracker update, line counting, drawing) ms, averaged."""
    from sdk.detections import Detections
    from sdk.track import ByteTracker, LineCounter, parse_line
    from sdk.track.draw import draw_lines, draw_tracks

    h, w = image.shape[:2]
    tracker = ByteTracker(frame_rate=frame_rate)
    line = LineCounter(parse_line(line_text), (w, h))
    spent = np.zeros(3)
    for boxes, scores, cls in sequence:
        dets = Detections(boxes, scores, cls, names)
        t0 = time.perf_counter()
        dets.track_ids = tracker.update(dets.boxes, dets.scores, dets.class_ids)
        t1 = time.perf_counter()
        line.update(dets.track_ids, dets.boxes, [dets.class_name(c) for c in dets.class_ids])
        line.forget({t.track_id for t in tracker.tracks})
        t2 = time.perf_counter()
        canvas = image.copy()
        t3 = time.perf_counter()
        draw_tracks(canvas, dets, tracker)
        draw_lines(canvas, [line])
        t4 = time.perf_counter()
        spent += (t1 - t0, t2 - t1, t4 - t3)
    return (spent / len(sequence) * 1e3).tolist()


def main(argv=None):
    from scripts.bench_pipeline import video_arguments

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    video_arguments(p, frames=40, rounds=12, model_required=False)
    p.add_argument("--line", default=DOOR)
    p.add_argument("--crowd", type=int, default=40, help="people in the scripted crowd replay")
    args = p.parse_args(argv)

    import cv2

    from scripts.bench_pipeline import model_or_export, pipeline_round
    from sdk.detector import Detector
    from sdk.report import describe_machine
    from sdk.track import parse_line
    from sdk.video.pipeline import PIPELINE_SPIN

    tmp = tempfile.TemporaryDirectory(prefix="bench-track-")
    model = model_or_export(args.model, args.weights, tmp.name)
    det = Detector(model, backend="ort", spin=PIPELINE_SPIN, **({"threads": args.threads} if args.threads else {}))
    settings = {"detection only": {}, "--track + count line": {"track": True, "lines": [parse_line(args.line)]}}
    labels = list(settings)
    pipeline_round(det, args.video, args.start, 4, tmp.name, **settings[labels[1]])  # warm-up; imports scipy
    stats = {k: [] for k in labels}
    for r in range(args.rounds):
        for label in labels[r % 2:] + labels[:r % 2]:
            cpu = time.process_time()
            s = pipeline_round(det, args.video, args.start + r * args.frames, args.frames, tmp.name, **settings[label])
            s["cpu_ms_per_frame"] = (time.process_time() - cpu) * 1e3 / max(s["frames_processed"], 1)
            stats[label].append(s)
            extra = f", {s.get('tracks_total', 0)} tracks, {len(s.get('lines') or [])} line(s)" if s.get("lines") else ""
            print(f"round {r + 1} {label}: {s['e2e_fps']:.2f} FPS end-to-end, p50 latency {s['p50_ms']:.0f} ms, "
                  f"{s['cpu_ms_per_frame']:.1f} ms CPU a frame{extra}", file=sys.stderr, flush=True)
    plain, tracked = (stats[k] for k in labels)
    ratio = statistics.median(b["e2e_fps"] / a["e2e_fps"] for a, b in zip(plain, tracked))
    cpu_ratio = statistics.median(b["cpu_ms_per_frame"] / a["cpu_ms_per_frame"] for a, b in zip(plain, tracked))
    rows = {label: {"e2e_fps": round(statistics.median(s["e2e_fps"] for s in ss), 2),
                    "p50_latency_ms": round(statistics.median(s["p50_ms"] for s in ss), 1),
                    "cpu_ms_per_frame": round(statistics.median(s["cpu_ms_per_frame"] for s in ss), 2)}
            for label, ss in stats.items()}
    frame_ms = 1e3 / rows[labels[0]]["e2e_fps"]

    # the tracking work alone: the video's detections (recorded once) and a scripted crowd
    cap = cv2.VideoCapture(args.video)
    cap.set(cv2.CAP_PROP_POS_FRAMES, args.start)
    recorded, image = [], None
    for _ in range(args.frames * args.rounds):
        ok, frame = cap.read()
        if not ok:
            break
        image = frame
        d = det(frame)
        recorded.append((d.boxes, d.scores, d.class_ids))
    cap.release()
    fps = open_fps(args.video)
    parts = {"video": replay_ms(recorded, image, det.names, args.line, fps),
             f"crowd of {args.crowd}": replay_ms(crowd(args.crowd, 200), np.zeros((1080, 1920, 3), np.uint8),
                                                 det.names, "960,0,960,1080,middle", 30.0)}
    det.close()
    tmp.cleanup()

    print("| setting | end-to-end FPS | p50 latency ms | process CPU ms a frame |")
    print("|---|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['e2e_fps']:.2f} | {row['p50_latency_ms']:.0f} | {row['cpu_ms_per_frame']:.1f} |")
    print(f"tracking + counting cost: {100 * (1 - ratio):.1f} % of end-to-end FPS, {100 * (cpu_ratio - 1):.1f} % "
          f"more CPU a frame (medians of the paired per-round ratios, {args.rounds} rounds of {args.frames} "
          f"frames; target <= 5 %)")
    print("| tracking work alone, ms per frame | tracker update | line counting | drawing ids, trails, line | "
          "total | share of a plain pipeline frame |")
    print("|---|---|---|---|---|---|")
    for label, (tr, line, draw) in parts.items():
        total = tr + line + draw
        print(f"| {label} | {tr:.3f} | {line:.3f} | {draw:.3f} | {total:.3f} | {100 * total / frame_ms:.1f} % |")
    result = {"rows": rows, "tracked_over_plain_fps": round(ratio, 3), "track_cost_pct": round(100 * (1 - ratio), 1),
              "tracked_over_plain_cpu": round(cpu_ratio, 3),
              "replay_ms": {k: [round(v, 4) for v in vs] for k, vs in parts.items()},
              "plain_frame_ms": round(frame_ms, 2), "rounds": args.rounds, "frames": args.frames,
              "machine": describe_machine(), "load_avg": list(os.getloadavg())}
    print(f"machine: {result['machine']}; load average {' / '.join(f'{v:.1f}' for v in result['load_avg'])}")
    print(json.dumps(result))
    return 0


def open_fps(video):
    import cv2

    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    return fps


if __name__ == "__main__":
    sys.exit(main())

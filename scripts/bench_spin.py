"""What onnxruntime's spinning costs the camera pipeline: spinning on (its default), off, and in runs only.

The same pipeline with intra-op spinning on, off, and in runs only (stopped the moment a run returns), rounds
rotating in ONE run.

    python -m scripts.bench_spin [--model m.onnx] [--frames 40] [--rounds 6] [--threads 0]

The pipeline (sdk.video.pipeline) runs capture, prepare and render threads beside the inference call; on a
2-core machine onnxruntime's intra-op threads, which spin after each run by default, compete with them. Each
round runs the full pipeline (decode, letterbox, inference, NMS, drawing, JSON-lines sink) on the shared person
video, once per setting, the order rotating; reported: end-to-end FPS, p50 latency and the model's own FPS
inside the pipeline, medians over rounds, and the median of the paired per-round FPS ratios to spinning on.
--threads 0 keeps onnxruntime's default thread count (what the pipeline uses). Without --model it exports the
shared checkpoint at 416. The sessions run as opened here (Pipeline(spin=None)); the pipeline's own default
(sdk.video.pipeline.PIPELINE_SPIN) was chosen from this measurement. The last line is JSON.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time



SETTINGS = {"spinning on (default)": None, "spinning off": False, "spinning in runs only": "run"}  # label: spin


def runner(path, threads, spin):
    """The SDK's onnxruntime runner with a `spin` setting (sdk.runners.onnxruntime.session_options)."""
    from sdk.runners.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner(path, threads=threads or None, spin=spin).load()


def main(argv=None):
    from scripts.bench_pipeline import video_arguments

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    video_arguments(p, frames=40, rounds=6, model_required=False)
    args = p.parse_args(argv)

    from scripts.bench_pipeline import model_or_export, pipeline_round
    from sdk.detector import Detector
    from sdk.report import describe_machine

    tmp = tempfile.TemporaryDirectory(prefix="bench-spin-")
    model = model_or_export(args.model, args.weights, tmp.name)
    dets = {label: Detector(None, runner=runner(model, args.threads, spin)) for label, spin in SETTINGS.items()}
    stats = {k: [] for k in dets}
    labels = list(dets)
    for r in range(args.rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            time.sleep(0.5)  # the other session's pool has stopped spinning before this round starts
            s = pipeline_round(dets[label], args.video, args.start + r * args.frames, args.frames, tmp.name,
                               spin=None)
            stats[label].append(s)
            print(f"round {r + 1} {label}: {s['e2e_fps']:.2f} FPS end-to-end, p50 latency {s['p50_ms']:.0f} ms, "
                  f"model {s['model_fps']:.2f} FPS inside", file=sys.stderr, flush=True)
    rows = {}
    for label, ss in stats.items():
        rows[label] = {"e2e_fps": round(statistics.median(s["e2e_fps"] for s in ss), 2),
                       "p50_latency_ms": round(statistics.median(s["p50_ms"] for s in ss), 1),
                       "model_fps_inside": round(statistics.median(s["model_fps"] for s in ss), 2)}
    on = stats[labels[0]]
    ratios = {label: round(statistics.median(b["e2e_fps"] / a["e2e_fps"] for a, b in zip(on, stats[label])), 3)
              for label in labels[1:]}
    for d in dets.values():
        d.close()
    tmp.cleanup()
    print("| setting | end-to-end FPS | p50 latency ms | model FPS inside the pipeline |")
    print("|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['e2e_fps']:.2f} | {r['p50_latency_ms']:.0f} | {r['model_fps_inside']:.2f} |")
    for label, ratio in ratios.items():
        print(f"{label} / spinning on, end-to-end FPS (median of paired rounds): {ratio:.3f}")
    result = {"rows": rows, "fps_over_spinning_on": ratios, "rounds": args.rounds, "frames": args.frames,
              "threads": args.threads or "onnxruntime default", "machine": describe_machine(),
              "load_avg": list(os.getloadavg())}
    print(f"machine: {result['machine']}; load average {' / '.join(f'{v:.1f}' for v in result['load_avg'])}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

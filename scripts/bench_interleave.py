"""Does timing a model interleaved with another session change its time? Per onnxruntime spinning setting.

    python -m scripts.bench_interleave [--model m.onnx] [--other small.onnx] [--rounds 10] [--calls 12]

For each setting (spinning on = onnxruntime's default, off, in runs only = sdk.bench.BENCH_SPIN) two sessions are
opened, the model and `--other` (default: a second session of the same model); each round times `--calls` calls
of the model alone, then `--calls` calls of it with one call of the other session after each (the interleaved
timing sdk.bench.interleaved_model_bench does). A ratio interleaved / alone near 1 means an idle session does not
take the cores of the one being timed; the settings' "alone" columns compare their own speed. Without --model the
shared checkpoint is exported at 416. 2 intra-op threads (--threads). The last line is JSON.
"""
import argparse
import json
import os
import sys
import tempfile
import time

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--other", default=None, help="the session interleaved with --model (default: --model again)")
    p.add_argument("--weights", default=None, help="exported at 416 when --model is not given (default: shared)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--calls", type=int, default=12, help="timed calls of --model per round and way")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import numpy as np

    from scripts.bench_pipeline import SHARED, model_or_export
    from scripts.bench_spin import SETTINGS
    from sdk.bench import random_input, time_model
    from sdk.report import describe_machine
    from sdk.runners.onnxruntime import OnnxRuntimeRunner

    tmp = tempfile.TemporaryDirectory(prefix="bench-interleave-")
    weights = args.weights or str(SHARED / "models" / "yolov7-tiny-pennfudan.pt")
    model = model_or_export(args.model, weights, tmp.name)
    other = args.other or model
    rows = {}
    for label, spin in SETTINGS.items():
        a, b = (OnnxRuntimeRunner(path, threads=args.threads, spin=spin).load() for path in (model, other))
        xa, xb = random_input(a.input), random_input(b.input)
        time_model(a, xa, runs=5, warmup=0)
        time_model(b, xb, runs=5, warmup=0)
        alone, mixed = [], []
        for _ in range(args.rounds):
            time.sleep(0.3)  # a pool that spins after its run (the default) has stopped before the round starts
            alone += time_model(a, xa, runs=args.calls, warmup=0)
            for _ in range(args.calls):
                mixed += time_model(a, xa, runs=1, warmup=0)
                time_model(b, xb, runs=1, warmup=0)
        a.close()
        b.close()
        rows[label] = {"alone_p50_ms": round(float(np.median(alone)), 2),
                       "interleaved_p50_ms": round(float(np.median(mixed)), 2),
                       "interleaved_over_alone": round(float(np.median(mixed) / np.median(alone)), 3)}
        print(f"{label}: {rows[label]}", file=sys.stderr, flush=True)
    tmp.cleanup()
    print("| setting | alone p50 ms | interleaved p50 ms | interleaved / alone |")
    print("|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['alone_p50_ms']:.2f} | {r['interleaved_p50_ms']:.2f} | "
              f"{r['interleaved_over_alone']:.3f} |")
    result = {"rows": rows, "model": os.path.basename(model), "other": os.path.basename(other),
              "rounds": args.rounds, "calls": args.calls, "threads": args.threads, "machine": describe_machine(),
              "load_avg": [round(v, 2) for v in os.getloadavg()]}
    print(f"machine: {result['machine']}; load average {' / '.join(f'{v:.1f}' for v in result['load_avg'])}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

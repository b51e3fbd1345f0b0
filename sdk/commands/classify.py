"""`python -m sdk classify`: run, evaluate, quantize and benchmark an image classifier (ONNX in, top-k out).

    python -m sdk classify --model m.onnx --source images/ [--topk 5]          top-k per image
    python -m sdk classify --model m.onnx --source root/ --eval                 top-1/top-5 on root/<class>/*.jpg
    python -m sdk classify --model m.onnx --source root/ --eval --int8 q.onnx   INT8 (QDQ) and both compared
    ... --bench                                                                 model-only and end-to-end latency
"""
import sys

from ..bench import BENCH_SPIN
from ..errors import SDKError
from . import args as groups
from .common import print_json_last, print_table


def add_arguments(p):
    groups.add_model(p, help="classifier ONNX (or TensorRT engine) with SDK metadata")
    p.add_argument("--source", required=True, help="an image, a folder or glob of images; with --eval a folder "
                                                   "with one sub-folder of images per class")
    groups.add_backend(p)
    p.add_argument("--topk", type=groups.integer(1, 100000), default=5, help="classes shown per image (default 5)")
    p.add_argument("--eval", action="store_true", help="score top-1/top-5 on folder-per-class --source")
    p.add_argument("--bench", action="store_true", help="time the model alone and pre+infer+post")
    groups.add_runs(p, runs=50, help="timed runs for --bench")
    g = p.add_argument_group("INT8 (--int8)")
    g.add_argument("--int8", default=None, metavar="OUT.onnx",
                   help="quantize the model to INT8 QDQ here first (onnxruntime quantize_static), then run both")
    groups.add_calibration(g, required=False, count=64, method="minmax", aliases=("--calib-images",), seed=False)
    # minmax by default here: a classifier's calibration takes seconds with it; entropy is offered


def run(args):
    from pathlib import Path

    from ..classify import Classifier

    if args.int8 and Path(args.int8).suffix.lower() != ".onnx":
        raise SDKError(f"--int8: got '{args.int8}', expected a path ending in .onnx")
    models = {"fp32": args.model}
    summary = {}
    if args.int8:
        summary["quantize"] = _quantize(args)
        models["int8"] = args.int8
    from ..runners import choose_backend

    def runner_kw(model, backend):
        kw = {"threads": args.threads} if args.threads else {}
        if args.bench and choose_backend(model, backend)[0] == "ort":
            kw["spin"] = BENCH_SPIN  # timed side by side: idle sessions must not spin (sdk.bench.benchmark_runner)
        return kw

    backends = {k: args.backend if k == "fp32" else "ort" for k in models}
    classifiers = {k: Classifier(m, backend=backends[k], topk=args.topk, **runner_kw(m, backends[k]))
                   for k, m in models.items()}
    for c in classifiers.values():
        print(f"backend: {c.runner.describe()} ({c.backend_reason})", file=sys.stderr)
    try:
        if args.eval:
            summary["eval"] = _evaluate(classifiers, args.source)
        else:
            summary["predictions"] = _predict(classifiers, args.source)
        if args.bench:
            summary["bench"] = _bench(classifiers, args.source, args.runs, args.eval)
    finally:
        for c in classifiers.values():
            c.close()
    print_json_last(summary)
    return 0


def _quantize(args):
    import random

    from ..classify import folder_dataset
    from ..classify.quantize import quantize_classifier
    from calibrators.data_reader import calibration_images

    source = args.calib or args.source
    # a folder-per-class root (the --eval layout) or any image source calibration_images reads
    paths = [p for p, _ in folder_dataset(source)] if args.eval and not args.calib \
        else calibration_images(source, what="--calib")
    paths = sorted(random.Random(0).sample(paths, min(args.calib_count, len(paths))))
    report = quantize_classifier(args.model, args.int8, paths, method=args.calib_method)
    print_table([[k, v] for k, v in report.items()], ["quantize", "value"])
    return report


def _predict(classifiers, source):
    from ..data.images import list_images, read_image

    out = {}
    rows = []
    for path in list_images(source, "--source"):
        img = read_image(path)
        for label, c in classifiers.items():
            res = c(img)
            out.setdefault(label, []).append({"image": str(path), "topk": res.to_json()})
            rows.append([path, label, ", ".join(f"{r['class']} {r['score']:.3f}" for r in res.to_json())])
    print_table(rows, ["image", "model", "top-k"])
    return out


def _evaluate(classifiers, root):
    from ..classify import evaluate_folder

    results = {label: evaluate_folder(c, root) for label, c in classifiers.items()}
    keys = [k for k in next(iter(results.values())) if k.startswith("top")]
    print_table([[label, r["images"], *(f"{r[k]:.4f}" for k in keys)] for label, r in results.items()],
                ["model", "images", *keys])
    return results


def _bench(classifiers, source, runs, folders):
    from ..bench import interleaved_model_bench, percentiles
    from ..classify import folder_dataset
    from ..data.images import list_images, read_image

    paths = [p for p, _ in folder_dataset(source)] if folders else list_images(source, "--source")
    frames = [read_image(p) for p in paths[:8]]
    if not frames:
        raise SDKError(f"--source {source}: no images to benchmark, expected at least one")
    model = interleaved_model_bench({k: (c.runner, c.pre(frames[0])[0]) for k, c in classifiers.items()}, runs=runs)
    rows, result = [], {}
    for label, c in classifiers.items():
        e2e = []
        for i in range(runs):
            c(frames[i % len(frames)])
            e2e.append(sum(c.last_timing.values()))
        result[label] = {"model": model[label], "end_to_end": percentiles(e2e)}
        rows.append([label, f"{model[label]['p50_ms']:.3f}", f"{model[label]['p95_ms']:.3f}",
                     f"{result[label]['end_to_end']['p50_ms']:.3f}"])
    print_table(rows, ["model", "model p50 ms", "model p95 ms", "end-to-end p50 ms"])
    if "int8" in result:
        result["int8_speedup_p50"] = model["fp32"]["p50_ms"] / model["int8"]["p50_ms"]
    return result

"""TensorRT self-test on real hardware: one check per TensorRT defect of issue 16, one table, one JSON line.

    deploy/jetson/selftest --onnx yolov7-tiny.onnx --calib-images pennfudan/images/train \\
        [--dynamic-onnx yolov7-tiny-dynamic.onnx] [--data pennfudan]

Runs on a Jetson (JetPack 5.1 / 6.x) and on any x86 (or SBSA) machine with an NVIDIA GPU, the TensorRT wheels and
cuda-python or pycuda. Each check builds what it needs through the SDK's own library (sdk.tensorrt, sdk.quant,
sdk.efficient_nms), measures, and says pass / fail / skip with the reason:

    gpu                TensorRT and the GPU answer; name, compute capability, DLA cores
    fp32-no-tf32       an fp32 engine is built with TF32 cleared and matches onnxruntime (defect 6)
    timing-cache       the timing cache is written, accepted on the next build, a refusal reported (defect 6)
    layer-precisions   per-layer overrides read back from the engine inspector, Myelin regions resolved (defect 4)
    int8-calibration   the calibrator served every requested image, one input volume per batch (defect 1)
    qdq-trt-target     `sdk quantize --target trt` output passes the Q/DQ rules and builds explicit INT8 (defect 2)
    dynamic-batch      a dynamic-batch engine: profile min/opt/max, two batch sizes equal per image to batch 1 (5)
    exit-pycuda        a child process builds/runs with pycuda and exits 0 without a context-stack abort (3)
    exit-cuda-python   the same with cuda-python (3)
    plugins            an EfficientNMS_TRT engine (`export --trt-nms`) builds and deserializes (defect 6)
    dla                an engine on DLA core 0 runs, the runtime's DLA core set from the sidecar (defect 6)
    map-fp32/-fp16/-int8  mAP and FPS of each engine next to onnxruntime (with --data)

Exit status 0 when every check passed or was skipped, 1 when one failed; bad input is a one-line error. Only the
clean-exit checks start child processes (deploy/jetson/exit_check.py). Tests drive `SelfTest` with the fake
TensorRT (tests/test_jetson_selftest.py): a fake proves calls, never a result.
"""
import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sdk.errors import SDKError
from sdk.report import print_json_last, print_table

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_OVERRIDES = ("block:head:fp32",)  # the decode layers TensorRT fuses into a Myelin region
STATUSES = ("pass", "fail", "skip")
# check id -> the issue-16 defect it proves on hardware
CHECKS = {
    "gpu": "TensorRT + GPU",
    "fp32-no-tf32": "6: fp32 ran as TF32",
    "timing-cache": "6: foreign timing cache",
    "layer-precisions": "4: fused regions misread",
    "int8-calibration": "1: 1 image in 8 calibrated",
    "qdq-trt-target": "2: Q/DQ not parseable",
    "dynamic-batch": "5: dynamic batch did not build",
    "exit-pycuda": "3: pycuda abort at exit",
    "exit-cuda-python": "3: clean exit (cuda-python)",
    "plugins": "6: plugins not registered",
    "dla": "6: DLA core at run time",
    "map-fp32": "accuracy + speed",
    "map-fp16": "accuracy + speed",
    "map-int8": "accuracy + speed",
}
MAP_TOLERANCE = {"fp32": 0.005, "fp16": 0.01, "int8": 0.03}  # mAP@.5 an engine may lose against onnxruntime
SCORE_TOLERANCE = {"fp32": 0.01, "fp16": 0.05}  # largest score difference against the reference output
ABORT_TEXT = ("context stack", "PyCUDA ERROR", "Aborted", "core dumped")
EXIT_SKIP = 3  # deploy/jetson/exit_check.py: the backend is not installed


class Skip(Exception):
    """A check that cannot run here (the reason is its message)."""


def on_jetson(root="/"):
    return platform.machine() == "aarch64" and (Path(root) / "etc/nv_tegra_release").is_file()


def _read(root, path):
    try:
        return (Path(root) / path.lstrip("/")).read_text(errors="replace")
    except OSError:
        return None


def detect_platform(root="/"):
    """{"platform": "Jetson" | "x86 GPU" | "<machine> GPU", "machine", and on a Jetson "l4t", "jetpack",
    "model"}: a Jetson has /etc/nv_tegra_release or a device tree naming a Jetson / Tegra."""
    from .doctor import l4t_release

    machine = platform.machine()
    release = _read(root, "/etc/nv_tegra_release")
    model = (_read(root, "/proc/device-tree/model") or "").strip("\x00\n ")
    compatible = _read(root, "/proc/device-tree/compatible") or ""
    if release is None and "jetson" not in model.lower() and "nvidia,tegra" not in compatible:
        return {"platform": "x86 GPU" if machine in ("x86_64", "AMD64") else f"{machine} GPU", "machine": machine}
    l4t, jp = l4t_release(release)
    out = {"platform": "Jetson", "machine": machine, "model": model or "unknown", "l4t": l4t or "unknown"}
    if jp:
        out["jetpack"], out["jetpack_tensorrt"] = jp
    return out


def _cuda_version(n):
    n = int(n)
    return f"{n // 1000}.{n % 1000 // 10}"


def cuda_versions():
    """{"cuda_runtime", "cuda_driver"} from cuda-python (cudaRuntimeGetVersion / cudaDriverGetVersion) or pycuda
    (get_version / get_driver_version); 'unknown' where neither answers."""
    out = {"cuda_runtime": "unknown", "cuda_driver": "unknown"}
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            rt = importlib.import_module(name)
        except ImportError:
            continue
        for key, fn in (("cuda_runtime", "cudaRuntimeGetVersion"), ("cuda_driver", "cudaDriverGetVersion")):
            try:
                err, value = getattr(rt, fn)()
                if int(err) == 0:
                    out[key] = _cuda_version(value)
            except (AttributeError, TypeError, ValueError):
                pass
        return out
    try:
        drv = importlib.import_module("pycuda.driver")
        out["cuda_runtime"] = ".".join(str(v) for v in drv.get_version()[:2])
        out["cuda_driver"] = _cuda_version(drv.get_driver_version())
    except (ImportError, AttributeError, TypeError, ValueError):
        pass
    return out


def driver_version(root="/", plat=None):
    """The NVIDIA kernel driver: /proc/driver/nvidia/version (x86), nvidia-smi, or the L4T release (Jetson)."""
    text = _read(root, "/proc/driver/nvidia/version") or ""
    for word in text.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    if shutil.which("nvidia-smi"):
        try:
            p = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=10)
            if p.returncode == 0 and p.stdout.strip():
                return p.stdout.strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if plat and plat.get("platform") == "Jetson":
        return f"L4T {plat.get('l4t')}"
    return "unknown"


def sdk_revision():
    """The SDK's git revision (+ '-dirty'), or its version when it is not a git checkout."""
    import sdk

    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        if rev.returncode == 0 and rev.stdout.strip():
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"{sdk.__version__} (not a git checkout)"


def _volume(shape):
    return int(np.prod([int(d) for d in shape]))


def _onnx_input(path):
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    inp = next(i for i in m.graph.input if i.name not in inits)
    return inp.name, [d.dim_value if d.dim_value else -1 for d in inp.type.tensor_type.shape.dim]


def _metadata(path):
    """The model's metadata, from the graph itself for an ONNX from another exporter (as every command reads it)."""
    from sdk.quant.layers import load_model, metadata_of

    return metadata_of(load_model(path, what="--onnx"))


def _max_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max()) if a.size else 0.0


def _compare(out, ref, meta):
    """{"boxes_px", "scores"} largest differences of YOLO rows (batch, boxes, 4 + 1 + classes); "max" else."""
    name = meta.output_name if meta.output_name in out else sorted(out)[0]
    a, b = out[name], ref[name]
    if a.shape != b.shape:
        raise SDKError(f"output '{name}': got shape {a.shape}, expected {b.shape} (the reference's)")
    if a.ndim == 3 and a.shape[-1] >= 6:
        return {"boxes_px": round(_max_diff(a[..., :4], b[..., :4]), 4),
                "scores": round(_max_diff(a[..., 4:], b[..., 4:]), 5)}
    return {"max": round(_max_diff(a, b), 5)}


# ---- the mAP / FPS rows (also `run_selftest`, the API the jetson-marked tests use) --------------------------
def _subset(dataset, count):
    if count and count < len(dataset.samples):
        dataset.samples = dataset.samples[:count]
    return dataset


def _measure(detector, dataset, frames, runs):
    from sdk.bench import bench_detector
    from sdk.evaluation.evaluate import evaluate

    metrics = evaluate(detector, dataset, progress=False)
    timing = bench_detector(detector, frames, runs=runs, warmup=max(2, runs // 10))
    return {"map50": round(metrics["map50"], 4), "map50_95": round(metrics["map50_95"], 4),
            "model_ms": round(timing["model"]["mean_ms"], 2), "fps": round(timing["end_to_end"]["fps"], 1)}


def _eval_set(data, split, images):
    from sdk.data.datasets import load_dataset
    from sdk.data.images import read_image

    dataset = _subset(load_dataset(data, split=split), images)
    return dataset, [read_image(s.path) for s in dataset.samples[:8]]


def reference_row(onnx, dataset, frames, runs):
    from sdk.detector import Detector
    from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU

    with Detector(str(onnx), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU) as det:
        return {"model": "onnxruntime (reference)", "precision": "fp32", **_measure(det, dataset, frames, runs),
                "layers": "-", "overrides": "-", "build_s": "-"}


def engine_row(engine, report, precision, dataset, frames, runs, build_s):
    from sdk.detector import Detector
    from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU

    with Detector(str(engine), backend="trt", conf=EVAL_CONF, iou=EVAL_IOU) as det:
        row = {"model": f"TensorRT {report['tensorrt']} on {(report['device'] or {}).get('name', '?')}",
               "precision": precision, **_measure(det, dataset, frames, runs)}
    row.update(layers=" ".join(f"{k}:{v}" for k, v in sorted(report["layer_precisions"].items())),
               overrides=report["overrides_applied"], build_s=build_s)
    return row


def run_selftest(onnx, data, workdir, calib_images=None, precisions=DEFAULT_PRECISIONS, images=None, runs=50,
                 calib_batches=16, calib_batch_size=None, layer_precision=(), split="val", progress=True):
    """Build each engine, evaluate and time it next to onnxruntime; returns the mAP/FPS rows (dicts)."""
    from sdk.tensorrt import build_engine

    dataset, frames = _eval_set(data, split, images)
    workdir = Path(workdir)
    rows = [reference_row(onnx, dataset, frames, runs)]
    for precision in precisions:
        engine = workdir / f"{Path(onnx).stem}-{precision}.engine"
        int8 = precision in ("int8", "best")
        t0 = time.perf_counter()
        report = build_engine(onnx, engine, precision=precision, calib_images=calib_images if int8 else None,
                              calib_cache=str(engine.with_suffix(".calib")) if int8 else None,
                              calib_batches=calib_batches, calib_batch_size=calib_batch_size,
                              layer_precision=list(layer_precision) if int8 else [],
                              timing_cache=str(workdir / "selftest.timing"), progress=progress)
        rows.append(engine_row(engine, report, precision, dataset, frames, runs, round(time.perf_counter() - t0, 1)))
    return rows


# ---- the checks ------------------------------------------------------------------------------------------------
def default_launcher(cuda):
    """argv prefix of the clean-exit child for one CUDA backend (this interpreter, this SDK tree)."""
    return [sys.executable, "-m", "deploy.jetson.exit_check"]


class SelfTest:
    """The checks, in order; engines are built once (on first use) and shared between checks.

    `launcher(cuda)` gives the child process's argv prefix for the clean-exit checks (tests start the child with
    the fake TensorRT installed); `root` is where /etc and /proc are read (tests give a fake device tree)."""

    def __init__(self, onnx, calib_images, workdir, dynamic_onnx=None, data=None, split="val", images=None,
                 runs=50, calib_count=64, layer_precision=DEFAULT_OVERRIDES, max_batch=4, progress=False,
                 launcher=default_launcher, root="/", child_timeout=900):
        self.onnx, self.calib_images, self.workdir = Path(onnx), str(calib_images), Path(workdir)
        self.dynamic_onnx, self.data, self.split, self.images, self.runs = dynamic_onnx, data, split, images, runs
        self.calib_count, self.layer_precision, self.max_batch = int(calib_count), list(layer_precision), max_batch
        self.progress, self.launcher, self.root, self.child_timeout = progress, launcher, root, child_timeout
        self.meta = _metadata(self.onnx)
        self.engines = {}  # name -> (path, build report)
        self.results = []
        self._reference = None
        self._probe = None
        self.qdq_report = None
        self._map_set = None  # (dataset, frames, the onnxruntime row) of the mAP checks
        self.trt = None
        self.dla_cores = 0

    # helpers
    def _calib_batches(self, batch):
        """Calibration batches of the network's batch size: --calib-count images (at least one batch), no more than
        the folder holds. The int8 build asks for this many and the int8-calibration check expects them all."""
        available = len(self._calib_paths())
        return max(1, min(self.calib_count, available) // max(batch, 1))

    def _calib_paths(self, count=None):
        from calibrators.data_reader import calibration_images

        paths = calibration_images(self.calib_images)
        return paths[:count] if count else paths

    def probe(self):
        """One calibration image, pre-processed for the model: the input every engine is compared on."""
        if self._probe is None:
            from sdk.data.images import read_image
            from sdk.preprocess import Preprocessor

            self._probe = Preprocessor(self.meta)(read_image(self._calib_paths(1)[0]))[0]
        return self._probe

    def reference(self):
        if self._reference is None:
            from sdk.runners.onnxruntime import OnnxRuntimeRunner

            with OnnxRuntimeRunner(self.onnx) as r:
                self._reference = r.infer(self.probe())
        return self._reference

    def run_engine(self, path, x):
        from sdk.runners.tensorrt import TensorRTRunner

        with TensorRTRunner(path) as r:
            return r.infer(x)

    def engine(self, name):
        """Build (once) and return (path, report) of one of the engines the checks share."""
        if name in self.engines:
            return self.engines[name]
        from sdk.tensorrt import build_engine

        onnx, kw = self.onnx, {}
        timing = str(self.workdir / "selftest.timing")
        if name == "fp32":
            kw = {"precision": "fp32", "timing_cache": timing}
        elif name == "fp16":  # with the per-layer overrides (the decode in fp32: a Myelin region)
            kw = {"precision": "fp16", "layer_precision": self.layer_precision, "timing_cache": timing}
        elif name == "int8":  # a fresh calibration (no cache), so TensorRT has to read every batch
            batch = _onnx_input(self.onnx)[1][0]
            kw = {"precision": "int8", "calib_images": self.calib_images,
                  "calib_batches": self._calib_batches(batch), "timing_cache": timing}
        elif name == "qdq":
            onnx, kw = self.quantized(), {"precision": "fp16", "timing_cache": timing}
        elif name == "nms":
            from sdk.efficient_nms import add_efficient_nms

            onnx = self.workdir / f"{self.onnx.stem}-nms.onnx"
            add_efficient_nms(self.onnx, onnx)
            kw = {"precision": "fp16", "timing_cache": timing}
        elif name == "dla":
            kw = {"precision": "fp16", "dla_core": 0, "gpu_fallback": True}
        path = self.workdir / f"{self.onnx.stem}-{name}.engine"
        t0 = time.perf_counter()
        report = build_engine(onnx, path, progress=self.progress, **kw)
        report["build_wall_s"] = round(time.perf_counter() - t0, 1)
        self.engines[name] = (path, report)
        return self.engines[name]

    def quantized(self):
        """`python -m sdk quantize --target trt` through the library: onnxruntime calibration ranges, then the
        TensorRT-target Q/DQ ONNX (sdk/quant/trt_target.py)."""
        out = self.workdir / f"{self.onnx.stem}-trt-qdq.onnx"
        if self.qdq_report is None:
            from calibrators.data_reader import ImageCalibrationReader
            from sdk.precision import PrecisionPlan
            from sdk.quant.quantize import calibrate
            from sdk.quant.trt_target import quantize_for_tensorrt

            reader = ImageCalibrationReader(self._calib_paths(self.calib_count), self.meta, progress=self.progress)
            ranges = calibrate(str(self.onnx), reader, "minmax")
            self.qdq_report = quantize_for_tensorrt(str(self.onnx), str(out), ranges, PrecisionPlan(default="int8"))
        return out

    # checks: each returns (status, measured dict, detail) or raises Skip / SDKError
    def check_gpu(self):
        from sdk.tensorrt.api import import_tensorrt, make_logger
        from sdk.tensorrt.memory import cuda_memory

        trt = self.trt = import_tensorrt()
        with cuda_memory() as memory:
            dev = memory.device_info()
            backend = memory.name
        self.dla_cores = int(getattr(trt.Builder(make_logger(trt)), "num_DLA_cores", 0))
        return "pass", {"gpu": dev["name"], "compute": dev["compute_capability"], "sms": dev["multiprocessors"],
                        "memory_gb": dev["memory_gb"], "dla_cores": self.dla_cores, "cuda_memory": backend}, ""

    def check_fp32_no_tf32(self):
        path, report = self.engine("fp32")
        diff = _compare(self.run_engine(path, self.probe()), self.reference(), self.meta)
        layers = report["layer_precisions"]
        half = {k: v for k, v in layers.items() if k in ("fp16", "int8")}
        measured = {"tf32_flag": "set" if "TF32" in report["flags"] else "cleared", **{f"diff_{k}": v for k, v in
                    diff.items()}, "layers": layers}
        if "TF32" in report["flags"]:
            return "fail", measured, "TF32 was left on for an fp32 build"
        if half:
            return "fail", measured, f"an fp32 engine has {half} layers"
        if diff.get("scores", diff.get("max", 0)) > SCORE_TOLERANCE["fp32"]:
            return "fail", measured, f"fp32 engine differs from onnxruntime by {diff} (TF32 or a wrong kernel?)"
        return "pass", measured, "fp32 engine vs onnxruntime on one image"

    def check_timing_cache(self):
        first = self.engine("fp32")[1]["timing_cache"]
        second = self.engine("fp16")[1]["timing_cache"]
        measured = {"first_build": "refused" if first["refused"] else f"loaded {first['loaded_bytes']} B",
                    "second_build": "refused" if second["refused"] else f"loaded {second['loaded_bytes']} B",
                    "cache_bytes": Path(first["path"]).stat().st_size if Path(first["path"]).is_file() else 0}
        if second["refused"] or second["loaded_bytes"] == 0:
            return "fail", measured, "the cache the first build wrote was not accepted by the second build"
        detail = "written, then accepted"
        if first["refused"]:
            detail += "; an old cache in the workdir was refused, reported and replaced (the build continued)"
        return "pass", measured, detail

    def check_layer_precisions(self):
        _, report = self.engine("fp16")
        rows = report["overrides"]
        missed = [r for r in rows if not r["applied"]]
        regions = report["regions"]
        measured = {"overrides_applied": report["overrides_applied"], "regions": len(regions),
                    "in_regions": sum(1 for r in rows if r.get("region")), "layers": report["layer_precisions"]}
        if not rows:
            raise Skip(f"the overrides {self.layer_precision} matched no layer")
        if missed:
            r = missed[0]
            return "fail", measured, (f"{len(missed)}/{len(rows)} overrides not read back, e.g. {r['layer']}: "
                                      f"requested {r['requested']}, engine {r['engine']}")
        return "pass", measured, f"{', '.join(self.layer_precision)}" + (f"; e.g. {regions[0][:60]}" if regions else "")

    def check_int8_calibration(self):
        name, shape = _onnx_input(self.onnx)
        if shape[0] < 0:
            raise Skip("--onnx has a dynamic batch: give the static export (dynamic batches are checked by "
                       "dynamic-batch)")
        batch = shape[0]
        requested = self._calib_batches(batch) * batch  # what the build was asked to calibrate on
        _, report = self.engine("int8")
        info = report["calibration"]
        consumed = info.get("batches_served", 0) * info.get("batch_size", 0)
        measured = {"requested_images": requested, "consumed_images": consumed,
                    "batches": f"{info.get('batches_served')}/{info.get('batches')}",
                    "batch_shape": info.get("input_shape"), "batch_volume": _volume(info.get("input_shape") or [0]),
                    "input_volume": _volume(shape), "int8_layers": report["layer_precisions"].get("int8", 0)}
        if measured["batch_volume"] != measured["input_volume"]:  # TensorRT reads one input volume per batch
            return "fail", measured, (f"calibration batches hold {measured['batch_volume']} values, the input "
                                      f"'{name}' {tuple(shape)} {measured['input_volume']}: TensorRT reads only "
                                      f"the first image of each")
        if consumed != requested:
            return "fail", measured, f"TensorRT took {consumed} of the {requested} calibration images requested"
        if not measured["int8_layers"]:
            return "fail", measured, "no layer runs in INT8 after calibration"
        return "pass", measured, "; ".join(report["warnings"])[:120]

    def check_qdq_trt_target(self):
        import onnx

        from sdk.tensorrt.qdq_rules import check_qdq

        path = self.quantized()
        broken = check_qdq(onnx.load(str(path), load_external_data=False))
        measured = {"qdq_nodes": self.qdq_report["qdq_nodes"], "int8_convs": self.qdq_report["int8_convs"],
                    "rules_broken": len(broken)}
        if broken:
            v = broken[0]
            return "fail", measured, f"node {v.node} breaks rule '{v.rule}': {v.detail}"
        engine, report = self.engine("qdq")
        measured.update(explicit=report["explicit_quantization"], int8_layers=report["layer_precisions"].get("int8", 0))
        from sdk.runners.onnxruntime import OnnxRuntimeRunner

        with OnnxRuntimeRunner(path) as r:
            measured.update({f"diff_{k}_vs_ort_qdq": v for k, v in
                             _compare(self.run_engine(engine, self.probe()), r.infer(self.probe()), self.meta).items()})
        if not report["explicit_quantization"] or not measured["int8_layers"]:
            return "fail", measured, "the Q/DQ engine has no INT8 layer"
        return "pass", measured, "symmetric int8, zero point 0, per-channel weights; built without a calibrator"

    def check_dynamic_batch(self):
        from sdk.data.images import read_image
        from sdk.preprocess import Preprocessor
        from sdk.runners.tensorrt import TensorRTRunner
        from sdk.tensorrt import build_engine

        onnx = self.dynamic_onnx or (self.onnx if _onnx_input(self.onnx)[1][0] < 0 else None)
        if onnx is None:
            raise Skip("no dynamic-batch ONNX: pass --dynamic-onnx (python -m sdk export --dynamic-batch ...)")
        name, shape = _onnx_input(onnx)
        if shape[0] >= 0:
            raise SDKError(f"--dynamic-onnx {onnx}: input '{name}' is {tuple(shape)}, expected a dynamic batch "
                           f"(python -m sdk export --dynamic-batch)")
        top = int(self.max_batch)
        path = self.workdir / f"{Path(onnx).stem}-dynamic.engine"
        report = build_engine(onnx, path, precision="fp32", min_batch=1, opt_batch=top, max_batch=top,
                              timing_cache=str(self.workdir / "selftest.timing"), progress=self.progress)
        want = {"min": [1] + shape[1:], "opt": [top] + shape[1:], "max": [top] + shape[1:]}
        pre = Preprocessor(_metadata(onnx))
        frames = np.concatenate([pre(read_image(p))[0] for p in (self._calib_paths() * top)[:top]])
        sizes = sorted({max(2, top // 2), top})
        worst, excess = 0.0, 0.0  # largest difference; largest beyond the tolerance 1e-3 + 1e-3 * |batch-1 value|
        with TensorRTRunner(path) as r:
            got = [list(s) for s in r.profiles.get(name, [])]
            single = [r.infer(frames[i:i + 1]) for i in range(top)]
            for size in sizes:
                out = r.infer(frames[:size])
                for k, v in out.items():
                    if v.shape[0] != size:
                        return "fail", {"batch": size, "shape": list(v.shape)}, f"output {k} lost the batch"
                    for i in range(size):
                        ref = np.asarray(single[i][k][0], np.float64)
                        diff = np.abs(np.asarray(v[i], np.float64) - ref)
                        worst = max(worst, float(diff.max()) if diff.size else 0.0)
                        excess = max(excess, float((diff - 1e-3 * np.abs(ref)).max()) if diff.size else 0.0)
        measured = {"profile": "/".join(str(want[k][0]) for k in ("min", "opt", "max")),
                    "engine_profile": "/".join(str(s[0]) for s in got) if got else "none",
                    "batch_sizes": ",".join(map(str, [1] + sizes)), "max_diff_vs_batch1": round(worst, 6)}
        if report["profiles"] != [{name: want}] or got != [want["min"], want["opt"], want["max"]]:
            return "fail", measured, f"profile {got} read back from the engine, expected {want}"
        if excess > 1e-3:
            return "fail", measured, f"batched outputs differ from batch 1 by {worst:.3g}"
        return "pass", measured, "per image equal to batch 1 (fp32 engine)"

    def _exit(self, cuda):
        engine, _ = self.engine("fp16")
        cmd = [*self.launcher(cuda), "--cuda", cuda, "--engine", str(engine), "--onnx",
               str(self.onnx), "--workdir", str(self.workdir)]
        path = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}  # the child imports this SDK tree
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), env=env,
                               timeout=self.child_timeout)
        except subprocess.TimeoutExpired:
            return "fail", {"rc": "timeout"}, f"the child did not exit within {self.child_timeout} s"
        measured = {"rc": p.returncode, "child_s": round(time.perf_counter() - t0, 1)}
        if p.returncode == EXIT_SKIP:
            raise Skip(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else f"{cuda} is not installed")
        abort = [t for t in ABORT_TEXT if t in p.stderr]
        last = (p.stderr.strip().splitlines() or [""])[-1][:160]
        if p.returncode != 0 or abort:
            reason = "aborted (SIGABRT)" if p.returncode in (-6, 134) else f"exit status {p.returncode}"
            return "fail", {**measured, "abort_text": abort}, f"{reason}: {last}"
        try:
            child = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return "fail", measured, f"the child printed no report: {last}"
        measured.update(cuda=child.get("cuda"), outputs=child.get("outputs"))
        if child.get("cuda") != cuda:
            return "fail", measured, f"the child used {child.get('cuda')}, expected {cuda}"
        return "pass", measured, f"error path: {child.get('error_path', '')[:80]}"

    def check_plugins(self):
        from sdk.efficient_nms import OUTPUTS
        from sdk.runners.tensorrt import TensorRTRunner

        path, report = self.engine("nms")
        with TensorRTRunner(path) as r:  # deserialized by the runner, which registers the plugins first
            outputs = [s.name for s in r.outputs]
        measured = {"outputs": outputs, "size_mb": report["size_mb"]}
        if outputs != list(OUTPUTS):
            return "fail", measured, f"outputs {outputs}, expected {list(OUTPUTS)}"
        return "pass", measured, "EfficientNMS_TRT engine deserialized (not run here: python -m sdk detect runs it)"

    def check_dla(self):
        if not self.dla_cores:
            raise Skip("this device has no DLA (x86 GPUs and Orin Nano have none)")
        from sdk.runners.tensorrt import TensorRTRunner

        path, report = self.engine("dla")
        with TensorRTRunner(path) as r:
            core = r.record.get("dla_core")
            out = r.infer(self.probe())
        diff = _compare(out, self.run_engine(self.engine("fp16")[0], self.probe()), self.meta)
        measured = {"dla_core": core, "regions": len(report["regions"]), **{f"diff_{k}_vs_gpu_fp16": v
                                                                            for k, v in diff.items()}}
        if core != 0:
            return "fail", measured, f"the sidecar says DLA core {core}, expected 0"
        if diff.get("scores", diff.get("max", 0)) > SCORE_TOLERANCE["fp16"]:
            return "fail", measured, f"DLA output differs from the GPU fp16 engine by {diff}"
        return "pass", measured, "fp16 on DLA core 0 with GPU fallback"

    def _map(self, precision):
        if not self.data:
            raise Skip("no --data given (labelled images for mAP)")
        if self._map_set is None:
            dataset, frames = _eval_set(self.data, self.split, self.images)
            self._map_set = (dataset, frames, reference_row(self.onnx, dataset, frames, self.runs))
        dataset, frames, ref = self._map_set
        path, report = self.engine(precision)
        row = engine_row(path, report, precision, dataset, frames, self.runs, report["build_wall_s"])
        measured = {k: row[k] for k in ("map50", "map50_95", "model_ms", "fps")}
        measured.update(ort_map50=ref["map50"], ort_fps=ref["fps"])
        if row["map50"] < ref["map50"] - MAP_TOLERANCE[precision]:
            return "fail", measured, f"mAP@.5 {row['map50']} vs onnxruntime {ref['map50']} (more than " \
                                     f"{MAP_TOLERANCE[precision]} lost)"
        return "pass", measured, f"{len(dataset.samples)} images, within {MAP_TOLERANCE[precision]} of onnxruntime"

    # running
    def check(self, cid):
        """One check: (status, measured, detail); raises Skip or SDKError."""
        kind, _, arg = cid.partition("-")
        if kind == "exit":
            return self._exit(arg)  # exit-pycuda / exit-cuda-python
        if kind == "map":
            return self._map(arg)  # map-fp32 / -fp16 / -int8
        return getattr(self, "check_" + cid.replace("-", "_"))()

    def run(self, only=None, log=sys.stderr):
        """Run the checks (all, or those in `only`); returns the result rows."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for cid in CHECKS:
            if only and cid not in only and cid != "gpu":
                continue
            gpu_failed = any(r["check"] == "gpu" and r["status"] == "fail" for r in self.results)
            print(f"selftest: {cid} ...", file=log, flush=True)
            t0 = time.perf_counter()
            if gpu_failed:
                status, measured, detail = "skip", {}, "the gpu check failed"
            else:
                try:
                    status, measured, detail = self.check(cid)
                except Skip as e:
                    status, measured, detail = "skip", {}, str(e)
                except SDKError as e:
                    status, measured, detail = "fail", {}, str(e)
                except Exception as e:  # noqa: BLE001 - a check that breaks is a failed check, reported, never a traceback
                    status, measured, detail = "fail", {}, f"{type(e).__name__}: {e}"
            self.results.append({"check": cid, "defect": CHECKS[cid], "status": status, "measured": measured,
                                 "detail": " ".join(str(detail).split())[:300],
                                 "seconds": round(time.perf_counter() - t0, 1)})
        return self.results

    def versions(self):
        import sdk

        plat = detect_platform(self.root)
        trt = self.trt
        gpu = next((r["measured"] for r in self.results if r["check"] == "gpu" and r["measured"]), {})
        return {**plat, "tensorrt": str(trt.__version__) if trt is not None else "not installed",
                **cuda_versions(), "driver": driver_version(self.root, plat), "gpu": gpu.get("gpu", "unknown"),
                "compute": gpu.get("compute", "unknown"), "python": platform.python_version(),
                "sdk": sdk.__version__, "sdk_revision": sdk_revision()}


def _fmt(measured):
    def one(v):
        if isinstance(v, dict):
            return ",".join(f"{k}:{x}" for k, x in v.items())
        if isinstance(v, (list, tuple)):
            return "x".join(str(x) for x in v) if all(isinstance(x, int) for x in v) else ",".join(map(str, v))
        return str(v)
    return " ".join(f"{k}={one(v)}" for k, v in measured.items())


def print_report(results, versions):
    """The table, then one JSON line (what a bug report needs)."""
    v = versions
    where = v["platform"] + (f" {v.get('model')}, L4T {v.get('l4t')}" + (f" = JetPack {v['jetpack']}" if v.get(
        "jetpack") else "") if v["platform"] == "Jetson" else "")
    print(f"TensorRT self-test: {where}; TensorRT {v['tensorrt']}, CUDA runtime {v['cuda_runtime']}, driver "
          f"{v['driver']} (CUDA {v['cuda_driver']}), GPU {v['gpu']} ({v['compute']}), SDK {v['sdk_revision']}")
    print_table([[r["check"], r["defect"], r["status"], _fmt(r["measured"]), r["detail"]] for r in results],
                ["check", "defect (issue 16)", "status", "measured", "detail"])
    failed = [r["check"] for r in results if r["status"] == "fail"]
    print_json_last({"selftest": "edge-sdk tensorrt", "ok": not failed, "failed": failed, "versions": versions,
                     "checks": results})
    return 1 if failed else 0


def add_arguments(p):
    p.add_argument("--onnx", required=True, help="the model exported with 'python -m sdk export' (static batch)")
    p.add_argument("--calib-images", required=True,
                   help="INT8 calibration images, not the evaluation images (e.g. pennfudan/images/train)")
    p.add_argument("--dynamic-onnx", default=None,
                   help="the same model exported with --dynamic-batch (the dynamic-batch check skips without it)")
    p.add_argument("--data", default=None, help="labelled data for the mAP checks (YOLO folder, COCO json, VOC)")
    p.add_argument("--split", default="val")
    p.add_argument("--images", type=int, default=None, help="evaluate on the first N images only")
    p.add_argument("--runs", type=int, default=100, help="timed runs per engine (mAP checks)")
    p.add_argument("--calib-count", type=int, default=64, help="calibration images (INT8 and Q/DQ checks)")
    p.add_argument("--layer-precision", action="append", default=None,
                   help=f"per-layer overrides of the fp16 engine (default {DEFAULT_OVERRIDES[0]})")
    p.add_argument("--max-batch", type=int, default=4, help="largest batch of the dynamic-batch engine")
    p.add_argument("--only", default=None, help=f"comma list of checks to run (of {', '.join(CHECKS)})")
    p.add_argument("--workdir", default=None, help="keep engines and caches here (default: a temporary folder, "
                                                   "removed at the end)")


def _validate(args):
    from calibrators.data_reader import calibration_images

    for flag, path in (("--onnx", args.onnx), ("--dynamic-onnx", args.dynamic_onnx)):
        if path is not None and not Path(path).is_file():
            raise SDKError(f"{flag} {path}: file not found, expected an ONNX model from 'python -m sdk export'")
    if args.data is not None and not Path(args.data).exists():
        raise SDKError(f"--data {args.data}: not found, expected labelled data (YOLO folder, COCO json, VOC)")
    calibration_images(args.calib_images)  # one-line error for a missing / empty folder
    for flag, value in (("--calib-count", args.calib_count), ("--max-batch", args.max_batch), ("--runs", args.runs)):
        if value < 1:
            raise SDKError(f"{flag}: got {value}, expected a positive integer")
    if args.max_batch < 2:
        raise SDKError(f"--max-batch: got {args.max_batch}, expected 2 or more (two batch sizes are compared)")
    only = [c.strip() for c in (args.only or "").split(",") if c.strip()]
    unknown = [c for c in only if c not in CHECKS]
    if unknown:
        raise SDKError(f"--only: got '{unknown[0]}', expected checks from {', '.join(CHECKS)}")
    _metadata(args.onnx)  # a corrupt file is one line (load_model) before any check runs
    return only


def run(args, launcher=default_launcher, root="/"):
    only = _validate(args)
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        plat = detect_platform(root)
        raise SDKError(f"selftest: TensorRT is not installed here ({plat['platform']}, {plat['machine']}), expected "
                       f"a Jetson with JetPack or an NVIDIA GPU machine with the TensorRT wheels (pip install "
                       f"tensorrt cuda-python)") from None
    workdir = args.workdir or tempfile.mkdtemp(prefix="sdk-selftest-")
    try:
        test = SelfTest(args.onnx, args.calib_images, workdir, dynamic_onnx=args.dynamic_onnx, data=args.data,
                        split=args.split, images=args.images, runs=args.runs, calib_count=args.calib_count,
                        layer_precision=args.layer_precision or DEFAULT_OVERRIDES, max_batch=args.max_batch,
                        launcher=launcher, root=root)
        results = test.run(only)
        return print_report(results, test.versions())
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None, launcher=default_launcher, root="/"):
    from sdk.cli import guarded

    parser = argparse.ArgumentParser(prog="deploy/jetson/selftest", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return guarded(lambda: run(args, launcher, root))


if __name__ == "__main__":
    sys.exit(main())

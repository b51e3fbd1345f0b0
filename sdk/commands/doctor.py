"""`python -m sdk doctor`: can this machine run the SDK, and on which backend?

Everywhere: the runtime (numpy, OpenCV, onnxruntime and its execution providers) and the optional extras
(torch for export/pruning/training, TensorFlow for Keras export). On a Jetson (or with `--jetson`) also the
device checks of `deploy/jetson/doctor` (JetPack, TensorRT, CUDA memory, cameras, power mode, swap).
Exit 1 only when a check needed on this machine fails.
"""
import argparse
import importlib
import importlib.metadata
import importlib.util
import os

from .common import print_json_last, print_table


def add_arguments(p):
    p.add_argument("--jetson", action="store_true",
                   help="also run the Jetson device checks when this is not a Jetson (they fail on x86)")
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)  # for tests: a fake device tree


HEAVY = {"torch": ("torch",), "tensorflow": ("tensorflow", "tensorflow-cpu")}  # distributions; never imported here


def _version(module):
    if module in HEAVY:  # importing them takes seconds and prints banners: ask the package metadata instead
        if importlib.util.find_spec(module) is None:
            return None
        for dist in HEAVY[module]:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return "installed"
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception:  # a broken install is reported, not raised
        return None


def runtime_rows():
    rows = []
    for module, label, needed, fix in (
            ("numpy", "numpy", True, "pip install -e ."),
            ("cv2", "OpenCV", True, "pip install -e . (or JetPack's python3-opencv on a Jetson)"),
            ("onnx", "onnx", True, "pip install -e ."),
            ("onnxruntime", "onnxruntime", True, "pip install -e ."),
            ("torch", "torch (export, pruning, training)", False, 'pip install torch==2.13.0 && pip install -e ".[torch]"'),
            ("tensorflow", "TensorFlow (Keras export)", False, 'pip install -e ".[tf]"')):
        v = _version(module)
        status = "ok" if v else ("fail" if needed else "warn")
        rows.append({"check": label, "status": status, "found": v or "not installed", "fix": "" if v else fix})
    v = _version("onnxruntime")
    if v:
        import onnxruntime as ort

        rows.append({"check": "onnxruntime providers", "status": "ok",
                     "found": ", ".join(ort.get_available_providers()), "fix": ""})
    return rows


def run(args):
    rows = runtime_rows()
    on_jetson = os.path.exists(os.path.join(args.root, "etc/nv_tegra_release"))
    from deploy.jetson.doctor import Doctor

    doc = Doctor(args.root)
    if on_jetson or args.jetson:
        rows += doc.all()
    else:  # cameras and video I/O matter everywhere; CUDA only counts when a GPU answers
        doc.opencv()
        doc.gstreamer()
        doc.cameras()
        if _version("tensorrt") or importlib.util.find_spec("pycuda") or importlib.util.find_spec("cuda"):
            doc.cuda()
            doc.gpu()
        rows += doc.rows
    backend = "tensorrt" if any(r["check"].startswith("TensorRT") and r["status"] == "ok" for r in rows) \
        else "onnxruntime"
    print_table([[r["check"], r["status"], r["found"], r["fix"]] for r in rows], ["check", "status", "found", "fix"])
    failed = [r["check"] for r in rows if r["status"] == "fail"]
    print_json_last({"ok": not failed, "jetson": on_jetson, "backend": backend, "failed": failed, "checks": rows})
    return 1 if failed else 0

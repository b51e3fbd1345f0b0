"""Jetson doctor: is this device ready to build and run engines? Each check prints what it found and, when it
is a problem, the fix. Checks: JetPack/L4T, TensorRT, CUDA (+ cuda-python/pycuda), cuDNN, OpenCV GStreamer,
power mode and clocks, cameras, memory and swap (INT8 calibration on an 4 GB Nano runs out of memory), disk.

    deploy/jetson/doctor            # table, then one JSON line; exit 1 when a check fails

Every probe reads files under `root` and runs commands through `run`, so tests can give it a fake device.
"""
import argparse
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# L4T release -> JetPack (the TensorRT each ships): what the SDK's TensorRT code paths cover.
JETPACK = {"32.7": ("4.6.x", "8.2"), "35.1": ("5.0.2", "8.4"), "35.2": ("5.1", "8.5"), "35.3": ("5.1.1", "8.5"),
           "35.4": ("5.1.2", "8.5"), "35.5": ("5.1.3", "8.5"), "35.6": ("5.1.4", "8.5"), "36.2": ("6.0 DP", "8.6"),
           "36.3": ("6.0", "8.6"), "36.4": ("6.1/6.2", "10.3")}
SUPPORTED_TRT = ("8.5", "8.6", "10.")


def l4t_release(text):
    """(L4T release '35.3.1', (JetPack, TensorRT) or None) from /etc/nv_tegra_release's text; (None, None) when
    it is not one."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    if not m:
        return None, None
    l4t = f"{m.group(1)}.{m.group(2)}"
    return l4t, JETPACK.get(".".join(l4t.split(".")[:2]))


def _run_cmd(cmd):
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (p.stdout + p.stderr).strip()


class Doctor:
    def __init__(self, root="/", run=_run_cmd, import_module=importlib.import_module):
        self.root = Path(root)
        self.run = run
        self.import_module = import_module
        self.rows = []

    def read(self, path):
        p = self.root / path.lstrip("/")
        try:
            return p.read_text(errors="replace")
        except OSError:
            return None

    def add(self, check, status, found, fix=""):
        self.rows.append({"check": check, "status": status, "found": found, "fix": fix})

    def _module(self, name):
        try:
            return self.import_module(name)
        except ImportError:
            return None

    # ---- checks ----------------------------------------------------------------------------------------------
    def jetpack(self):
        l4t, jp = l4t_release(self.read("/etc/nv_tegra_release"))
        if l4t is None:
            self.add("L4T / JetPack", "fail", "not a Jetson (no /etc/nv_tegra_release)",
                     "run on a Jetson with JetPack 5.1+ (x86: use the onnxruntime backend)")
            return None
        model = (self.read("/proc/device-tree/model") or "").strip("\x00\n ")
        found = f"L4T {l4t}" + (f" = JetPack {jp[0]} (TensorRT {jp[1]})" if jp else "") + (f", {model}" if model else "")
        if jp and jp[1] in ("8.2", "8.4"):
            self.add("L4T / JetPack", "warn", found, "upgrade to JetPack 5.1 or newer (TensorRT 8.5+) - older "
                                                     "TensorRT is untested by the SDK")
        else:
            self.add("L4T / JetPack", "ok" if jp else "warn", found, "" if jp else "unknown L4T release: check "
                                                                              "the JetPack release notes")
        return jp

    def tensorrt(self):
        trt = self._module("tensorrt")
        if trt is None:
            self.add("TensorRT (python)", "fail", "import tensorrt failed",
                     "sudo apt install python3-libnvinfer (JetPack); in a venv create it with "
                     "--system-site-packages")
            return
        v = str(trt.__version__)
        ok = v.startswith(SUPPORTED_TRT)
        self.add("TensorRT (python)", "ok" if ok else "warn", v,
                 "" if ok else "the SDK covers TensorRT 8.5, 8.6 and 10.x (JetPack 5.1 - 6.2)")

    def cuda(self):
        text = self.read("/usr/local/cuda/version.json")
        m = re.search(r'"cuda"\s*:\s*\{[^}]*"version"\s*:\s*"([\d.]+)"', text or "")
        version = m.group(1) if m else None
        if version is None:
            out = self.run(["nvcc", "--version"]) or ""
            m = re.search(r"release ([\d.]+)", out)
            version = m.group(1) if m else None
        self.add("CUDA", "ok" if version else "fail", version or "not found",
                 "" if version else "sudo apt install nvidia-jetpack (CUDA is part of JetPack)")
        mods = [name for name in ("cuda.bindings.runtime", "cuda.cudart", "pycuda.driver") if self._module(name)]
        self.add("CUDA memory (cuda-python / pycuda)", "ok" if mods else "fail", ", ".join(mods) or "neither",
                 "" if mods else f"pip install 'cuda-python=={(version or '12.2').rsplit('.', 1)[0]}.*' "
                                 f"(match the CUDA version)")

    def gpu(self):
        """CUDA is usable only when a GPU answers: an installed toolkit with no device (a container without
        --runtime nvidia, a driver mismatch) is a failure, not 'ok'."""
        rt = self._module("cuda.bindings.runtime") or self._module("cuda.cudart")
        if rt is not None:
            try:
                err, prop = rt.cudaGetDeviceProperties(0)
                if int(err) == 0:
                    name = getattr(prop, "name", b"GPU")
                    name = name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else str(name)
                    self.add("GPU answers", "ok", f"{name} (cuda-python)")
                    return
                found = f"cudaGetDeviceProperties(0) returned {getattr(err, 'name', err)}"
            except Exception as e:  # a driver that is missing raises rather than returning an error code
                found = f"cuda-python: {type(e).__name__}: {str(e)[:80]}"
        else:
            drv = self._module("pycuda.driver")
            if drv is None:
                self.add("GPU answers", "fail", "no cuda-python or pycuda to ask", "pip install cuda-python")
                return
            try:
                getattr(drv, "init", lambda: None)()
                self.add("GPU answers", "ok", f"{drv.Device(0).name()} (pycuda)")
                return
            except Exception as e:
                found = f"pycuda: {type(e).__name__}: {str(e)[:80]}"
        self.add("GPU answers", "fail", found, "no GPU answered: check the driver (nvidia-smi / tegrastats), and "
                                               "in a container run with --runtime nvidia")

    def cudnn(self):
        out = self.run(["dpkg-query", "-W", "-f=${Package} ${Version}\\n", "libcudnn*"]) or ""
        lines = [line for line in out.splitlines() if line.startswith("libcudnn") and "dev" not in line]
        header = self.read("/usr/include/cudnn_version.h") or ""
        m = re.findall(r"#define CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)", header)
        found = lines[0] if lines else (".".join(v for _, v in m) if m else None)
        self.add("cuDNN", "ok" if found else "warn", found or "not found",
                 "" if found else "sudo apt install nvidia-cudnn8 (or the JetPack cuDNN package)")

    def gstreamer(self):
        """GStreamer for rtsp:// outputs (rtsp-server and an H.264 encoder that really encodes), found the way the
        output finds it: this interpreter, $SDK_GSTREAMER_PYTHON or the system python3 (rtp:// needs PyAV only)."""
        from sdk.video.stream_out import find_gstreamer_python

        python, probe = find_gstreamer_python(os.environ.get("SDK_GSTREAMER_PYTHON"))
        if python:
            self.add("GStreamer (rtsp:// outputs)", "ok",
                     f"{probe.get('gstreamer')}, encoder {probe.get('encoder')}, run by {python}", "")
        else:
            self.add("GStreamer (rtsp:// outputs)", "warn", "; ".join(probe)[:200],
                     "sudo apt install gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
                     "gir1.2-gst-rtsp-server-1.0 python3-gi (a Jetson's nvv4l2h264enc comes with JetPack)")

    def opencv(self):
        cv2 = self._module("cv2")
        if cv2 is None:
            self.add("OpenCV", "fail", "import cv2 failed", "sudo apt install python3-opencv (JetPack's build)")
            return
        info = cv2.getBuildInformation()
        m = re.search(r"GStreamer:\s*(\w+)", info)
        gst = bool(m and m.group(1).upper() == "YES")
        self.add("OpenCV GStreamer (CSI cameras)", "ok" if gst else "warn", f"OpenCV {cv2.__version__}, GStreamer "
                 f"{'YES' if gst else 'NO'}", "" if gst else "pip's opencv has no GStreamer: pip uninstall "
                 "opencv-python-headless and use JetPack's python3-opencv (apt) for csi:// sources")

    def power(self):
        out = self.run(["nvpmodel", "-q"])
        if out is None:
            self.add("Power mode", "warn", "nvpmodel not found", "on a Jetson: sudo nvpmodel -q")
        else:
            m = re.search(r"NV Power Mode:\s*(\S+)", out)
            mode = m.group(1) if m else out.splitlines()[0] if out else "?"
            maxn = "MAXN" in mode.upper()
            self.add("Power mode", "ok" if maxn else "warn", mode,
                     "" if maxn else "for benchmarks: sudo nvpmodel -m 0 (MAXN on most modules)")
        clocks = self.run(["jetson_clocks", "--show"])
        if clocks is not None:
            pairs = re.findall(r"MinFreq=(\d+).*?MaxFreq=(\d+)", clocks)
            pinned = bool(pairs) and all(a == b for a, b in pairs)
            self.add("Clocks", "ok" if pinned else "warn", "pinned to max" if pinned else "dynamic",
                     "" if pinned else "for stable timings: sudo jetson_clocks")

    def cameras(self):
        dev = self.root / "dev"
        cams = sorted(p.name for p in dev.glob("video*")) if dev.is_dir() else []
        self.add("Cameras", "ok" if cams else "warn", ", ".join(cams) or "no /dev/video*",
                 "" if cams else "connect a USB/CSI camera; list with v4l2-ctl --list-devices (CSI: "
                                 "sudo systemctl restart nvargus-daemon)")

    def memory(self):
        text = self.read("/proc/meminfo") or ""
        info = {k: int(v) // 1024 for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}  # MiB
        total, avail, swap = info.get("MemTotal", 0), info.get("MemAvailable", 0), info.get("SwapTotal", 0)
        found = f"{total} MiB RAM ({avail} available), {swap} MiB swap"
        if total and total + swap < 8192:
            self.add("Memory + swap", "warn", found, "INT8 calibration needs ~8 GiB RAM+swap: sudo fallocate -l 4G "
                     "/swapfile && sudo chmod 600 /swapfile && sudo mkswap /swapfile && sudo swapon /swapfile; or "
                     "--calib-batch-size 1")
        else:
            self.add("Memory + swap", "ok" if total else "warn", found if total else "unknown")

    def disk(self, path="."):
        free_gb = shutil.disk_usage(path).free / 2 ** 30
        self.add("Disk free", "ok" if free_gb > 2 else "warn", f"{free_gb:.1f} GiB",
                 "" if free_gb > 2 else "engines and caches need ~1 GiB per model: free some space")

    def all(self):
        self.jetpack()
        self.tensorrt()
        self.cuda()
        self.gpu()
        self.cudnn()
        self.opencv()
        self.gstreamer()
        self.power()
        self.cameras()
        self.memory()
        self.disk()
        return self.rows


def main(argv=None):
    from sdk.report import print_json_last, print_table

    parser = argparse.ArgumentParser(prog="deploy/jetson/doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/", help=argparse.SUPPRESS)  # for tests: a fake device tree
    args = parser.parse_args(argv)
    rows = Doctor(args.root).all()
    print_table([[r["check"], r["status"], r["found"], r["fix"]] for r in rows], ["check", "status", "found", "fix"])
    failed = [r["check"] for r in rows if r["status"] == "fail"]
    print_json_last({"ok": not failed, "failed": failed, "checks": rows})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

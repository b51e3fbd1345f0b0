"""A local Triton Inference Server for tests, benchmarks and CPU-only hosts: the `tritonserver` binary (2.51,
CPU build with the Python backend) that the `nvidia-pytriton` wheel carries, run on a plain model repository.

The wheel needs numpy < 2, so it lives in its own virtual environment (default ~/.cache/edge-sdk/triton-venv,
or $EDGE_SDK_TRITON_ENV), never in the SDK's. Inside the wheel:

    pytriton/tritonserver/bin/tritonserver                      the server
    pytriton/tritonserver/backends/python/libtriton_python.so   the Python backend
    pytriton/tritonserver/python_backend_stubs/3.X/triton_python_backend_stub
                                                                one stub per Python; it links the system's
                                                                libpython3.X.so.1.0 (Debian: libpython3.X)
    nvidia_pytriton.libs/                                       the server's shared libraries (LD_LIBRARY_PATH)

pytriton copies the stub into backends/python/ before each start; `ensure_server_env` does that once. The
server binds only loopback addresses here.

    python -m sdk triton-server setup                 # create the environment (what .ci/run does)
    python -m sdk triton-server serve --repo runs/triton --http-port 8000 --grpc-port 8001
"""
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import SDKError

PYTRITON = "nvidia-pytriton==0.7.0"  # carries tritonserver 2.51 (CPU) with the Python backend
SERVER_PACKAGES = (PYTRITON, "numpy<2", "onnxruntime")
LOOPBACK = "127.0.0.1"


def default_env_path() -> Path:
    return Path(os.environ.get("EDGE_SDK_TRITON_ENV") or Path.home() / ".cache" / "edge-sdk" / "triton-venv")


@dataclass
class ServerInstall:
    env: Path  # the virtual environment
    binary: Path
    backends: Path
    libs: Path
    python_version: str  # X.Y of the environment's Python (and of the stub)

    def environ(self) -> dict:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(self.libs), env.get("LD_LIBRARY_PATH")) if p)
        env["EDGE_SDK_TRITON_ENV"] = str(self.env)  # model.py adds this environment's site-packages
        env.pop("PYTHONPATH", None)  # the SDK's path would shadow the server environment's numpy
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
        return env


def _site_packages(env: Path) -> Optional[Path]:
    found = sorted(env.glob("lib/python3.*/site-packages/pytriton"))
    return found[0].parent if found else None


def find_server(env=None) -> Optional[ServerInstall]:
    """The server inside an existing environment, or None when it is not installed there."""
    env = Path(env or default_env_path())
    site = _site_packages(env)
    if site is None:
        return None
    root = site / "pytriton" / "tritonserver"
    binary = root / "bin" / "tritonserver"
    if not binary.is_file():
        return None
    version = site.parent.name[len("python"):]
    return ServerInstall(env, binary, root / "backends", site / "nvidia_pytriton.libs", version)


def _install_stub(install: ServerInstall):
    dst = install.backends / "python" / "triton_python_backend_stub"
    src = install.binary.parent.parent / "python_backend_stubs" / install.python_version / dst.name
    if not src.is_file():
        raise SDKError(f"triton server environment {install.env}: no Python-backend stub for Python "
                       f"{install.python_version} in the wheel, expected one of "
                       f"{', '.join(sorted(p.name for p in src.parent.parent.iterdir()))}")
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
        shutil.copyfile(src, dst)
        dst.chmod(0o755)


def _check_libpython(version):
    if ctypes.util.find_library(f"python{version}") is None:
        raise SDKError(f"triton server: libpython{version}.so.1.0 not found, expected the shared Python library "
                       f"the Python-backend stub links (Debian: apt-get install libpython{version})")


def ensure_server_env(env=None, python=None, quiet=True) -> ServerInstall:
    """Create (once) the server's virtual environment and install the server into it; returns where it is."""
    env = Path(env or default_env_path())
    install = find_server(env)
    if install is None:
        python = python or sys.executable
        try:
            if not (env / "bin" / "python").exists():
                subprocess.run([python, "-m", "venv", str(env)], check=True, capture_output=quiet, timeout=600)
            subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", *(["-q"] if quiet else []),
                            *SERVER_PACKAGES], check=True, capture_output=quiet, timeout=1800)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            tail = (getattr(e, "stderr", None) or b"").decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
            raise SDKError(f"triton server environment {env}: installing {' '.join(SERVER_PACKAGES)} failed "
                           f"({tail[0][:200]}), expected a reachable package registry") from None
        install = find_server(env)
        if install is None:
            raise SDKError(f"triton server environment {env}: {PYTRITON} installed but no tritonserver binary "
                           f"found in it, expected pytriton/tritonserver/bin/tritonserver")
    _install_stub(install)
    _check_libpython(install.python_version)
    return install


def free_port(host=LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TritonServer:
    """`with TritonServer(repo) as server:` a running server on free loopback ports (HTTP and gRPC).

    `server.url(model, protocol)` gives the triton:// URL for the SDK; `stop()` ends it (SIGTERM, then SIGKILL),
    `kill()` ends it at once (the tests' "server died" case).
    """

    def __init__(self, repo, install: Optional[ServerInstall] = None, http_port=None, grpc_port=None,
                 log_path=None, startup_timeout_s=120.0, extra_args=()):
        self.repo = Path(repo)
        self.install = install or ensure_server_env()
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="tritonserver.",
                                                                               suffix=".log")[1])
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args)
        self.proc = None

    def command(self):
        return [str(self.install.binary), "--model-repository", str(self.repo.resolve()),
                "--backend-directory", str(self.install.backends),
                "--http-address", LOOPBACK, "--http-port", str(self.http_port),
                "--grpc-address", LOOPBACK, "--grpc-port", str(self.grpc_port),
                "--allow-metrics", "false", "--exit-timeout-secs", "5", "--log-verbose", "0", *self.extra_args]

    def start(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=self.install.environ(), start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SDKError(f"tritonserver exited with status {self.proc.returncode} while starting "
                               f"({self.last_error()}), expected a running server; log: {self.log_path}")
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise SDKError(f"tritonserver: not ready after {self.startup_timeout_s:.0f} s, expected it to load "
                       f"{self.repo}; log: {self.log_path}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/v2/health/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def last_error(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        for needle in ("failed to load '", "error"):  # a model's own failure says more than the final summary
            errors = [line for line in lines if needle in line.lower()]
            if errors:
                return errors[0].strip()[:300]
        return (lines or ["empty log"])[-1].strip()[:300]

    def url(self, model, protocol="grpc") -> str:
        port = self.grpc_port if protocol == "grpc" else self.http_port
        return f"triton://{LOOPBACK}:{port}/{model}?protocol={protocol}"

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout_s=20.0):
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

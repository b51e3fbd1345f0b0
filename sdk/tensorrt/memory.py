"""CUDA memory for TensorRT: device buffers, pinned host buffers, one stream, async copies.

Two backends behind one small interface, whichever imports: cuda-python (`cuda.bindings.runtime`, or the
older `cuda.cudart`; calls return `(err, value)` tuples) and pycuda (`pycuda.driver`). Set SDK_CUDA_MEMORY to
`cuda-python` or `pycuda` to force one. Nothing here imports at SDK import time.

pycuda needs a current context and aborts the process at exit when its context stack is not empty ("PyCUDA
ERROR: The context stack was not empty upon module cleanup"). So one owner per process (`_PycudaContext`)
pushes the device's primary context once for every PycudaMemory in use, pops it when the last one closes, and an
atexit hook pops whatever is left (a runner never closed, an exception mid-build). A context that is already
current (pycuda.autoinit, the application's own) is borrowed, never pushed or popped. Every memory object is a
context manager; `close()` is idempotent.
"""
import atexit
import ctypes
import importlib
import os
import threading

import numpy as np

from ..errors import SDKError

MISSING = ("CUDA memory: neither cuda-python nor pycuda is importable, expected one of them "
           "(on a Jetson: pip install cuda-python matching the JetPack CUDA version)")


def _import_first(names):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class CudaPythonMemory:
    name = "cuda-python"

    def __init__(self, cudart):
        self.rt = cudart

    def _check(self, result, what):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:  # an enum on every cuda-python version
            raise SDKError(f"CUDA {what}: got error {err}, expected cudaSuccess")
        return rest[0] if len(rest) == 1 else (rest or None)

    def device_alloc(self, nbytes):
        return int(self._check(self.rt.cudaMalloc(int(nbytes)), "cudaMalloc"))

    def device_free(self, ptr):
        self._check(self.rt.cudaFree(ptr), "cudaFree")

    def host_empty(self, shape, dtype):
        """A pinned numpy array; keep the returned pointer to free it."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(self._check(self.rt.cudaMallocHost(nbytes), "cudaMallocHost"))
        buf = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(buf, dtype=dtype).reshape(shape), ptr

    def host_free(self, ptr):
        self._check(self.rt.cudaFreeHost(ptr), "cudaFreeHost")

    def stream(self):
        return self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream):
        return int(stream)

    def synchronize(self, stream):
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def stream_destroy(self, stream):
        self._check(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def htod_async(self, dst, host, stream):
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(dst, host.ctypes.data, host.nbytes, kind, stream), "cudaMemcpyAsync")

    def dtoh_async(self, host, src, stream):
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, src, host.nbytes, kind, stream), "cudaMemcpyAsync")

    def htod(self, dst, host):
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpy(dst, host.ctypes.data, host.nbytes, kind), "cudaMemcpy")

    def device_info(self, index=0):
        props = self._check(self.rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return _device_record(name.rstrip("\x00"), props.major, props.minor, props.multiProcessorCount,
                              props.totalGlobalMem)

    def close(self):
        pass  # cuda-python uses the primary context implicitly: nothing to pop

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _device_record(name, major, minor, multiprocessors, memory_bytes):
    """What tells GPUs apart for engine portability: every Orin module is "Orin", compute 8.7; AGX / NX / Nano
    differ in multiprocessors and memory (the DLA count comes from TensorRT, see the builder and runner)."""
    return {"name": name, "compute_capability": f"{major}.{minor}", "multiprocessors": int(multiprocessors),
            "memory_gb": round(int(memory_bytes) / 2**30, 1)}


class _PycudaContext:
    """The one owner of the CUDA context pycuda needs current (see the module docstring)."""

    _owners = {}  # id(driver module) -> owner
    _lock = threading.Lock()
    _hooked = False

    def __init__(self, driver):
        self.driver = driver
        self.users = 0
        self.pushed = None  # the context we pushed (None when borrowed or not yet acquired)

    @classmethod
    def of(cls, driver):
        with cls._lock:
            owner = cls._owners.get(id(driver))
            if owner is None or owner.driver is not driver:
                owner = cls._owners[id(driver)] = cls(driver)
            if not cls._hooked:
                atexit.register(cls.release_all)
                cls._hooked = True
            return owner

    def acquire(self):
        with self._lock:
            if self.users == 0 and self.pushed is None:
                self.driver.init()
                if self.driver.Context.get_current() is None:
                    ctx = self.driver.Device(0).retain_primary_context()
                    ctx.push()
                    self.pushed = ctx
            self.users += 1

    def release(self):
        with self._lock:
            self.users = max(0, self.users - 1)
            if self.users == 0:
                self._pop()

    def _pop(self):
        if self.pushed is not None:
            self.pushed = None
            self.driver.Context.pop()

    @classmethod
    def release_all(cls):
        """atexit: pop every context still pushed, before pycuda's module cleanup checks the stack."""
        for owner in list(cls._owners.values()):
            try:
                owner.users = 0
                owner._pop()
            except Exception:  # noqa: BLE001 - exiting anyway; the stack check is what matters
                pass


class PycudaMemory:
    name = "pycuda"

    def __init__(self, driver):
        self.cuda = driver
        self._owner = _PycudaContext.of(driver)
        self._owner.acquire()
        self._open = True
        self._allocs = {}

    def device_alloc(self, nbytes):
        alloc = self.cuda.mem_alloc(int(nbytes))
        self._allocs[int(alloc)] = alloc  # pycuda frees on garbage collection: keep a reference until freed
        return int(alloc)

    def device_free(self, ptr):
        alloc = self._allocs.pop(int(ptr), None)
        if alloc is not None:
            alloc.free()

    def host_empty(self, shape, dtype):
        arr = self.cuda.pagelocked_empty(tuple(shape), dtype)
        return arr, None

    def host_free(self, ptr):
        pass  # pycuda's pinned arrays are freed with the array

    def stream(self):
        return self.cuda.Stream()

    def stream_handle(self, stream):
        return int(stream.handle)

    def synchronize(self, stream):
        stream.synchronize()

    def stream_destroy(self, stream):
        pass

    def htod_async(self, dst, host, stream):
        self.cuda.memcpy_htod_async(dst, host, stream)

    def dtoh_async(self, host, src, stream):
        self.cuda.memcpy_dtoh_async(host, src, stream)

    def htod(self, dst, host):
        self.cuda.memcpy_htod(dst, np.ascontiguousarray(host))

    def device_info(self, index=0):
        dev = self.cuda.Device(index)
        major, minor = dev.compute_capability()
        sms = dev.get_attribute(self.cuda.device_attribute.MULTIPROCESSOR_COUNT)
        return _device_record(dev.name(), major, minor, sms, dev.total_memory())

    def close(self):
        """Free what is left and release the context (popped when the last user closes)."""
        if not self._open:
            return
        for alloc in list(self._allocs.values()):
            alloc.free()
        self._allocs = {}
        self._open = False
        self._owner.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def cuda_memory(prefer=None):
    """The first importable CUDA backend (cuda-python, then pycuda), or a one-line error naming both."""
    prefer = prefer or os.environ.get("SDK_CUDA_MEMORY", "")
    order = ["pycuda", "cuda-python"] if prefer == "pycuda" else ["cuda-python", "pycuda"]
    for name in order:
        if name == "cuda-python":
            rt = _import_first(["cuda.bindings.runtime", "cuda.cudart"])
            if rt is not None:
                return CudaPythonMemory(rt)
        else:
            driver = _import_first(["pycuda.driver"])
            if driver is not None:
                return PycudaMemory(driver)
    raise SDKError(MISSING)

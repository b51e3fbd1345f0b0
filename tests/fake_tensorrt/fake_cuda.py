"""Fake CUDA memory modules over the fake device: cuda-python's runtime (every call returns a tuple whose
first item is a cudaError_t) and pycuda.driver (objects and exceptions). Only the calls the SDK may use exist.

pycuda keeps a context stack: allocations, streams and copies need a current context ("cuMemAlloc failed:
invalid device context" otherwise), and when the stack is not empty at module cleanup pycuda prints "PyCUDA
ERROR: The context stack was not empty upon module cleanup" and aborts the process (pycuda src/cpp/cuda.hpp,
context_stack destructor; NVIDIA/TensorRT issues #1107 and #2357). The fake does the same, from an atexit hook
registered when the fake driver is made, so it runs after the atexit hooks of code that imported it later."""
import atexit
import enum
import os
import sys
import types

import numpy as np

from .device import COMPUTE_CAPABILITY, DEVICE


class cudaError_t(enum.IntEnum):  # noqa: N801 - real name
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidResourceHandle = 400


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


class cudaDeviceProp:  # noqa: N801
    def __init__(self):
        self.name = DEVICE.props["name"].encode()
        self.major, self.minor = COMPUTE_CAPABILITY
        self.totalGlobalMem = DEVICE.props["memory"]
        self.multiProcessorCount = DEVICE.props["multiprocessors"]


def _guard(fn):
    def call(*args):
        try:
            return fn(*args)
        except (ValueError, KeyError):
            return (cudaError_t.cudaErrorInvalidValue,) + ((None,) if fn.__name__ in _RETURNS_VALUE else ())
    call.__name__ = fn.__name__
    return call


_RETURNS_VALUE = {"cudaMalloc", "cudaMallocHost", "cudaStreamCreate", "cudaGetDeviceProperties"}


def make_cudart():
    ok = cudaError_t.cudaSuccess

    @_guard
    def cudaMalloc(nbytes):  # noqa: N802
        return ok, DEVICE.malloc(nbytes)

    @_guard
    def cudaFree(ptr):  # noqa: N802
        DEVICE.free(ptr)
        return (ok,)

    @_guard
    def cudaMallocHost(nbytes):  # noqa: N802
        return ok, DEVICE.malloc_host(nbytes)

    @_guard
    def cudaFreeHost(ptr):  # noqa: N802
        DEVICE.free_host(ptr)
        return (ok,)

    @_guard
    def cudaStreamCreate():  # noqa: N802
        return ok, DEVICE.new_stream()

    @_guard
    def cudaStreamSynchronize(stream):  # noqa: N802
        if int(stream) not in DEVICE.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        DEVICE.log.append(("sync", int(stream)))
        return (ok,)

    @_guard
    def cudaStreamDestroy(stream):  # noqa: N802
        DEVICE.streams.discard(int(stream))
        return (ok,)

    def _copy(dst, src, nbytes, kind):
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            DEVICE.htod(dst, src, nbytes)
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            DEVICE.dtoh(dst, src, nbytes)
        else:
            raise ValueError(kind)

    @_guard
    def cudaMemcpyAsync(dst, src, nbytes, kind, stream):  # noqa: N802
        if int(stream) not in DEVICE.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        _copy(dst, src, nbytes, kind)
        DEVICE.log.append(("memcpy_async", int(kind)))
        return (ok,)

    @_guard
    def cudaMemcpy(dst, src, nbytes, kind):  # noqa: N802
        _copy(dst, src, nbytes, kind)
        DEVICE.log.append(("memcpy", int(kind)))
        return (ok,)

    @_guard
    def cudaGetDeviceProperties(index):  # noqa: N802
        if index != 0:
            raise ValueError(index)
        return ok, cudaDeviceProp()

    mod = types.ModuleType("cuda.bindings.runtime")
    for fn in (cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost, cudaStreamCreate, cudaStreamSynchronize,
               cudaStreamDestroy, cudaMemcpyAsync, cudaMemcpy, cudaGetDeviceProperties):
        setattr(mod, fn.__name__, fn)
    mod.cudaError_t, mod.cudaMemcpyKind = cudaError_t, cudaMemcpyKind
    return mod


PYCUDA_ABORT = """-------------------------------------------------------------------
PyCUDA ERROR: The context stack was not empty upon module cleanup.
-------------------------------------------------------------------
A context was still active when the context stack was being
cleaned up. At this point in our execution, CUDA may already
have been deinitialized, so there is no way we can finish
cleanly. The program will be aborted now.
Use Context.pop() to avoid this problem.
-------------------------------------------------------------------"""


def make_pycuda_driver(abort_at_exit=True):
    mod = types.ModuleType("pycuda.driver")
    stack = []  # the context stack (pycuda's context_stack): the last entry is current
    mod.CONTEXT_STACK = stack  # for tests: not a pycuda attribute

    class Error(Exception):
        pass

    class LogicError(Error):
        pass

    def _need_context(what):
        if not stack:
            raise LogicError(f"{what} failed: invalid device context")

    class DeviceAllocation:
        def __init__(self, nbytes):
            _need_context("cuMemAlloc")
            self.ptr = DEVICE.malloc(nbytes)

        def __int__(self):
            return self.ptr

        __index__ = __int__

        def free(self):
            _need_context("cuMemFree")
            DEVICE.free(self.ptr)

    class Stream:
        def __init__(self):
            _need_context("cuStreamCreate")
            self.handle = DEVICE.new_stream()

        def synchronize(self):
            _need_context("cuStreamSynchronize")
            DEVICE.log.append(("sync", self.handle))

    class Context:
        def push(self):
            stack.append(self)
            DEVICE.log.append(("ctx_push",))

        @staticmethod
        def pop():  # pycuda: pops the *current* context, whichever object it is called on
            if not stack:
                raise LogicError("cuCtxPopCurrent failed: invalid device context")
            stack.pop()
            DEVICE.log.append(("ctx_pop",))

        @staticmethod
        def get_current():
            return stack[-1] if stack else None

        def detach(self):
            if self in stack:
                stack.remove(self)

    class Device:
        def __init__(self, index):
            if index != 0:
                raise LogicError(f"cuDeviceGet failed: invalid device ordinal {index}")

        def name(self):
            return DEVICE.props["name"]

        def compute_capability(self):
            return COMPUTE_CAPABILITY

        def total_memory(self):
            return DEVICE.props["memory"]

        def get_attribute(self, attr):
            if attr == device_attribute.MULTIPROCESSOR_COUNT:
                return DEVICE.props["multiprocessors"]
            raise LogicError(f"attribute {attr} not modelled by the fake")

        def retain_primary_context(self):
            return Context()

        def make_context(self, flags=0):
            ctx = Context()
            ctx.push()
            return ctx

    device_attribute = enum.IntEnum("device_attribute", ["MULTIPROCESSOR_COUNT"])

    def _host(arr):
        if not isinstance(arr, np.ndarray):
            raise Error("host side must be a numpy array")
        return np.ascontiguousarray(arr)

    def memcpy_htod_async(dest, src, stream=None):
        _need_context("cuMemcpyHtoDAsync")
        src = _host(src)
        DEVICE.htod(int(dest), src.ctypes.data, src.nbytes)
        DEVICE.log.append(("memcpy_async", 1))

    def memcpy_dtoh_async(dest, src, stream=None):
        _need_context("cuMemcpyDtoHAsync")
        DEVICE.dtoh(dest.ctypes.data, int(src), dest.nbytes)
        DEVICE.log.append(("memcpy_async", 2))

    def memcpy_htod(dest, src):
        _need_context("cuMemcpyHtoD")
        src = _host(src)
        DEVICE.htod(int(dest), src.ctypes.data, src.nbytes)

    def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
        _need_context("cuMemHostAlloc")
        return np.empty(shape, dtype, order)

    def _module_cleanup():
        if stack:
            sys.stderr.write(PYCUDA_ABORT + "\n")
            sys.stderr.flush()
            os.abort()

    if abort_at_exit:
        atexit.register(_module_cleanup)
    mod.init = lambda flags=0: None
    mod.mem_alloc = DeviceAllocation
    mod.pagelocked_empty = pagelocked_empty
    mod.Stream, mod.Device, mod.Context, mod.Error, mod.LogicError = Stream, Device, Context, Error, LogicError
    mod.device_attribute = device_attribute
    mod.memcpy_htod_async, mod.memcpy_dtoh_async, mod.memcpy_htod = memcpy_htod_async, memcpy_dtoh_async, memcpy_htod
    return mod


def cuda_modules(kind="cuda-python"):
    """{module name: module} to put in sys.modules for one backend."""
    if kind == "pycuda":
        pkg = types.ModuleType("pycuda")
        pkg.__path__ = []
        driver = make_pycuda_driver()
        pkg.driver = driver
        return {"pycuda": pkg, "pycuda.driver": driver}
    runtime = make_cudart()
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda.__path__, bindings.__path__ = [], []
    cuda.bindings, bindings.runtime = bindings, runtime
    return {"cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.runtime": runtime}

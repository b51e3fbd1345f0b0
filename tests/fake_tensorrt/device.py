"""A fake GPU for the fake CUDA modules and the fake TensorRT: device memory is numpy buffers behind made-up
pointer values (not host addresses, so code that mixes host and device pointers fails here as on a GPU)."""
import ctypes
import itertools

import numpy as np

DEVICE_NAME = "Orin (fake)"
COMPUTE_CAPABILITY = (8, 7)
# cudaDeviceProp of a Jetson AGX Orin 64GB: every Orin module reports the name "Orin" and compute 8.7; they
# differ in multiprocessors (AGX 16, NX 8, Nano 8/4), memory and DLA cores (AGX/NX 2, Nano 0).
AGX_ORIN = {"name": DEVICE_NAME, "multiprocessors": 16, "memory": 64 << 30, "dla_cores": 2}
ORIN_NANO_8GB = {"name": DEVICE_NAME, "multiprocessors": 8, "memory": 8 << 30, "dla_cores": 0}


class FakeDevice:
    def __init__(self):
        self.reset()

    def reset(self):
        self.props = dict(AGX_ORIN)  # tests may switch the "board"
        self.device = {}  # base pointer -> uint8 array
        self.host = {}  # pinned host address -> uint8 array (real memory, so ctypes can view it)
        self.streams = set()
        self._next = itertools.count(0x7F00_0000_0000, 1 << 24)
        self._stream_ids = itertools.count(0x5000)
        self.log = []  # (call, args) in order

    # device memory
    def malloc(self, nbytes):
        ptr = next(self._next)
        self.device[ptr] = np.zeros(int(nbytes), np.uint8)
        self.log.append(("malloc", nbytes))
        return ptr

    def free(self, ptr):
        if self.device.pop(int(ptr), None) is None:
            raise ValueError(f"free of unknown device pointer {ptr:#x}")
        self.log.append(("free", int(ptr)))

    def _locate(self, ptr, nbytes):
        ptr = int(ptr)
        for base, buf in self.device.items():
            if base <= ptr and ptr + nbytes <= base + buf.nbytes:
                return buf, ptr - base
        raise ValueError(f"device pointer {ptr:#x} (+{nbytes} bytes) is not inside any allocation")

    def read(self, ptr, nbytes):
        buf, off = self._locate(ptr, nbytes)
        return buf[off:off + nbytes].copy()

    def write(self, ptr, data):
        data = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), np.uint8)
        buf, off = self._locate(ptr, data.nbytes)
        buf[off:off + data.nbytes] = data

    def is_device(self, ptr):
        try:
            self._locate(ptr, 1)
            return True
        except ValueError:
            return False

    # pinned host memory
    def malloc_host(self, nbytes):
        arr = np.zeros(max(int(nbytes), 1), np.uint8)
        self.host[arr.ctypes.data] = arr
        return arr.ctypes.data

    def free_host(self, ptr):
        if self.host.pop(int(ptr), None) is None:
            raise ValueError(f"free of unknown host pointer {ptr:#x}")

    # copies between a host address and device memory
    def htod(self, dst, src_host, nbytes):
        if self.is_device(src_host):
            raise ValueError("host-to-device copy from a device pointer")
        self.write(dst, ctypes.string_at(src_host, nbytes))

    def dtoh(self, dst_host, src, nbytes):
        if self.is_device(dst_host):
            raise ValueError("device-to-host copy into a device pointer")
        data = self.read(src, nbytes)
        ctypes.memmove(dst_host, data.ctypes.data, nbytes)

    def new_stream(self):
        s = next(self._stream_ids)
        self.streams.add(s)
        return s


DEVICE = FakeDevice()

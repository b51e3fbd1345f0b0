"""Which INT8 form to produce for a CPU: read its flags (Linux /proc/cpuinfo) or take a named target, and choose
the activation type and weight range that run fastest there without 16-bit saturation.

Why the form depends on the CPU (onnxruntime's MLAS int8 kernels):
* x86 with VNNI (avx512_vnni, avx_vnni, amx_int8): `vpdpbusd` multiplies u8 activations by s8 weights and adds
  into int32 directly. u8 activations + s8 weights (u8s8) is the fast path; s8 activations take a slower
  route (measured here: QDQ s8s8 0.93x FP32 against u8s8 1.7x, docs/int8.md).
* x86 with AVX2 or AVX-512BW but no VNNI: u8s8 runs on `vpmaddubsw`, which adds each pair of u8 x s8 products
  into a SATURATING int16 (2 * 255 * 127 > 32767: `python -m sdk overflow`). 7-bit weights (reduce_range,
  2 * 255 * 63 = 32130) cannot saturate and keep the fast kernel.
* ARM64 (Jetson's Cortex-A78AE / Carmel, with the dot-product extension `asimddp`): `sdot` handles s8 x s8 into
  int32, so symmetric s8 activations run natively and share one scale set with TensorRT (symmetric s8). Without
  the extension onnxruntime widens to 16 bits either way; s8 stays the symmetric choice.
* Channel counts: MLAS's symmetric u8s8 conv kernels (the fast QLinearConv path on x86) take group-1 convs with
  input channels % 4 == 0 and >= 16 output channels, a multiple of 4 (AVX-512) or 8 (AVX2 / AVX-VNNI); any other
  conv falls back to im2col + generic QGEMM. `Int8Form.channels` carries that rule and `quantize` zero-pads the
  convs to it (sdk.quant.pad, exact). ARM64 has no such kernel for group-1 convs: nothing is padded there.
`bench` (and scripts/bench_int8.py) is what tells whether the form is faster on a given machine: an INT8 model
is never called faster without a measurement.
"""
import platform
from dataclasses import dataclass, field

from ..errors import SDKError
from .pad import ChannelRule

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
SIMD_FLAGS = VNNI_FLAGS | {"avx2", "avx512f", "avx512bw", "asimd", "asimddp", "i8mm", "sve"}


@dataclass(frozen=True)
class CpuInfo:
    name: str
    arch: str  # "x86_64" or "aarch64"
    flags: frozenset = field(default_factory=frozenset)

    @property
    def simd(self):
        return sorted(self.flags & SIMD_FLAGS)


@dataclass(frozen=True)
class Int8Form:
    """What `quantize` produces for a target: activation type, weight range, and the reason in one sentence."""
    target: str
    activations: str  # "u8" | "s8"
    reduce_range: bool
    kernel: str
    reason: str
    # channel counts of the target's fast INT8 conv kernel (sdk.quant.pad.ChannelRule), None: no such kernel known
    channels: object = None

    def to_dict(self):
        return {"target": self.target, "activations": self.activations, "reduce_range": self.reduce_range,
                "kernel": self.kernel, "reason": self.reason,
                "channels": self.channels.to_dict() if self.channels else None}


# Named targets for `quantize --for-cpu NAME` (quantizing on one machine for another).
TARGETS = {
    "x86-vnni": CpuInfo("x86-64 with AVX-512 VNNI (Cascade Lake and later, Zen 4)", "x86_64",
                        frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni"})),
    "x86-avx-vnni": CpuInfo("x86-64 with AVX-VNNI (Alder Lake and later)", "x86_64", frozenset({"avx2", "avx_vnni"})),
    "x86-avx512": CpuInfo("x86-64 with AVX-512BW, no VNNI (Skylake-SP)", "x86_64",
                          frozenset({"avx2", "avx512f", "avx512bw"})),
    "x86-avx2": CpuInfo("x86-64 with AVX2, no VNNI (Haswell..Coffee Lake, Zen 1-3)", "x86_64", frozenset({"avx2"})),
    "arm64-dotprod": CpuInfo("ARM64 with the dot-product extension (Jetson Orin, Xavier)", "aarch64",
                             frozenset({"asimd", "asimddp"})),
    "arm64": CpuInfo("ARM64 without the dot-product extension (Jetson Nano / TX2)", "aarch64", frozenset({"asimd"})),
}
TARGETS["jetson"] = TARGETS["arm64-dotprod"]


def parse_cpuinfo(text, arch=None):
    """CpuInfo from the text of /proc/cpuinfo (x86 'flags' / ARM 'Features' lines); the first CPU is enough."""
    name, flags = "", None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not name:
            name = value.strip()
        elif key in ("flags", "Features") and flags is None:
            flags = frozenset(value.split())
    flags = flags or frozenset()
    if arch is None:
        arch = "aarch64" if "CPU implementer" in text or "asimd" in flags else "x86_64"
    return CpuInfo(name or "unknown CPU", arch, flags)


def read_cpu(path="/proc/cpuinfo"):
    """The CPU this process runs on (unknown flags where /proc/cpuinfo is unreadable, e.g. not Linux)."""
    machine = platform.machine().lower()
    arch = "aarch64" if machine in ("aarch64", "arm64") else "x86_64" if machine in ("x86_64", "amd64") else None
    try:
        with open(path) as f:
            return parse_cpuinfo(f.read(), arch)
    except OSError:
        return CpuInfo("unknown CPU", arch or machine, frozenset())


def cpu_for(target=None):
    """`None` / 'host': this machine; otherwise one of TARGETS."""
    if target in (None, "", "host"):
        return read_cpu()
    if target not in TARGETS:
        raise SDKError(f"for_cpu: got '{target}', expected host or one of {', '.join(TARGETS)}")
    return TARGETS[target]


def choose_form(cpu, target="host"):
    """The INT8 form for `cpu` (see the module docstring for the reasoning)."""
    f = cpu.flags
    if cpu.arch == "aarch64":
        dot = "asimddp" in f
        return Int8Form(target, "s8", False, "sdot (int32 accumulation)" if dot else "16-bit widening multiply",
                        "ARM64: s8 x s8 " + ("runs on sdot into int32" if dot else "without the dot-product "
                                             "extension has no faster u8 path")
                        + "; symmetric s8 activations also match TensorRT's scales")
    vnni = sorted(f & VNNI_FLAGS)
    # MLAS's symmetric conv kernels: output channels a multiple of 4 with AVX-512, of 8 with AVX2 / AVX-VNNI
    channels = ChannelRule(4, 4 if "avx512bw" in f else 8, 16)
    if vnni:
        return Int8Form(target, "u8", False, f"{vnni[0]} vpdpbusd (int32 accumulation)",
                        f"x86 with {vnni[0]}: u8 activations x s8 weights accumulate in int32 (no saturation), and "
                        f"onnxruntime's fast QDQ kernels take u8 activations (s8 activations run slower than FP32)",
                        channels)
    simd = "avx512bw" if "avx512bw" in f else "avx2" if "avx2" in f else None
    if simd:
        return Int8Form(target, "u8", True, f"{simd} vpmaddubsw (int16 pair sums)",
                        f"x86 with {simd} but no VNNI: u8 x s8 pair sums saturate int16 with 8-bit weights; 7-bit "
                        f"weights (reduce_range) cannot, and keep the fast u8 kernel", channels)
    return Int8Form(target, "u8", True, "SSE / unknown", "no AVX2 or VNNI flag found: u8 activations with 7-bit "
                    "weights are the safe choice; INT8 may not beat FP32 here, measure it with bench")


def form_for(target=None):
    """Int8Form for this machine or a named target, with the CPU it was chosen for."""
    cpu = cpu_for(target)
    return choose_form(cpu, target or "host"), cpu

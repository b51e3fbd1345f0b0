"""The INT8 form chosen per CPU (faked /proc/cpuinfo texts), shared Concat scales on the real model, and the
measured INT8-vs-FP32 verdict of `bench --against`."""
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from sdk.errors import SDKError
from sdk.quant.cpu import TARGETS, choose_form, cpu_for, parse_cpuinfo, read_cpu
from sdk.quant.quantize import QuantConfig, calibrate, quantize
from tests.conftest import run_cli

X86 = """processor\t: 0
vendor_id\t: {vendor}
model name\t: {name}
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 {flags}
"""
ARM = """processor\t: 0
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm {flags}
CPU implementer\t: 0x41
CPU architecture: 8
"""


@pytest.mark.parametrize("text,act,reduce,kernel", [
    (X86.format(vendor="GenuineIntel", name="Xeon Gold 6230", flags="avx avx2 avx512f avx512bw avx512_vnni"),
     "u8", False, "avx512_vnni"),
    (X86.format(vendor="GenuineIntel", name="Core i7-12700", flags="avx avx2 avx_vnni"), "u8", False, "avx_vnni"),
    (X86.format(vendor="GenuineIntel", name="Xeon Gold 6130", flags="avx avx2 avx512f avx512bw"), "u8", True,
     "avx512bw vpmaddubsw"),
    (X86.format(vendor="AuthenticAMD", name="EPYC 7B12", flags="avx avx2 fma"), "u8", True, "avx2 vpmaddubsw"),
    (X86.format(vendor="GenuineIntel", name="Atom", flags=""), "u8", True, "SSE"),
    (ARM.format(flags="asimddp"), "s8", False, "sdot"),
    (ARM.format(flags=""), "s8", False, "16-bit"),
])
def test_form_follows_the_cpu_flags(text, act, reduce, kernel):
    cpu = parse_cpuinfo(text)
    assert cpu.arch == ("aarch64" if "Features" in text else "x86_64")
    form = choose_form(cpu)
    assert (form.activations, form.reduce_range) == (act, reduce)
    assert form.kernel.startswith(kernel) and form.reason


def test_named_targets_and_this_machine():
    assert choose_form(cpu_for("x86-avx2")).reduce_range and not choose_form(cpu_for("x86-vnni")).reduce_range
    assert choose_form(cpu_for("jetson")).activations == "s8"
    with pytest.raises(SDKError, match="for_cpu: got 'pentium2'"):
        cpu_for("pentium2")
    host = read_cpu()
    assert host.flags, "this machine's /proc/cpuinfo should list flags"
    assert cpu_for("host") == host


def test_explicit_choices_win_and_say_so():
    form = QuantConfig(target="x86-vnni", activations="s8").form()
    assert form.activations == "s8" and "as asked" in form.reason and "u8" in form.reason
    assert QuantConfig(target="x86-avx2").form().reduce_range is True
    assert QuantConfig(target="x86-avx2", reduce_range=False).form().reduce_range is False
    assert QuantConfig(target="x86-vnni").form() == choose_form(TARGETS["x86-vnni"], "x86-vnni")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, onnx_model, train_images):
    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.quant.layers import load_model, metadata_of

    d = tmp_path_factory.mktemp("cpu-form")
    paths = calibration_images(train_images, 4, 0, "--calib")
    reader = ImageCalibrationReader(paths, metadata_of(load_model(onnx_model)), progress=False)
    cache = d / "ranges.json"
    calibrate(onnx_model, reader, "minmax", str(cache))
    shared, separate = d / "shared.onnx", d / "separate.onnx"
    quantize(onnx_model, shared, cache, config=QuantConfig(method="minmax"))
    quantize(onnx_model, separate, cache, config=QuantConfig(method="minmax", share_concat_scales=False))
    return shared, separate


def _concat_scales(path):
    """Per int8 Concat: the set of scales of its DequantizeLinear inputs and of the QuantizeLinear after it."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out = []
    for n in m.graph.node:
        if n.op_type != "Concat":
            continue
        ins = [producer.get(i) for i in n.input]
        if not all(p is not None and p.op_type == "DequantizeLinear" for p in ins):
            continue
        q = [c for c in consumers.get(n.output[0], []) if c.op_type == "QuantizeLinear"]
        scales = {float(inits[p.input[1]]) for p in ins} | {float(inits[c.input[1]]) for c in q}
        out.append(scales)
    return out


def test_concat_inputs_share_one_scale(calibrated):
    shared, separate = calibrated
    s, p = _concat_scales(shared), _concat_scales(separate)
    assert len(s) >= 10 and len(s) == len(p)
    assert all(len(x) == 1 for x in s), "every int8 Concat's inputs and output should share one scale"
    assert sum(len(x) > 1 for x in p) >= 10, "without the option the scales differ (the test can tell)"
    props = {q.key: q.value for q in onnx.load(str(shared)).metadata_props}
    form = json.loads(props["sdk.quantization"])["int8_form"]
    assert form == choose_form(read_cpu()).to_dict()


def test_bench_against_fp32_measures_before_saying_faster(calibrated, onnx_model):
    int8, _ = calibrated
    p = run_cli("bench", "--model", int8, "--runs", "4", "--warmup", "1", check=True)
    # no claim about INT8 speed without a measurement (bench's own load warnings may say 'faster' about e2e)
    assert "speed against FP32 not measured" in p.stdout and "faster than fp32" not in p.stdout.lower()
    assert "vs_fp32" not in json.loads(p.stdout.strip().splitlines()[-1])
    p = run_cli("bench", "--model", int8, "--against", onnx_model, "--runs", "4", "--warmup", "1", check=True)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    v = res["vs_fp32"]
    assert v["runs"] == 4 and v["int8_p50_ms"] > 0 and v["fp32_p50_ms"] > 0
    assert ("faster than FP32" in v["verdict"]) == v["faster"] and ("SLOWER" in v["verdict"]) == (not v["faster"])
    assert 5.0 < res["gflops"] < 6.0 and res["achieved_gflop_s"] > 0
    assert np.isclose(v["speedup"], v["fp32_p50_ms"] / v["int8_p50_ms"])

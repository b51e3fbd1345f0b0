"""Attacks on the checkpoint loader, each built here from its recipe (no binary blobs): the loader must refuse with
one short line, leave nothing on disk and change nothing in the process."""
import copy
import io
import os
import pickle
import subprocess
import sys
import types
import zipfile

import pytest

torch = pytest.importorskip("torch", reason="checkpoint loading needs the torch extra")

from sdk.errors import SDKError  # noqa: E402
from sdk.models import safe_pickle  # noqa: E402
from sdk.models.checkpoint import SDK_FORMAT, load_checkpoint, read_checkpoint_object  # noqa: E402


def _global(module, name):
    return f"c{module}\n{name}\n".encode()


def _unicode(text):
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _set_attrs_on(module, name, attrs):
    """A pickle that names a global and BUILDs (None, {attr: value}) on it: pickle then calls
    setattr(global, attr, value), i.e. mutates the object the unpickler handed out."""
    body = b"N}" + b"".join(_unicode(k) + _unicode(v) + b"s" for k, v in attrs.items()) + b"\x86b"
    return b"\x80\x02" + _global(module, name) + body + b"."


def _zip_checkpoint(path, pkl, extra=()):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
        for name, data in extra:
            z.writestr(name, data)
    return path


def _fingerprint(fn):
    return (fn.__code__, fn.__defaults__, fn.__kwdefaults__, dict(fn.__dict__), fn.__name__, fn.__module__,
            fn.__qualname__)


def _files_under(*roots):
    return {os.path.join(d, f) for r in roots for d, _, fs in os.walk(r) for f in fs}


@pytest.mark.parametrize("target", ["_rebuild_parameter", "_rebuild_tensor_v2"])
def test_zip_pickle_cannot_mutate_torch_rebuild_functions(tmp_path, target):
    real = getattr(torch._utils, target)
    before = _fingerprint(real)
    bad = _zip_checkpoint(tmp_path / "mutate.pt", _set_attrs_on("torch._utils", target,
                                                                {"__module__": "pwned", "__qualname__": "pwned"}))
    with pytest.raises(SDKError, match="refusing to set state") as e:
        load_checkpoint(bad)
    assert len(str(e.value)) < 200 and "\n" not in str(e.value)
    assert getattr(torch._utils, target) is real and _fingerprint(real) == before


def test_legacy_pickle_is_refused_without_torch_legacy_machinery(tmp_path, monkeypatch):
    """The legacy (non-zip) attack: set attributes on _rebuild_tensor_v2 so that torch's legacy loader writes a
    `.patch` file of the attacker's choosing. Legacy files are not read at all now."""
    monkeypatch.chdir(tmp_path)
    before = _fingerprint(torch._utils._rebuild_tensor_v2)
    # A torch-legacy file is a run of pickles (magic number, protocol, sys info, the object ...).
    bad = tmp_path / "legacy.pt"
    payload = _set_attrs_on("torch._utils", "_rebuild_tensor_v2", {"__module__": "x", "dump_patches": "1"})
    buf = io.BytesIO()
    for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(head, buf, protocol=2)
    bad.write_bytes(buf.getvalue() + payload)
    with pytest.raises(SDKError, match="legacy .* not read"):
        load_checkpoint(bad)
    assert _files_under(tmp_path) == {str(bad)}  # no .patch file, nothing else written
    assert _fingerprint(torch._utils._rebuild_tensor_v2) == before


def test_a_real_torch_legacy_save_is_refused_with_the_remedy(tmp_path):
    p = tmp_path / "old.pt"
    torch.save({"model": torch.zeros(2)}, p, _use_new_zipfile_serialization=False)
    with pytest.raises(SDKError, match=r"re-save it with torch >= 1\.6"):
        load_checkpoint(p)


def test_standin_classes_cannot_be_changed_by_the_pickle(tmp_path):
    bad = _zip_checkpoint(tmp_path / "cls.pt", _set_attrs_on("models.yolo", "Model", {"__setstate__": "x"}))
    with pytest.raises(SDKError, match="cannot read it"):  # pickle calls the unbound __setstate__: refused
        load_checkpoint(bad)
    cls = type("probe", (), {})
    with pytest.raises(safe_pickle.CheckpointFormatError, match="refusing to modify class"):
        safe_pickle._StandInMeta.__setattr__(safe_pickle._StandInMeta("Model", (safe_pickle.StandIn,), {}),
                                             "__setstate__", cls)
    # and one load's classes are not the next load's: nothing a file does survives it
    a = safe_pickle.RestrictedUnpickler(io.BytesIO(b"")).find_class("models.yolo", "Model")
    b = safe_pickle.RestrictedUnpickler(io.BytesIO(b"")).find_class("models.yolo", "Model")
    assert a is not b


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("builtins", "exec"), ("os", "system"),
                                         ("posix", "system"), ("subprocess", "Popen"), ("importlib", "import_module"),
                                         ("builtins", "getattr"), ("torch", "load"), ("torch.serialization", "load"),
                                         ("numpy", "load"), ("collections", "namedtuple")])
def test_named_callables_are_refused(tmp_path, module, name):
    marker = tmp_path / "ran"
    pkl = b"\x80\x02" + _global(module, name) + _unicode(f"touch {marker}") + b"\x85R."
    with pytest.raises(SDKError, match=f"refusing to load global '{module}.{name}'"):
        load_checkpoint(_zip_checkpoint(tmp_path / "x.pt", pkl))
    assert not marker.exists()


def test_zip_bomb_is_refused_before_decompressing(tmp_path):
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pickle.dumps({"format": SDK_FORMAT}, protocol=2))
        with z.open("archive/data/0", "w") as f:  # 64 MiB of zeros in ~64 KiB
            for _ in range(64):
                f.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(safe_pickle.CheckpointFormatError, match="declares 64 MiB uncompressed"):
        safe_pickle.safe_load(bomb, max_bytes=16 << 20)


def test_a_tensor_view_larger_than_its_storage_is_refused(tmp_path):
    """A stride-0 view of one float as a 1e10-element tensor would allocate 40 GB at .clone()/.float()."""
    p = tmp_path / "expand.pt"
    torch.save({"x": torch.zeros(1).expand(10)}, p)
    with pytest.raises(safe_pickle.CheckpointFormatError, match="does not fit its storage"):
        safe_pickle.safe_load(p)


@pytest.fixture(scope="module")
def official_cfg(checkpoint):
    return copy.deepcopy(read_checkpoint_object(checkpoint)["model"].yaml)


def _sdk_ckpt(path, cfg, state=None):
    torch.save({"format": SDK_FORMAT, "cfg": cfg, "names": None, "state_dict": state or {}}, path)
    return path


def _layer(cfg, i):
    return (cfg["backbone"] + cfg["head"])[i]


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c.update(nc=-1), "cfg nc: got -1"),
    (lambda c: c.update(nc=True), "cfg nc: got True"),
    (lambda c: c.update(depth_multiple=1e9), "cfg depth_multiple: got 1000000000.0"),
    (lambda c: c.update(width_multiple=float("nan")), "cfg width_multiple: got nan"),
    (lambda c: c.pop("head"), "key 'head'"),
    (lambda c: c.update(anchors=[[10, 13, 16]]), "cfg anchors"),
    (lambda c: _layer(c, 0).__setitem__(1, 100_000_000), "layer 0 repeat count: got 100000000"),
    (lambda c: _layer(c, 0)[3].__setitem__(0, 1_000_000), "layer 0 channels: got 1000000"),
    (lambda c: _layer(c, 3).__setitem__(0, 50), "layer 3 'from': got 50"),
    (lambda c: _layer(c, 0)[3].__setitem__(1, 99), "layer 0 kernel: got 99"),
    (lambda c: c["backbone"].extend([[-1, 1, "Conv", [8, 1, 1]]] * 2000), "layer count: got"),
])
def test_hostile_cfg_is_refused_quickly_before_building(tmp_path, official_cfg, mutate, needle):
    import time

    cfg = copy.deepcopy(official_cfg)
    mutate(cfg)
    t = time.perf_counter()
    with pytest.raises(SDKError, match=needle) as e:
        load_checkpoint(_sdk_ckpt(tmp_path / "c.pt", cfg))
    assert time.perf_counter() - t < 20  # refused by bounds, not after building a huge network
    assert len(str(e.value)) < 220


def test_weights_that_do_not_fit_are_refused_before_allocating_the_model(tmp_path, official_cfg):
    with pytest.raises(SDKError, match=r"weights do not fit its cfg \(\d+ tensors missing"):
        load_checkpoint(_sdk_ckpt(tmp_path / "empty.pt", official_cfg, {"model.0.bn.bias": torch.zeros(32)}))


def test_a_module_containing_itself_is_walked_once(tmp_path, monkeypatch, official_cfg):
    fake = types.ModuleType("models.yolo")

    class Model:
        pass

    Model.__module__, Model.__qualname__ = "models.yolo", "Model"
    fake.Model = Model
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.yolo", fake)
    m = Model()
    m._modules, m._parameters, m._buffers, m.yaml = {"self": m}, {}, {}, official_cfg
    p = tmp_path / "loop.pt"
    torch.save({"model": m}, p)
    monkeypatch.delitem(sys.modules, "models.yolo")
    with pytest.raises(SDKError, match="weights do not fit its cfg"):
        load_checkpoint(p)


def test_cli_reports_the_attack_on_one_short_line_and_writes_nothing(tmp_path):
    bad = _zip_checkpoint(tmp_path / "attack.pt", _set_attrs_on("torch._utils", "_rebuild_parameter",
                                                                {"__module__": "pwned"}))
    out = tmp_path / "m.onnx"
    r = subprocess.run([sys.executable, "-m", "sdk", "export", "--weights", str(bad), "--imgsz", "416", "-o",
                        str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: checkpoint") and "refusing" in lines[-1] and len(lines[-1]) < 220
    assert "Traceback" not in r.stderr
    assert _files_under(tmp_path) == {str(bad)}


def test_truncated_checkpoint_error_is_short(tmp_path, checkpoint):
    p = tmp_path / "cut.pt"
    p.write_bytes(checkpoint.read_bytes()[: 3 * 1024 * 1024])
    with pytest.raises(SDKError) as e:
        load_checkpoint(p)
    assert len(str(e.value)) < 220 and "\n" not in str(e.value)

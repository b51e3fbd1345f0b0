"""Official checkpoint loading without the YOLOv7 repo, refusal of unsafe pickles, the SDK's own format."""
import os
import pickle
import pytest

torch = pytest.importorskip("torch", reason="checkpoint loading needs the torch extra")
F = torch.nn.functional

from sdk.data.images import list_images, read_image  # noqa: E402
from sdk.errors import SDKError  # noqa: E402
from sdk.metadata import ModelMetadata  # noqa: E402
from sdk.models.checkpoint import load_checkpoint, read_checkpoint_object, save_checkpoint  # noqa: E402
from sdk.models.safe_pickle import RestrictedUnpickler, StandIn  # noqa: E402
from sdk.preprocess import Preprocessor  # noqa: E402


def test_official_checkpoint_loads_with_its_cfg_and_weights(checkpoint):
    model, info = load_checkpoint(checkpoint)
    assert info["source"] == "official"
    assert model.names == ["person"]
    assert model.yaml["nc"] == 1 and len(model.yaml["backbone"]) + len(model.yaml["head"]) == 78
    assert sum(p.numel() for p in model.parameters()) == 6_014_988  # as in ../shared/models/README.md
    assert model.stride.tolist() == [8.0, 16.0, 32.0]


class _Reference:
    """The official forward pass, executed from the pickled module tree's own attributes (stride, padding,
    BatchNorm eps, LeakyReLU slope, layer wiring `.f`), independent of the SDK's cfg parser and modules."""

    def __init__(self, path):
        ckpt = read_checkpoint_object(path)
        self.root = ckpt["model"]
        self.layers = list(self.root._modules["model"]._modules.values())
        self.save = set(self.root.save)

    @staticmethod
    def _conv(m, x):
        c, bn, act = m._modules["conv"], m._modules["bn"], m._modules["act"]
        y = F.conv2d(x, c._parameters["weight"].float(), None, c.stride, c.padding, c.dilation, c.groups)
        y = F.batch_norm(y, bn._buffers["running_mean"].float(), bn._buffers["running_var"].float(),
                         bn._parameters["weight"].float(), bn._parameters["bias"].float(), False, 0.0, bn.eps)
        assert type(act).__name__ == "LeakyReLU"
        return F.leaky_relu(y, act.negative_slope)

    def _detect(self, m, xs):
        out = []
        for i, x in enumerate(xs):
            conv = m._modules["m"]._modules[str(i)]
            a = m._modules["ia"]._modules[str(i)]._parameters["implicit"].float()
            mm = m._modules["im"]._modules[str(i)]._parameters["implicit"].float()
            y = F.conv2d(x + a, conv._parameters["weight"].float(), conv._parameters["bias"].float()) * mm
            bs, _, ny, nx = y.shape
            y = y.view(bs, m.na, m.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
            grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
            stride = float(m.stride[i])
            xy = (y[..., 0:2] * 2.0 - 0.5 + grid) * stride
            wh = (y[..., 2:4] * 2) ** 2 * m._buffers["anchor_grid"][i].float()
            out.append(torch.cat((xy, wh, y[..., 4:]), -1).view(bs, -1, m.no))
        return torch.cat(out, 1)

    def __call__(self, x):
        ys = []
        for m in self.layers:
            if m.f != -1:
                x = ys[m.f] if isinstance(m.f, int) else [x if j == -1 else ys[j] for j in m.f]
            kind = type(m).__name__
            if kind == "Conv":
                x = self._conv(m, x)
            elif kind == "Concat":
                x = torch.cat(x, m.d)
            elif kind in ("MP", "SP"):
                p = m._modules["m"]
                x = F.max_pool2d(x, p.kernel_size, p.stride, p.padding)
            elif kind == "Upsample":
                x = F.interpolate(x, scale_factor=m.scale_factor, mode=m.mode)
            elif kind == "IDetect":
                x = self._detect(m, x)
            else:
                raise AssertionError(f"unexpected layer {kind}")
            ys.append(x if m.i in self.save else None)
        return x


def test_forward_equals_official_forward_on_real_images(checkpoint, val_images):
    ref = _Reference(checkpoint)
    model, _ = load_checkpoint(checkpoint, fuse=True)
    pre = Preprocessor(ModelMetadata(names=["person"], imgsz=(416, 416)))
    for path in list_images(val_images)[:3]:
        x = torch.from_numpy(pre(read_image(path))[0])
        with torch.no_grad():
            want, got = ref(x), model(x)
        assert got.shape == want.shape == (1, 10647, 6)
        assert torch.allclose(got[..., 4:], want[..., 4:], atol=1e-4), (got[..., 4:] - want[..., 4:]).abs().max()
        assert torch.allclose(got[..., :4], want[..., :4], atol=5e-3), (got[..., :4] - want[..., :4]).abs().max()
        assert (want[..., 4] > 0.5).sum() > 0  # the images do contain confident people


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/sdk-pwned-by-pickle",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = "/tmp/sdk-pwned-by-pickle"
    if os.path.exists(marker):
        os.unlink(marker)
    bad = tmp_path / "evil.pt"
    torch.save({"model": _Evil(), "epoch": 1}, bad)
    with pytest.raises(SDKError, match=r"refusing to load global '(posix|os)\.system'"):
        load_checkpoint(bad)
    assert not os.path.exists(marker)


def test_restricted_unpickler_refuses_builtins_eval():
    payload = b"cbuiltins\neval\n(S'1+1'\ntR."
    import io

    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_official_classes_become_inert_standins(checkpoint):
    ckpt = read_checkpoint_object(checkpoint)
    assert isinstance(ckpt["model"], StandIn)
    assert type(ckpt["model"]).__name__ == "Model" and not hasattr(ckpt["model"], "forward")


def test_sdk_checkpoint_roundtrip_is_weights_only(checkpoint, tmp_path):
    model, _ = load_checkpoint(checkpoint)
    out = save_checkpoint(model, tmp_path / "m.pt", epoch=3)
    raw = torch.load(out, map_location="cpu", weights_only=True)  # plain tensors and built-in types only
    assert raw["format"] == "sdk-yolo-v1" and raw["epoch"] == 3
    again, info = load_checkpoint(out)
    assert info["source"] == "sdk"
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("content,needle", [(b"not a zip and not a pickle", "cannot read it"),
                                            (b"", "cannot read it")])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, content, needle):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(SDKError, match=needle):
        load_checkpoint(p)


def test_truncated_checkpoint_is_a_clear_error(tmp_path, checkpoint):
    p = tmp_path / "cut.pt"
    p.write_bytes(checkpoint.read_bytes()[:100_000])
    with pytest.raises(SDKError, match="checkpoint"):
        load_checkpoint(p)


def test_cfg_is_parsed_not_evaluated(checkpoint, tmp_path):
    from sdk.models.yolo import YOLO

    model, _ = load_checkpoint(checkpoint)
    cfg = dict(model.yaml)
    cfg["backbone"] = [[-1, 1, "Conv", [32, 3, 2, None, 1, "__import__('os').system('true')"]]] + cfg["backbone"][1:]
    marker = tmp_path / "ran"
    cfg["backbone"][0][3][5] = f"__import__('os').system('touch {marker}')"
    with pytest.raises(SDKError, match="is not supported"):
        YOLO(cfg)
    assert not marker.exists()
    bad = dict(model.yaml, backbone=[[-1, 1, "os.system", ["x"]]] + model.yaml["backbone"][1:])
    with pytest.raises(SDKError, match="module 'os.system' is not supported"):
        YOLO(bad)

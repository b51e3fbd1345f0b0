"""Models from other exporters through the SDK: the shared checkpoint exported as the official --grid graph
(ScatterND decode), rewritten to the YOLOv8 layout, with NMS inside (official --end2end for onnxruntime) and as
raw level maps, none with SDK metadata. Each must score within 0.5 pt mAP@.5 of the SDK's own export on the val
split, survive quantize -> eval, and go through the CLI (detect, eval, inspect --write-metadata)."""
import json

import pytest

from sdk.data.datasets import load_dataset
from sdk.detector import Detector
from sdk.evaluation.evaluate import EVAL_CONF, EVAL_IOU, evaluate
from sdk.layouts import ModelOptions

from .conftest import assert_one_line_error, run_cli

pytest.importorskip("torch", reason="building the foreign graphs needs the torch extra")
KINDS = ("yolo", "anchor-free", "nms-ort", "raw")
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


@pytest.fixture(scope="session")
def foreign_models(tmp_path_factory, checkpoint):
    from scripts.bench_layouts import export_foreign

    d = tmp_path_factory.mktemp("foreign")
    return {k: export_foreign(checkpoint, k, d / f"{k}.onnx", imgsz=416) for k in KINDS}


@pytest.fixture(scope="session")
def val_ds(val_images):
    return load_dataset(str(val_images))


def _map50(path, ds, **opts):
    with Detector(str(path), backend="ort", conf=EVAL_CONF, iou=EVAL_IOU, threads=2,
                  options=ModelOptions(**opts)) as det:
        return evaluate(det, ds, progress=False)["map50"], det.layout.name


@pytest.fixture(scope="session")
def sdk_map50(onnx_model, val_ds):
    return _map50(onnx_model, val_ds)[0]


@pytest.mark.parametrize("kind", KINDS)
def test_foreign_layout_scores_like_the_sdk_export(foreign_models, val_ds, sdk_map50, kind):
    import onnx

    proto = onnx.load(str(foreign_models[kind]))
    assert not [p for p in proto.metadata_props if p.key.startswith("sdk.")]  # nothing to lean on
    got, layout = _map50(foreign_models[kind], val_ds, names=["person"], anchors=ANCHORS if kind == "raw" else None)
    assert layout == kind
    assert sdk_map50 > 0.7 and abs(got - sdk_map50) <= 0.005, (kind, got, sdk_map50)


@pytest.mark.parametrize("kind", KINDS)
def test_quantize_then_eval_on_each_layout(foreign_models, val_ds, sdk_map50, train_images, tmp_path, kind):
    from calibrators.data_reader import ImageCalibrationReader, calibration_images
    from sdk.quant.layers import load_model, metadata_of
    from sdk.quant.quantize import calibrate, quantize

    src = str(foreign_models[kind])
    meta = metadata_of(load_model(src))  # from the graph: 416x416 input 'images'
    assert tuple(meta.imgsz) == (416, 416) and meta.input_name == "images"
    reader = ImageCalibrationReader(calibration_images(str(train_images), 4, 0), meta, progress=False)
    ranges = tmp_path / "ranges.json"
    calibrate(src, reader, "minmax", str(ranges))
    out = tmp_path / f"{kind}-int8.onnx"
    report = quantize(src, str(out), str(ranges))
    assert report["int8_nodes"] > 50
    got, layout = _map50(out, val_ds, names=["person"], anchors=ANCHORS if kind == "raw" else None)
    assert layout == kind and got >= sdk_map50 - 0.05, (kind, got, sdk_map50)


def test_cli_detect_eval_and_inspect_write_metadata(foreign_models, checkpoint, val_images, tmp_path):
    raw = foreign_models["raw"]
    p = run_cli("inspect", raw, "--names", "person", "--anchors", checkpoint)
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["layout"] == "raw" and report["anchors"] == ANCHORS and not report["sdk_metadata"]
    assert "not decoded" in p.stdout and "--write-metadata" in p.stdout
    out = tmp_path / "raw-sdk.onnx"
    run_cli("inspect", raw, "--names", "person", "--anchors", checkpoint, "--write-metadata", out, check=True)
    again = json.loads(run_cli("inspect", out, "--json", check=True).stdout.strip().splitlines()[-1])
    assert again["sdk_metadata"] and again["names"] == ["person"] and again["anchors"] == ANCHORS
    # with the metadata written, eval needs no flags and gives the flagged numbers
    flagged = run_cli("eval", "--model", raw, "--data", val_images, "--names", "person", "--anchors", checkpoint,
                      check=True)
    plain = run_cli("eval", "--model", out, "--data", val_images, check=True)
    a, b = (json.loads(x.stdout.strip().splitlines()[-1])["map50"] for x in (flagged, plain))
    assert a == b and a > 0.7
    assert "no SDK metadata" in flagged.stderr and "no SDK metadata" not in plain.stderr
    # detect on the NMS-inside graph without names: class0, said once on stderr
    d = run_cli("detect", "--model", foreign_models["nms-ort"], "--source", val_images, check=True)
    summary = json.loads(d.stdout.strip().splitlines()[-1])
    assert summary["boxes"] > 30 and set(summary["per_class"]) == {"class0"}
    assert d.stderr.count("no class names in the file") == 1


def test_unrecognised_layout_is_one_line_error(tmp_path):
    from onnx import TensorProto, helper, save

    g = helper.make_graph([helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
                           helper.make_node("Flatten", ["pooled"], ["logits"])], "cls",
                          [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 224, 224])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])])
    path = tmp_path / "classifier.onnx"
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    for cmd in (("detect", "--model", path, "--source", tmp_path), ("inspect", path)):
        line = assert_one_line_error(run_cli(*cmd), "logits (1, 3)", "yolo, anchor-free, nms-ort, efficientnms, raw")
        assert "model outputs" in line


def test_camera_bench_and_parity_take_foreign_models(foreign_models, val_images, tmp_path):
    af = foreign_models["anchor-free"]
    jsonl = tmp_path / "dets.jsonl"
    cam = run_cli("camera", "--model", af, "--names", "person", "--source", val_images, "--max-frames", "6",
                  "--headless", "--json", jsonl, check=True)
    lines = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    assert len(lines) == 6 and any(d for line in lines for d in line.get("detections", line.get("boxes", [])))
    assert "Traceback" not in cam.stderr
    bench = run_cli("bench", "--model", foreign_models["nms-ort"], "--runs", "3", "--warmup", "1", check=True)
    assert json.loads(bench.stdout.strip().splitlines()[-1])["imgsz"] == [416, 416]
    e2e = foreign_models["nms-ort"]
    par = run_cli("parity", "--model", e2e, "--int8", e2e, "--data", val_images, "--max-images", "4",
                  "--out-dir", tmp_path / "parity", check=True)
    rows = json.loads(par.stdout.strip().splitlines()[-1])["rows"]
    assert rows[0]["map50"] == rows[1]["map50"] > 0.5


def test_comparator_matches_detections_when_one_graph_has_nms_inside(foreign_models, onnx_model, val_images):
    """Raw rows of an NMS-inside graph (kept boxes) do not line up with the SDK export's candidates: the
    comparator compares the detections instead (each confident reference box with its best match)."""
    from sdk.compare import Comparator

    ds = load_dataset(str(val_images))  # its own copy: the session's val_ds stays whole
    ds.samples = ds.samples[:4]
    models = {"sdk": str(onnx_model), "end2end": str(foreign_models["nms-ort"])}
    with Comparator(models, ds, reference="sdk", threads=2) as cmp:
        result = cmp.run(time=False, outputs=True)
    out = result.row("end2end").outputs
    assert out["compared"] == "detections" and out["unmatched"] == 0
    assert 0.0 <= out["boxes_px"] < 1.0 and out["scores"] < 0.01  # the same network, NMS in another place
    assert "compared" not in result.row("sdk").outputs

"""TensorFlow/Keras -> ONNX (`python -m sdk export --framework tf`) on a small Keras classifier trained here on
Penn-Fudan person vs background crops: checker + parity against TensorFlow on real val images, classification
metadata in the file, then the exported model classifies held-out crops as well as TensorFlow does."""
import importlib.util
import json
import os

import numpy as np
import pytest

# checked without importing: TensorFlow loads only when these tests run, not at collection for the whole suite
pytestmark = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("tensorflow", "tf2onnx")),
                                reason="the tf extra (tensorflow-cpu, tf2onnx) is not installed")

from sdk.classify import ClassifyPreprocessor, classify_metadata, folder_dataset  # noqa: E402
from sdk.data.images import read_image  # noqa: E402
from sdk.classify.demo import DEMO_NAMES as NAMES  # noqa: E402
from tests.conftest import CROP_SIZE as SIZE  # noqa: E402
from tests.conftest import assert_one_line_error, run_cli  # noqa: E402


def _arrays(root):
    """NHWC RGB 0..255 float arrays, resized like the SDK's 'stretch' mode, and labels."""
    pre = ClassifyPreprocessor(classify_metadata(NAMES, (SIZE, SIZE), scale=1.0), "stretch")
    samples = folder_dataset(root, NAMES)
    x = np.concatenate([pre(read_image(p))[0] for p, _ in samples]).transpose(0, 2, 3, 1)
    return x, np.array([c for _, c in samples])


@pytest.fixture(scope="module")
def keras_model(crops, tmp_path_factory):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    x, y = _arrays(crops / "train")
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255.0),
        *(keras.layers.Conv2D(ch, 3, strides=2, activation="relu") for ch in (16, 32, 64)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(np.concatenate([x, x[:, :, ::-1]]), np.concatenate([y, y]), epochs=16, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("keras")
    model.save(folder / "person.keras")
    model.export(str(folder / "saved"), verbose=False)
    for f in (folder / "labels.txt", folder / "saved" / "labels.txt"):
        f.write_text("\n".join(NAMES) + "\n")
    xv, yv = _arrays(crops / "val")
    tf_top1 = float(np.mean(model.predict(xv, verbose=0).argmax(1) == yv))
    return folder, tf_top1


def _export(weights, out, val_images):
    proc = run_cli("export", "--framework", "tf", "--weights", weights, "-o", out, "--check-images", val_images,
                   "--check-count", "6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_keras_file_export_parity_metadata_and_accuracy(keras_model, crops, val_images, tmp_path):
    import onnx

    folder, tf_top1 = keras_model
    out = tmp_path / "person.onnx"
    rep = _export(folder / "person.keras", out, val_images)
    assert rep["parity_images"] == 6 and rep["max_abs_diff"] < 1e-4 and rep["top1_agreement"] == 1.0
    assert rep["output_format"] == "probs" and rep["scale"] == 1.0 and rep["imgsz"] == [SIZE, SIZE]
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert props["sdk.task"] == "classify" and props["sdk.names"] == NAMES and props["sdk.channel_order"] == "RGB"
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 3, SIZE, SIZE]  # NCHW
    res = run_cli("classify", "--model", out, "--source", crops / "val", "--eval")
    assert res.returncode == 0, res.stderr[-2000:]
    onnx_top1 = json.loads(res.stdout.strip().splitlines()[-1])["eval"]["fp32"]["top1"]
    assert tf_top1 >= 0.8, tf_top1  # the Keras model learned the task on held-out images
    assert abs(onnx_top1 - tf_top1) <= 0.01, (onnx_top1, tf_top1)  # and the ONNX file is the same classifier


def test_saved_model_export_matches_keras_export(keras_model, val_images, tmp_path, crops):
    folder, _ = keras_model
    rep = _export(folder / "saved", tmp_path / "saved.onnx", val_images)
    assert "SavedModel" in rep["framework"] and rep["scale"] == 1.0  # Rescaling found in the graph
    assert rep["max_abs_diff"] < 1e-4 and rep["top1_agreement"] == 1.0
    q = tmp_path / "saved.int8.onnx"
    res = run_cli("classify", "--model", tmp_path / "saved.onnx", "--source", crops / "val", "--eval", "--int8", q,
                  "--calib-count", "32")
    assert res.returncode == 0, res.stderr[-2000:]
    ev = json.loads(res.stdout.strip().splitlines()[-1])["eval"]
    assert abs(ev["int8"]["top1"] - ev["fp32"]["top1"]) <= 0.05, ev


def test_bad_tf_inputs_are_one_line_errors(keras_model, tmp_path):
    folder, _ = keras_model
    assert_one_line_error(run_cli("export", "--framework", "tf", "--weights", tmp_path / "nope", "-o",
                                  tmp_path / "x.onnx"), "--weights", "SavedModel")
    assert_one_line_error(run_cli("export", "--framework", "tf", "--weights", folder / "person.keras", "-o",
                                  tmp_path / "x.onnx", "--imgsz", "96"), "--imgsz", "64x64")
    assert not (tmp_path / "x.onnx").exists()

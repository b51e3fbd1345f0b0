"""TensorFlow SavedModel / Keras model -> ONNX with tf2onnx, checked, compared with TensorFlow, SDK metadata inside.

`python -m sdk export --framework tf --weights <SavedModel dir | model.keras | model.h5> -o m.onnx`

- The graph is converted from a `tf.function` around the model (Keras 3 models and SavedModel signatures alike)
  with `inputs_as_nchw`, so the ONNX input is NCHW 'images' like every SDK model and the runners need no layout
  switch; the single output is renamed 'output'.
- Classification metadata goes into `metadata_props` (`sdk.classify.classify_metadata`): class names from a
  labels.txt / names.txt beside the weights or in a SavedModel's assets/ (one per line; else class0..N-1),
  input size from the model (or --imgsz when the model's is dynamic), RGB, 'stretch' resize (what
  keras.utils.image_dataset_from_directory does). A Keras model that starts with a Rescaling layer takes raw
  0..255 pixels (scale 1; for a SavedModel this is read from the op names Keras leaves in the graph);
  otherwise pixels are scaled to 0..1. Whether the output is logits or probabilities is
  read from the model's outputs on the check images.
- `onnx.checker` (full check), then the parity check: the same pre-processed images through TensorFlow (NHWC) and
  onnxruntime (NCHW); the report gives the max abs difference and the top-1 agreement.
"""
import os
from pathlib import Path

import numpy as np

from ..data.images import list_images, read_image
from ..deps import require
from ..errors import SDKError
from ..fileio import atomic_path

LABEL_FILES = ("labels.txt", "names.txt", "assets/labels.txt", "assets/names.txt")
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
DEFAULT_OPSET = 13


def export_tf(weights, output, imgsz=None, opset=DEFAULT_OPSET, dynamic_batch=False, check_images=None,
              check_count=8, names=None, resize="stretch", scale=None):
    import onnx

    from ..classify import ClassifyPreprocessor, classify_metadata, set_classify_props

    if not str(output).endswith(".onnx"):
        raise SDKError(f"output: got '{output}', expected a path ending in .onnx")
    if not 11 <= opset <= 21:
        raise SDKError(f"opset: got {opset}, expected 11..21 (TensorRT 8.5 reads up to 17)")
    _check_weights(weights)  # before the multi-second TensorFlow import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up banner is not the user's business
    tf = require("tensorflow", "TensorFlow export")
    tf2onnx = require("tf2onnx", "TensorFlow export")
    fn, in_shape, rescales, kind = load_tf_model(tf, weights)
    hw = _input_size(in_shape, imgsz, weights)
    if in_shape[-1] != 3:
        raise SDKError(f"weights {weights}: got an input with {in_shape[-1]} channels, expected an NHWC image "
                       f"model with 3 channels")
    spec = (tf.TensorSpec((None if dynamic_batch else 1, *hw, 3), tf.float32, name="images"),)
    if scale is None:
        scale = 1.0 if rescales else 1 / 255.0
    images = _check_frames(check_images, check_count, hw)
    probe_meta = classify_metadata(["?"], hw, scale=scale)
    pre = ClassifyPreprocessor(probe_meta, resize)
    xs = [pre(img)[0] for img in images]  # NCHW float32, what onnxruntime gets
    ref = [np.asarray(fn(tf.constant(x.transpose(0, 2, 3, 1)))) for x in xs]
    if ref[0].ndim != 2:
        raise SDKError(f"weights {weights}: got an output of shape {ref[0].shape}, expected (batch, classes) "
                       f"scores of an image classifier")
    nc = ref[0].shape[1]
    names = _class_names(weights, names, nc)
    probs = all(np.all(r >= 0) and np.allclose(r.sum(-1), 1, atol=1e-3) for r in ref)
    meta = classify_metadata(names, hw, "probs" if probs else "logits", scale=scale, source=Path(weights).name)
    try:
        proto, _ = tf2onnx.convert.from_function(tf.function(fn), input_signature=spec, opset=opset,
                                                 inputs_as_nchw=["images"])
    except Exception as e:  # tf2onnx raises plain exceptions for unsupported ops
        raise SDKError(f"weights {weights}: tf2onnx cannot convert it ({str(e).strip().splitlines()[-1][:200]}), "
                       f"expected a model made of ONNX-convertible TensorFlow ops") from None
    _rename_output(proto, "output")
    proto.producer_name = "edge-sdk (tf2onnx)"
    set_classify_props(proto, meta, resize)
    onnx.checker.check_model(proto, full_check=True)
    report = {"framework": f"tensorflow {tf.__version__} ({kind})", "tf2onnx": tf2onnx.__version__, "opset": opset,
              "imgsz": list(hw), "classes": nc, "output_format": meta.output_format, "scale": scale,
              "dynamic_batch": dynamic_batch}
    with atomic_path(output, "ONNX output", suffix=".onnx") as tmp:
        onnx.save(proto, str(tmp))
        report.update(parity(str(tmp), xs, ref))
    report["path"] = str(output)
    report["size_mb"] = round(os.path.getsize(output) / 2**20, 3)
    return report


def load_tf_model(tf, weights):
    """(callable NHWC batch -> scores, input shape (H, W, C), starts-with-Rescaling, kind) for a SavedModel or Keras
    file."""
    path = Path(weights)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:
            raise SDKError(f"weights {weights}: TensorFlow cannot load the SavedModel ({_last_line(e)}), expected "
                           f"a SavedModel folder") from None
        sig = loaded.signatures.get("serving_default")
        if sig is None:
            raise SDKError(f"weights {weights}: no 'serving_default' signature, expected a SavedModel exported "
                           f"for serving (keras model.export() or tf.saved_model.save with a signature)")
        (in_name, in_spec), = sig.structured_input_signature[1].items()
        out_names = list(sig.structured_outputs)
        if len(out_names) != 1:
            raise SDKError(f"weights {weights}: got {len(out_names)} outputs ({', '.join(out_names)}), expected "
                           f"one classifier output")

        def fn(x):
            return sig(**{in_name: x})[out_names[0]]

        fn.keep_alive = loaded  # the signature's variables live as long as the loaded object
        return fn, tuple(in_spec.shape[1:]), _starts_with_rescaling(sig), "SavedModel"
    if path.is_file() and path.suffix.lower() in KERAS_SUFFIXES:
        keras = require("keras", "Keras export")
        try:
            model = keras.models.load_model(str(path), compile=False)
        except Exception as e:
            raise SDKError(f"weights {weights}: Keras cannot load it ({_last_line(e)}), expected a model saved "
                           f"with model.save()") from None
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise SDKError(f"weights {weights}: got {len(model.inputs)} inputs and {len(model.outputs)} outputs, "
                           f"expected one image input and one scores output")
        rescales = bool(model.layers) and type(model.layers[0]).__name__ == "Rescaling"
        return (lambda x: model(x, training=False)), tuple(model.inputs[0].shape[1:]), rescales, "Keras"
    _check_weights(weights)


def _check_weights(weights):
    path = Path(weights)
    if not ((path.is_dir() and (path / "saved_model.pb").is_file()) or
            (path.is_file() and path.suffix.lower() in KERAS_SUFFIXES)):
        raise SDKError(f"weights {weights}: not a SavedModel folder or Keras file, expected a folder with "
                       f"saved_model.pb or a file ending in {', '.join(KERAS_SUFFIXES)}")


def _starts_with_rescaling(sig):
    """Keras SavedModels keep layer names in op names ('sequential/rescaling/mul'): look at the first ops."""
    for f in sig.graph.as_graph_def().library.function:
        first = [n.name.split("/") for n in f.node_def[:6]]
        if any(len(parts) > 1 and parts[1].startswith("rescaling") for parts in first):
            return True
    return False


def _input_size(in_shape, imgsz, weights):
    if len(in_shape) != 3:
        raise SDKError(f"weights {weights}: got input shape {in_shape}, expected (batch, height, width, 3)")
    fixed = tuple(in_shape[:2])
    asked = tuple((list(imgsz) * 2)[:2]) if imgsz else None
    if None in fixed:
        return asked or (224, 224)
    if asked and asked != fixed:
        raise SDKError(f"imgsz: got {asked[0]}x{asked[1]}, expected the model's fixed input {fixed[0]}x{fixed[1]}")
    return tuple(int(v) for v in fixed)


def _class_names(weights, names, nc):
    if names is None:
        base = Path(weights) if Path(weights).is_dir() else Path(weights).parent
        for rel in LABEL_FILES:
            if (base / rel).is_file():
                names = [n.strip() for n in (base / rel).read_text().splitlines() if n.strip()]
                break
    if names is None:
        return [f"class{i}" for i in range(nc)]
    if len(names) != nc:
        raise SDKError(f"class names for {weights}: got {len(names)}, expected one per model output ({nc})")
    return list(names)


def _check_frames(check_images, count, hw):
    if check_images:
        return [read_image(p) for p in list_images(check_images, "check_images")[:count]]
    import cv2

    rng = np.random.default_rng(0)  # a reproducible textured frame when the user gives no images
    return [cv2.GaussianBlur(rng.integers(0, 255, (hw[0] + 37, hw[1] + 23, 3), dtype=np.uint8), (7, 7), 0)]


def _rename_output(proto, name):
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    proto.graph.output[0].name = name


def parity(onnx_path, xs, ref):
    from ..runners.onnxruntime import OnnxRuntimeRunner

    worst, agree = 0.0, 0
    with OnnxRuntimeRunner(onnx_path) as runner:
        for x, r in zip(xs, ref):
            out = runner.infer(x)["output"]
            worst = max(worst, float(np.abs(out - r).max()))
            agree += int(np.argmax(out[0]) == np.argmax(r[0]))
    return {"parity_images": len(xs), "max_abs_diff": worst, "top1_agreement": agree / len(xs)}


def _last_line(e):
    text = str(e).strip()
    return text.splitlines()[-1][:200] if text else type(e).__name__

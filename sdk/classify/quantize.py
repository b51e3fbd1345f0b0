"""INT8 for classifiers: onnxruntime `quantize_static` (QDQ) calibrated on images pre-processed like inference.

The calibration reader is `calibrators.data_reader.ImageCalibrationReader` with the classifier's resize/crop
pre-processing swapped in, so calibration sees exactly what `sdk.classify.Classifier` feeds the model. QDQ is
the format TensorRT's explicit quantization also reads. The SDK metadata is copied to the INT8 file with
precision 'int8'.
"""
from dataclasses import replace

from calibrators.data_reader import ImageCalibrationReader

from ..deps import require
from ..errors import SDKError
from ..fileio import atomic_path, discard, temp_beside
from ..quant.methods import ORT_METHODS as CALIBRATE_METHODS, canonical_method
from .metadata import classify_extras, set_classify_props
from .preprocess import ClassifyPreprocessor


class ClassifierCalibrationReader(ImageCalibrationReader):
    def __init__(self, paths, meta, resize, crop_fraction, **kw):
        super().__init__(paths, meta, **kw)
        self.pre = ClassifyPreprocessor(meta, resize, crop_fraction)


def quantize_classifier(model, output, calib_paths, method="minmax", per_channel=True, batch_size=1,
                        max_batches=None, progress=False):
    """FP32 classifier ONNX -> QDQ INT8 ONNX; returns a report."""
    import onnx

    from ..runners.onnxruntime import OnnxRuntimeRunner

    q = require("onnxruntime.quantization", "INT8 quantization")
    method = canonical_method(method)
    if method not in CALIBRATE_METHODS:
        raise SDKError(f"calib_method: got '{method}', expected one of {', '.join(CALIBRATE_METHODS)}")
    if not str(output).endswith(".onnx"):
        raise SDKError(f"output: got '{output}', expected a path ending in .onnx")
    with OnnxRuntimeRunner(model) as runner:
        meta, extras, input_name = runner.metadata, classify_extras(runner), runner.input.name
    if meta.task != "classify":
        raise SDKError(f"model {model}: got task '{meta.task}', expected a classifier (task 'classify')")
    reader = ClassifierCalibrationReader(calib_paths, meta, extras["resize"], extras["crop_fraction"],
                                         batch_size=batch_size, input_name=input_name, max_batches=max_batches,
                                         progress=progress)
    prepped = temp_beside(output, "INT8 output", suffix=".onnx")
    try:
        # shape inference + graph optimisation first, as onnxruntime's quantization docs recommend
        q.quant_pre_process(str(model), str(prepped), skip_symbolic_shape=True)
        with atomic_path(output, "INT8 output", suffix=".onnx") as tmp:
            q.quantize_static(str(prepped), str(tmp), reader, quant_format=q.QuantFormat.QDQ,
                              per_channel=per_channel, activation_type=q.QuantType.QInt8,
                              weight_type=q.QuantType.QInt8,
                              calibrate_method={"minmax": q.CalibrationMethod.MinMax,
                                                "entropy": q.CalibrationMethod.Entropy,
                                                "percentile": q.CalibrationMethod.Percentile}[method])
            proto = onnx.load(str(tmp))
            set_classify_props(proto, replace(meta, precision="int8"), extras["resize"], extras["crop_fraction"])
            onnx.checker.check_model(proto)
            onnx.save(proto, str(tmp))
    finally:
        discard(prepped)
    return {"int8_path": str(output), "calib_images": len(reader) * batch_size, "calib_method": method,
            "per_channel": per_channel, "calib_fingerprint": reader.fingerprint()[:16]}

"""The calibration vocabulary shared by every INT8 path (onnxruntime PTQ, TensorRT calibrators, QAT, classifiers).

One set of names; each path supports a subset and says which. Older spellings are accepted as aliases.
"""
CALIB_METHODS = ("entropy", "minmax", "percentile")
METHOD_ALIASES = {"max": "minmax"}  # qat's earlier name for the max-abs range

ORT_METHODS = CALIB_METHODS  # onnxruntime quantize_static's CalibrationMethod
TRT_METHODS = ("entropy", "minmax")  # IInt8EntropyCalibrator2, IInt8MinMaxCalibrator
QAT_METHODS = ("percentile", "minmax")  # the QAT histogram's amax: a percentile of |x| or its max


def canonical_method(name: str) -> str:
    return METHOD_ALIASES.get(name, name)

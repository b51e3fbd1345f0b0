"""Calibration data readers (onnxruntime protocol) and TensorRT INT8 calibrators, sharing one pre-processing."""
from .data_reader import ImageCalibrationReader, calibration_images

__all__ = ["ImageCalibrationReader", "calibration_images"]

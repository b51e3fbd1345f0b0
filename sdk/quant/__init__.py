"""INT8 post-training quantization (onnxruntime QDQ), TensorRT calibration caches and precision analyses."""

"""On-Jetson tools: `doctor` (is this device ready?) and `selftest` (prove the TensorRT path on hardware)."""

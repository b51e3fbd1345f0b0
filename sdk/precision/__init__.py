"""Precision plans: one description of which layers run in which precision, for onnxruntime QDQ and TensorRT."""
from .plan import LayerInfo, PrecisionPlan, layer_index

__all__ = ["LayerInfo", "PrecisionPlan", "layer_index"]

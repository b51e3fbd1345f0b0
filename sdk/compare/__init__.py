"""Model against model: outputs, mAP and interleaved latency of N runners on one data loader (`Comparator`)."""
from .comparator import CONFIDENT, Comparator, Comparison, ModelResult, compare, score_model

__all__ = ["CONFIDENT", "Comparator", "Comparison", "ModelResult", "compare", "score_model"]

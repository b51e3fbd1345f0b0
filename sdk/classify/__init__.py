"""Image classification through the same runners as detection, one module per job:

- `metadata`: what the ONNX file says about the classifier (classify_metadata, set_classify_props);
- `preprocess`: frames to the network input (ClassifyPreprocessor);
- `classifier`: `Classifier('m.onnx')(bgr) -> Classification` (top-k);
- `evaluate`: folder-per-class data and top-1/top-5 (folder_dataset, evaluate_folder);
- `quantize`: INT8 QDQ with onnxruntime, calibrated on frames pre-processed as at inference;
- `crops`: a person/background dataset cut from detection labels (demos, tests).
"""
from .classifier import Classification, Classifier, softmax
from .evaluate import evaluate_folder, folder_dataset
from .metadata import OUTPUT_FORMATS, RESIZE_MODES, classify_extras, classify_metadata, set_classify_props
from .preprocess import ClassifyPreprocessor

__all__ = ["Classification", "Classifier", "ClassifyPreprocessor", "OUTPUT_FORMATS", "RESIZE_MODES",
           "classify_extras", "classify_metadata", "evaluate_folder", "folder_dataset", "set_classify_props",
           "softmax"]

"""NVIDIA Triton Inference Server: model repositories (`export-triton`), the local test server, and the
`triton://` runner (sdk/runners/triton.py). Nothing here imports tritonclient until it is needed."""
from .repository import ExportedRepository, build_config, export_repository

__all__ = ["ExportedRepository", "build_config", "export_repository"]

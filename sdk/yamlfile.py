"""Read a YAML file a user handed in (model cfg, precision plan, class names, anchors) as plain data."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SDKError


def read_yaml(path: str | Path, what: str, expected: str) -> Any:
    """`yaml.safe_load` of the file (Python tags are refused by safe_load, never built). A missing file or invalid
    YAML is one line: `<what>: file not found, expected <expected>` / `<what>: not valid YAML (...), expected ...`."""
    import yaml  # noqa: PLC0415 - a runtime dependency, imported only by the jobs that read YAML

    p = Path(path)
    if not p.is_file():
        raise SDKError(f"{what}: file not found, expected {expected}")
    try:
        return yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problem = " ".join(str(getattr(e, "problem", None) or e).split())[:80]
        raise SDKError(f"{what}: not valid YAML ({problem}), expected {expected}") from None

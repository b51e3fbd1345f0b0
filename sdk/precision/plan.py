"""A precision plan: a default precision plus ordered overrides, resolved against a model's layers.

YAML form (one source of truth for onnxruntime QDQ export and TensorRT layer precisions):

    default: int8            # fp32 | fp16 | int8
    overrides:               # later entries win
      - {block: head, precision: fp32}          # backbone / neck / head (from the YOLO cfg)
      - {name: "/model.77/*", precision: fp32}  # glob on the layer (ONNX node) name
      - {regex: "model\\.7[0-9]/", precision: fp16}
      - {op: Concat, precision: fp32}           # ONNX op type (or TensorRT layer type)
      - {heaviest: 10, precision: int8}         # the K layers with the most FLOPs
    constraints: obey        # TensorRT: obey | prefer | none

CLI shorthand `pattern:precision` (as in `--layer-precision 'model.77*:fp32'`) is parsed by `from_specs`:
`block:head:fp32`, `op:Conv:int8`, `re:<regex>:fp16`, `heaviest:10:int8`, anything else is a name glob.
"""
import difflib
import fnmatch
import re
from dataclasses import dataclass, field

from ..errors import SDKError

PRECISIONS = ("fp32", "fp16", "int8")
SELECTORS = ("block", "name", "regex", "op", "heaviest")
_INDEX_RE = re.compile(r"model\.(\d+)(?:[./]|$)")


def layer_index(name):
    """The YOLO cfg layer index encoded in an ONNX/TensorRT layer name ('/model.12/conv/Conv' -> 12)."""
    m = _INDEX_RE.search(name)
    return int(m.group(1)) if m else None


def block_of(name, blocks):
    """The block ("backbone", "neck", "head") whose cfg layer indices include the layer `name`, else None."""
    idx = layer_index(name)
    if idx is None:
        return None
    for block, indices in (blocks or {}).items():
        if idx in indices:
            return block
    return None


@dataclass
class LayerInfo:
    name: str
    op_type: str
    flops: float = 0.0
    block: str = None  # backbone / neck / head when known


@dataclass
class Override:
    selector: str
    value: object
    precision: str

    def describe(self):
        return f"{self.selector}={self.value}:{self.precision}"


@dataclass
class PrecisionPlan:
    default: str = "fp32"
    overrides: list = field(default_factory=list)
    constraints: str = "obey"

    def __post_init__(self):
        _check_precision(self.default, "precision plan default")
        if self.constraints not in ("obey", "prefer", "none"):
            raise SDKError(f"precision plan constraints: got '{self.constraints}', expected obey, prefer or none")

    @classmethod
    def load(cls, path):
        from ..yamlfile import read_yaml  # noqa: PLC0415

        d = read_yaml(path, f"precision plan {path}", "a YAML plan") or {}
        return cls.from_dict(d, str(path))

    @classmethod
    def from_dict(cls, d, origin="precision plan"):
        if not isinstance(d, dict):
            raise SDKError(f"{origin}: got {type(d).__name__}, expected a mapping with default/overrides")
        unknown = set(d) - {"default", "overrides", "constraints"}
        if unknown:
            raise SDKError(f"{origin}: unknown key '{sorted(unknown)[0]}', expected default, overrides, constraints")
        overrides = []
        for i, o in enumerate(d.get("overrides") or []):
            keys = [k for k in SELECTORS if k in (o or {})]
            if len(keys) != 1 or "precision" not in o:
                raise SDKError(f"{origin}: override {i} is {o}, expected one of {', '.join(SELECTORS)} and a "
                               f"precision")
            overrides.append(Override(keys[0], o[keys[0]], _check_precision(o["precision"], f"{origin} "
                                                                            f"override {i}")))
        return cls(d.get("default", "fp32"), overrides, d.get("constraints", "obey"))

    @classmethod
    def from_specs(cls, specs, default="fp32", constraints="obey"):
        """Parse CLI `pattern:precision` strings."""
        overrides = []
        for spec in specs or []:
            body, _, prec = spec.rpartition(":")
            if not body:
                raise SDKError(f"layer_precision: got '{spec}', expected PATTERN:PRECISION (e.g. 'model.77*:fp32')")
            _check_precision(prec, f"layer_precision '{spec}'")
            kind, _, value = body.partition(":")
            if kind in ("block", "op", "heaviest") and value:
                overrides.append(Override(kind, int(value) if kind == "heaviest" else value, prec))
            elif kind == "re" and value:
                overrides.append(Override("regex", value, prec))
            else:
                overrides.append(Override("name", body, prec))
        return cls(default, overrides, constraints)

    @classmethod
    def for_blocks(cls, blocks, precision="int8", default="fp32"):
        """`default` everywhere except the named blocks (backbone / neck / head), which run in `precision`."""
        return cls(default, [Override("block", b, _check_precision(precision, f"block {b}")) for b in blocks])

    def extend(self, other):
        """This plan with `other`'s overrides appended (they win)."""
        return PrecisionPlan(self.default, self.overrides + other.overrides, self.constraints)

    def to_dict(self):
        return {"default": self.default, "constraints": self.constraints,
                "overrides": [{o.selector: o.value, "precision": o.precision} for o in self.overrides]}

    def matches(self, override, layers):
        if override.selector == "heaviest":
            k = int(override.value)
            ranked = sorted((layer for layer in layers if layer.flops > 0), key=lambda x: -x.flops)
            return {layer.name for layer in ranked[:k]}
        out = set()
        for layer in layers:
            if override.selector == "block":
                hit = layer.block == override.value
            elif override.selector == "op":
                hit = layer.op_type.lower() == str(override.value).lower()
            elif override.selector == "regex":
                hit = re.search(override.value, layer.name) is not None
            else:
                hit = fnmatch.fnmatchcase(layer.name, override.value) or fnmatch.fnmatchcase(
                    layer.name, f"*{override.value}")
            if hit:
                out.add(layer.name)
        return out

    def resolve(self, layers, strict=True):
        """{layer name: precision} for every layer. An override that matches nothing is an error listing the
        closest layer names (or the known blocks / op types)."""
        result = {layer.name: self.default for layer in layers}
        for o in self.overrides:
            hits = self.matches(o, layers)
            if not hits and strict:
                raise SDKError(f"precision plan override {o.describe()}: matches no layer, expected "
                               f"{_suggest(o, layers)}")
            for name in hits:
                result[name] = o.precision
        return result


def precision_counts(resolved):
    """{precision: number of layers} of a `resolve()` result, for reports."""
    counts = {}
    for p in resolved.values():
        counts[p] = counts.get(p, 0) + 1
    return counts


def _check_precision(p, what):
    if p not in PRECISIONS:
        raise SDKError(f"{what}: got precision '{p}', expected one of {', '.join(PRECISIONS)}")
    return p


def _suggest(o, layers):
    if o.selector == "block":
        blocks = sorted({layer.block for layer in layers if layer.block})
        return f"a block among {', '.join(blocks) or '(model has no block metadata)'}"
    if o.selector == "op":
        return f"an op type among {', '.join(sorted({layer.op_type for layer in layers}))}"
    names = [layer.name for layer in layers]
    close = difflib.get_close_matches(str(o.value), names, n=3, cutoff=0.3)
    return f"a layer name such as {', '.join(close or names[:3])}"

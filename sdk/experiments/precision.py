"""The machinery behind the precision analyses: one calibration, many quantized variants, each scored with the
same evaluator and timed side by side (`sdk.compare.Comparator`); the commands write the results through
`sdk.report.write_outputs` (markdown + JSON + PNG, atomically)."""
import os
import tempfile
from dataclasses import dataclass, field

from ..errors import SDKError
from ..precision.plan import PrecisionPlan
from ..quant.layers import check_float_model, load_model, metadata_of, onnx_layers
from ..quant.quantize import QuantConfig, calibrate, quantize

PARTIAL_PLANS = {
    "fp32": None,
    "int8 (all)": ["default:int8"],
    "backbone int8": ["block:backbone"],
    "neck int8": ["block:neck"],
    "head int8": ["block:head"],
    "backbone+neck int8": ["block:backbone", "block:neck"],
}


def block_plan(blocks):
    """FP32 everywhere except the given blocks, which go INT8."""
    if blocks == ["default:int8"]:
        return PrecisionPlan(default="int8")
    return PrecisionPlan.for_blocks([b.split(":", 1)[1] for b in blocks])


@dataclass
class Workspace:
    """An FP32 model, its calibration ranges and the evaluation data; quantized variants live in a temp folder."""
    model: str
    calib_paths: list
    dataset: object
    config: QuantConfig = field(default_factory=QuantConfig)
    threads: int = 2
    progress: bool = False

    def __post_init__(self):
        self.proto = load_model(self.model)
        check_float_model(self.proto, self.model)
        self.meta = metadata_of(self.proto)
        if not self.meta.has_sdk_props:
            raise SDKError(f"model {self.model}: no SDK metadata, expected an ONNX from 'python -m sdk export'")
        self.layers = onnx_layers(self.proto)
        self._tmp = tempfile.TemporaryDirectory(prefix="sdk-quant-")
        self.ranges_cache = os.path.join(self._tmp.name, "ranges.json")
        self._variants = 0
        self._scores = {}

    def calibrate(self):
        from calibrators.data_reader import ImageCalibrationReader

        reader = ImageCalibrationReader(self.calib_paths, self.meta, progress=self.progress)
        self.ranges = calibrate(self.model, reader, self.config.method, self.ranges_cache, self.config.percentile)
        self.calib_fingerprint = reader.fingerprint()
        return self

    def variant(self, plan, output=None):
        """Quantize with `plan` (None = the FP32 model itself); returns (path, report)."""
        if plan is None:
            return self.model, {"size_mb": round(os.path.getsize(self.model) / 2**20, 2), "int8_nodes": 0}
        self._variants += 1
        out = output or os.path.join(self._tmp.name, f"variant{self._variants}.onnx")
        report = quantize(self.model, out, self.ranges_cache, plan, self.config,
                          extra_metadata={"calibration": self.calib_fingerprint})
        return out, report

    def score(self, path):
        """mAP of a model on the workspace data (conf 0.001 / IoU 0.65, as the official test.py)."""
        from ..compare import score_model

        if path not in self._scores:
            r = score_model(path, self.dataset, threads=self.threads, progress=self.progress)
            self._scores[path] = {"map50": r["map50"], "map50_95": r["map50_95"]}
        return self._scores[path]

    def latency(self, paths, runs=30, rounds=5):
        """{label: p50 ms} for {label: model path}, timed interleaved in one run (paths that repeat, once)."""
        from ..compare import Comparator

        with Comparator(paths, threads=self.threads) as cmp:
            timing = cmp.time(runs=runs, rounds=rounds)
        return {k: t["p50_ms"] for k, t in timing.items()}

    def close(self):
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def conv_layers(layers):
    return [layer for layer in layers if layer.op_type == "Conv"]


def sensitivity(ws, level="block", limit=None):
    """mAP@.5 with one block (or one Conv layer) INT8 and the rest FP32. Rows sorted as the model runs."""
    base = ws.score(ws.model)
    if level == "block":
        units = [(b, PrecisionPlan.from_dict({"overrides": [{"block": b, "precision": "int8"}]}))
                 for b in ("backbone", "neck", "head") if b in (ws.meta.blocks or {})]
    else:
        convs = conv_layers(ws.layers)[:limit] if limit else conv_layers(ws.layers)
        units = [(layer.name, PrecisionPlan.from_dict({"overrides": [{"name": layer.name, "precision": "int8"}]}))
                 for layer in convs]
    rows = []
    from ..progress import progress_bar

    for unit, plan in progress_bar(units, desc="sensitivity", disable=not ws.progress):
        path, _ = ws.variant(plan)
        s = ws.score(path)
        rows.append({"unit": unit, "map50": s["map50"], "map50_95": s["map50_95"],
                     "drop_pt": (base["map50"] - s["map50"]) * 100})
        os.unlink(path)
    return base, rows


def greedy_plan(ws, max_drop_pt, layer_sensitivity, full_int8_path=None):
    """Start from full INT8 and move the most sensitive Conv layers back to FP32 one at a time until the mAP@.5
    drop is within budget. Returns (plan, path, score, fp32 layer names, trail)."""
    base = ws.score(ws.model)["map50"]
    ranked = [r["unit"] for r in sorted(layer_sensitivity, key=lambda r: -r["drop_pt"])]
    kept_float, trail = [], []
    while True:
        plan = PrecisionPlan.from_dict({"default": "int8",
                                        "overrides": [{"name": n, "precision": "fp32"} for n in kept_float]})
        path = full_int8_path if (full_int8_path and not kept_float) else ws.variant(plan)[0]
        s = ws.score(path)
        drop = (base - s["map50"]) * 100
        trail.append({"fp32_layers": len(kept_float), "map50": s["map50"], "drop_pt": drop})
        if drop <= max_drop_pt or len(kept_float) >= len(ranked):
            return plan, path, s, kept_float, trail
        kept_float.append(ranked[len(kept_float)])

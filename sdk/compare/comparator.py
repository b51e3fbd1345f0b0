"""Several models (runners) on one data loader: their outputs compared, each scored with one pre-/post-processing,
all timed side by side in one run. What Polygraphy's `Comparator` is to its runners, for detectors:

    from sdk.compare import Comparator
    with Comparator({"fp32": "m.onnx", "int8": "m.int8.onnx"}, dataset=load_dataset("data/val")) as cmp:
        result = cmp.run(runs=30)            # Comparison: one row per model
    print(result.row("int8").speedup, result.row("int8").map50_delta_pt)

- Scoring: every image is read once; each model runs through `sdk.detector.Detector`'s own pre-processing,
  output decoding and NMS at the evaluation settings (conf 0.001, IoU 0.65, as the official test.py), and the
  predictions are scored by `sdk.evaluation` (COCO mAP, pycocotools-equivalent). The numbers equal `python -m
  sdk eval` on each model.
- Outputs: the canonical (boxes, 5 + classes) rows of each model against the reference model's on the same
  input: the largest box and score differences, on the boxes the reference is confident about and on all.
- Timing: `sdk.bench.interleaved_model_bench` (rounds of each model in turn). The onnxruntime sessions the
  comparator opens spin in runs only (`spin="run"`, sdk.bench.BENCH_SPIN): with onnxruntime's default spinning,
  the idle sessions' threads steal the cores of the one being timed and every ratio moves.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np

from ..bench import BENCH_SPIN
from ..errors import SDKError

CONFIDENT = 0.25  # reference objectness above which a candidate box counts for the box difference


@dataclass
class ModelResult:
    """One model's row: what it is, how accurate, how fast, how close to the reference."""
    label: str
    path: str | None = None
    size_mb: float | None = None
    map50: float | None = None
    map50_95: float | None = None
    official_map50: float | None = None
    official_map50_95: float | None = None
    predictions: int | None = None
    timing: dict | None = None  # p50_ms, p95_ms, mean_ms, fps
    speedup: float | None = None  # reference p50 / this p50
    map50_delta_pt: float | None = None  # (this - reference) mAP@.5 in points
    map50_95_delta_pt: float | None = None
    outputs: dict | None = None  # max differences from the reference's raw outputs

    @property
    def p50_ms(self) -> float | None:
        return self.timing["p50_ms"] if self.timing else None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Comparison:
    """The result of `Comparator.run`: rows in the order the models were given."""
    rows: list[ModelResult]
    reference: str
    images: int = 0
    boxes: int = 0
    runs: int = 0
    rounds: int = 0
    threads: int | None = None
    spinning: str = BENCH_SPIN  # the sessions' spin setting (sdk.runners.onnxruntime.session_options)
    machine: dict = field(default_factory=dict)

    def row(self, label: str) -> ModelResult:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def to_dict(self) -> dict:
        return {"reference": self.reference, "rows": [r.to_dict() for r in self.rows], "images": self.images,
                "boxes": self.boxes, "runs": self.runs, "rounds": self.rounds, "threads": self.threads,
                "spinning": self.spinning, "machine": self.machine}


class Comparator:
    """Models by label -> one Comparison. `models` maps a label to an .onnx / engine path or a loaded Runner
    (e.g. `sdk.runners.pytorch.TorchRunner` for a PyTorch column); the first is the reference unless named."""

    def __init__(self, models: Mapping[str, object], dataset=None, reference: str | None = None,
                 threads: int | None = 2, conf: float | None = None, iou: float | None = None, max_det: int = 300,
                 progress: bool = False):
        from ..evaluation.evaluate import EVAL_CONF, EVAL_IOU

        if not models:
            raise SDKError("models: got none, expected at least one model to compare")
        self.models = dict(models)
        self.reference = reference or next(iter(self.models))
        if self.reference not in self.models:
            raise SDKError(f"reference: got '{self.reference}', expected one of {', '.join(self.models)}")
        self.dataset, self.threads, self.progress = dataset, threads, progress
        self.conf = EVAL_CONF if conf is None else conf
        self.iou = EVAL_IOU if iou is None else iou
        self.max_det = max_det
        self._detectors = {}
        self._owned = set()
        self._scores, self._outputs, self._timing = {}, {}, {}

    # ------------------------------------------------------------ models
    def detector(self, label: str):
        """The Detector of one model (opened on first use; onnxruntime sessions spinning in runs only)."""
        from ..detector import Detector

        if label not in self._detectors:
            model = self.models[label]
            if isinstance(model, (str, os.PathLike)):
                from ..runners import load_runner

                kw = {"spin": BENCH_SPIN, "threads": self.threads} if str(model).lower().endswith(".onnx") else {}
                runner, _ = load_runner(str(model), "ort" if kw else "auto", **kw)
                self._owned.add(label)
            else:
                runner = model.load() if hasattr(model, "load") else model
            self._detectors[label] = Detector(str(model) if isinstance(model, (str, os.PathLike)) else None,
                                              runner=runner, conf=self.conf, iou=self.iou, max_det=self.max_det)
        return self._detectors[label]

    def _path(self, label):
        m = self.models[label]
        return str(m) if isinstance(m, (str, os.PathLike)) else getattr(m, "path", None)

    # ------------------------------------------------------------ the data loader pass
    def _dataset(self):
        if self.dataset is None:
            raise SDKError("dataset: got none, expected labelled data to score the models on")
        return self.dataset

    def score(self, outputs: bool = False, confident: float = CONFIDENT) -> dict:
        """mAP of every model on the dataset, in one pass over the images; with `outputs`, also the largest
        differences of each model's raw outputs from the reference's. Returns {label: scores}."""
        from ..data.images import read_image
        from ..evaluation.evaluate import class_mapping, score_predictions
        from ..postprocess import postprocess
        from ..progress import progress_bar

        ds = self._dataset()
        labels = [k for k in self.models if k not in self._scores or (outputs and k not in self._outputs)]
        if not labels:
            return self._scores
        if outputs and self.reference not in labels:
            labels.insert(0, self.reference)
        dets = {k: self.detector(k) for k in labels}
        mapping = {k: class_mapping(list(d.names), ds) for k, d in dets.items()}
        preds = {k: [] for k in labels}
        diff = {k: {"boxes_px": 0.0, "scores": 0.0, "boxes_px_all": 0.0} for k in labels}
        for s in progress_bar(ds.samples, desc="compare", disable=not self.progress):
            img = read_image(s.path)
            raw, kept = {}, {}
            for k, det in dets.items():
                x, lb = det.pre(img)
                raw[k] = det.infer_raw(x)
                d = kept[k] = postprocess(raw[k][0], lb, det.names, det.conf, det.iou, det.max_det, det.classes)
                preds[k].append({"boxes": d.boxes.astype(np.float64), "scores": d.scores.astype(np.float64),
                                 "classes": mapping[k][d.class_ids] if len(d) else d.class_ids})
            if outputs:
                ref = raw[self.reference]
                sure = ref[..., 4] >= confident
                for k, out in raw.items():
                    if out.shape != ref.shape:
                        # NMS inside one graph (rows = kept boxes) and not the other: raw rows do not line up,
                        # so compare the detections, each confident reference box with its best match
                        box, score, missed = detection_diff(kept[self.reference], kept[k], confident)
                        diff[k].update(compared="detections", unmatched=diff[k].get("unmatched", 0) + missed,
                                       boxes_px=max(diff[k]["boxes_px"], box),
                                       boxes_px_all=max(diff[k]["boxes_px_all"], box),
                                       scores=max(diff[k]["scores"], score))
                        continue
                    dd = np.abs(out.astype(np.float64) - ref)
                    diff[k]["boxes_px_all"] = max(diff[k]["boxes_px_all"], float(dd[..., :4].max()))
                    if sure.any():
                        diff[k]["boxes_px"] = max(diff[k]["boxes_px"], float(dd[..., :4][sure].max()))
                    diff[k]["scores"] = max(diff[k]["scores"], float(dd[..., 4:].max()))
        for k in labels:
            r = score_predictions(ds, preds[k])
            self._scores[k] = {"map50": r["map50"], "map50_95": r["map50_95"], "official_map50": r["official_map50"],
                               "official_map50_95": r["official_map50_95"],
                               "predictions": int(sum(len(p["scores"]) for p in preds[k]))}
            if outputs:
                self._outputs[k] = dict(diff[k], confident=confident)
        return self._scores

    # ------------------------------------------------------------ timing
    def time(self, runs: int = 30, rounds: int = 5, warmup: int = 3, inputs: Mapping | None = None) -> dict:
        """{label: percentiles} of the model alone, interleaved. Paths that repeat are timed once. `inputs`
        maps labels to input arrays (default: one seeded random array of each model's input shape)."""
        from ..bench import interleaved_model_bench

        first = {}
        for k in self.models:
            key = self._path(k) or k
            first.setdefault(key, k)
        feeds = {}
        for key, k in first.items():
            det = self.detector(k)
            x = inputs[k] if inputs and k in inputs else _random_input(det)
            feeds[k] = (det.runner, x)
        res = interleaved_model_bench(feeds, runs=runs, warmup=warmup, rounds=rounds)
        self._timing = {k: res[first[self._path(k) or k]] for k in self.models}
        self._runs, self._rounds = runs, rounds
        return self._timing

    # ------------------------------------------------------------ all of it
    def run(self, score: bool = True, time: bool = True, outputs: bool = False, runs: int = 30,
            rounds: int = 5, warmup: int = 3, inputs: Mapping | None = None) -> Comparison:
        if score or outputs:
            self.score(outputs=outputs)
        if time:
            self.time(runs=runs, rounds=rounds, warmup=warmup, inputs=inputs)
        return self.result()

    def result(self) -> Comparison:
        from ..report import machine

        ref_s, ref_t = self._scores.get(self.reference), self._timing.get(self.reference)
        rows = []
        for k in self.models:
            path = self._path(k)
            r = ModelResult(label=k, path=path,
                            size_mb=round(os.path.getsize(path) / 2**20, 2) if path and os.path.isfile(path) else None)
            s = self._scores.get(k)
            if s:
                r.map50, r.map50_95 = s["map50"], s["map50_95"]
                r.official_map50, r.official_map50_95 = s["official_map50"], s["official_map50_95"]
                r.predictions = s["predictions"]
                if ref_s:
                    r.map50_delta_pt = 100 * (s["map50"] - ref_s["map50"])
                    r.map50_95_delta_pt = 100 * (s["map50_95"] - ref_s["map50_95"])
            t = self._timing.get(k)
            if t:
                r.timing = dict(t)
                r.speedup = ref_t["p50_ms"] / t["p50_ms"] if ref_t else None
            r.outputs = self._outputs.get(k)
            rows.append(r)
        ds = self.dataset
        return Comparison(rows=rows, reference=self.reference, images=len(ds) if ds is not None else 0,
                          boxes=getattr(ds, "num_boxes", 0) if ds is not None else 0,
                          runs=getattr(self, "_runs", 0), rounds=getattr(self, "_rounds", 0), threads=self.threads,
                          spinning=BENCH_SPIN, machine=machine())

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        for k in list(self._owned):
            self._detectors[k].close()
        self._detectors.clear()
        self._owned.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def detection_diff(ref, other, confident: float = CONFIDENT) -> tuple[float, float, int]:
    """(largest box-corner difference in pixels, largest score difference, reference boxes without a match) over
    the reference's detections scoring >= `confident`, each matched to the same-class box of `other` it overlaps
    most (IoU >= 0.5)."""
    from ..evaluation.metrics import box_iou

    sure = ref.scores >= confident
    if not sure.any():
        return 0.0, 0.0, 0
    rb, rs, rc = ref.boxes[sure].astype(np.float64), ref.scores[sure], ref.class_ids[sure]
    if not len(other):
        return 0.0, 0.0, int(sure.sum())
    iou = box_iou(rb, other.boxes.astype(np.float64))
    iou[rc[:, None] != other.class_ids[None, :]] = 0.0
    best = iou.argmax(axis=1)
    hit = iou[np.arange(len(rb)), best] >= 0.5
    if not hit.any():
        return 0.0, 0.0, int(len(rb))
    box = float(np.abs(rb[hit] - other.boxes[best[hit]]).max())
    score = float(np.abs(rs[hit] - other.scores[best[hit]]).max())
    return box, score, int((~hit).sum())


def _random_input(det):
    from ..bench import random_input

    h, w = det.meta.imgsz
    return random_input(det.runner.input, (1, h, w, det.resolved.channels) if det.nhwc else (1, 3, h, w))


def score_model(model, dataset, threads: int | None = 2, progress: bool = False) -> dict:
    """mAP (COCO and official) of one model on `dataset` at the evaluation settings."""
    with Comparator({"model": model}, dataset, threads=threads, progress=progress) as cmp:
        return cmp.score()["model"]


def compare(models: Mapping[str, object], dataset=None, reference: str | None = None, threads: int | None = 2,
            runs: int = 30, rounds: int = 5, outputs: bool = False, score: bool = True, time: bool = True,
            progress: bool = False) -> Comparison:
    """One call: open the models, score them on `dataset`, time them interleaved, close them."""
    with Comparator(models, dataset, reference, threads, progress=progress) as cmp:
        return cmp.run(score=score and dataset is not None, time=time, outputs=outputs, runs=runs, rounds=rounds)

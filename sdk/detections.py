"""Detections of one image as a small typed structure over numpy arrays."""
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np


class Detection(NamedTuple):
    xyxy: tuple
    score: float
    class_id: int
    class_name: str


@dataclass
class Detections:
    """`boxes` (n, 4) xyxy in original-image pixels, `scores` (n,), `class_ids` (n,) int."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: tuple = ()
    track_ids: Optional[np.ndarray] = None  # (n,) int, -1 where no track owns the box; None when not tracking

    @classmethod
    def empty(cls, names=()):
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), tuple(names))

    def __len__(self):
        return len(self.scores)

    def __iter__(self):
        for box, score, cid in zip(self.boxes, self.scores, self.class_ids):
            yield Detection(tuple(float(v) for v in box), float(score), int(cid), self.class_name(cid))

    def __getitem__(self, index):
        return list(self)[index]

    def class_name(self, cid):
        cid = int(cid)
        return self.names[cid] if 0 <= cid < len(self.names) else str(cid)

    def filter(self, mask):
        ids = None if self.track_ids is None else self.track_ids[mask]
        return Detections(self.boxes[mask], self.scores[mask], self.class_ids[mask], self.names, ids)

    def to_list(self, decimals=2):
        return [{"xyxy": [round(float(v), decimals) for v in d.xyxy], "score": round(d.score, 4),
                 "class_id": d.class_id, "class_name": d.class_name} for d in self]

    def counts(self):
        out = {}
        for cid in self.class_ids:
            name = self.class_name(cid)
            out[name] = out.get(name, 0) + 1
        return out

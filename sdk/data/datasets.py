"""Labelled datasets in the three layouts users bring: YOLO txt, COCO json and Pascal VOC xml.

Every command that reads labels (eval, calibration, training, pruning, sweeps) goes through `load_dataset`, so
all of them take all three. Boxes are held as xyxy pixels with contiguous class indices 0..nc-1.
"""
import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import SDKError
from .images import decode_image, is_image, list_images

MAX_LABEL_BYTES = 8 * 2**20  # one image's YOLO txt / VOC xml (30k boxes is ~1 MB)
MAX_CLASSES = 100_000
MAX_ID = 2**53  # COCO ids: JSON integers that survive a float round-trip
FAR_OUTSIDE = 0.1  # a box more than this share of the image side outside it is a broken label, not sloppiness


@dataclass
class Sample:
    image_id: int
    path: str
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) xyxy pixels
    classes: np.ndarray  # (n,) int, contiguous
    crowd: np.ndarray = None  # (n,) bool: COCO iscrowd / VOC difficult, ignored by the metric

    def __post_init__(self):
        if self.crowd is None:
            self.crowd = np.zeros(len(self.classes), bool)


@dataclass
class LabelledDataset:
    samples: list
    names: list
    layout: str
    root: str
    category_ids: list = field(default_factory=list)  # COCO category id of each class index
    fixes: dict = field(default_factory=dict)  # what loading changed: {"clipped": n, "dropped_empty": n}

    def __post_init__(self):
        if not self.category_ids:
            self.category_ids = list(range(1, len(self.names) + 1))

    def __len__(self):
        return len(self.samples)

    @property
    def num_boxes(self):
        return int(sum(len(s.classes) for s in self.samples))

    def image_paths(self):
        return [s.path for s in self.samples]

    def to_coco(self):
        """Ground truth as a COCO dict (what pycocotools reads)."""
        images, anns = [], []
        for s in self.samples:
            images.append({"id": s.image_id, "file_name": os.path.basename(s.path), "width": s.width,
                           "height": s.height})
            for box, c, crowd in zip(s.boxes, s.classes, s.crowd):
                w, h = float(box[2] - box[0]), float(box[3] - box[1])
                anns.append({"id": len(anns) + 1, "image_id": s.image_id, "category_id": self.category_ids[int(c)],
                             "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": int(crowd)})
        cats = [{"id": cid, "name": n} for cid, n in zip(self.category_ids, self.names)]
        return {"images": images, "annotations": anns, "categories": cats}


def _image_size(path):
    img = decode_image(path, cv2.IMREAD_UNCHANGED)
    return img.shape[1], img.shape[0]


def read_label_text(path, what="label", raw=False):
    """A label file's text (bytes with `raw`, for XML, whose declaration names its encoding): bounded in size,
    UTF-8, a one-line error otherwise. None when there is no file."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise SDKError(f"{what} {path}: a broken symlink or a symlink loop, expected a label file")
        return None
    if not path.is_file():
        raise SDKError(f"{what} {path}: is a folder or a device, expected a label file")
    size = path.stat().st_size
    if size > MAX_LABEL_BYTES:
        raise SDKError(f"{what} {path}: {size / 2**20:.0f} MB, expected a label file under "
                       f"{MAX_LABEL_BYTES // 2**20} MB")
    data = path.read_bytes()
    if raw:
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SDKError(f"{what} {path}: byte {e.start} is not UTF-8, expected a UTF-8 text file") from None


def check_boxes(boxes, width, height, where, fixes):
    """Boxes (n, 4) xyxy pixels of one image, per the COCO/VOC conventions: non-finite or far-outside coordinates
    are refused (a broken label); slight overshoot is clipped to the image and boxes left with no area dropped,
    both counted in `fixes`. Returns (boxes, keep mask)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return boxes.astype(np.float32), np.zeros(0, bool)
    if not np.isfinite(boxes).all():
        i = int(np.flatnonzero(~np.isfinite(boxes).all(1))[0])
        raise SDKError(f"{where}: box {i + 1} has a non-finite coordinate ({_fmt(boxes[i])}), expected numbers")
    if width <= 0 or height <= 0:
        raise SDKError(f"{where}: image size {width}x{height}, expected a positive width and height")
    tol = np.array([width, height, width, height]) * FAR_OUTSIDE
    far = ((boxes < -tol) | (boxes > np.array([width, height, width, height]) + tol)).any(1)
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise SDKError(f"{where}: box {i + 1} ({_fmt(boxes[i])}) lies far outside the {width}x{height} image, "
                       f"expected boxes inside the image")
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, height)
    changed = (clipped != boxes).any(1)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    fixes["clipped"] = fixes.get("clipped", 0) + int((changed & keep).sum())
    fixes["dropped_empty"] = fixes.get("dropped_empty", 0) + int((~keep).sum())
    return clipped.astype(np.float32), keep


def _fmt(box):
    return ", ".join(f"{v:.6g}" for v in box)


def report_fixes(ds, spec):
    """One stderr line saying what loading changed, so a number is never silently computed on altered labels."""
    changed = {k: v for k, v in ds.fixes.items() if v}
    if changed:
        what = {"clipped": "boxes clipped to the image", "dropped_empty": "boxes with no area dropped"}
        print(f"note: --data {spec}: " + ", ".join(f"{v} {what.get(k, k)}" for k, v in changed.items()) +
              " (COCO/VOC convention)", file=sys.stderr)


def _names_from(names, nc_seen):
    if names:
        return list(names)
    return [str(i) for i in range(nc_seen)]


# ---------------------------------------------------------------- YOLO txt
def yolo_label_path(image_path):
    """The official convention: the last `/images/` in the path becomes `/labels/`, suffix `.txt`."""
    try:
        p = Path(image_path).resolve()
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError for a symlink loop
        raise SDKError(f"image {image_path}: a symlink loop, expected an image file") from None
    parts = list(p.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return p.with_suffix(".txt")


def parse_yolo_label(path, width, height, fixes=None):
    """Boxes of one YOLO label file: `cls cx cy w h` normalised (or a polygon `cls x1 y1 x2 y2 ...`)."""
    boxes, classes = [], []
    text = read_label_text(path)
    if text is None:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            vals = [float(v) for v in line.split()]
        except ValueError:
            vals = []
        if len(vals) == 6:  # a prediction file with confidences (`detect --save-txt --save-conf`, Ultralytics)
            vals = vals[:5]
        if len(vals) < 5 or (len(vals) > 5 and len(vals) % 2 == 0) or not all(map(math.isfinite, vals)) or \
                not float(vals[0]).is_integer():
            raise SDKError(f"label {path}:{n}: got '{line.strip()[:60]}', expected 'class cx cy w h' "
                           f"(normalised finite numbers) or 'class x1 y1 x2 y2 ...'")
        if not 0 <= vals[0] < MAX_CLASSES:
            raise SDKError(f"label {path}:{n}: class {vals[0]:.6g}, expected a class index in 0..{MAX_CLASSES - 1}")
        if len(vals) == 5:
            cx, cy, w, h = vals[1:]
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        else:
            xy = np.asarray(vals[1:]).reshape(-1, 2)
            box = [*xy.min(0), *xy.max(0)]
        if any(v < -0.01 or v > 1.01 for v in vals[1:]):
            raise SDKError(f"label {path}:{n}: got coordinates outside [0, 1], expected normalised coordinates")
        boxes.append(box)
        classes.append(int(vals[0]))
    b = np.asarray(boxes, np.float64).reshape(-1, 4) * np.array([width, height, width, height])
    b, keep = check_boxes(b, width, height, f"label {path}", {} if fixes is None else fixes)
    return b[keep], np.asarray(classes, np.int64).reshape(-1)[keep]


def load_yolo(images, names=None, root=None):
    paths = list_images(images, "data")
    samples, fixes = [], {}
    label_paths = [yolo_label_path(p) for p in paths]
    if not any(lp.is_file() or lp.is_symlink() for lp in label_paths):
        raise SDKError(f"data {images}: no labels folder found (looked for {label_paths[0]}), expected "
                       f"YOLO labels at the images -> labels path, a COCO json or a Pascal VOC folder")
    for i, p in enumerate(paths, 1):
        w, h = _image_size(p)
        boxes, classes = parse_yolo_label(label_paths[i - 1], w, h, fixes)
        samples.append(Sample(i, p, w, h, boxes, classes))
    nc_seen = max((int(s.classes.max()) + 1 for s in samples if len(s.classes)), default=0)
    names = _names_from(names, nc_seen)
    if nc_seen > len(names):
        raise SDKError(f"data {images}: labels use class {nc_seen - 1}, expected classes 0..{len(names) - 1} "
                       f"({', '.join(names)})")
    return LabelledDataset(samples, names, "yolo", str(root or images), fixes=fixes)


def load_data_yaml(path, split, names=None):
    import yaml

    text = read_label_text(path, "data")
    try:
        cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:  # Python tags (!!python/object) land here too: safe_load builds no objects
        problem = " ".join(str(getattr(e, "problem", None) or e).split())[:80]
        raise SDKError(f"data {path}: not a plain data yaml ({problem}), expected train/val/names keys") from None
    if not isinstance(cfg, dict) or split not in cfg:
        raise SDKError(f"data {path}: no '{split}' entry, expected a data yaml with train/val paths")
    if not isinstance(cfg[split], str) or not isinstance(cfg.get("path") or "", str):
        raise SDKError(f"data {path}: '{split}' is {type(cfg[split]).__name__}, expected a path (string)")
    base = Path(cfg.get("path") or Path(path).parent)
    if not base.is_absolute():
        base = (Path(path).parent / base).resolve()
    target = Path(cfg[split])
    target = target if target.is_absolute() else base / target
    yaml_names = cfg.get("names")
    if isinstance(yaml_names, dict):
        yaml_names = [yaml_names[k] for k in sorted(yaml_names, key=str)]
    if yaml_names is not None and (not isinstance(yaml_names, list) or
                                   not all(isinstance(n, (str, int)) for n in yaml_names)):
        raise SDKError(f"data {path}: names is {type(yaml_names).__name__}, expected a list of class names")
    yaml_names = [str(n) for n in yaml_names] if yaml_names else None
    return load_dataset(str(target), names=yaml_names or names, split=split)


# ---------------------------------------------------------------- COCO json
def _find_image(json_path, file_name, images_dir, split):
    base = Path(json_path).parent
    candidates = [Path(images_dir) / file_name] if images_dir else []
    candidates += [base / file_name, base / "images" / file_name]
    if split:
        candidates += [base / "images" / split / file_name, base / split / file_name]
    stem = Path(json_path).stem
    for key in ("train", "val", "test"):
        if key in stem:
            candidates += [base / "images" / key / file_name, base / key / file_name]
    for c in candidates:
        if c.is_file():
            return str(c)
    raise SDKError(f"data {json_path}: image '{file_name}' not found (looked in {candidates[0].parent}), "
                   f"expected images beside the json or pass --images DIR")


def _coco_id(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_ID


def _coco_records(d, path):
    """The three lists of a COCO detection json, every field the loader reads checked (type, range, uniqueness)."""
    def bad(where, got, expected):
        return SDKError(f"data {path}: {where} {got}, expected {expected}")

    if not isinstance(d, dict):
        raise bad("top level is", type(d).__name__, "a COCO detection json object (images, annotations, categories)")
    for key in ("images", "categories"):
        if not isinstance(d.get(key), list):
            raise bad(f"'{key}' is", "missing" if key not in d else type(d[key]).__name__, f"a list ('{key}' key)")
    anns = d.get("annotations", [])
    if not isinstance(anns, list):
        raise bad("'annotations' is", type(anns).__name__, "a list")
    cats, imgs = d["categories"], d["images"]
    for kind, items, need in (("category", cats, ("id", "name")), ("image", imgs, ("id", "file_name")),
                              ("annotation", anns, ("image_id", "category_id", "bbox"))):
        seen = set()
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise bad(f"{kind} #{n} is", type(item).__name__, "an object")
            missing = [k for k in need if k not in item]
            if missing:
                raise bad(f"{kind} #{n} has no", f"'{missing[0]}'", f"keys {', '.join(need)}")
            for k in ("id", "image_id", "category_id"):
                if k in item and not _coco_id(item[k]):
                    raise bad(f"{kind} #{n} {k}", json.dumps(item[k])[:40], f"an integer in 0..{MAX_ID}")
            if kind != "annotation":
                if item["id"] in seen:
                    raise bad(f"{kind} id {item['id']} appears", "twice", f"unique {kind} ids")
                seen.add(item["id"])
            if kind == "category" and not (isinstance(item["name"], str) and 0 < len(item["name"]) <= 200):
                raise bad(f"category #{n} name", json.dumps(item["name"])[:40], "a class name (string)")
            if kind == "image":
                if not isinstance(item["file_name"], str) or not item["file_name"]:
                    raise bad(f"image #{n} file_name", json.dumps(item["file_name"])[:40], "a file name")
                for k in ("width", "height"):
                    if item.get(k) is not None and not (_coco_id(item[k]) and item[k] <= 10**6):
                        raise bad(f"image #{n} {k}", json.dumps(item[k])[:40], "a pixel count in 1..1000000")
            if kind == "annotation":
                bb = item["bbox"]
                if not (isinstance(bb, list) and len(bb) == 4 and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bb)):
                    raise bad(f"annotation #{n} bbox", json.dumps(bb)[:60], "[x, y, width, height] finite numbers")
                if bb[2] < 0 or bb[3] < 0:
                    raise bad(f"annotation #{n} bbox", json.dumps(bb)[:60], "a non-negative width and height")
    if len(cats) > MAX_CLASSES:
        raise bad("has", f"{len(cats)} categories", f"at most {MAX_CLASSES}")
    return cats, imgs, anns


def load_coco(path, images_dir=None, split=None, names=None):
    try:
        d = json.loads(Path(path).read_bytes())  # any size (COCO's own train json is 450 MB)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise SDKError(f"data {path}: not valid JSON ({type(e).__name__}), expected a COCO detection json") from None
    cats, imgs, anns = _coco_records(d, path)
    cats = sorted(cats, key=lambda c: c["id"])
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    image_ids = {im["id"] for im in imgs}
    by_image = {}
    for n, a in enumerate(anns):
        if a["category_id"] not in cat_index:
            raise SDKError(f"data {path}: annotation {a.get('id', '#%d' % n)} has category {a['category_id']}, "
                           f"expected one of {sorted(cat_index)[:20]}")
        if a["image_id"] not in image_ids:
            raise SDKError(f"data {path}: annotation {a.get('id', '#%d' % n)} refers to image {a['image_id']}, "
                           f"expected an id listed in 'images'")
        by_image.setdefault(a["image_id"], []).append(a)
    samples, fixes = [], {}
    for im in sorted(imgs, key=lambda m: m["id"]):
        al = by_image.get(im["id"], [])
        p = _find_image(path, im["file_name"], images_dir, split)
        w, h = im.get("width"), im.get("height")
        if not w or not h:
            w, h = _image_size(p)
        xywh = np.asarray([a["bbox"] for a in al], np.float64).reshape(-1, 4)
        boxes, keep = check_boxes(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1), int(w), int(h),
                                  f"--data {path}: image {im['id']}", fixes)
        classes = np.asarray([cat_index[a["category_id"]] for a in al], np.int64)
        crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in al], bool)
        samples.append(Sample(im["id"], p, int(w), int(h), boxes[keep], classes[keep], crowd[keep]))
    return LabelledDataset(samples, [c["name"] for c in cats], "coco", str(path), [c["id"] for c in cats], fixes)


# ---------------------------------------------------------------- Pascal VOC xml
def load_voc(root, split=None, names=None, images_dir=None):
    root = Path(root)
    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    img_dir = Path(images_dir) if images_dir else (root / "JPEGImages" if (root / "JPEGImages").is_dir() else ann_dir)
    ids_file = root / "ImageSets" / "Main" / f"{split}.txt" if split else None
    if ids_file is not None and ids_file.is_file():
        xmls = [ann_dir / f"{i.strip()}.xml" for i in ids_file.read_text().split() if i.strip()]
    else:
        xmls = sorted(ann_dir.glob("*.xml"))
    if not xmls:
        raise SDKError(f"data {root}: no Pascal VOC .xml annotations found, expected Annotations/*.xml")
    records, seen, fixes = [], [], {}
    for x in xmls:
        text = read_label_text(x, raw=True)
        if text is None:
            raise SDKError(f"label {x}: file not found, expected a Pascal VOC annotation xml")
        try:
            tree = ET.fromstring(text)
        except ET.ParseError as e:
            raise SDKError(f"label {x}: cannot parse it ({e}), expected a Pascal VOC annotation xml") from None
        fname = (tree.findtext("filename") or "").strip()
        p = img_dir / fname
        if not fname or not p.is_file():
            hits = [c for c in (img_dir / (x.stem + s) for s in IMAGE_SUFFIXES) if c.is_file()]
            if not hits:
                raise SDKError(f"label {x}: image '{fname or x.stem}' not found in {img_dir}, expected it beside "
                               f"the annotations or in JPEGImages/")
            p = hits[0]
        objs = []
        for o in tree.iter("object"):
            name, bb = (o.findtext("name") or "").strip(), o.find("bndbox")
            try:
                box = [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            except (TypeError, ValueError, AttributeError):
                raise SDKError(f"label {x}: object '{name}' has no valid bndbox, expected xmin/ymin/xmax/ymax numbers")
            box[0] -= 1  # VOC pixel indices are 1-based and inclusive
            box[1] -= 1
            if not name:
                raise SDKError(f"label {x}: an object has no <name>, expected a class name")
            objs.append((name, box, (o.findtext("difficult") or "0").strip() == "1"))
        size = tree.find("size")
        try:
            w, h = int(float(size.findtext("width"))), int(float(size.findtext("height")))
            if not (0 < w <= 10**6 and 0 < h <= 10**6):
                raise ValueError
        except (TypeError, ValueError, AttributeError, OverflowError):
            w, h = _image_size(str(p))
        boxes, keep = check_boxes([o[1] for o in objs], w, h, f"label {x}", fixes)
        objs = [(o[0], b, o[2]) for o, b, k in zip(objs, boxes, keep) if k]
        for o in objs:
            if o[0] not in seen:
                seen.append(o[0])
        records.append((str(p), w, h, objs))
    names = list(names) if names else sorted(seen)
    unknown = [n for n in seen if n not in names]
    if unknown:
        raise SDKError(f"data {root}: class '{unknown[0]}' is not a model class, expected one of {', '.join(names)}")
    samples = []
    for i, (p, w, h, objs) in enumerate(records, 1):
        boxes = np.asarray([o[1] for o in objs], np.float32).reshape(-1, 4)
        classes = np.asarray([names.index(o[0]) for o in objs], np.int64)
        samples.append(Sample(i, p, w, h, boxes, classes, np.asarray([o[2] for o in objs], bool)))
    return LabelledDataset(samples, names, "voc", str(root), fixes=fixes)


def load_dataset(spec, names=None, split="val", images=None):
    """Open labelled data from a YOLO images folder/root, a data yaml, a COCO json or a VOC folder."""
    spec = str(spec)
    p = Path(spec)
    if spec.lower().endswith(".json"):
        if not p.is_file():
            raise SDKError(f"data {spec}: file not found, expected a COCO json")
        ds = load_coco(spec, images, split, names)
    elif spec.lower().endswith((".yaml", ".yml")):
        if not p.is_file():
            raise SDKError(f"data {spec}: file not found, expected a data yaml")
        return load_data_yaml(spec, split, names)
    elif p.is_dir() and ((p / "Annotations").is_dir() or any(p.glob("*.xml"))):
        ds = load_voc(p, split, names, images)
    elif p.is_dir() and (p / "images").is_dir() and not any(is_image(c) for c in p.iterdir()):
        sub = p / "images" / split
        ds = load_yolo(str(sub if sub.is_dir() else p / "images"), names, root=spec)
    else:
        if not p.exists() and not any(c in spec for c in "*?["):
            raise SDKError(f"data {spec}: no such file or folder, expected a YOLO images folder, a data yaml, "
                           f"a COCO json or a Pascal VOC folder")
        ds = load_yolo(spec, names)
    if not len(ds):
        raise SDKError(f"data {spec}: the dataset is empty, expected labelled images")
    report_fixes(ds, spec)
    return ds

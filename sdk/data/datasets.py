"""Labelled datasets in the three layouts users bring: YOLO txt, COCO json and Pascal VOC xml.

Every command that reads labels (eval, calibration, training, pruning, sweeps) goes through `load_dataset`, so
all of them take all three. Boxes are held as xyxy pixels with contiguous class indices 0..nc-1.
"""
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import SDKError
from .images import IMAGE_SUFFIXES, is_image, list_images


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
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise SDKError(f"image {path}: cannot decode it, expected an image file ({', '.join(IMAGE_SUFFIXES)})")
    return img.shape[1], img.shape[0]


def _names_from(names, nc_seen):
    if names:
        return list(names)
    return [str(i) for i in range(nc_seen)]


# ---------------------------------------------------------------- YOLO txt
def yolo_label_path(image_path):
    """The official convention: the last `/images/` in the path becomes `/labels/`, suffix `.txt`."""
    p = Path(image_path).resolve()
    parts = list(p.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return p.with_suffix(".txt")


def parse_yolo_label(path, width, height):
    """Boxes of one YOLO label file: `cls cx cy w h` normalised (or a polygon `cls x1 y1 x2 y2 ...`)."""
    boxes, classes = [], []
    if not path.is_file():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            vals = [float(v) for v in line.split()]
        except ValueError:
            vals = []
        if len(vals) == 6:  # a prediction file with confidences (`detect --save-txt --save-conf`, Ultralytics)
            vals = vals[:5]
        if len(vals) < 5 or (len(vals) > 5 and len(vals) % 2 == 0) or not float(vals[0]).is_integer() or vals[0] < 0:
            raise SDKError(f"label {path}:{n}: got '{line.strip()[:60]}', expected 'class cx cy w h' "
                           f"(normalised floats) or 'class x1 y1 x2 y2 ...'")
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
    b = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([width, height, width, height], np.float32)
    return b, np.asarray(classes, np.int64)


def load_yolo(images, names=None, root=None):
    paths = list_images(images, "--data")
    samples = []
    label_paths = [yolo_label_path(p) for p in paths]
    if not any(lp.is_file() for lp in label_paths):
        raise SDKError(f"--data {images}: no labels folder found (looked for {label_paths[0]}), expected "
                       f"YOLO labels at the images -> labels path, a COCO json or a Pascal VOC folder")
    for i, p in enumerate(paths, 1):
        w, h = _image_size(p)
        boxes, classes = parse_yolo_label(label_paths[i - 1], w, h)
        samples.append(Sample(i, p, w, h, boxes, classes))
    nc_seen = max((int(s.classes.max()) + 1 for s in samples if len(s.classes)), default=0)
    names = _names_from(names, nc_seen)
    if nc_seen > len(names):
        raise SDKError(f"--data {images}: labels use class {nc_seen - 1}, expected classes 0..{len(names) - 1} "
                       f"({', '.join(names)})")
    return LabelledDataset(samples, names, "yolo", str(root or images))


def load_data_yaml(path, split, names=None):
    import yaml

    cfg = yaml.safe_load(Path(path).read_text()) or {}
    if split not in cfg:
        raise SDKError(f"--data {path}: no '{split}' entry, expected a data yaml with train/val paths")
    base = Path(cfg.get("path") or Path(path).parent)
    if not base.is_absolute():
        base = (Path(path).parent / base).resolve()
    target = Path(cfg[split])
    target = target if target.is_absolute() else base / target
    yaml_names = cfg.get("names")
    if isinstance(yaml_names, dict):
        yaml_names = [yaml_names[k] for k in sorted(yaml_names)]
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
    raise SDKError(f"--data {json_path}: image '{file_name}' not found (looked in {candidates[0].parent}), "
                   f"expected images beside the json or pass --images DIR")


def load_coco(path, images_dir=None, split=None, names=None):
    try:
        d = json.loads(Path(path).read_text())
        cats = sorted(d["categories"], key=lambda c: c["id"])
        imgs, anns = d["images"], d.get("annotations", [])
    except (ValueError, KeyError, TypeError) as e:
        raise SDKError(f"--data {path}: not a COCO detection json ({type(e).__name__}: {e}), expected keys "
                       f"images, annotations, categories")
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    by_image = {}
    for a in anns:
        if a.get("category_id") not in cat_index:
            raise SDKError(f"--data {path}: annotation {a.get('id')} has category {a.get('category_id')}, "
                           f"expected one of {sorted(cat_index)}")
        by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for im in sorted(imgs, key=lambda m: m["id"]):
        al = by_image.get(im["id"], [])
        boxes = np.asarray([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                            for a in al], np.float32).reshape(-1, 4)
        classes = np.asarray([cat_index[a["category_id"]] for a in al], np.int64)
        crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in al], bool)
        p = _find_image(path, im["file_name"], images_dir, split)
        w, h = im.get("width"), im.get("height")
        if not w or not h:
            w, h = _image_size(p)
        samples.append(Sample(im["id"], p, int(w), int(h), boxes, classes, crowd))
    return LabelledDataset(samples, [c["name"] for c in cats], "coco", str(path), [c["id"] for c in cats])


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
        raise SDKError(f"--data {root}: no Pascal VOC .xml annotations found, expected Annotations/*.xml")
    records, seen = [], []
    for x in xmls:
        try:
            tree = ET.parse(x).getroot()
        except (ET.ParseError, FileNotFoundError) as e:
            raise SDKError(f"label {x}: cannot parse it ({e}), expected a Pascal VOC annotation xml")
        fname = tree.findtext("filename") or ""
        p = img_dir / fname
        if not p.is_file():
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
            objs.append((name, box, (o.findtext("difficult") or "0").strip() == "1"))
            if name not in seen:
                seen.append(name)
        size = tree.find("size")
        try:
            w, h = int(float(size.findtext("width"))), int(float(size.findtext("height")))
        except (TypeError, ValueError, AttributeError):
            w, h = _image_size(str(p))
        records.append((str(p), w, h, objs))
    names = list(names) if names else sorted(seen)
    unknown = [n for n in seen if n not in names]
    if unknown:
        raise SDKError(f"--data {root}: class '{unknown[0]}' is not a model class, expected one of {', '.join(names)}")
    samples = []
    for i, (p, w, h, objs) in enumerate(records, 1):
        boxes = np.asarray([o[1] for o in objs], np.float32).reshape(-1, 4)
        classes = np.asarray([names.index(o[0]) for o in objs], np.int64)
        samples.append(Sample(i, p, w, h, boxes, classes, np.asarray([o[2] for o in objs], bool)))
    return LabelledDataset(samples, names, "voc", str(root))


def load_dataset(spec, names=None, split="val", images=None):
    """Open labelled data from a YOLO images folder/root, a data yaml, a COCO json or a VOC folder."""
    spec = str(spec)
    p = Path(spec)
    if spec.lower().endswith(".json"):
        if not p.is_file():
            raise SDKError(f"--data {spec}: file not found, expected a COCO json")
        ds = load_coco(spec, images, split, names)
    elif spec.lower().endswith((".yaml", ".yml")):
        if not p.is_file():
            raise SDKError(f"--data {spec}: file not found, expected a data yaml")
        return load_data_yaml(spec, split, names)
    elif p.is_dir() and ((p / "Annotations").is_dir() or any(p.glob("*.xml"))):
        ds = load_voc(p, split, names, images)
    elif p.is_dir() and (p / "images").is_dir() and not any(is_image(c) for c in p.iterdir()):
        sub = p / "images" / split
        ds = load_yolo(str(sub if sub.is_dir() else p / "images"), names, root=spec)
    else:
        if not p.exists() and not any(c in spec for c in "*?["):
            raise SDKError(f"--data {spec}: no such file or folder, expected a YOLO images folder, a data yaml, "
                           f"a COCO json or a Pascal VOC folder")
        ds = load_yolo(spec, names)
    if not len(ds):
        raise SDKError(f"--data {spec}: the dataset is empty, expected labelled images")
    return ds

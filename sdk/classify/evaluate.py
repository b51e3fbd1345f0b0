"""Folder-per-class data (ImageNet style, root/class_name/*.jpg) and top-1/top-5 scoring on it."""
import os
from pathlib import Path

import numpy as np

from ..data.images import is_image, list_images, read_image
from ..errors import SDKError


def folder_dataset(root, names=None, what="source"):
    """[(image path, class index)] from root/class_name/*.jpg; classes are the model's names when given."""
    root = Path(root)
    if not root.is_dir():
        raise SDKError(f"{what} {root}: not a folder, expected a folder with one sub-folder of images per class")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and any(is_image(f) for f in os.listdir(p)))
    if not folders:
        raise SDKError(f"{what} {root}: no class sub-folders with images, expected root/<class name>/*.jpg")
    names = list(names) if names else folders
    unknown = [f for f in folders if f not in names]
    if unknown:
        raise SDKError(f"{what} {root}: got class folder '{unknown[0]}', expected folders named after the model's "
                       f"classes ({', '.join(names[:10])})")
    return [(p, names.index(f)) for f in folders for p in list_images(root / f, what)]


def evaluate_folder(classifier, root, progress=False):
    """Top-1 / top-5 accuracy on folder-per-class data, with per-class top-1."""
    from ..progress import progress_bar

    samples = folder_dataset(root, classifier.names)
    k = min(5, len(classifier.names))
    top1 = topk = 0
    per_class = {}
    for path, label in progress_bar(samples, desc="classify", disable=not progress):
        probs = classifier.probabilities(classifier.infer_raw(classifier.pre(read_image(path))[0]))[0]
        order = np.argsort(-probs, kind="stable")
        hit1 = int(order[0] == label)
        top1 += hit1
        topk += int(label in order[:k])
        seen, hits = per_class.get(classifier.names[label], (0, 0))
        per_class[classifier.names[label]] = (seen + 1, hits + hit1)
    n = len(samples)
    return {"images": n, "top1": top1 / n, f"top{k}": topk / n,
            "per_class_top1": {c: h / s for c, (s, h) in per_class.items()}}

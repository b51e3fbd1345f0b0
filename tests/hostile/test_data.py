"""Hostile labelled data through the real `eval` (and `detect`) CLI: every case is refused with one line, or is a
documented clean exit 0 with the change counted. Generated in tmp_path from the shared Penn-Fudan val split."""
import json
import os
from pathlib import Path

import pytest

from .harness import (assert_clean, assert_refused, coco_dict, images_folder, run_sdk, voc_dataset, write_coco,
                      yolo_dataset)


def first_label(images):
    return sorted((images.parent / "labels").iterdir())[0]


def yolo_nan(tmp):
    return yolo_dataset(tmp / "d", labels={0: "0 nan 0.5 0.2 0.2\n"}), ["finite"]


def yolo_inf(tmp):
    return yolo_dataset(tmp / "d", labels={0: "0 0.5 inf 0.2 0.2\n"}), ["finite"]


def yolo_class_1e19(tmp):
    return yolo_dataset(tmp / "d", labels={0: "1e19 0.5 0.5 0.2 0.2\n"}), ["class 1e+19"]


def yolo_not_utf8(tmp):
    return yolo_dataset(tmp / "d", labels={0: b"0 0.5 0.5 0.2 0.2 \xff\xfe\n"}), ["not UTF-8"]


def yolo_label_symlink_to_itself(tmp):
    images = yolo_dataset(tmp / "d")
    label = first_label(images)
    label.unlink()
    os.symlink(label.name, label)
    return images, ["symlink"]


def yolo_huge_label(tmp):
    images = yolo_dataset(tmp / "d")
    with open(first_label(images), "w") as f:  # 36 MB of valid lines
        f.write("0 0.5 0.5 0.2 0.2\n" * 2_000_000)
    return images, ["MB, expected a label file under"]


def yolo_empty_image(tmp):
    images = yolo_dataset(tmp / "d")
    (images / "zzz.png").write_bytes(b"")
    return images, ["zzz.png", "empty"]


def yolo_image_symlink_loop(tmp):
    images = yolo_dataset(tmp / "d")
    os.symlink("loop.png", images / "loop.png")
    return images, ["loop.png", "symlink loop"]


def yaml_python_tag(tmp):
    images = yolo_dataset(tmp / "d")
    y = tmp / "data.yaml"
    y.write_text(f"val: {images}\nnames: !!python/object/apply:os.system ['touch {tmp / 'PWNED'}']\n")
    return y, ["data.yaml", "not a plain data yaml"]


def yaml_not_a_mapping(tmp):
    y = tmp / "data.yaml"
    y.write_text("- val\n- train\n")
    return y, ["data.yaml", "'val'"]


def coco_duplicate_image_ids(tmp):
    d = coco_dict(2)
    d["images"][1]["id"] = d["images"][0]["id"]
    return write_coco(tmp / "c", d), ["appears", "twice"]


def coco_no_file_name(tmp):
    d = coco_dict(2)
    del d["images"][1]["file_name"]
    return write_coco(tmp / "c", d), ["image #1", "file_name"]


def coco_no_bbox(tmp):
    d = coco_dict(2)
    del d["annotations"][0]["bbox"]
    return write_coco(tmp / "c", d), ["annotation #0", "bbox"]


def coco_no_images_key(tmp):
    d = coco_dict(2)
    del d["images"]
    return write_coco(tmp / "c", d), ["'images'", "missing"]


def coco_category_1e19(tmp):
    d = coco_dict(2)
    d["annotations"][0]["category_id"] = 10**19
    return write_coco(tmp / "c", d), ["category_id", "10000000000000000000"]


def coco_nan_bbox(tmp):
    d = coco_dict(2)
    d["annotations"][0]["bbox"][0] = float("nan")  # json.dumps writes NaN; Python's json reads it back
    return write_coco(tmp / "c", d), ["bbox", "finite"]


def coco_far_outside(tmp):
    d = coco_dict(2)
    d["annotations"][0]["bbox"] = [-5000, -5000, 20000, 20000]
    return write_coco(tmp / "c", d), ["far outside"]


def coco_dangling_annotation(tmp):
    d = coco_dict(2)
    d["annotations"][0]["image_id"] = 987654
    return write_coco(tmp / "c", d), ["image 987654"]


def coco_not_utf8(tmp):
    path = write_coco(tmp / "c", coco_dict(2))
    path.write_bytes(path.read_bytes().replace(b'"person"', b'"pers\xffon"'))
    return path, ["not valid JSON"]


def voc_nan(tmp):
    return voc_dataset(tmp / "v", [("nan", 10, 50, 80)])[0], ["non-finite"]


def voc_far_outside(tmp):
    return voc_dataset(tmp / "v", [(10, 10, 50, 80), (-3000, -3000, 9000, 9000)])[0], ["box 2", "far outside"]


REFUSED = [yolo_nan, yolo_inf, yolo_class_1e19, yolo_not_utf8, yolo_label_symlink_to_itself, yolo_huge_label,
           yolo_empty_image, yolo_image_symlink_loop, yaml_python_tag, yaml_not_a_mapping, coco_duplicate_image_ids,
           coco_no_file_name, coco_no_bbox, coco_no_images_key, coco_category_1e19, coco_nan_bbox, coco_far_outside,
           coco_dangling_annotation, coco_not_utf8, voc_nan, voc_far_outside]


@pytest.mark.parametrize("make", REFUSED, ids=[f.__name__ for f in REFUSED])
def test_hostile_labels_are_refused_with_one_line(make, tmp_path, onnx_model):
    data, needles = make(tmp_path)
    proc = run_sdk(tmp_path, "eval", "--model", onnx_model, "--data", data, timeout=60)
    assert_refused(proc, tmp_path, *needles)
    assert proc.seconds < 30, proc.seconds
    assert not (tmp_path / "PWNED").exists()


def _map(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_slight_overshoot_is_clipped_and_counted(tmp_path, onnx_model):
    """COCO/VOC convention: boxes a few pixels past the border are clipped to the image, and the run says so."""
    d = coco_dict(2)
    x, y, w, h = d["annotations"][0]["bbox"]
    d["annotations"][0]["bbox"] = [-3, y, x + w + 3, h]  # 3 px left of the image
    d["annotations"][1]["bbox"] = [-10, -10, 5, 5]  # wholly outside after clipping: no area left
    proc = run_sdk(tmp_path, "eval", "--model", onnx_model, "--data", write_coco(tmp_path / "c", d))
    assert_clean(proc, tmp_path)
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note: --data")]
    assert notes == [f"note: --data {tmp_path / 'c' / 'instances_val.json'}: 1 boxes clipped to the image, "
                     f"1 boxes with no area dropped (COCO/VOC convention)"], proc.stderr
    assert _map(proc)["boxes"] == sum(1 for a in coco_dict(2)["annotations"]) - 1


def test_a_folder_named_like_an_image_is_skipped(tmp_path, onnx_model):
    images = yolo_dataset(tmp_path / "d")
    (images / "folder.png").mkdir()
    proc = run_sdk(tmp_path, "eval", "--model", onnx_model, "--data", images)
    assert_clean(proc, tmp_path)
    assert _map(proc)["images"] == 2


def test_recursive_glob_over_symlink_loops_ends(tmp_path, onnx_model):
    """glob('**') follows symlinked folders without end; the SDK visits each real folder once."""
    root = images_folder(tmp_path / "src" / "a" / "b", n=1).parent.parent
    os.symlink("..", root / "a" / "up")
    os.symlink(str(root), root / "a" / "b" / "top")
    os.symlink("../a", root / "a" / "b" / "side")
    proc = run_sdk(tmp_path, "detect", "--model", onnx_model, "--source", f"{root}/**/*.png", timeout=60)
    assert_clean(proc, tmp_path)
    assert json.loads(proc.stdout.strip().splitlines()[-1])["frames"] == 1  # the one real image, once

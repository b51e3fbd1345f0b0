"""`python -m sdk detect`: images, folders, globs and video files in; annotated media and JSON lines out."""
import contextlib
import json
import sys
from pathlib import Path

import cv2

from ..data.images import is_video, list_images, read_image
from ..errors import SDKError
from ..fileio import atomic_path, ensure_parent, write_text_atomic
from ..progress import progress_bar
from ..records import frame_record, yolo_txt_lines
from ..video.sources import END, OK, open_source
from ..video.writer import AtomicVideoWriter
from ..visualize import draw_detections
from .args import add_model_args
from .common import detector_from_args, print_json_last


def add_arguments(p):
    add_model_args(p)
    p.add_argument("--source", required=True, help="image, folder of images, glob, or video file")
    p.add_argument("--save-dir", default=None, help="write annotated images/video and detections.jsonl here")
    p.add_argument("--no-images", action="store_true", help="with --save-dir, write only detections.jsonl")
    p.add_argument("--save-txt", action="store_true",
                   help="with --save-dir, also YOLO label files of the predictions (labels/<image>.txt: class cx cy "
                        "w h), readable back as labels")
    p.add_argument("--save-conf", action="store_true", help="with --save-txt, append each box's confidence")
    p.add_argument("--max-frames", type=_positive_int, default=None, help="stop after this many frames/images")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {value}, expected a positive integer")
    return value


def run(args):
    det = detector_from_args(args)
    out_dir = Path(args.save_dir) if args.save_dir else None
    if out_dir:
        ensure_parent(out_dir / "detections.jsonl", "--save-dir")
    video = is_video(args.source)
    frames, total = _video_frames(args.source) if video else _image_frames(args.source)
    if args.max_frames:
        total = min(total, args.max_frames) if total else args.max_frames
    counts, n_frames, n_boxes = {}, 0, 0
    labels_dir = out_dir / "labels" if out_dir and args.save_txt else None
    with contextlib.ExitStack() as stack:
        jsonl = writer = None
        if out_dir:
            jsonl = stack.enter_context(open(stack.enter_context(
                atomic_path(out_dir / "detections.jsonl", "--save-dir")), "w"))
        bar = stack.enter_context(progress_bar(desc="detect", total=total, unit="frame", disable=args.quiet))
        for name, index, img, fps, video_time in frames:
            if args.max_frames and n_frames >= args.max_frames:
                break
            dets = det(img)
            n_frames += 1
            n_boxes += len(dets)
            bar.update(1)
            for k, v in dets.counts().items():
                counts[k] = counts.get(k, 0) + v
            if jsonl:
                jsonl.write(json.dumps(frame_record(dets, source=name, frame=index, video_time=video_time)) + "\n")
            if labels_dir:
                stem = Path(name).stem if not video else f"{Path(name).stem}_{index:06d}"
                lines = yolo_txt_lines(dets, img.shape[1], img.shape[0], with_conf=args.save_conf)
                write_text_atomic(labels_dir / f"{stem}.txt", "".join(line + "\n" for line in lines), "--save-txt")
            if out_dir and not args.no_images:
                annotated = draw_detections(img.copy(), dets)
                if not video:
                    _write_image(out_dir / Path(name).name, annotated)
                    continue
                if writer is None:
                    writer = stack.enter_context(AtomicVideoWriter(out_dir / (Path(name).stem + ".mp4"), fps,
                                                                   annotated.shape[1::-1]))
                writer.write(annotated)
    summary = {"frames": n_frames, "boxes": n_boxes, "per_class": counts,
               "save_dir": str(out_dir) if out_dir else None}
    print(f"{n_frames} frames, {n_boxes} detections: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print_json_last(summary)
    return 0


def _write_image(path, image):
    """An annotated image, atomically: cv2.imwrite's False (full disk, bad path) is an error, never skipped."""
    with atomic_path(path, "--save-dir", suffix=".part" + path.suffix) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise SDKError(f"--save-dir {path.parent}: could not write {path.name}, expected a writable folder "
                           f"with free space")


def _image_frames(source):
    paths = list_images(source, "--source")

    def frames():
        for i, path in enumerate(paths):
            yield path, i, read_image(path), None, None

    return frames(), len(paths)


def _video_frames(source):
    """Every decodable frame of a video file, in order (damaged frames are skipped, as in the camera pipeline),
    with its position in the file in seconds."""
    video = open_source(source, "--source")
    fps = video.fps or 30.0
    cap = getattr(video, "cap", None)
    total = int(max(cap.get(cv2.CAP_PROP_FRAME_COUNT), 0)) or None if cap is not None else None

    def frames():
        i = 0
        try:
            while True:
                status, frame = video.read()
                if status == END:
                    break
                if status == OK:
                    # the frame's position in the file (damaged frames skipped before it still count)
                    pos = cap.get(cv2.CAP_PROP_POS_FRAMES) - 1 if cap is not None else i
                    yield source, i, frame, fps, max(pos, 0) / fps
                    i += 1
        finally:
            video.close()
        if i == 0:
            raise SDKError(f"--source {source}: no frames could be decoded, expected a playable video file")

    return frames(), total

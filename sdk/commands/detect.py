"""`python -m sdk detect`: images, folders, globs and video files in; annotated media and JSON lines out."""
import contextlib
import json
from pathlib import Path

import cv2

from ..data.images import is_video, list_images, read_image, write_image
from ..errors import SDKError
from ..fileio import atomic_path, ensure_parent
from ..progress import progress_bar
from ..video.sources import END, OK, open_source
from ..video.writer import AtomicVideoWriter
from ..visualize import draw_detections
from .common import add_model_args, detector_from_args, print_json_last


def add_arguments(p):
    add_model_args(p)
    p.add_argument("--source", required=True, help="image, folder of images, glob, or video file")
    p.add_argument("--save-dir", default=None, help="write annotated images/video and detections.jsonl here")
    p.add_argument("--no-images", action="store_true", help="with --save-dir, write only detections.jsonl")


def run(args):
    det = detector_from_args(args)
    out_dir = Path(args.save_dir) if args.save_dir else None
    if out_dir:
        ensure_parent(out_dir / "detections.jsonl", "--save-dir")
    video = is_video(args.source)
    frames = _video_frames(args.source) if video else _image_frames(args.source)
    counts, n_frames, n_boxes = {}, 0, 0
    with contextlib.ExitStack() as stack:
        jsonl = writer = None
        if out_dir:
            jsonl = stack.enter_context(open(stack.enter_context(
                atomic_path(out_dir / "detections.jsonl", "--save-dir")), "w"))
        for name, index, img, fps in progress_bar(frames, desc="detect"):
            dets = det(img)
            n_frames += 1
            n_boxes += len(dets)
            for k, v in dets.counts().items():
                counts[k] = counts.get(k, 0) + v
            if jsonl:
                jsonl.write(json.dumps({"source": name, "frame": index, "detections": dets.to_list()}) + "\n")
            if out_dir and not args.no_images:
                annotated = draw_detections(img.copy(), dets)
                if not video:
                    write_image(out_dir / Path(name).name, annotated, "--save-dir")
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


def _image_frames(source):
    for i, path in enumerate(list_images(source)):
        yield path, i, read_image(path), None


def _video_frames(source):
    """Every decodable frame of a video file, in order (damaged frames are skipped, as in the camera pipeline)."""
    video = open_source(source)
    fps = video.fps or 30.0
    i = 0
    try:
        while True:
            status, frame = video.read()
            if status == END:
                break
            if status == OK:
                yield source, i, frame, fps
                i += 1
    finally:
        video.close()
    if i == 0:
        raise SDKError(f"--source {source}: no frames could be decoded, expected a playable video file")

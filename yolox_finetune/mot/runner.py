"""Run a tracker over a sequence: detections (from a det file or the cache) in, MOT result rows out.

The ``conf`` filter is applied here, before the tracker sees anything: the detector ran once at a low confidence,
and every threshold of a sweep is just a different filter on the same cached boxes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from trackers import make_tracker
from trackers.config import TrackerConfig
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import (
    MotRows,
    SeqInfo,
    empty_rows,
    frame_images,
    list_sequences,
    read_annotated_frames,
    read_detections,
    read_gt,
    read_seqinfo,
)

#: frame rate assumed when neither seqinfo.ini nor ``--fps`` gives one (nuScenes cameras run at 12 Hz; the
#: converter's 2 Hz keyframe sequences carry their own seqinfo.ini).
DEFAULT_FPS = 12.0


@dataclass
class Sequence:
    """One sequence's ground truth, detections and frame images."""

    name: str
    gt: MotRows
    info: SeqInfo
    num_frames: int
    frame_rate: float
    detections: MotRows | None = None
    images: dict[int, Path] = field(default_factory=dict)
    #: the frames that are scored (annotated_frames.txt of an all-frames sequence); None: every frame.
    scored_frames: list[int] | None = None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) from seqinfo.ini, or None when it does not say."""
        if self.info.im_width and self.info.im_height:
            return int(self.info.im_width), int(self.info.im_height)
        return None


def load_sequences(gt_root: str | os.PathLike, det_dir: str | os.PathLike | None = None, fps: float | None = None,
                   gt_format: str = "auto", with_images: bool = True) -> list[Sequence]:
    """Every sequence below ``gt_root`` (``<seq>/gt/gt.txt``), with ``det_dir/<seq>.txt`` detections when given."""
    sequences = []
    names = list_sequences(gt_root)
    if det_dir is not None:
        missing = [n for n in names if not (Path(det_dir) / f"{n}.txt").is_file()]
        if missing:
            raise UserError(f"no detections for {len(missing)} sequence(s) in {det_dir} (e.g. {missing[0]}.txt); "
                            f"expected one <seq>.txt per sequence of {gt_root}")
    for name in names:
        seq_dir = Path(gt_root) / name
        gt = read_gt(seq_dir / "gt" / "gt.txt", gt_format)
        info = read_seqinfo(seq_dir)
        dets = read_detections(Path(det_dir) / f"{name}.txt") if det_dir is not None else None
        last = max(gt.num_frames, dets.num_frames if dets is not None else 0)
        num_frames = max(info.seq_length or 0, last)
        frame_rate = info.frame_rate or fps or DEFAULT_FPS
        images = frame_images(seq_dir) if with_images else {}
        sequences.append(Sequence(name, gt, info, num_frames, frame_rate, dets, images,
                                  read_annotated_frames(seq_dir)))
    return sequences


def effective_config(name: str, config: TrackerConfig, have_images: bool) -> tuple[TrackerConfig, str | None]:
    """The config a tracker really runs with: one that looks at pixels (BoT-SORT's camera-motion compensation)
    runs without them when the sequences have no frames; the second value says what changed (None: nothing)."""
    if have_images or not config.needs_images:
        return config, None
    blind = config.without_images()
    changes = ", ".join(f"{f.name} {getattr(blind, f.name)}" for f in dataclasses.fields(config)
                        if getattr(blind, f.name) != getattr(config, f.name))
    return blind, f"{name}: no frame images (<seq>/img1/*.jpg) found, so it runs without them ({changes})"


def run_tracker(name: str, config: TrackerConfig, detections: MotRows, num_frames: int, frame_rate: float,
                conf: float = 0.0, images: dict[int, Path] | None = None,
                image_size: tuple[int, int] | None = None) -> MotRows:
    """Track ``detections`` with score >= ``conf`` through frames 1..num_frames; frames without detections still
    step the tracker (lost tracks age). ``images`` feed BoT-SORT's motion compensation when its cmc is on."""
    return run_trackers([(name, config, conf)], detections, num_frames, frame_rate, images, image_size)[0]


def run_trackers(runs: list[tuple[str, TrackerConfig, float]], detections: MotRows, num_frames: int,
                 frame_rate: float, images: dict[int, Path] | None = None,
                 image_size: tuple[int, int] | None = None) -> list[MotRows]:
    """Several (tracker, config, conf) runs over one sequence in lockstep, so each frame image is decoded once.

    With ``image_size`` (width, height) the output boxes are clipped to the image, as ground truth is: a Kalman
    state may extend past the border when an object leaves the view, which would cost a match at IoU 0.5."""
    table = np.empty((len(detections), 6))
    table[:, :2] = detections.box[:, :2]
    table[:, 2:4] = detections.box[:, :2] + detections.box[:, 2:]
    table[:, 4] = detections.score
    table[:, 5] = detections.class_id
    by_frame = detections.frame_slices()
    trackers = [make_tracker(name, config, frame_rate=frame_rate) for name, config, _ in runs]
    wants_image = [bool(images) and config.needs_images for _, config, _ in runs]
    outputs: list[list[np.ndarray]] = [[] for _ in runs]
    frames: list[list[np.ndarray]] = [[] for _ in runs]
    empty = np.zeros((0, 6))
    for frame in range(1, num_frames + 1):
        rows = by_frame.get(frame)
        frame_dets = table[rows] if rows is not None else empty
        image = cv2.imread(str(images[frame])) if any(wants_image) and frame in images else None
        for k, ((_, _, conf), tracker) in enumerate(zip(runs, trackers)):
            dets = frame_dets[frame_dets[:, 4] >= conf] if conf > 0 else frame_dets
            out = tracker.update(dets, image if wants_image[k] else None)
            if len(out):
                outputs[k].append(out)
                frames[k].append(np.full(len(out), frame, np.int64))
    return [_result_rows(o, f, image_size) for o, f in zip(outputs, frames)]


def _result_rows(outputs: list[np.ndarray], frames: list[np.ndarray],
                 image_size: tuple[int, int] | None = None) -> MotRows:
    """Tracker rows [x1, y1, x2, y2, id, score, class] -> MOT result rows (xywh), clipped to the image if known."""
    if not outputs:
        return empty_rows(fmt="result")
    out = np.concatenate(outputs)
    frame_of = np.concatenate(frames)
    if image_size is not None:
        out = out.copy()
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, image_size[0])
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, image_size[1])
        inside = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
        out, frame_of = out[inside], frame_of[inside]
    box = np.stack([out[:, 0], out[:, 1], out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]], axis=1)
    return MotRows(frame_of, out[:, 4].astype(np.int64), box, out[:, 5], out[:, 6].astype(np.int64),
                   np.ones(len(out)), fmt="result")

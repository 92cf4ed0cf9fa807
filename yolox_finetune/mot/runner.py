"""Run a tracker over a sequence: detections (from a det file or the cache) in, MOT result rows out.

The ``conf`` filter is applied here, before the tracker sees anything: the detector ran once at a low confidence,
and every threshold of a sweep is just a different filter on the same cached boxes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trackers import make_tracker
from trackers.config import TrackerConfig
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import (
    MotRows,
    SeqInfo,
    empty_rows,
    files_without_gt,
    folders_without_gt,
    frame_images,
    list_sequences,
    name_list,
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
    """Every sequence below ``gt_root`` (``<seq>/gt/gt.txt``), with ``det_dir/<seq>.txt`` detections when given.
    Rows past a sequence's seqLength are an error; rows without area are left out (see ``input_report``)."""
    sequences = []
    names = list_sequences(gt_root)
    if det_dir is not None:
        check_files_for(names, det_dir, "detections", gt_root)
    for name in names:
        seq_dir = Path(gt_root) / name
        info = read_seqinfo(seq_dir)
        gt = read_gt(seq_dir / "gt" / "gt.txt", gt_format, info.seq_length)
        dets = read_detections(Path(det_dir) / f"{name}.txt", info.seq_length) if det_dir is not None else None
        last = max(gt.num_frames, dets.num_frames if dets is not None else 0)
        num_frames = max(info.seq_length or 0, last)
        frame_rate = info.frame_rate or fps or DEFAULT_FPS
        images = frame_images(seq_dir) if with_images else {}
        sequences.append(Sequence(name, gt, info, num_frames, frame_rate, dets, images,
                                  read_annotated_frames(seq_dir)))
    return sequences


def check_files_for(names: list[str], folder: str | os.PathLike, what: str,
                    gt_root: str | os.PathLike | None = None) -> None:
    """UserError unless ``folder`` holds ``<seq>.txt`` for every sequence of ``names`` (from ``gt_root``); the
    message says when its files match no sequence at all (another data set or split)."""
    folder = Path(folder)
    if not folder.is_dir():
        state = "is a file" if folder.exists() else "does not exist"
        raise UserError(f"{what} folder {folder} {state}; pass the folder holding <seq>.txt files")
    missing = [n for n in names if not (folder / f"{n}.txt").is_file()]
    if not missing:
        return
    of_gt = f"of {gt_root}" if gt_root is not None else "with ground truth"
    if len(missing) == len(names):
        others = files_without_gt(folder, names)
        found = f"its files ({name_list(others)}) match none of them" if others else "it holds no <seq>.txt file"
        raise UserError(f"{folder} has no {what} for any of the {len(names)} sequence(s) {of_gt} (e.g. "
                        f"{names[0]}.txt): {found}; pass the {what} of these sequences, or the --gt they belong to")
    raise UserError(f"{folder} has no {what} for {len(missing)} sequence(s) {of_gt} ({name_list(missing)}); "
                    f"write a <seq>.txt (empty when there is nothing) for every ground-truth sequence")


@dataclass
class InputReport:
    """What loading left out or assumed, by name, so that a tool says so in its log and outputs instead of
    dropping it in silence: folders without ground truth, det/results files of no ground-truth sequence, rows
    without area, and sequences whose frame rate was assumed."""

    #: folders under the ground-truth root without gt/gt.txt (not evaluated).
    sequences_without_gt: list[str] = field(default_factory=list)
    #: ``<name>.txt`` files of the det or results folder named after no evaluated sequence (not used).
    files_without_gt: list[str] = field(default_factory=list)
    #: file -> line numbers of rows left out because their box has no area (width or height <= 0).
    rows_without_area: dict[str, list[int]] = field(default_factory=dict)
    #: sequences without a frame rate in seqinfo.ini (nor --fps), tracked at DEFAULT_FPS.
    assumed_frame_rate: list[str] = field(default_factory=list)

    def add_rows(self, rows: MotRows | None) -> None:
        """Note the rows ``rows`` (read from a file) left out."""
        if rows is not None and rows.skipped_lines:
            self.rows_without_area[rows.source] = list(rows.skipped_lines)

    def as_dict(self) -> dict[str, Any]:
        """The report for metrics.json and similar summaries (every key present, empty when nothing)."""
        return {"sequences_without_gt": list(self.sequences_without_gt),
                "files_without_gt": list(self.files_without_gt),
                "rows_without_area": {path: list(lines) for path, lines in self.rows_without_area.items()},
                "rows_without_area_count": sum(len(lines) for lines in self.rows_without_area.values()),
                "assumed_frame_rate": {name: DEFAULT_FPS for name in self.assumed_frame_rate}}

    def messages(self, gt_root: str | os.PathLike, other_dir: str | os.PathLike | None = None) -> list[str]:
        """One line per kind of thing left out or assumed, naming it."""
        lines = []
        if self.sequences_without_gt:
            names = self.sequences_without_gt
            lines.append(f"skipped {len(names)} sequence folder(s) of {gt_root} without gt/gt.txt: "
                         f"{name_list(names, 10)} (not evaluated)")
        if self.files_without_gt:
            files = self.files_without_gt
            lines.append(f"ignored {len(files)} file(s) in {other_dir} named after no ground-truth sequence: "
                         f"{name_list(files, 10)}")
        for path, numbers in self.rows_without_area.items():
            shown = ", ".join(map(str, numbers[:10])) + (" ..." if len(numbers) > 10 else "")
            lines.append(f"skipped {len(numbers)} row(s) without area (width or height <= 0) in {path}: "
                         f"line(s) {shown}")
        if self.assumed_frame_rate:
            names = self.assumed_frame_rate
            lines.append(f"{len(names)} sequence(s) have no frameRate in seqinfo.ini ({name_list(names)}): tracked "
                         f"at {DEFAULT_FPS:g} fps; pass --fps to set it")
        return lines


def input_report(gt_root: str | os.PathLike, sequences: list[Sequence], other_dir: str | os.PathLike | None = None,
                 fps: float | None = None, tracked: bool = True) -> InputReport:
    """What loading ``sequences`` from ``gt_root`` (and the det or results files of ``other_dir``) left out;
    ``tracked``: the sequences are tracked here, so an assumed frame rate matters."""
    names = [s.name for s in sequences]
    report = InputReport(folders_without_gt(gt_root), files_without_gt(other_dir, names) if other_dir else [])
    for seq in sequences:
        report.add_rows(seq.gt)
        report.add_rows(seq.detections)
        if tracked and not seq.info.frame_rate and not fps:
            report.assumed_frame_rate.append(seq.name)
    return report


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

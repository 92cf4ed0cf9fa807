"""Tracking metrics of a whole dataset: class-aware matching per (sequence, class) unit, summed any way.

- Matching is class-aware: each class of each sequence is a separate accumulator (a car never matches a
  pedestrian); per-sequence, per-class and overall numbers are sums of those units' counts (motmetrics' "OVERALL").
- Ground-truth rows with consider flag 0 are ignore entries (MOTChallenge's convention; the converter writes
  occluded boxes and dropped look-alike categories so). Before scoring, each frame's tracker boxes of the class are
  matched to all of its gt boxes of that class, normal and ignore alike, by Hungarian assignment on IoU (pairs
  below 0.5 cannot match); tracker boxes matched to an ignore entry are removed, then the ignore entries. So a box
  on an occluded object is neither TP nor FP, for CLEAR, identity and HOTA alike. This is TrackEval's
  MotChallenge2DBox preprocessing with "ignore entry" in the role of its distractor classes (the tests check equality
  with it); MOT15 ground truth gets no such preprocessing (as in TrackEval): its consider-0 rows are just dropped.
- Our classes are all real targets: MOT17's distractor class numbers (2, 7, 8, 12) are ordinary classes here.
- The counts themselves (CLEAR, identity, HOTA) come from :mod:`.clear` and :mod:`.hota`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from yolox_finetune.core.classes import class_name
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.clear import ClearCounts, clear_counts, iou_matrix
from yolox_finetune.mot.formats import UNKNOWN_CLASS, MotRows, empty_rows

#: IoU at which a tracker box belongs to an ignore entry (MOTChallenge's and TrackEval's fixed 0.5, whatever
#: threshold the metrics use).
IGNORE_IOU = 0.5
_EPS = np.finfo("float").eps


def _frames_of(rows: MotRows, frames: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    by_frame = rows.frame_slices()
    empty = np.zeros(0, np.int64)
    ids = [rows.track_id[by_frame[f]] if f in by_frame else empty for f in frames]
    boxes = [rows.box[by_frame[f]] if f in by_frame else np.zeros((0, 4)) for f in frames]
    return ids, boxes


def align_classes(gt: MotRows, results: MotRows, class_aware: bool = True) -> tuple[MotRows, MotRows]:
    """Give both tables comparable class ids.

    Single-class ground truth (MOT15, or class-agnostic evaluation) puts everything in class UNKNOWN_CLASS. Results
    without classes (MOTChallenge style, -1) take the ground truth's class when it has only one; with several gt
    classes they cannot be matched class-aware, which is an error.
    """
    gt_classes = np.unique(gt.class_id)
    if not class_aware or gt.fmt == "mot15" or (len(gt_classes) == 1 and gt_classes[0] == UNKNOWN_CLASS):
        return _with_class(gt, UNKNOWN_CLASS), _with_class(results, UNKNOWN_CLASS)
    unknown = results.class_id == UNKNOWN_CLASS
    if unknown.any():
        scored = gt.score >= 1  # ignore entries of another class do not make the results ambiguous
        gt_classes = np.unique(gt.class_id[scored]) if scored.any() else gt_classes
        if len(gt_classes) > 1:
            raise UserError(f"{results.source}: rows without a class id (column 8 = -1) but the ground truth has "
                            f"{len(gt_classes)} classes; write class ids (1..N) in column 8 of the results")
        results = _with_class(results, int(gt_classes[0])) if len(gt_classes) else results
    return gt, results


def _with_class(rows: MotRows, class_id: int) -> MotRows:
    return MotRows(rows.frame, rows.track_id, rows.box, rows.score, np.full(len(rows), class_id, np.int64),
                   rows.visibility, rows.source, rows.fmt)


def ignored_tracker_rows(gt: MotRows, results: MotRows) -> np.ndarray:
    """Bool mask over ``results``: rows matched to an ignore entry (consider 0) of ``gt`` in their frame.

    Both tables hold one class. Per frame with an ignore entry, tracker boxes are assigned to all gt boxes (rows in
    file order) by Hungarian assignment maximising IoU, where IoU below :data:`IGNORE_IOU` counts as 0 and a zero
    pair is no match; a tracker box whose partner is an ignore entry is ignored.
    """
    drop = np.zeros(len(results), bool)
    ignore = gt.score < 1
    if not ignore.any() or not len(results):
        return drop
    by_result = results.frame_slices()
    for frame, rows in gt.frame_slices().items():
        cols = by_result.get(frame)
        if cols is None or not ignore[rows].any():
            continue
        score = iou_matrix(gt.box[rows], results.box[cols])
        score[score < IGNORE_IOU - _EPS] = 0.0
        r, c = linear_sum_assignment(-score)
        hit = (score[r, c] > _EPS) & ignore[rows[r]]
        drop[cols[c[hit]]] = True
    return drop


def evaluate_sequence(gt: MotRows, results: MotRows, iou_threshold: float = 0.5,
                      class_aware: bool = True) -> dict[int, ClearCounts]:
    """class id -> counts for one sequence: every class matched on its own, tracker boxes on ignore entries
    (consider 0) removed before scoring (MOT15 ground truth: consider-0 rows dropped, nothing removed)."""
    if gt.fmt == "mot15" and len(gt):
        gt = gt.select(gt.score >= 1)
    gt, results = align_classes(gt, results, class_aware)
    frames = sorted(set(gt.frame.tolist()) | set(results.frame.tolist()))
    out = {}
    for cls in sorted(set(gt.class_id.tolist()) | set(results.class_id.tolist())):
        g = gt.select(gt.class_id == cls)
        r = results.select(results.class_id == cls)
        if len(g) and (g.score < 1).any():
            r = r.select(~ignored_tracker_rows(g, r))
            g = g.select(g.score >= 1)
        gt_ids, gt_boxes = _frames_of(g, frames)
        hyp_ids, hyp_boxes = _frames_of(r, frames)
        out[int(cls)] = clear_counts(gt_ids, gt_boxes, hyp_ids, hyp_boxes, iou_threshold)
    return out


def class_label(class_id: int) -> str:
    """Name used in per-class reports ("all" for single-class data)."""
    return "all" if class_id == UNKNOWN_CLASS else class_name(class_id)


@dataclass
class TrackerCounts:
    """Counts of one tracker over a dataset, kept per (sequence, class) so any grouping can be summed later."""

    units: dict[tuple[str, int], ClearCounts] = field(default_factory=dict)

    def add_sequence(self, seq: str, per_class: dict[int, ClearCounts]) -> None:
        for cls, counts in per_class.items():
            self.units[(seq, cls)] = counts

    def overall(self) -> ClearCounts:
        return sum(self.units.values(), ClearCounts())

    def report(self) -> dict[str, dict]:
        """``{"overall": {metric: v}, "per_sequence": {seq: {...}}, "per_class": {name: {...}}}``."""
        per_seq: dict[str, ClearCounts] = {}
        per_cls: dict[str, ClearCounts] = {}
        for (seq, cls), counts in sorted(self.units.items()):
            per_seq[seq] = per_seq.get(seq, ClearCounts()) + counts
            name = class_label(cls)
            per_cls[name] = per_cls.get(name, ClearCounts()) + counts
        return {
            "overall": self.overall().metrics(),
            "per_sequence": {seq: c.metrics() for seq, c in per_seq.items()},
            "per_class": {name: c.metrics() for name, c in per_cls.items()},
        }


def evaluate_tracker(gt_by_seq: dict[str, MotRows], results_by_seq: dict[str, MotRows], iou_threshold: float = 0.5,
                     class_aware: bool = True) -> TrackerCounts:
    """Counts of one tracker on every sequence of ``gt_by_seq`` (a sequence without results counts as empty)."""
    counts = TrackerCounts()
    for seq, gt in gt_by_seq.items():
        results = results_by_seq.get(seq, empty_rows(seq))
        counts.add_sequence(seq, evaluate_sequence(gt, results, iou_threshold, class_aware))
    return counts

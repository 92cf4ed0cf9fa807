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
- Reported numbers: the detection-weighted overall (counts summed over every unit, motmetrics' OVERALL, TrackEval's
  ``cls_comb_det_av``) and the class means (each class's metrics over all sequences, then the plain mean over the
  classes with ground truth or tracker boxes: TrackEval's ``cls_comb_cls_av`` with ``ignore_empty_classes``, the
  mHOTA / mMOTA / mIDF1 BDD100K ranks by).
- Ratios whose denominator is 0 (a sequence or class without ground truth, a tracker without boxes) take
  TrackEval's values, never None: ``MOTA = (TP - FP - IDSW) / max(1, GT)`` (so ``-FP`` without ground truth) and
  every other ratio ``x / max(1, d)`` (0). motmetrics gives -inf or nan there, which JSON cannot hold; the unit's
  ``note`` says which metrics were so filled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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
            raise UserError(f"{results.source}: rows without a class (a standard MOTChallenge file with no "
                            f"<seq>.classes.csv sidecar) but the ground truth has {len(gt_classes)} classes; write "
                            "the sidecar or class ids in column 8 (--results-format mot+class), or evaluate with "
                            "--class-agnostic (every class pooled into one)")
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


def scored_rows(rows: MotRows, scored_frames: list[int] | None) -> MotRows:
    """The rows on ``scored_frames`` (all rows when None): on an all-frames sequence only the annotated frames are
    scored, so a tracker box on a sweep frame is neither a true nor a false positive."""
    if scored_frames is None:
        return rows
    return rows.select(np.isin(rows.frame, np.asarray(scored_frames, dtype=np.int64)))


def class_units(gt: MotRows, results: MotRows) -> Iterator[tuple[int, MotRows, MotRows]]:
    """(class id, gt rows, tracker rows) per class, as scored: tracker boxes on ignore entries (consider 0) and the
    ignore entries themselves removed."""
    for cls in sorted(set(gt.class_id.tolist()) | set(results.class_id.tolist())):
        g = gt.select(gt.class_id == cls)
        r = results.select(results.class_id == cls)
        if len(g) and (g.score < 1).any():
            r = r.select(~ignored_tracker_rows(g, r))
            g = g.select(g.score >= 1)
        yield int(cls), g, r


def scored_pair(gt: MotRows, results: MotRows, class_aware: bool = True,
                scored_frames: list[int] | None = None) -> tuple[MotRows, MotRows]:
    """(gt, results) as ``evaluate_sequence`` scores them: the scored frames only, MOT15's consider-0 rows dropped,
    classes aligned (``align_classes``: class-less results against multi-class ground truth are an error)."""
    results, gt = scored_rows(results, scored_frames), scored_rows(gt, scored_frames)
    if gt.fmt == "mot15" and len(gt):
        gt = gt.select(gt.score >= 1)
    return align_classes(gt, results, class_aware)


def evaluate_sequence(gt: MotRows, results: MotRows, iou_threshold: float = 0.5,
                      class_aware: bool = True, scored_frames: list[int] | None = None) -> dict[int, ClearCounts]:
    """class id -> counts for one sequence: every class matched on its own, tracker boxes on ignore entries
    (consider 0) removed before scoring (MOT15 ground truth: consider-0 rows dropped, nothing removed), and with
    ``scored_frames`` (a sequence's annotated_frames.txt) only those frames scored."""
    gt, results = scored_pair(gt, results, class_aware, scored_frames)
    frames = sorted(set(gt.frame.tolist()) | set(results.frame.tolist()))
    out = {}
    for cls, g, r in class_units(gt, results):
        gt_ids, gt_boxes = _frames_of(g, frames)
        hyp_ids, hyp_boxes = _frames_of(r, frames)
        out[cls] = clear_counts(gt_ids, gt_boxes, hyp_ids, hyp_boxes, iou_threshold)
    return out


def class_label(class_id: int) -> str:
    """Name used in per-class reports ("all" for single-class data)."""
    return "all" if class_id == UNKNOWN_CLASS else class_name(class_id)


#: ratio metrics (percent) averaged over classes for the class means; counts (IDSW, FP, ...) are not averaged.
CLASS_MEAN_METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "DetA", "AssA", "MOTP", "IDP", "IDR", "Recall",
                                       "Precision")
#: the class means put beside the overall numbers, as BDD100K names and ranks them.
HEADLINE_CLASS_MEANS: dict[str, str] = {"mHOTA": "HOTA", "mMOTA": "MOTA", "mIDF1": "IDF1"}


def unit_metrics(counts: ClearCounts) -> dict[str, Any]:
    """``counts.metrics()`` with TrackEval's value wherever a ratio's denominator is 0 (see the module doc), and a
    ``note`` naming those metrics."""
    metrics: dict[str, Any] = counts.metrics()
    filled = [name for name, value in metrics.items() if value is None]
    if not filled:
        return metrics
    true_positives = counts.matches + counts.switches
    for name in filled:
        metrics[name] = 0.0
    if "MOTA" in filled:
        metrics["MOTA"] = 100.0 * (true_positives - counts.false_positives - counts.switches) / max(
            1, counts.num_objects)
    why = "no ground truth" if counts.num_objects == 0 else "no tracker boxes" if counts.num_predictions == 0 \
        else "no matches"
    metrics["note"] = (f"{why}: {', '.join(filled)} are TrackEval's values (ratio over max(1, denominator)); "
                       "motmetrics reports -inf or nan")
    return metrics


def class_means(per_class: dict[str, ClearCounts]) -> dict[str, Any]:
    """Plain mean over classes of each ratio metric and the classes averaged: TrackEval's class average with empty
    classes (no ground truth and no tracker boxes left after ignore entries) left out."""
    used = {name: unit_metrics(c) for name, c in per_class.items() if c.num_objects + c.num_predictions > 0}
    if not used:
        return {"classes": [], **{m: 0.0 for m in CLASS_MEAN_METRICS}}
    means = {m: float(np.mean([entry[m] for entry in used.values()])) for m in CLASS_MEAN_METRICS}
    return {"classes": list(used), **means}


@dataclass
class TrackerCounts:
    """Counts of one tracker over a dataset, kept per (sequence, class) so any grouping can be summed later."""

    units: dict[tuple[str, int], ClearCounts] = field(default_factory=dict)
    #: every sequence added, also those without ground truth and tracker boxes (they have no unit).
    sequences: dict[str, None] = field(default_factory=dict)

    def add_sequence(self, seq: str, per_class: dict[int, ClearCounts]) -> None:
        self.sequences[seq] = None
        for cls, counts in per_class.items():
            self.units[(seq, cls)] = counts

    def overall(self) -> ClearCounts:
        return sum(self.units.values(), ClearCounts())

    def per_class(self) -> dict[str, ClearCounts]:
        """Class name -> that class's counts summed over sequences."""
        per_cls: dict[str, ClearCounts] = {}
        for (_, cls), counts in sorted(self.units.items(), key=lambda item: (item[0][1], item[0][0])):
            name = class_label(cls)
            per_cls[name] = per_cls.get(name, ClearCounts()) + counts
        return per_cls

    def summary(self) -> dict[str, Any]:
        """The overall metrics with the headline class means (mHOTA, mMOTA, mIDF1) added: one flat row."""
        means = class_means(self.per_class())
        return {**unit_metrics(self.overall()), **{k: means[m] for k, m in HEADLINE_CLASS_MEANS.items()}}

    def report(self) -> dict[str, dict]:
        """``{"overall": {metric: v, mHOTA, mMOTA, mIDF1}, "class_mean": {metric: v, "classes": [...]},
        "per_sequence": {seq: {...}}, "per_class": {name: {...}}}``."""
        per_seq: dict[str, ClearCounts] = {seq: ClearCounts() for seq in sorted(self.sequences)}
        for (seq, _), counts in sorted(self.units.items()):
            per_seq[seq] = per_seq.get(seq, ClearCounts()) + counts
        class_counts = self.per_class()
        per_class = {name: unit_metrics(c) for name, c in class_counts.items()}
        means = class_means(class_counts)
        overall = {**unit_metrics(self.overall()), **{k: means[m] for k, m in HEADLINE_CLASS_MEANS.items()}}
        return {
            "overall": overall,
            "class_mean": means,
            "per_sequence": {seq: unit_metrics(c) for seq, c in per_seq.items()},
            "per_class": per_class,
        }


def evaluate_tracker(gt_by_seq: dict[str, MotRows], results_by_seq: dict[str, MotRows], iou_threshold: float = 0.5,
                     class_aware: bool = True,
                     scored_frames_by_seq: dict[str, list[int] | None] | None = None) -> TrackerCounts:
    """Counts of one tracker on every sequence of ``gt_by_seq`` (a sequence without results counts as empty)."""
    counts = TrackerCounts()
    scored = scored_frames_by_seq or {}
    for seq, gt in gt_by_seq.items():
        results = results_by_seq.get(seq, empty_rows(seq))
        counts.add_sequence(seq, evaluate_sequence(gt, results, iou_threshold, class_aware, scored.get(seq)))
    return counts

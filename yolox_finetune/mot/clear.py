"""CLEAR MOT and identity counts of one (sequence, class) unit, exactly as motmetrics computes them.

motmetrics' accumulator builds a pandas event table per sequence, which costs tens of milliseconds per sequence;
a confidence sweep evaluates thousands of (sequence, class, setting) units. So the per-frame event logic of
``motmetrics.MOTAccumulator.update`` (carry matches forward, then min-cost assignment with motmetrics' own LAP solver,
switches against the last match) is replayed here on plain numpy arrays and reduced to additive counts. The tests
check every number against ``motmetrics`` itself on its TUD files and on generated scenes.

Ratios are percent. MOTP is the mean IoU of matched pairs in percent (MOTChallenge's convention; motmetrics'
``motp`` is the mean 1 - IoU distance, so MOTP = 100 * (1 - motp)). Undefined ratios (0 / 0) are None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
from motmetrics.lap import linear_sum_assignment as mm_linear_sum_assignment

from yolox_finetune.mot.hota import HotaCounts, hota_counts

#: metric names in reporting order (the same names everywhere: metrics.json, sweep CSV, tables).
METRIC_NAMES: tuple[str, ...] = ("MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "FP", "FN", "MT", "PT", "ML", "Frag",
                                 "Recall", "Precision", "HOTA", "DetA", "AssA")
#: metrics where smaller is better (for picking the best threshold of a sweep).
LOWER_IS_BETTER: frozenset[str] = frozenset({"IDSW", "FP", "FN", "ML", "Frag"})


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes ``a`` (N, 4) against ``b`` (M, 4), with motmetrics' arithmetic (so 0.5 ties agree)."""
    a_min, b_min = a[:, None, :2], b[None, :, :2]
    a_max, b_max = a_min + a[:, None, 2:], b_min + b[None, :, 2:]
    inter_size = np.maximum(np.minimum(a_max, b_max) - np.maximum(a_min, b_min), 0)
    inter = inter_size[..., 0] * inter_size[..., 1]
    a_size, b_size = np.maximum(a_max - a_min, 0), np.maximum(b_max - b_min, 0)
    union = a_size[..., 0] * a_size[..., 1] + b_size[..., 0] * b_size[..., 1] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter != 0)


@dataclass
class ClearCounts:
    """Additive CLEAR/identity counts of one or more (sequence, class) units."""

    num_objects: int = 0
    num_predictions: int = 0
    matches: int = 0
    switches: int = 0
    false_positives: int = 0
    misses: int = 0
    distance_sum: float = 0.0  # sum of 1 - IoU over matches and switches (motmetrics' MOTP numerator)
    mostly_tracked: int = 0
    partially_tracked: int = 0
    mostly_lost: int = 0
    fragmentations: int = 0
    idtp: int = 0
    hota: HotaCounts = field(default_factory=HotaCounts)

    def __add__(self, other: ClearCounts) -> ClearCounts:
        merged = ClearCounts()
        for f in fields(ClearCounts):
            setattr(merged, f.name, getattr(self, f.name) + getattr(other, f.name))
        return merged

    def metrics(self) -> dict[str, float | int | None]:
        """The reported metrics (ratios in percent, counts as ints, None where undefined)."""
        detections = self.matches + self.switches
        idfn = self.num_objects - self.idtp
        idfp = self.num_predictions - self.idtp
        out: dict[str, float | int | None] = {
            "MOTA": _pct(1.0 - _div(self.misses + self.switches + self.false_positives, self.num_objects)),
            "MOTP": _pct(1.0 - _div(self.distance_sum, detections)),
            "IDF1": _pct(_div(2 * self.idtp, self.num_objects + self.num_predictions)),
            "IDP": _pct(_div(self.idtp, self.idtp + idfp)),
            "IDR": _pct(_div(self.idtp, self.idtp + idfn)),
            "IDSW": self.switches,
            "FP": self.false_positives,
            "FN": self.misses,
            "MT": self.mostly_tracked,
            "PT": self.partially_tracked,
            "ML": self.mostly_lost,
            "Frag": self.fragmentations,
            "Recall": _pct(_div(detections, self.num_objects)),
            "Precision": _pct(_div(detections, self.false_positives + detections)),
        }
        out.update(self.hota.summary())
        return out


def _div(a: float, b: float) -> float:
    return a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))


def _pct(x: float) -> float | None:
    return x * 100.0 if math.isfinite(x) else None


def clear_counts(gt_ids: list[np.ndarray], gt_boxes: list[np.ndarray], hyp_ids: list[np.ndarray],
                 hyp_boxes: list[np.ndarray], iou_threshold: float = 0.5) -> ClearCounts:
    """CLEAR MOT, identity and HOTA counts of one sequence and class, frame lists in time order.

    Replays ``motmetrics.MOTAccumulator.update`` per frame: previous pairs that still overlap are kept, the rest is
    assigned by motmetrics' LAP solver on the 1 - IoU distances (pairs with IoU below the threshold cannot pair),
    and an object matched to a different hypothesis than its last one is a switch.
    """
    counts = ClearCounts()
    max_distance = 1.0 - iou_threshold
    last_match: dict[int, int] = {}  # object id -> hypothesis id (motmetrics' ``m``)
    tracked_frames: dict[int, int] = {}
    present_frames: dict[int, int] = {}
    states: dict[int, list[bool]] = {}  # object id -> matched? per frame it is present (for Frag)
    hyp_frames: dict[int, int] = {}
    pair_overlaps: dict[tuple[int, int], int] = {}  # frames where a pair's IoU passes the threshold (IDF1)
    similarities = []
    for oids, oboxes, hids, hboxes in zip(gt_ids, gt_boxes, hyp_ids, hyp_boxes):
        no, nh = len(oids), len(hids)
        counts.num_objects += no
        counts.num_predictions += nh
        olist, hlist = oids.tolist(), hids.tolist()
        for h in hlist:
            hyp_frames[h] = hyp_frames.get(h, 0) + 1
        matched_o = np.zeros(no, bool)
        matched_h = np.zeros(nh, bool)
        if no and nh:
            iou = iou_matrix(oboxes, hboxes)
            similarities.append(iou)
            dist = 1.0 - iou
            dist[dist > max_distance] = np.nan
            valid_i, valid_j = np.nonzero(np.isfinite(dist))
            for i, j in zip(valid_i.tolist(), valid_j.tolist()):
                key = (olist[i], hlist[j])
                pair_overlaps[key] = pair_overlaps.get(key, 0) + 1
            if len(valid_i):
                hpos = {h: j for j, h in enumerate(hlist)}
                for i, o in enumerate(olist):  # 1. carry established pairs forward
                    j = hpos.get(last_match.get(o, None), None)
                    if j is not None and not matched_h[j] and np.isfinite(dist[i, j]):
                        matched_o[i] = matched_h[j] = True
                        counts.matches += 1
                        counts.distance_sum += float(dist[i, j])
                dist[matched_o, :] = np.nan
                dist[:, matched_h] = np.nan
                for i, j in zip(*_assign(dist)):  # 2. min-cost assignment of the rest
                    o, h = olist[i], hlist[j]
                    if o in last_match and last_match[o] != h:
                        counts.switches += 1
                    else:
                        counts.matches += 1
                    counts.distance_sum += float(dist[i, j])
                    matched_o[i] = matched_h[j] = True
                    last_match[o] = h
        else:
            similarities.append(np.zeros((no, nh)))
        counts.misses += int(no - matched_o.sum())
        counts.false_positives += int(nh - matched_h.sum())
        for o, m in zip(olist, matched_o.tolist()):
            present_frames[o] = present_frames.get(o, 0) + 1
            if m:
                tracked_frames[o] = tracked_frames.get(o, 0) + 1
            states.setdefault(o, []).append(m)

    for o, total in present_frames.items():
        ratio = tracked_frames.get(o, 0) / total
        if ratio >= 0.8:
            counts.mostly_tracked += 1
        elif ratio >= 0.2:
            counts.partially_tracked += 1
        else:
            counts.mostly_lost += 1
        counts.fragmentations += _fragmentations(states[o])
    counts.idtp = _identity_true_positives(pair_overlaps)
    counts.hota = hota_counts(gt_ids, hyp_ids, similarities)
    return counts


def _assign(dist: np.ndarray) -> tuple[list[int], list[int]]:
    """Finite pairs of motmetrics' assignment; when no row or column holds two candidates the answer is forced
    (every optimum takes all of them), so the solver is skipped."""
    finite = np.isfinite(dist)
    if not finite.any():
        return [], []
    if finite.sum(0).max() <= 1 and finite.sum(1).max() <= 1:
        rows, cols = np.nonzero(finite)
        return rows.tolist(), cols.tolist()
    rows, cols = mm_linear_sum_assignment(dist)
    keep = np.isfinite(dist[rows, cols])
    return rows[keep].tolist(), cols[keep].tolist()


def _fragmentations(states: list[bool]) -> int:
    """Times a track goes from tracked to missed between its first and last tracked frame (motmetrics' Frag)."""
    frag = sum(1 for previous, current in zip(states, states[1:]) if previous and not current)
    # a final run of misses after the last tracked frame is outside the span and does not count
    if states and not states[-1] and any(states):
        frag -= 1
    return frag


def _identity_true_positives(pair_overlaps: dict[tuple[int, int], int]) -> int:
    """IDTP: the largest total overlap of a one-to-one object/hypothesis id assignment (IDF1's global matching)."""
    if not pair_overlaps:
        return 0
    oids = {o: i for i, o in enumerate(sorted({o for o, _ in pair_overlaps}))}
    hids = {h: j for j, h in enumerate(sorted({h for _, h in pair_overlaps}))}
    weights = np.zeros((len(oids), len(hids)))
    for (o, h), n in pair_overlaps.items():
        weights[oids[o], hids[h]] = n
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(weights, maximize=True)
    return int(weights[rows, cols].sum())

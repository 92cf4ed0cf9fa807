"""HOTA, DetA and AssA as TrackEval defines them (Luiten et al., IJCV 2020), vectorised over the 19 alphas.

Per sequence (and class): every frame's gt/tracker pairs are scored by IoU; a first pass accumulates, for each
(gt id, tracker id) pair, the soft "potential match" count; the global alignment score of a pair is that count
over the union of both ids' detections. Each frame is then matched by Hungarian assignment on
``alignment * IoU``; a pair counts as a true positive at alpha when its IoU >= alpha. DetA = TP / (TP + FN + FP),
AssA = mean over TPs of the matched ids' TPA / (TPA + FNA + FPA), HOTA = sqrt(DetA * AssA), each averaged over
alpha = 0.05, 0.10, ..., 0.95. Sequences and classes combine by summing TP/FN/FP and weighting AssA by TP (what
TrackEval does for sequences and for its detection-averaged class combination).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

#: the localisation thresholds HOTA averages over (TrackEval's ``np.arange(0.05, 0.99, 0.05)``).
ALPHAS: np.ndarray = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo("float").eps


def _zeros() -> np.ndarray:
    return np.zeros(len(ALPHAS))


@dataclass
class HotaCounts:
    """Additive HOTA state: per-alpha TP/FN/FP and the TP-weighted sums of AssA and LocA."""

    tp: np.ndarray = field(default_factory=_zeros)
    fn: np.ndarray = field(default_factory=_zeros)
    fp: np.ndarray = field(default_factory=_zeros)
    ass_sum: np.ndarray = field(default_factory=_zeros)  # AssA * TP
    loc_sum: np.ndarray = field(default_factory=_zeros)  # sum of matched IoUs

    def __add__(self, other: HotaCounts) -> HotaCounts:
        return HotaCounts(self.tp + other.tp, self.fn + other.fn, self.fp + other.fp, self.ass_sum + other.ass_sum,
                          self.loc_sum + other.loc_sum)

    def arrays(self) -> dict[str, np.ndarray]:
        """Per-alpha DetA, AssA, HOTA, DetRe, DetPr, LocA (fractions), TrackEval's formulas."""
        det_a = self.tp / np.maximum(1, self.tp + self.fn + self.fp)
        ass_a = self.ass_sum / np.maximum(1.0, self.tp)
        return {
            "HOTA": np.sqrt(det_a * ass_a),
            "DetA": det_a,
            "AssA": ass_a,
            "DetRe": self.tp / np.maximum(1, self.tp + self.fn),
            "DetPr": self.tp / np.maximum(1, self.tp + self.fp),
            "LocA": np.maximum(1e-10, self.loc_sum) / np.maximum(1e-10, self.tp),
        }

    def summary(self) -> dict[str, float]:
        """HOTA, DetA, AssA averaged over alpha, in percent."""
        arrays = self.arrays()
        return {name: float(np.mean(arrays[name]) * 100.0) for name in ("HOTA", "DetA", "AssA")}


def hota_counts(gt_ids: list[np.ndarray], tracker_ids: list[np.ndarray], similarity: list[np.ndarray]) -> HotaCounts:
    """HOTA state of one sequence (one class).

    ``gt_ids[t]`` / ``tracker_ids[t]``: the ids present in frame t (any integers), ``similarity[t]``: their IoU matrix
    (len(gt_ids[t]) x len(tracker_ids[t])).
    """
    counts = HotaCounts()
    num_gt = sum(len(g) for g in gt_ids)
    num_tr = sum(len(t) for t in tracker_ids)
    if num_tr == 0 or num_gt == 0:
        counts.fn[:] = num_gt
        counts.fp[:] = num_tr
        return counts

    gt_index = {v: i for i, v in enumerate(np.unique(np.concatenate(gt_ids)).tolist())}
    tr_index = {v: i for i, v in enumerate(np.unique(np.concatenate(tracker_ids)).tolist())}
    gt_dense = [np.fromiter((gt_index[v] for v in g.tolist()), np.int64, len(g)) for g in gt_ids]
    tr_dense = [np.fromiter((tr_index[v] for v in t.tolist()), np.int64, len(t)) for t in tracker_ids]

    potential = np.zeros((len(gt_index), len(tr_index)))
    gt_count = np.zeros((len(gt_index), 1))
    tr_count = np.zeros((1, len(tr_index)))
    for g, t, sim in zip(gt_dense, tr_dense, similarity):
        if len(g) and len(t):
            denom = sim.sum(0)[np.newaxis, :] + sim.sum(1)[:, np.newaxis] - sim
            soft = np.zeros_like(sim)
            mask = denom > 0 + _EPS
            soft[mask] = sim[mask] / denom[mask]
            potential[g[:, np.newaxis], t[np.newaxis, :]] += soft
        np.add.at(gt_count, g, 1)
        np.add.at(tr_count, (0, t), 1)
    alignment = potential / (gt_count + tr_count - potential)

    matched_gt, matched_tr, matched_sim = [], [], []
    fn_total = fp_total = 0
    tp_per_alpha = np.zeros(len(ALPHAS))
    for g, t, sim in zip(gt_dense, tr_dense, similarity):
        if not len(g) or not len(t):
            fn_total += len(g)
            fp_total += len(t)
            continue
        score = alignment[g[:, np.newaxis], t[np.newaxis, :]] * sim
        rows, cols = _match(score)
        s = sim[rows, cols]
        # TP at alpha when IoU >= alpha; the rest of this frame's boxes are FN/FP at that alpha
        tp_here = (s[np.newaxis, :] >= ALPHAS[:, np.newaxis] - _EPS).sum(1)
        tp_per_alpha += tp_here
        counts.fn += len(g) - tp_here
        counts.fp += len(t) - tp_here
        matched_gt.append(g[rows])
        matched_tr.append(t[cols])
        matched_sim.append(s)
    counts.fn += fn_total
    counts.fp += fp_total
    counts.tp = tp_per_alpha

    if matched_sim:
        mg, mt, ms = np.concatenate(matched_gt), np.concatenate(matched_tr), np.concatenate(matched_sim)
        n_tr = len(tr_index)
        for a, alpha in enumerate(ALPHAS):
            keep = ms >= alpha - _EPS
            if not keep.any():
                continue
            pair_counts = np.bincount(mg[keep] * n_tr + mt[keep], minlength=len(gt_index) * n_tr)
            pair_counts = pair_counts.reshape(len(gt_index), n_tr).astype(float)
            ass = pair_counts / np.maximum(1, gt_count + tr_count - pair_counts)
            counts.ass_sum[a] = np.sum(pair_counts * ass)
            counts.loc_sum[a] = ms[keep].sum()
    return counts


def _match(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian assignment maximising ``score``; skipped when no row or column has two positive entries
    (then the positive pairs are the only optimum, and zero-score pairs never count as matches)."""
    positive = score > 0
    if positive.sum(0).max(initial=0) <= 1 and positive.sum(1).max(initial=0) <= 1:
        return np.nonzero(positive)
    return linear_sum_assignment(-score)

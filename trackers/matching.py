"""Association costs (IoU, score fusion, class gating, appearance) and the linear assignment that uses them.

Costs live in [0, 1] (1 - similarity); a pair that must never match gets ``GATED_COST``, far above any threshold.
"""

from __future__ import annotations

import numpy as np

try:  # lap's Jonker-Volgenant solver is the fast path; scipy gives the same optimum when lap is missing
    import lap
except ImportError:  # pragma: no cover - exercised through use_lap=False in the tests
    lap = None

#: cost of a forbidden pair (other class, too far for appearance); larger than any threshold.
GATED_COST = 1e5


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (N, 4) x (M, 4) -> (N, M). ``plus_one``: the pixel-inclusive convention of
    cython_bbox, which the reference ByteTrack and BoT-SORT use (width = x2 - x1 + 1)."""
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros((len(boxes_a), len(boxes_b)))
    if plus_one:  # one pixel more on the far corners gives the +1 in both the sizes and the overlap
        boxes_a = np.concatenate([boxes_a[:, :2], boxes_a[:, 2:] + 1.0], axis=1)
        boxes_b = np.concatenate([boxes_b[:, :2], boxes_b[:, 2:] + 1.0], axis=1)
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    overlap = np.maximum(bottom_right - top_left, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    size_a = boxes_a[:, 2:] - boxes_a[:, :2]
    size_b = boxes_b[:, 2:] - boxes_b[:, :2]
    union = (size_a[:, 0] * size_a[:, 1])[:, None] + (size_b[:, 0] * size_b[:, 1])[None, :] - inter
    return inter / np.maximum(union, 1e-12)


def iou_distance(boxes_a: np.ndarray, boxes_b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """1 - IoU, the motion cost of both trackers."""
    return 1.0 - iou_matrix(boxes_a, boxes_b, plus_one)


def fuse_score(cost: np.ndarray, det_scores: np.ndarray) -> np.ndarray:
    """Weight IoU similarity by detection confidence, so a sure detection wins a tie against an unsure one."""
    if cost.size == 0:
        return cost
    return 1.0 - (1.0 - cost) * np.asarray(det_scores, dtype=np.float64)[None, :]


def gate_classes(cost: np.ndarray, track_classes: np.ndarray, det_classes: np.ndarray) -> np.ndarray:
    """Forbid pairs whose classes differ: a car track never takes a pedestrian detection."""
    if cost.size == 0:
        return cost
    different = np.asarray(track_classes)[:, None] != np.asarray(det_classes)[None, :]
    return np.where(different, GATED_COST, cost)


def embedding_distance(track_features: np.ndarray, det_features: np.ndarray) -> np.ndarray:
    """Cosine distance in [0, 2] between L2-normalised embeddings: (N, D) x (M, D) -> (N, M)."""
    a = np.asarray(track_features, dtype=np.float64)
    b = np.asarray(det_features, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def fuse_appearance(
    motion_cost: np.ndarray, iou_cost: np.ndarray, appearance_cost: np.ndarray, proximity_thresh: float,
    appearance_thresh: float,
) -> np.ndarray:
    """BoT-SORT's rule: take the smaller of motion and appearance cost, but trust appearance only for pairs that
    are close (IoU cost below ``proximity_thresh``) and look alike (half cosine distance below ``appearance_thresh``).
    """
    appearance = appearance_cost / 2.0
    appearance = np.where((appearance > appearance_thresh) | (iou_cost > proximity_thresh), 1.0, appearance)
    return np.minimum(motion_cost, appearance)


def linear_assignment(
    cost: np.ndarray, thresh: float, use_lap: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching where a pair costing more than ``thresh`` is never made.

    Returns (matches (K, 2) of [row, col], unmatched rows, unmatched cols). Leaving a row and a column unmatched
    costs ``thresh`` (half each), the same extension lap's ``cost_limit`` uses, so the scipy path finds the same
    optimum.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return np.empty((0, 2), dtype=int), np.arange(n_rows), np.arange(n_cols)
    if n_rows == 1 or n_cols == 1:  # one track or one detection: the cheapest pair, if any is allowed
        flat = cost.ravel()
        best = int(flat.argmin())
        rows, cols = (np.array([0]), np.array([best])) if n_rows == 1 else (np.array([best]), np.array([0]))
    elif use_lap and lap is not None:
        _, row_to_col, _ = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
        rows = np.flatnonzero(row_to_col >= 0)
        cols = row_to_col[rows]
    else:
        from scipy.optimize import linear_sum_assignment  # imported here: scipy.optimize takes ~0.3 s to load

        extended = np.full((n_rows + n_cols, n_rows + n_cols), thresh / 2.0)
        extended[n_rows:, n_cols:] = 0.0
        extended[:n_rows, :n_cols] = np.minimum(cost, GATED_COST)
        rows, cols = linear_sum_assignment(extended)
        real = (rows < n_rows) & (cols < n_cols)
        rows, cols = rows[real], cols[real]
    keep = cost[rows, cols] <= thresh
    rows, cols = rows[keep], cols[keep]
    row_matched = np.zeros(n_rows, dtype=bool)
    row_matched[rows] = True
    col_matched = np.zeros(n_cols, dtype=bool)
    col_matched[cols] = True
    matches = np.empty((len(rows), 2), dtype=int)
    matches[:, 0], matches[:, 1] = rows, cols
    return matches, np.flatnonzero(~row_matched), np.flatnonzero(~col_matched)

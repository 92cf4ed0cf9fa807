"""Building blocks of the trackers: IoU, cost gating, linear assignment (lap and scipy) and the Kalman filters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from trackers.kalman_filter import KalmanFilterXYAH, KalmanFilterXYWH
from trackers.matching import (
    GATED_COST,
    embedding_distance,
    fuse_score,
    gate_classes,
    iou_distance,
    iou_matrix,
    linear_assignment,
)


def test_iou_matrix_matches_hand_computed_overlaps():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 120]], dtype=float)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=float)
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(50 / 150)  # half-shifted square: 50 shared of 150 covered
    assert iou[0, 1] == pytest.approx(1.0)
    assert iou[0, 2] == 0.0 and (iou[1] == 0).all()
    assert iou_distance(a, b) == pytest.approx(1 - iou)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_score_fusion_and_class_gating():
    cost = np.array([[0.2, 0.5], [0.0, 1.0]])
    fused = fuse_score(cost, np.array([0.5, 1.0]))
    assert fused == pytest.approx(np.array([[1 - 0.8 * 0.5, 0.5], [0.5, 1.0]]))
    gated = gate_classes(cost, np.array([1, 5]), np.array([1, 1]))
    assert gated[0, 0] == 0.2 and gated[0, 1] == 0.5  # same class: untouched
    assert (gated[1] == GATED_COST).all()  # a pedestrian track (5) may not take car detections (1)


def test_embedding_distance_is_cosine():
    a = np.array([[1.0, 0.0], [0.0, 3.0]])
    b = np.array([[2.0, 0.0], [-1.0, 0.0]])
    assert embedding_distance(a, b) == pytest.approx(np.array([[0.0, 2.0], [1.0, 1.0]]))


def _brute_force_best(cost: np.ndarray, thresh: float) -> float:
    """Cheapest matching where unmatched rows/columns cost thresh/2 each, by trying every partial assignment."""
    n_rows, n_cols = cost.shape
    best = (n_rows + n_cols) * thresh / 2
    for k in range(1, min(n_rows, n_cols) + 1):
        for rows in itertools.combinations(range(n_rows), k):
            for cols in itertools.permutations(range(n_cols), k):
                pair_costs = cost[list(rows), list(cols)]
                if (pair_costs > thresh).any():
                    continue
                best = min(best, pair_costs.sum() + (n_rows + n_cols - 2 * k) * thresh / 2)
    return best


@pytest.mark.parametrize("use_lap", [True, False], ids=["lap", "scipy"])
def test_linear_assignment_finds_the_optimum_and_respects_the_threshold(use_lap):
    rng = np.random.default_rng(3)
    for _ in range(25):
        n_rows, n_cols = rng.integers(1, 5, size=2)
        cost = rng.uniform(0, 1, size=(n_rows, n_cols))
        thresh = 0.6
        matches, lone_rows, lone_cols = linear_assignment(cost, thresh, use_lap=use_lap)
        assert (cost[matches[:, 0], matches[:, 1]] <= thresh).all()
        assert sorted(list(matches[:, 0]) + list(lone_rows)) == list(range(n_rows))
        assert sorted(list(matches[:, 1]) + list(lone_cols)) == list(range(n_cols))
        total = cost[matches[:, 0], matches[:, 1]].sum() + (len(lone_rows) + len(lone_cols)) * thresh / 2
        assert total == pytest.approx(_brute_force_best(cost, thresh))


def test_linear_assignment_never_makes_a_gated_pair():
    cost = np.array([[GATED_COST, 0.1], [GATED_COST, GATED_COST]])
    matches, lone_rows, lone_cols = linear_assignment(cost, 0.8)
    assert matches.tolist() == [[0, 1]]
    assert lone_rows.tolist() == [1] and lone_cols.tolist() == [0]
    empty = linear_assignment(np.zeros((0, 3)), 0.8)
    assert empty[0].shape == (0, 2) and empty[2].tolist() == [0, 1, 2]


@pytest.mark.parametrize("kalman_class", [KalmanFilterXYAH, KalmanFilterXYWH])
def test_kalman_filter_learns_constant_velocity(kalman_class):
    kf = kalman_class()
    boxes = np.array([[100.0 + 4 * t, 50.0 - 2 * t, 160.0 + 4 * t, 170.0 - 2 * t] for t in range(30)])
    assert kf.measurements_to_boxes(kf.boxes_to_measurements(boxes)) == pytest.approx(boxes)
    mean, cov = kf.initiate(kf.boxes_to_measurements(boxes[:1]))
    for box in boxes[1:]:
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, kf.boxes_to_measurements(box[None]))
    assert mean[0, 4:6] == pytest.approx([4.0, -2.0], abs=0.05)  # centre velocity per frame
    predicted, _ = kf.predict(mean, cov)
    assert kf.measurements_to_boxes(predicted[:, :4])[0] == pytest.approx(boxes[-1] + [4, -2, 4, -2], abs=0.3)


@pytest.mark.parametrize("kalman_class", [KalmanFilterXYAH, KalmanFilterXYWH])
def test_batched_kalman_update_equals_one_track_at_a_time(kalman_class):
    kf = kalman_class()
    rng = np.random.default_rng(0)
    first = rng.uniform(0, 200, size=(5, 2))
    boxes = np.concatenate([first, first + rng.uniform(20, 80, size=(5, 2))], axis=1)
    means, covs = kf.predict(*kf.initiate(kf.boxes_to_measurements(boxes)))
    measurements = kf.boxes_to_measurements(boxes + rng.normal(0, 3, size=boxes.shape))
    batch_means, batch_covs = kf.update(means, covs, measurements)
    for k in range(5):
        one_mean, one_cov = kf.update(means[k:k + 1], covs[k:k + 1], measurements[k:k + 1])
        assert one_mean[0] == pytest.approx(batch_means[k])
        assert one_cov[0] == pytest.approx(batch_covs[k])
    assert np.allclose(batch_covs, batch_covs.transpose(0, 2, 1))


def test_kalman_warp_moves_centres_and_turns_velocities():
    kf = KalmanFilterXYWH()
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 40.0, 80.0]]))
    mean[0, 4:6] = [3.0, 0.0]
    shift = np.array([[1.0, 0.0, -25.0], [0.0, 1.0, 7.0]])
    moved, moved_cov = kf.warp(mean, cov, shift)
    assert moved[0, :4] == pytest.approx([75.0, 57.0, 40.0, 80.0])
    assert moved_cov == pytest.approx(cov)  # a pure translation leaves uncertainty alone
    quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    turned, _ = kf.warp(mean, cov, quarter_turn)
    assert turned[0, 4:6] == pytest.approx([0.0, 3.0])

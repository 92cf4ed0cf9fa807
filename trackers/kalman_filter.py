"""Constant-velocity Kalman filters over box states, batched over tracks.

Every method takes and returns stacks (``means`` (K, 8), ``covariances`` (K, 8, 8)) so a frame costs a handful of
numpy calls whatever the number of tracks: per-track filtering would dominate the tracker's run time.

Two box parameterisations:
- ``KalmanFilterXYAH`` (ByteTrack): centre x, centre y, aspect ratio w/h, height; noise scales with the height.
- ``KalmanFilterXYWH`` (BoT-SORT): centre x, centre y, width, height; noise scales with width and height, which
  follows wide boxes (cars) better than a height-only model.

Noise is a standard deviation per state entry: ``size * weight + constant``, where ``size`` is the box dimension
(height, or width/height) that entry scales with; the weights are the usual 1/20 (position) and 1/160 (velocity).
"""

from __future__ import annotations

import numpy as np

_DIM = 4  # measured quantities; the state adds one velocity per quantity
_POS = 1.0 / 20  # position noise, as a fraction of the box size per frame
_VEL = 1.0 / 160  # velocity noise


class _KalmanFilter:
    """Shared linear algebra; subclasses give the box <-> measurement mapping and the noise tables."""

    #: per state entry: the measurement index of the box size it scales with.
    size_index: tuple[int, ...]
    #: (weights, constants) of the standard deviations: at birth (8), per prediction (8), per measurement (4).
    initial_noise: tuple[tuple[float, ...], tuple[float, ...]]
    process_noise: tuple[tuple[float, ...], tuple[float, ...]]
    measurement_noise: tuple[tuple[float, ...], tuple[float, ...]]
    #: state indices whose velocity is zeroed while a track is lost (its size should not keep drifting).
    size_velocity_indices: tuple[int, ...] = ()
    #: state index pairs that are image-plane vectors and so turn with the camera (see ``warp``).
    warp_pairs: tuple[tuple[int, int], ...] = ((0, 1), (4, 5))

    def __init__(self) -> None:
        self._motion = np.eye(2 * _DIM)
        self._motion[:_DIM, _DIM:] = np.eye(_DIM)  # x' = x + v (one frame)
        self._motion_t = self._motion.T.copy()
        self._size_index = np.array(self.size_index)
        self._tables = {
            name: (np.array(weights), np.array(constants))
            for name, (weights, constants) in (
                ("initial", self.initial_noise), ("process", self.process_noise),
                ("measurement", self.measurement_noise),
            )
        }

    def _variance(self, table: str, sizes: np.ndarray) -> np.ndarray:
        weights, constants = self._tables[table]
        std = sizes[:, self._size_index[: len(weights)]] * weights + constants
        return std * std

    # -- box mapping (subclasses) ---------------------------------------------------------------------------------
    def boxes_to_measurements(self, xyxy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def measurements_to_boxes(self, measurements: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- filter ---------------------------------------------------------------------------------------------------
    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks at rest: state (K, 8) and a diagonal covariance (K, 8, 8) wide on velocity."""
        measurements = np.asarray(measurements, dtype=np.float64).reshape(-1, _DIM)
        means = np.zeros((len(measurements), 2 * _DIM))
        means[:, :_DIM] = measurements
        return means, _diagonal(self._variance("initial", measurements))

    def predict(self, means: np.ndarray, covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead under constant velocity."""
        new_means = means @ self._motion_t
        new_covs = self._motion @ covariances @ self._motion_t + _diagonal(self._variance("process", means))
        return new_means, new_covs

    def project(self, means: np.ndarray, covariances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """State to measurement space, with measurement noise added: (K, 4), (K, 4, 4)."""
        noise = _diagonal(self._variance("measurement", means))
        return means[:, :_DIM], covariances[:, :_DIM, :_DIM] + noise

    def update(
        self, means: np.ndarray, covariances: np.ndarray, measurements: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct the states with one measurement each (K, 4)."""
        projected_mean, projected_cov = self.project(means, covariances)
        # Kalman gain K = P H^T S^-1; with H = [I 0], P H^T is the first four columns of P; S is symmetric.
        cross = covariances[:, :, :_DIM]  # (K, 8, 4)
        gain = _solve_spd(projected_cov, cross.transpose(0, 2, 1)).transpose(0, 2, 1)
        innovation = np.asarray(measurements, dtype=np.float64) - projected_mean
        new_means = means + (gain @ innovation[:, :, None])[:, :, 0]
        new_covs = covariances - gain @ projected_cov @ gain.transpose(0, 2, 1)
        return new_means, new_covs

    def warp(self, means: np.ndarray, covariances: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move states by a 2x3 image warp (camera motion): turn/scale the vector pairs, translate the centre."""
        block = np.eye(2 * _DIM)
        for i, j in self.warp_pairs:
            block[np.ix_((i, j), (i, j))] = affine[:2, :2]
        new_means = means @ block.T
        new_means[:, :2] += affine[:2, 2]
        new_covs = block @ covariances @ block.T
        return new_means, new_covs


class KalmanFilterXYAH(_KalmanFilter):
    """ByteTrack's filter: measurement (cx, cy, w/h, h); noise scales with the height."""

    size_index = (3,) * 8
    initial_noise = ((2 * _POS, 2 * _POS, 0, 2 * _POS, 10 * _VEL, 10 * _VEL, 0, 10 * _VEL),
                     (0, 0, 1e-2, 0, 0, 0, 1e-5, 0))
    process_noise = ((_POS, _POS, 0, _POS, _VEL, _VEL, 0, _VEL), (0, 0, 1e-2, 0, 0, 0, 1e-5, 0))
    measurement_noise = ((_POS, _POS, 0, _POS), (0, 0, 1e-1, 0))
    size_velocity_indices = (7,)

    def boxes_to_measurements(self, xyxy: np.ndarray) -> np.ndarray:
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        out = np.empty_like(xyxy)
        out[:, 3] = xyxy[:, 3] - xyxy[:, 1]
        out[:, 2] = (xyxy[:, 2] - xyxy[:, 0]) / np.maximum(out[:, 3], 1e-6)
        out[:, 0] = (xyxy[:, 0] + xyxy[:, 2]) / 2
        out[:, 1] = (xyxy[:, 1] + xyxy[:, 3]) / 2
        return out

    def measurements_to_boxes(self, measurements: np.ndarray) -> np.ndarray:
        half_w = measurements[:, 2] * measurements[:, 3] / 2
        half_h = measurements[:, 3] / 2
        out = np.empty((len(measurements), 4))
        out[:, 0] = measurements[:, 0] - half_w
        out[:, 1] = measurements[:, 1] - half_h
        out[:, 2] = measurements[:, 0] + half_w
        out[:, 3] = measurements[:, 1] + half_h
        return out


class KalmanFilterXYWH(_KalmanFilter):
    """BoT-SORT's filter: measurement (cx, cy, w, h); x-like entries scale with the width, y-like with height."""

    size_index = (2, 3) * 4
    initial_noise = ((2 * _POS,) * 4 + (10 * _VEL,) * 4, (0,) * 8)
    process_noise = ((_POS,) * 4 + (_VEL,) * 4, (0,) * 8)
    measurement_noise = ((_POS,) * 4, (0,) * 4)
    size_velocity_indices = (6, 7)
    warp_pairs = ((0, 1), (2, 3), (4, 5), (6, 7))

    def boxes_to_measurements(self, xyxy: np.ndarray) -> np.ndarray:
        xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        out = np.empty_like(xyxy)
        out[:, 2:] = xyxy[:, 2:] - xyxy[:, :2]
        out[:, :2] = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        return out

    def measurements_to_boxes(self, measurements: np.ndarray) -> np.ndarray:
        out = np.empty((len(measurements), 4))
        out[:, :2] = measurements[:, :2] - measurements[:, 2:4] / 2
        out[:, 2:] = measurements[:, :2] + measurements[:, 2:4] / 2
        return out


def _solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve a x = b for a stack of small symmetric positive-definite ``a`` (K, n, n), ``b`` (K, n, m).

    Gauss-Jordan elimination in plain numpy (no pivoting is needed for SPD matrices). For 4x4 systems this beats
    ``np.linalg.solve``, whose per-call LAPACK/BLAS threading costs ten times more on a busy 2-core machine.
    """
    n = a.shape[1]
    augmented = np.concatenate([a, b], axis=2)  # eliminate on [a | b] at once
    for i in range(n):
        augmented[:, i, :] /= augmented[:, i, i, None].copy()
        factor = augmented[:, :, i, None].copy()
        factor[:, i] = 0.0
        augmented -= factor * augmented[:, None, i, :]
    return augmented[:, :, n:]


def _diagonal(values: np.ndarray) -> np.ndarray:
    """(K, D) -> (K, D, D) diagonal matrices."""
    k, d = values.shape
    out = np.zeros((k, d, d))
    out[:, np.arange(d), np.arange(d)] = values
    return out

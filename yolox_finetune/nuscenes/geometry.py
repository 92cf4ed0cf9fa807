"""Vectorised rigid-body maths for nuScenes records: quaternions, 3D box corners and frame changes.

nuScenes stores rotations as (w, x, y, z) quaternions and sizes as (width, length, height). The devkit does these
steps one box at a time with pyquaternion; here every function takes a leading batch axis so a whole scene is one
numpy call.
"""

from __future__ import annotations

import numpy as np

#: unit-box corner signs along the box's own (length, width, height) axes, in the devkit's corner order.
_CORNER_SIGNS = np.array(
    [
        [1, 1, 1, 1, -1, -1, -1, -1],
        [1, -1, -1, 1, 1, -1, -1, 1],
        [1, 1, -1, -1, 1, 1, -1, -1],
    ],
    dtype=np.float64,
).T  # (8, 3)


def quaternion_to_matrix(quaternions: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices (normalised first, like pyquaternion)."""
    q = np.asarray(quaternions, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def matrix_to_quaternion(matrix: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix -> (w, x, y, z) quaternion with w >= 0 (Shepperd's method, numerically safe)."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    return q if q[0] >= 0 else -q


def yaw_quaternion(yaw: np.ndarray | float) -> np.ndarray:
    """Rotation about +z by ``yaw`` radians as (..., 4) quaternions: headings of cars, people and the ego vehicle."""
    half = 0.5 * np.asarray(yaw, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, zeros, np.sin(half)], axis=-1)


def box_corners(translation: np.ndarray, size_wlh: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, 8, 3) corners of boxes given centres (N, 3), sizes (N, 3) as (w, l, h) and (N, 4) quaternions."""
    size = np.asarray(size_wlh, dtype=np.float64)
    half_lwh = 0.5 * size[:, [1, 0, 2]]  # box x runs along length, y along width
    local = _CORNER_SIGNS[None, :, :] * half_lwh[:, None, :]
    rot = quaternion_to_matrix(rotation)
    return np.einsum("nij,nkj->nki", rot, local) + np.asarray(translation, dtype=np.float64)[:, None, :]


def world_to_sensor(points: np.ndarray, ego_translation: np.ndarray, ego_rotation: np.ndarray,
                    sensor_translation: np.ndarray, sensor_rotation: np.ndarray) -> np.ndarray:
    """Move (N, K, 3) global points into the sensor frame, per row: global -> ego (pose) -> sensor (calibration).

    The four pose arrays are (N, 3) / (N, 4): each row may belong to a different image.
    """
    ego_rot = quaternion_to_matrix(ego_rotation)
    sensor_rot = quaternion_to_matrix(sensor_rotation)
    in_ego = np.einsum("nji,nkj->nki", ego_rot, points - np.asarray(ego_translation)[:, None, :])
    return np.einsum("nji,nkj->nki", sensor_rot, in_ego - np.asarray(sensor_translation)[:, None, :])


def sensor_to_world(points: np.ndarray, ego_translation: np.ndarray, ego_rotation: np.ndarray,
                    sensor_translation: np.ndarray, sensor_rotation: np.ndarray) -> np.ndarray:
    """Inverse of :func:`world_to_sensor` for a single pose: (K, 3) sensor-frame points -> global frame."""
    in_ego = points @ quaternion_to_matrix(sensor_rotation).T + np.asarray(sensor_translation)
    return in_ego @ quaternion_to_matrix(ego_rotation).T + np.asarray(ego_translation)

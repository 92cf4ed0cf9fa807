"""The synthetic vehicle's sensor rig: nuScenes' six cameras and top lidar, with realistic calibration.

Intrinsics and mounting positions follow the values nuScenes publishes for its 1600x900 cameras; a smaller image
size scales the intrinsics so the field of view stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yolox_finetune.nuscenes.geometry import matrix_to_quaternion, quaternion_to_matrix, yaw_quaternion

#: nuScenes' native camera resolution, the reference for the intrinsics below.
NATIVE_IMAGE_SIZE = (1600, 900)


@dataclass(frozen=True)
class CameraSpec:
    channel: str
    yaw_deg: float  # viewing direction, counter-clockwise from the vehicle's forward axis
    translation: tuple[float, float, float]  # mounting point in the ego frame (m)
    focal: float  # px at 1600x900
    principal: tuple[float, float]  # px at 1600x900


CAMERAS: tuple[CameraSpec, ...] = (
    CameraSpec("CAM_FRONT", 0.0, (1.70, 0.02, 1.51), 1266.4, (816.3, 491.5)),
    CameraSpec("CAM_FRONT_RIGHT", -55.0, (1.50, -0.49, 1.52), 1260.8, (807.9, 495.3)),
    CameraSpec("CAM_BACK_RIGHT", -110.0, (1.04, -0.48, 1.56), 1259.5, (807.3, 501.2)),
    CameraSpec("CAM_BACK", 180.0, (0.03, 0.00, 1.57), 809.2, (829.2, 481.8)),
    CameraSpec("CAM_BACK_LEFT", 110.0, (1.04, 0.48, 1.57), 1256.7, (792.1, 492.8)),
    CameraSpec("CAM_FRONT_LEFT", 55.0, (1.52, 0.49, 1.51), 1272.6, (826.6, 479.8)),
)
CAMERA_CHANNELS: tuple[str, ...] = tuple(c.channel for c in CAMERAS)
LIDAR_CHANNEL = "LIDAR_TOP"
LIDAR_TRANSLATION = (0.94, 0.0, 1.84)


def camera_rotation(yaw_deg: float, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Quaternion taking camera-frame vectors (x right, y down, z forward) to the ego frame (x fwd, y left, z up)."""
    yaw = np.deg2rad(yaw_deg)
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    base = np.stack([right, down, forward], axis=1)
    # small mounting errors: pitch about the camera's x axis, roll about its z axis (camera frame)
    p, r = np.deg2rad(pitch_deg), np.deg2rad(roll_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return matrix_to_quaternion(base @ pitch @ roll)


def camera_calibrations(image_size: tuple[int, int], rng: np.random.Generator) -> list[dict]:
    """One calibration per camera: channel, translation, rotation (w, x, y, z), 3x3 intrinsic for ``image_size``."""
    sx, sy = image_size[0] / NATIVE_IMAGE_SIZE[0], image_size[1] / NATIVE_IMAGE_SIZE[1]
    calibrations = []
    for spec in CAMERAS:
        pitch, roll = rng.uniform(-0.6, 0.6, size=2)
        intrinsic = [[spec.focal * sx, 0.0, spec.principal[0] * sx],
                     [0.0, spec.focal * sy, spec.principal[1] * sy],
                     [0.0, 0.0, 1.0]]
        calibrations.append({
            "channel": spec.channel,
            "translation": list(spec.translation),
            "rotation": camera_rotation(spec.yaw_deg, pitch, roll).tolist(),
            "camera_intrinsic": intrinsic,
        })
    return calibrations


def lidar_calibration() -> dict:
    """LIDAR_TOP as mounted on the nuScenes car: on the roof, x axis pointing to the vehicle's right."""
    return {"channel": LIDAR_CHANNEL, "translation": list(LIDAR_TRANSLATION),
            "rotation": yaw_quaternion(-np.pi / 2).tolist(), "camera_intrinsic": []}


def rotation_matrix(calibration: dict) -> np.ndarray:
    return quaternion_to_matrix(np.asarray(calibration["rotation"]))

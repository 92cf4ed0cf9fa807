"""Camera-motion compensation on rendered frames: a textured world seen through a camera that pans by known
amounts, so the true warp between frames is known exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trackers import make_tracker
from trackers.gmc import GMC
from trackers.matching import iou_matrix
from yolox_finetune.core.classes import CLASS_IDS

FRAME_W, FRAME_H = 640, 480
CAR = CLASS_IDS["car"]


@pytest.fixture(scope="module")
def world() -> np.ndarray:
    """A large BGR image with blob texture at several scales, like real scenes (corners for the feature methods,
    coarse structure for ECC's image pyramid)."""
    rng = np.random.default_rng(11)
    texture = sum(cv2.GaussianBlur(rng.uniform(0, 255, size=(1100, 1500)).astype(np.float32), (0, 0), sigma) * sigma
                  for sigma in (3, 10, 30))
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.cvtColor(texture, cv2.COLOR_GRAY2BGR)


def view(world: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """The frame a camera with top-left corner at ``offset`` (world pixels) sees."""
    ox, oy = offset
    return np.ascontiguousarray(world[oy:oy + FRAME_H, ox:ox + FRAME_W])


@pytest.mark.parametrize("method", ["sparseOptFlow", "orb", "ecc"])
def test_estimated_warp_matches_the_applied_pan(world, method):
    gmc = GMC(method)
    offsets = [(300, 200), (312, 195), (326, 193), (318, 205)]
    assert np.array_equal(gmc.estimate(view(world, offsets[0])), np.eye(2, 3))  # first frame: nothing to compare
    for previous, current in zip(offsets, offsets[1:]):
        warp = gmc.estimate(view(world, current))
        # the camera moved by (dx, dy): the scene, and so every pixel, moved by (-dx, -dy)
        expected_shift = [previous[0] - current[0], previous[1] - current[1]]
        assert warp[:, 2] == pytest.approx(expected_shift, abs=0.75)
        assert warp[:, :2] == pytest.approx(np.eye(2), abs=0.01)


def test_gmc_none_and_missing_images_give_the_identity(world):
    assert np.array_equal(GMC("none").estimate(view(world, (0, 0))), np.eye(2, 3))
    gmc = GMC("sparseOptFlow")
    gmc.estimate(view(world, (0, 0)))
    assert np.array_equal(gmc.estimate(None), np.eye(2, 3))
    smaller = np.ascontiguousarray(world[:200, :300])
    assert np.array_equal(gmc.estimate(smaller), np.eye(2, 3))  # a new image size restarts the estimate


def _jerky_pan(seed: int = 5, frames: int = 24) -> list[tuple[int, int]]:
    """Camera offsets with sudden sideways jumps of 20-40 px in a random direction, each frame."""
    rng = np.random.default_rng(seed)
    offsets = [(400, 300)]
    for _ in range(frames - 1):
        step = rng.uniform(20, 40) * rng.choice([-1, 1])
        x = int(np.clip(offsets[-1][0] + step, 250, 600))
        y = int(np.clip(offsets[-1][1] + rng.uniform(-8, 8), 250, 350))
        offsets.append((x, y))
    return offsets


@pytest.mark.parametrize("method", ["sparseOptFlow", "orb", "ecc"])
def test_botsort_with_gmc_keeps_ids_under_a_jerky_pan_where_motion_alone_fails(world, method):
    """Parked cars (static in the world) seen by a shaking camera: their image boxes jump by up to 40 px a frame,
    farther than the 40 px boxes are wide. With the warp applied, predictions follow; without, tracks break."""
    parked = [(620, 420), (760, 460), (880, 400), (700, 560)]  # world centres of 40x30 cars
    offsets = _jerky_pan()

    def track(cmc: str) -> dict[int, set[int]]:
        tracker = make_tracker("botsort", config={"cmc": cmc})
        ids: dict[int, set[int]] = {k: set() for k in range(len(parked))}
        for ox, oy in offsets:
            boxes = np.array([[x - 20 - ox, y - 15 - oy, x + 20 - ox, y + 15 - oy] for x, y in parked], dtype=float)
            dets = np.concatenate([boxes, np.full((len(boxes), 1), 0.9), np.full((len(boxes), 1), CAR)], axis=1)
            rows = tracker.update(dets, view(world, (ox, oy)))
            if len(rows):
                overlap = iou_matrix(boxes, rows[:, :4])
                for k in range(len(parked)):
                    if overlap[k].max() > 0.5:
                        ids[k].add(int(rows[overlap[k].argmax(), 4]))
        return ids

    compensated = track(method)
    assert compensated == {0: {1}, 1: {2}, 2: {3}, 3: {4}}
    uncompensated = track("none")
    assert sum(len(s) for s in uncompensated.values()) > len(parked)  # ids broken by the jumps

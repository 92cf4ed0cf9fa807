"""Running a tracker over a sequence: output boxes are clipped to the image when its size is known."""

from __future__ import annotations

import numpy as np

from trackers.config import build_config
from yolox_finetune.mot.formats import MotRows
from yolox_finetune.mot.runner import run_tracker

WIDTH, HEIGHT = 800, 450


def leaving_car(frames: int = 6) -> MotRows:
    """A car driving out of the left border: its (ground-truth-like) box is truncated, so it narrows each frame."""
    rows = []
    for f in range(1, frames + 1):
        right = 520 - 90 * (f - 1)
        rows.append((f, 0.0, 60.0, float(right), 320.0))
    rows = np.array(rows)
    n = len(rows)
    return MotRows(rows[:, 0].astype(np.int64), np.full(n, -1), rows[:, 1:], np.full(n, 0.9), np.ones(n, np.int64),
                   np.ones(n))


def test_output_is_clipped_to_the_image_when_its_size_is_known():
    dets = leaving_car()
    config = build_config("bytetrack")
    free = run_tracker("bytetrack", config, dets, 6, 2.0)
    clipped = run_tracker("bytetrack", config, dets, 6, 2.0, image_size=(WIDTH, HEIGHT))
    # ByteTrack's filter keeps the aspect ratio nearly fixed, so its box pokes out past the left border ...
    assert (free.box[:, 0] < -1).any()
    # ... and clipping puts it back on the canvas, like the ground truth, without dropping or renumbering tracks
    assert (clipped.box[:, 0] >= 0).all() and (clipped.box[:, 0] + clipped.box[:, 2] <= WIDTH).all()
    assert len(clipped) == len(free) and np.array_equal(clipped.track_id, free.track_id)

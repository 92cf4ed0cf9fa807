"""Gap interpolation of finished tracks: exact boxes on a hand case, agreement with a plain loop on random tracks."""

from __future__ import annotations

import numpy as np
import pytest

from yolox_finetune.mot.formats import MotRows
from yolox_finetune.mot.interpolation import interpolate_tracks


def rows_of(table: list[tuple]) -> MotRows:
    """(frame, id, x, y, w, h, score, class) tuples -> MotRows."""
    a = np.array(table, dtype=np.float64).reshape(-1, 8)
    return MotRows(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6], a[:, 6], a[:, 7].astype(np.int64),
                   np.ones(len(a)))


def test_a_short_gap_is_filled_on_the_straight_line_and_a_long_one_is_not():
    rows = rows_of([
        (1, 1, 0, 0, 10, 10, 0.9, 1), (4, 1, 30, 60, 16, 10, 0.6, 1),  # gap of 2 frames
        (10, 1, 30, 60, 16, 10, 0.8, 1),  # gap of 5 frames: too long for max_gap 3
        (2, 2, 5, 5, 5, 5, 0.7, 2),
    ])
    out = interpolate_tracks(rows, max_gap=3)
    track1 = out.select(out.track_id == 1)
    assert track1.frame.tolist() == [1, 2, 3, 4, 10]
    assert np.allclose(track1.box[1], [10, 20, 12, 10]) and np.allclose(track1.box[2], [20, 40, 14, 10])
    assert np.allclose(track1.score[1:3], 0.6)  # the weaker end's score
    assert out.select(out.track_id == 2).frame.tolist() == [2]
    assert np.all(np.diff(out.frame) >= 0)  # sorted by frame
    assert len(interpolate_tracks(rows, max_gap=0)) == len(rows)
    with pytest.raises(ValueError, match="max gap"):
        interpolate_tracks(rows, max_gap=-1)


def test_same_id_in_another_class_is_another_track():
    rows = rows_of([(1, 1, 0, 0, 10, 10, 0.9, 1), (3, 1, 20, 0, 10, 10, 0.9, 2)])
    assert len(interpolate_tracks(rows, max_gap=5)) == 2


def _reference(rows: MotRows, max_gap: int) -> list[tuple]:
    """The plain loop: per (id, class), walk the frames in order and fill each short hole."""
    out = []
    keys = sorted({(int(t), int(c)) for t, c in zip(rows.track_id, rows.class_id)})
    for track, cls in keys:
        idx = [i for i in range(len(rows)) if rows.track_id[i] == track and rows.class_id[i] == cls]
        idx.sort(key=lambda i: rows.frame[i])
        for a, b in zip(idx, idx[1:] + [None]):
            out.append((int(rows.frame[a]), track, *np.round(rows.box[a], 6), round(float(rows.score[a]), 6)))
            if b is None:
                continue
            gap = int(rows.frame[b] - rows.frame[a]) - 1
            if 1 <= gap <= max_gap:
                for k in range(1, gap + 1):
                    box = rows.box[a] + (rows.box[b] - rows.box[a]) * k / (gap + 1)
                    out.append((int(rows.frame[a]) + k, track, *np.round(box, 6),
                                round(float(min(rows.score[a], rows.score[b])), 6)))
    return sorted(out, key=lambda r: (r[0], r[1]))


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_a_plain_loop_on_random_tracks(seed):
    rng = np.random.default_rng(seed)
    table = []
    for track in range(1, 9):
        frames = np.sort(rng.choice(np.arange(1, 60), size=rng.integers(1, 25), replace=False))
        cls = int(rng.integers(1, 4))
        for f in frames:
            table.append((f, track, *rng.uniform(0, 100, 2), *rng.uniform(5, 50, 2), rng.uniform(0.1, 1), cls))
    rows = rows_of(table)
    max_gap = int(rng.integers(1, 8))
    out = interpolate_tracks(rows, max_gap)
    got = [(int(f), int(t), *np.round(b, 6), round(float(s), 6))
           for f, t, b, s in zip(out.frame, out.track_id, out.box, out.score)]
    assert got == _reference(rows, max_gap)

"""Linear interpolation of short gaps inside finished tracks (the post-processing ByteTrack's ``interpolation``
does for its MOT17/20 submissions).

A track that is lost for a few frames and then re-found leaves a hole of misses; filling it with boxes on the
straight line between the two ends turns most of them into matches. Gaps longer than ``max_gap`` frames are left
alone (the object may have gone somewhere else), and nothing is added before a track's first or after its last
frame. Interpolated rows take the score of the weaker end, so a score filter never keeps an interpolated box
that neither real end would pass.
"""

from __future__ import annotations

import numpy as np

from yolox_finetune.mot.formats import MotRows


def interpolate_tracks(rows: MotRows, max_gap: int) -> MotRows:
    """``rows`` plus interpolated rows for every gap of 1..``max_gap`` missing frames inside a track (same id and
    class), sorted by frame then id. ``max_gap`` 0 returns the rows unchanged (as a sorted copy)."""
    if max_gap < 0:
        raise ValueError(f"interpolation max gap {max_gap} must be 0 or more frames")
    order = np.lexsort((rows.frame, rows.class_id, rows.track_id))
    frame, track, cls = rows.frame[order], rows.track_id[order], rows.class_id[order]
    same_track = (track[1:] == track[:-1]) & (cls[1:] == cls[:-1])
    missing = frame[1:] - frame[:-1] - 1
    gaps = np.flatnonzero(same_track & (missing >= 1) & (missing <= max_gap))
    if max_gap == 0 or not len(gaps):
        return _sorted(rows)
    counts = missing[gaps]
    start = order[gaps]  # row index of each gap's left end, in ``rows``
    end = order[gaps + 1]
    left = np.repeat(start, counts)
    right = np.repeat(end, counts)
    step = np.concatenate([np.arange(1, n + 1) for n in counts])
    fraction = (step / np.repeat(counts + 1, counts))[:, None]
    boxes = rows.box[left] + (rows.box[right] - rows.box[left]) * fraction
    filled = MotRows(
        frame=rows.frame[left] + step, track_id=rows.track_id[left], box=boxes,
        score=np.minimum(rows.score[left], rows.score[right]), class_id=rows.class_id[left],
        visibility=np.ones(len(left)), source=rows.source, fmt=rows.fmt,
    )
    return _sorted(_concat(rows, filled))


def _concat(a: MotRows, b: MotRows) -> MotRows:
    return MotRows(np.concatenate([a.frame, b.frame]), np.concatenate([a.track_id, b.track_id]),
                   np.concatenate([a.box, b.box]), np.concatenate([a.score, b.score]),
                   np.concatenate([a.class_id, b.class_id]), np.concatenate([a.visibility, b.visibility]),
                   a.source, a.fmt)


def _sorted(rows: MotRows) -> MotRows:
    return rows.select(np.lexsort((rows.track_id, rows.frame)))

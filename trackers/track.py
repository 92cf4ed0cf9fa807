"""One tracked object: its Kalman state, life-cycle state, class, last score and (with ReID) appearance."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class TrackState(IntEnum):
    """Life cycle: a new track is Tracked (unconfirmed until a second hit), Lost when unmatched, Removed at the end
    of the buffer or when a duplicate."""

    TRACKED = 1
    LOST = 2
    REMOVED = 3


class Track:
    """Mutable track record; the trackers update many of them at once through the batched Kalman filter."""

    __slots__ = (
        "track_id", "mean", "covariance", "state", "is_activated", "score", "class_id", "start_frame", "end_frame",
        "hits", "feature", "outlived_buffer",
    )

    def __init__(
        self, track_id: int, mean: np.ndarray, covariance: np.ndarray, score: float, class_id: int, frame: int,
        confirmed: bool,
    ) -> None:
        self.track_id = track_id
        self.mean = mean
        self.covariance = covariance
        self.state = TrackState.TRACKED
        #: confirmed tracks are reported; a track born after the first frame waits for a second hit.
        self.is_activated = confirmed
        self.score = score
        self.class_id = class_id
        self.start_frame = frame
        #: last frame with a matched detection.
        self.end_frame = frame
        self.hits = 1
        #: running average of appearance embeddings (BoT-SORT with ReID), L2-normalised.
        self.feature: np.ndarray | None = None
        #: found again in the extra frame that ``strict_removal=False`` grants after the buffer: the reference code
        #: has already listed it as removed, so it is removed as soon as it is lost again.
        self.outlived_buffer = False

    def mark_hit(self, score: float, class_id: int, frame: int) -> None:
        """Bookkeeping for a matched detection (the Kalman correction is applied by the tracker in a batch)."""
        self.state = TrackState.TRACKED
        self.is_activated = True
        self.score = score
        self.class_id = class_id
        self.end_frame = frame
        self.hits += 1

    def update_feature(self, embedding: np.ndarray, momentum: float) -> None:
        """Blend a new appearance embedding into the running average (exponential, then re-normalised)."""
        embedding = embedding / max(float(np.linalg.norm(embedding)), 1e-12)
        if self.feature is None:
            self.feature = embedding
        else:
            blended = momentum * self.feature + (1.0 - momentum) * embedding
            self.feature = blended / max(float(np.linalg.norm(blended)), 1e-12)

    def __repr__(self) -> str:
        return (f"Track(id={self.track_id}, class={self.class_id}, state={self.state.name}, "
                f"frames={self.start_frame}-{self.end_frame})")

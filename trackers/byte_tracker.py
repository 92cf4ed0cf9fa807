"""ByteTrack: associate every detection box, the low-score ones too.

Per frame: (1) confirmed and lost tracks take high-score detections by IoU; (2) tracks still unmatched take the
low-score detections (occluded or blurred objects whose score dropped), so their identity survives the dip;
(3) tracks born on the previous frame are confirmed by a remaining high-score detection or dropped; (4) detections
left over above the new-track threshold start tracks. Lost tracks are kept for a frame-rate-scaled buffer, predicted
by the Kalman filter, and come back with their old id when a detection meets them again.

BoT-SORT (``bot_sort.py``) reuses this loop through the hooks ``_compensate_motion`` and ``_embed``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trackers.config import ByteTrackConfig, TrackerConfig
from trackers.errors import TrackerError
from trackers.kalman_filter import KalmanFilterXYAH
from trackers.matching import fuse_score, gate_classes, iou_distance, linear_assignment
from trackers.track import Track, TrackState

#: columns of a detections array and of an output row.
DETECTION_COLUMNS = ("x1", "y1", "x2", "y2", "score", "class_id")
OUTPUT_COLUMNS = ("x1", "y1", "x2", "y2", "track_id", "score", "class_id")


class ByteTracker:
    """Multi-object tracker; ``update`` once per frame, in order. Track ids start at 1 for each instance."""

    config_class: type[TrackerConfig] = ByteTrackConfig
    kalman_class = KalmanFilterXYAH

    def __init__(self, config: TrackerConfig | None = None, frame_rate: float = 30.0) -> None:
        if config is not None and not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} got a {type(config).__name__}; pass a {self.config_class.__name__}")
        #: checked when it was built (configs are frozen and validate themselves).
        self.config = config if config is not None else self.config_class()
        if not frame_rate > 0:
            raise TrackerError(f"tracker frame rate {frame_rate} must be positive; pass the sequence's fps (e.g. 12)")
        self.frame_rate = float(frame_rate)
        #: frames a lost track survives at this sequence's frame rate.
        self.max_time_lost = self.config.buffer_frames(self.frame_rate)
        #: a lost track is removed once ``frame - last hit`` exceeds this. The reference code checks only tracks
        #: lost before this frame and applies its removal list a frame late, hence the longer limit there.
        self._lost_limit = self.max_time_lost if self.config.strict_removal else max(self.max_time_lost, 1) + 1
        self._late_removal = not self.config.strict_removal
        self.kalman = self.kalman_class()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 (a new sequence)."""
        self.frame_id = 0
        self._next_id = 1
        self.tracked: list[Track] = []
        self.lost: list[Track] = []

    # -- hooks for BoT-SORT ---------------------------------------------------------------------------------------
    def _compensate_motion(self, tracks: list[Track], image: np.ndarray | None, det_boxes: np.ndarray) -> None:
        """Move predicted states by the camera's motion; ByteTrack assumes a still camera."""

    def _embed(self, image: np.ndarray | None, boxes: np.ndarray) -> np.ndarray | None:
        """Appearance embeddings of ``boxes`` (N, D), or None when the tracker uses motion only."""
        return None

    def _appearance_cost(
        self, tracks: Sequence[Track], det_features: np.ndarray, motion_cost: np.ndarray, iou_cost: np.ndarray
    ) -> np.ndarray:
        """Combine motion and appearance costs; without ReID the motion cost alone."""
        return motion_cost

    def _remember_appearance(self, tracks: list[Track], det_features: np.ndarray) -> None:
        """Blend each matched detection's embedding (rows of ``det_features``) into its track; ByteTrack has no
        appearance cue, so ``_embed`` gives no features and this is never reached."""

    # -- the frame loop -------------------------------------------------------------------------------------------
    def update(self, detections: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
        """Feed one frame's detections (N, 6) [x1, y1, x2, y2, score, class_id]; the BGR image is used only by
        trackers that look at pixels. Returns (M, 7) rows [x1, y1, x2, y2, track_id, score, class_id] for the
        confirmed tracks matched in this frame (and the tracks born in it, with ``report_unconfirmed``)."""
        dets = _check_detections(detections)
        self.frame_id += 1
        frame = self.frame_id
        cfg = self.config
        boxes, scores, classes = dets[:, :4], dets[:, 4], dets[:, 5].astype(np.int64)

        high = np.flatnonzero(scores >= cfg.track_thresh if cfg.track_thresh_inclusive else scores > cfg.track_thresh)
        low = np.flatnonzero((scores > cfg.low_thresh) & (scores < cfg.track_thresh))
        embeddings = self._embed(image, boxes[high]) if len(high) else None
        det_features = None
        if embeddings is not None:
            det_features = np.zeros((len(dets), embeddings.shape[1]))
            det_features[high] = embeddings

        confirmed = [t for t in self.tracked if t.is_activated]
        unconfirmed = [t for t in self.tracked if not t.is_activated]
        pool = confirmed + self.lost
        existing = pool + unconfirmed
        # tracks born last frame are at rest (zero velocity) and, as in the reference code, not predicted
        self._predict(pool)
        self._compensate_motion(existing, image, boxes)
        existing_boxes = self.track_boxes(existing)  # predicted boxes, shared by the three rounds

        updates: list[tuple[Track, int]] = []

        # (1) confirmed + lost tracks <-> high-score detections
        matches, lone_tracks, lone_high = self._associate(
            pool, existing_boxes[: len(pool)], high, boxes, scores, classes, det_features, cfg.match_thresh,
            primary=True,
        )
        updates += [(pool[r], high[c]) for r, c in matches]

        # (2) tracks that were being followed <-> low-score detections, IoU only
        followed = [i for i in lone_tracks if pool[i].state == TrackState.TRACKED]
        still_tracked = [pool[i] for i in followed]
        matches, lone_tracks, _ = self._associate(
            still_tracked, existing_boxes[followed], low, boxes, scores, classes, None, cfg.second_match_thresh,
            primary=False,
        )
        updates += [(still_tracked[r], low[c]) for r, c in matches]
        for i in lone_tracks:
            track = still_tracked[i]
            # reference bookkeeping: a track found again after its buffer ran out stays on the removed list
            track.state = TrackState.REMOVED if track.outlived_buffer else TrackState.LOST

        # (3) tracks born last frame <-> remaining high-score detections: confirm or drop
        remaining_high = high[lone_high]
        matches, lone_tracks, lone_high = self._associate(
            unconfirmed, existing_boxes[len(pool):], remaining_high, boxes, scores, classes, det_features,
            cfg.unconfirmed_match_thresh, primary=True,
        )
        updates += [(unconfirmed[r], remaining_high[c]) for r, c in matches]
        for i in lone_tracks:
            unconfirmed[i].state = TrackState.REMOVED

        self._apply_updates(updates, boxes, scores, classes, det_features)

        # (4) births, then deaths at the end of the buffer
        births = remaining_high[lone_high]
        births = births[scores[births] >= cfg.effective_new_track_thresh]
        born = self._start_tracks(births, boxes, scores, classes, det_features)
        for track in existing:
            if track.state == TrackState.LOST and frame - track.end_frame > self._lost_limit:
                track.state = TrackState.REMOVED

        everything = existing + born
        self.tracked = [t for t in everything if t.state == TrackState.TRACKED]
        self.lost = [t for t in everything if t.state == TrackState.LOST]
        tracked_boxes = self._drop_duplicates()
        return self._output_rows(tracked_boxes)

    # -- steps ----------------------------------------------------------------------------------------------------
    def _associate(
        self, tracks: Sequence[Track], track_boxes: np.ndarray, det_indices: np.ndarray, boxes: np.ndarray,
        scores: np.ndarray, classes: np.ndarray, det_features: np.ndarray | None, thresh: float, primary: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match tracks to the detections ``det_indices``; primary rounds fuse scores and appearance."""
        if not tracks or len(det_indices) == 0:
            return np.empty((0, 2), dtype=int), np.arange(len(tracks)), np.arange(len(det_indices))
        iou_cost = iou_distance(track_boxes, boxes[det_indices], self.config.iou_plus_one)
        cost = iou_cost
        if primary:
            if self.config.fuse_score:
                cost = fuse_score(cost, scores[det_indices])
            if det_features is not None:
                cost = self._appearance_cost(tracks, det_features[det_indices], cost, iou_cost)
        if self.config.class_aware:
            cost = gate_classes(cost, np.array([t.class_id for t in tracks]), classes[det_indices])
        return linear_assignment(cost, thresh)

    def _predict(self, tracks: list[Track]) -> None:
        if not tracks:
            return
        means = np.array([t.mean for t in tracks])
        covs = np.array([t.covariance for t in tracks])
        not_tracked = np.array([t.state != TrackState.TRACKED for t in tracks])
        if not_tracked.any():
            for index in self.kalman.size_velocity_indices:
                means[not_tracked, index] = 0.0
        means, covs = self.kalman.predict(means, covs)
        for track, mean, cov in zip(tracks, means, covs):
            track.mean, track.covariance = mean, cov

    def _apply_updates(
        self, updates: list[tuple[Track, int]], boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
        det_features: np.ndarray | None,
    ) -> None:
        """Kalman-correct every matched track in one batch and record the hit."""
        if not updates:
            return
        tracks = [t for t, _ in updates]
        det_idx = np.array([d for _, d in updates])
        means, covs = self.kalman.update(
            np.array([t.mean for t in tracks]), np.array([t.covariance for t in tracks]),
            self.kalman.boxes_to_measurements(boxes[det_idx]),
        )
        frame = self.frame_id
        for track, mean, cov, d in zip(tracks, means, covs, det_idx):
            track.mean, track.covariance = mean, cov
            if self._late_removal and frame - track.end_frame > self._lost_limit:
                track.outlived_buffer = True
            track.mark_hit(float(scores[d]), int(classes[d]), frame)
        if det_features is not None:  # only high-score detections were embedded
            confident = scores[det_idx] >= self.config.track_thresh
            self._remember_appearance([t for t, keep in zip(tracks, confident) if keep],
                                      det_features[det_idx[confident]])

    def _start_tracks(
        self, det_idx: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
        det_features: np.ndarray | None,
    ) -> list[Track]:
        if len(det_idx) == 0:
            return []
        means, covs = self.kalman.initiate(self.kalman.boxes_to_measurements(boxes[det_idx]))
        born = []
        for mean, cov, d in zip(means, covs, det_idx):
            track = Track(self._next_id, mean, cov, float(scores[d]), int(classes[d]), self.frame_id,
                          confirmed=self.frame_id == 1)
            self._next_id += 1
            if det_features is not None:
                track.update_feature(det_features[d], 0.0)
            born.append(track)
        return born

    def _drop_duplicates(self) -> np.ndarray:
        """A lost track and a tracked one on the same object: keep the one followed for more frames (last hit minus
        first frame), as the reference code does; on a tie the lost one. Judging by age instead would let an old
        track, lost long ago, take over a newer track that walked onto its last position (a miss and an id switch).
        Returns the boxes of the tracked tracks that remain."""
        tracked_boxes = self.track_boxes(self.tracked)
        if not self.tracked or not self.lost:
            return tracked_boxes
        cost = iou_distance(tracked_boxes, self.track_boxes(self.lost), self.config.iou_plus_one)
        drop_tracked, drop_lost = set(), set()
        for i, j in zip(*np.nonzero(cost < self.config.duplicate_thresh)):
            tracked, lost = self.tracked[i], self.lost[j]
            if self.config.class_aware and tracked.class_id != lost.class_id:
                continue
            if tracked.end_frame - tracked.start_frame > lost.end_frame - lost.start_frame:
                drop_lost.add(j)
            else:
                drop_tracked.add(i)
        if not drop_tracked and not drop_lost:
            return tracked_boxes
        for i in drop_tracked:
            self.tracked[i].state = TrackState.REMOVED
        for j in drop_lost:
            self.lost[j].state = TrackState.REMOVED
        keep = [i for i in range(len(self.tracked)) if i not in drop_tracked]
        self.tracked = [self.tracked[i] for i in keep]
        self.lost = [t for j, t in enumerate(self.lost) if j not in drop_lost]
        return tracked_boxes[keep]

    def _output_rows(self, tracked_boxes: np.ndarray) -> np.ndarray:
        if self.config.report_unconfirmed:
            reported = list(range(len(self.tracked)))
        else:
            reported = [k for k, t in enumerate(self.tracked) if t.is_activated]
        if not reported:
            return np.zeros((0, len(OUTPUT_COLUMNS)))
        rows = np.empty((len(reported), len(OUTPUT_COLUMNS)))
        rows[:, :4] = tracked_boxes[reported]
        rows[:, 4:] = [(self.tracked[k].track_id, self.tracked[k].score, self.tracked[k].class_id) for k in reported]
        return rows[self._reportable(rows)]

    def _reportable(self, rows: np.ndarray) -> np.ndarray:
        """Output filters of ByteTrack's demo: tiny boxes, and (only for pedestrians) boxes too wide to be one."""
        cfg = self.config
        w = rows[:, 2] - rows[:, 0]
        h = rows[:, 3] - rows[:, 1]
        keep = w * h > cfg.min_box_area
        if cfg.aspect_ratio_thresh > 0:
            classes = rows[:, 6].astype(np.int64)
            applies = np.isin(classes, list(cfg.aspect_ratio_class_ids)) | (classes < 1)
            keep &= ~(applies & (w > cfg.aspect_ratio_thresh * h))
        return keep

    # -- inspection -----------------------------------------------------------------------------------------------
    def track_boxes(self, tracks: Sequence[Track]) -> np.ndarray:
        """Current xyxy boxes (K, 4) of ``tracks`` from their Kalman states."""
        if not tracks:
            return np.zeros((0, 4))
        return self.kalman.measurements_to_boxes(np.array([t.mean[:4] for t in tracks]))


def _check_detections(detections: np.ndarray) -> np.ndarray:
    """(N, 6) float array of finite values; zero-size boxes are dropped (they cannot be tracked)."""
    dets = np.asarray(detections, dtype=np.float64)
    if dets.size == 0:
        return np.zeros((0, len(DETECTION_COLUMNS)))
    if dets.ndim != 2 or dets.shape[1] != len(DETECTION_COLUMNS):
        raise ValueError(
            f"tracker detections have shape {dets.shape}; expected (N, 6) rows [x1, y1, x2, y2, score, class_id]"
        )
    if not np.isfinite(dets).all():
        raise ValueError("tracker detections contain NaN or infinite values; filter them before tracking")
    valid = (dets[:, 2] > dets[:, 0]) & (dets[:, 3] > dets[:, 1])
    return dets if valid.all() else dets[valid]

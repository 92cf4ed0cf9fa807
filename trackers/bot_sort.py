"""BoT-SORT: ByteTrack's association with a width-and-height Kalman state, camera-motion compensation and an
optional appearance (ReID) cue.

The camera warp from ``GMC`` moves every predicted track before association, so a panning or turning ego camera
(nuScenes) does not drag predictions away from their objects. ReID is a hook: pass ``reid_encoder``, a callable
``(image, boxes_xyxy (N, 4)) -> embeddings (N, D)``; without it (the default) the tracker is motion-only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from trackers.byte_tracker import ByteTracker
from trackers.config import BoTSORTConfig
from trackers.gmc import GMC, identity_warp, is_identity_warp
from trackers.kalman_filter import KalmanFilterXYWH
from trackers.matching import embedding_distance, fuse_appearance
from trackers.track import Track

#: signature of an appearance model: BGR frame and xyxy boxes -> one embedding row per box.
ReidEncoder = Callable[[np.ndarray | None, np.ndarray], np.ndarray]


class BoTSORT(ByteTracker):
    """ByteTrack + xywh Kalman filter + camera-motion compensation (+ ReID when an encoder is given)."""

    config_class = BoTSORTConfig
    config: BoTSORTConfig
    kalman_class = KalmanFilterXYWH

    def __init__(
        self, config: BoTSORTConfig | None = None, frame_rate: float = 30.0, reid_encoder: ReidEncoder | None = None
    ) -> None:
        super().__init__(config, frame_rate)
        self.gmc = GMC(self.config.cmc, downscale=self.config.cmc_downscale)
        self.reid_encoder = reid_encoder
        #: the warp applied on the last frame (for inspection and tests).
        self.last_warp = identity_warp()

    def reset(self) -> None:
        super().reset()
        if hasattr(self, "gmc"):
            self.gmc.reset()

    def _compensate_motion(self, tracks: list[Track], image: np.ndarray | None, det_boxes: np.ndarray) -> None:
        self.last_warp = self.gmc.estimate(image, det_boxes)
        if not tracks or is_identity_warp(self.last_warp):
            return
        means, covs = self.kalman.warp(
            np.array([t.mean for t in tracks]), np.array([t.covariance for t in tracks]), self.last_warp
        )
        for track, mean, cov in zip(tracks, means, covs):
            track.mean, track.covariance = mean, cov

    def _embed(self, image: np.ndarray | None, boxes: np.ndarray) -> np.ndarray | None:
        if self.reid_encoder is None:
            return None
        embeddings = np.asarray(self.reid_encoder(image, boxes), dtype=np.float64)
        if embeddings.ndim != 2 or len(embeddings) != len(boxes):
            raise ValueError(
                f"reid_encoder returned shape {embeddings.shape} for {len(boxes)} boxes; expected ({len(boxes)}, D)"
            )
        return embeddings

    def _appearance_cost(
        self, tracks: Sequence[Track], det_features: np.ndarray, motion_cost: np.ndarray, iou_cost: np.ndarray
    ) -> np.ndarray:
        dim = det_features.shape[1]
        known = np.array([t.feature is not None for t in tracks])
        track_features = np.stack([t.feature if t.feature is not None else np.zeros(dim) for t in tracks])
        appearance = embedding_distance(track_features, det_features)
        appearance[~known] = 2.0  # no appearance yet: motion decides
        cfg = self.config
        return fuse_appearance(motion_cost, iou_cost, appearance, cfg.proximity_thresh, cfg.appearance_thresh)

    def _remember_appearance(self, tracks: list[Track], det_features: np.ndarray) -> None:
        for track, feature in zip(tracks, det_features):
            track.update_feature(feature, self.config.feature_momentum)

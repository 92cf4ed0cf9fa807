"""Every tracker parameter and its default, in one visible place.

Defaults follow the ByteTrack and BoT-SORT papers' public code, except where nuScenes needs otherwise (class-aware
association on, the pedestrian aspect-ratio filter off: on nuScenes it would delete wide cars).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from yolox_finetune.classes import PEDESTRIAN_CLASS_IDS
from yolox_finetune.errors import UserError

#: camera-motion-compensation methods understood by ``trackers.gmc.GMC``.
CMC_METHODS: tuple[str, ...] = ("sparseOptFlow", "orb", "ecc", "none")


@dataclass
class TrackerConfig:
    """Parameters shared by ByteTrack and BoT-SORT (thresholds are detection scores or 1 - IoU costs)."""

    #: detections at or above this score take part in the first association.
    track_thresh: float = 0.5
    #: detections above this (and below ``track_thresh``) only rescue existing tracks in the second association.
    low_thresh: float = 0.1
    #: a new track starts only from an unmatched detection at or above this; None = ``track_thresh + 0.1``.
    new_track_thresh: float | None = None
    #: largest 1 - IoU cost accepted in the first association (0.8 = IoU of at least 0.2).
    match_thresh: float = 0.8
    #: frames a lost track is kept at 30 fps; scaled by the sequence frame rate.
    track_buffer: int = 30
    #: output boxes with an area (px^2) at or below this are not reported (the track itself lives on).
    min_box_area: float = 10.0
    #: output boxes wider than ``aspect_ratio_thresh * height`` are not reported; 0 = off. Applies only to
    #: ``aspect_ratio_class_ids`` (pedestrians) or to boxes whose class is unknown (class id < 1).
    aspect_ratio_thresh: float = 0.0
    aspect_ratio_class_ids: frozenset[int] = field(default_factory=lambda: PEDESTRIAN_CLASS_IDS)
    #: a track only takes detections of its own class.
    class_aware: bool = True
    #: multiply IoU similarity by detection score in the first association (ByteTrack/BoT-SORT on MOT17).
    fuse_score: bool = True
    #: 1 - IoU cost accepted in the second (low-score) association.
    second_match_thresh: float = 0.5
    #: 1 - IoU cost accepted when confirming a track that was born on the previous frame.
    unconfirmed_match_thresh: float = 0.7
    #: a lost and a tracked track closer than this 1 - IoU cost are duplicates: the younger one is dropped.
    duplicate_thresh: float = 0.15

    @property
    def effective_new_track_thresh(self) -> float:
        """The new-track threshold actually used (``track_thresh + 0.1`` when not set)."""
        return self.track_thresh + 0.1 if self.new_track_thresh is None else self.new_track_thresh

    def buffer_frames(self, frame_rate: float) -> int:
        """Frames a lost track survives at ``frame_rate`` (``track_buffer`` is stated for 30 fps)."""
        return int(frame_rate / 30.0 * self.track_buffer)

    def validate(self) -> None:
        """Raise UserError naming the first parameter outside its range."""
        for name in ("track_thresh", "low_thresh", "match_thresh", "second_match_thresh", "unconfirmed_match_thresh"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"tracker option {name}={value} is outside [0, 1]; pass a value between 0 and 1")
        new = self.new_track_thresh
        if new is not None and not 0.0 <= new <= 1.0:
            raise UserError(f"tracker option new_track_thresh={new} is outside [0, 1]; pass a value between 0 and 1")
        if self.low_thresh > self.track_thresh:
            raise UserError(
                f"tracker option low_thresh={self.low_thresh} is above track_thresh={self.track_thresh}; "
                "lower low_thresh or raise track_thresh"
            )
        if self.track_buffer < 0:
            raise UserError(f"tracker option track_buffer={self.track_buffer} is negative; pass 0 or more frames")
        if self.min_box_area < 0 or self.aspect_ratio_thresh < 0:
            raise UserError("tracker options min_box_area and aspect_ratio_thresh must be >= 0 (0 turns them off)")

    @classmethod
    def option_names(cls) -> list[str]:
        """Names of all fields, for command-line front ends and ``--grid`` sweeps."""
        return [f.name for f in fields(cls)]


@dataclass
class ByteTrackConfig(TrackerConfig):
    """ByteTrack: defaults of the paper's code (high 0.5, low 0.1, new track 0.6, match 0.8, 30-frame buffer)."""


@dataclass
class BoTSORTConfig(TrackerConfig):
    """BoT-SORT: ByteTrack's scheme with an xywh Kalman state, camera-motion compensation and optional ReID."""

    track_thresh: float = 0.6
    new_track_thresh: float | None = 0.7
    #: camera motion compensation on the frame images: "sparseOptFlow", "orb", "ecc" or "none".
    cmc: str = "sparseOptFlow"
    #: images are shrunk by this factor before motion estimation (speed; the warp is rescaled).
    cmc_downscale: int = 2
    #: with ReID: a pair farther apart than this 1 - IoU cost may not match on appearance.
    proximity_thresh: float = 0.5
    #: with ReID: appearance (cosine / 2) cost above this counts as "different object".
    appearance_thresh: float = 0.25
    #: with ReID: weight of the previous embedding in the track's running average.
    feature_momentum: float = 0.9

    def validate(self) -> None:
        super().validate()
        if self.cmc not in CMC_METHODS:
            raise UserError(f"tracker option cmc={self.cmc!r} is unknown; choose one of {', '.join(CMC_METHODS)}")
        if self.cmc_downscale < 1:
            raise UserError(f"tracker option cmc_downscale={self.cmc_downscale} must be 1 or more")


#: tracker name -> its config class (the names accepted by ``make_tracker``).
TRACKER_CONFIGS: dict[str, type[TrackerConfig]] = {"bytetrack": ByteTrackConfig, "botsort": BoTSORTConfig}


def build_config(name: str, overrides: dict[str, object] | None = None) -> TrackerConfig:
    """Defaults of tracker ``name`` with ``overrides`` applied (None values mean "keep the default", which suits
    argparse options left unset). Unknown names or options raise UserError listing the valid ones."""
    if name not in TRACKER_CONFIGS:
        raise UserError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKER_CONFIGS)}")
    config_class = TRACKER_CONFIGS[name]
    valid = config_class.option_names()
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise UserError(f"unknown {name} option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    config = config_class(**given)
    config.validate()
    return config

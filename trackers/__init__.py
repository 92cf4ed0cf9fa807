"""Multi-object trackers (ByteTrack, BoT-SORT) in pure numpy/OpenCV, with one entry point.

    from trackers import make_tracker, TRACKER_CONFIGS
    tracker = make_tracker("bytetrack", frame_rate=12)
    rows = tracker.update(dets, image)   # dets (N, 6) [x1, y1, x2, y2, score, class_id] -> (M, 7) rows
"""

from __future__ import annotations

from typing import Any

from trackers.bot_sort import BoTSORT
from trackers.byte_tracker import DETECTION_COLUMNS, OUTPUT_COLUMNS, ByteTracker
from trackers.config import TRACKER_CONFIGS, BoTSORTConfig, ByteTrackConfig, TrackerConfig, build_config

#: tracker name -> class; the keys equal TRACKER_CONFIGS'.
TRACKER_CLASSES: dict[str, type[ByteTracker]] = {"bytetrack": ByteTracker, "botsort": BoTSORT}


def make_tracker(
    name: str, config: TrackerConfig | dict[str, Any] | None = None, frame_rate: float = 30.0, **kwargs: Any
) -> ByteTracker:
    """A fresh tracker by name ("bytetrack" or "botsort"). ``config`` is a config instance, a dict of overrides of
    the defaults, or None for the defaults; ``kwargs`` go to the tracker (BoT-SORT: ``reid_encoder``)."""
    name = _known(name)
    if not isinstance(config, TrackerConfig):
        config = build_config(name, config or {})
    elif not isinstance(config, TRACKER_CONFIGS[name]):
        expected = TRACKER_CONFIGS[name].__name__
        raise TypeError(f"make_tracker({name!r}) got a {type(config).__name__}; pass a {expected}")
    return TRACKER_CLASSES[name](config, frame_rate=frame_rate, **kwargs)


def _known(name: str) -> str:
    if name not in TRACKER_CLASSES:
        from yolox_finetune.errors import UserError

        raise UserError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKER_CLASSES)}")
    return name


__all__ = [
    "DETECTION_COLUMNS", "OUTPUT_COLUMNS", "TRACKER_CLASSES", "TRACKER_CONFIGS", "BoTSORT", "BoTSORTConfig",
    "ByteTrackConfig", "ByteTracker", "TrackerConfig", "build_config", "make_tracker",
]

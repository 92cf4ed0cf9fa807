"""Multi-object trackers (ByteTrack, BoT-SORT) in pure numpy/OpenCV, with one entry point.

    from trackers import make_tracker
    tracker = make_tracker("bytetrack", {"match_thresh": 0.7}, frame_rate=12)
    rows = tracker.update(dets, image)   # dets (N, 6) [x1, y1, x2, y2, score, class_id] -> (M, 7) rows

Standalone: depends on numpy, scipy, OpenCV, lap and PyYAML (config files) only, never on the rest of this
repository. Options and their defaults: ``trackers/config.py``; bad input raises ``trackers.errors.TrackerError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trackers.bot_sort import BoTSORT
from trackers.byte_tracker import DETECTION_COLUMNS, OUTPUT_COLUMNS, ByteTracker
from trackers.config import (
    TRACKER_CONFIGS,
    BoTSORTConfig,
    ByteTrackConfig,
    TrackerConfig,
    build_config,
    load_config,
    save_config,
    tracker_config_class,
)
from trackers.errors import TrackerError

#: tracker name -> class; named by each class's config (the keys equal TRACKER_CONFIGS').
TRACKER_CLASSES: dict[str, type[ByteTracker]] = {cls.config_class.tracker_name: cls for cls in (ByteTracker, BoTSORT)}


def make_tracker(
    name: str, config: TrackerConfig | Mapping[str, Any] | None = None, frame_rate: float = 30.0, **kwargs: Any
) -> ByteTracker:
    """A fresh tracker by name ("bytetrack" or "botsort"). ``config`` is a config instance, a mapping of overrides
    of the defaults, or None for the defaults; ``kwargs`` go to the tracker (BoT-SORT: ``reid_encoder``)."""
    config_class = tracker_config_class(name)
    if not isinstance(config, TrackerConfig):
        config = build_config(name, config)
    elif not isinstance(config, config_class):
        raise TypeError(f"make_tracker({name!r}) got a {type(config).__name__}; pass a {config_class.__name__}")
    return TRACKER_CLASSES[name](config, frame_rate=frame_rate, **kwargs)


__all__ = [
    "DETECTION_COLUMNS", "OUTPUT_COLUMNS", "TRACKER_CLASSES", "TRACKER_CONFIGS", "BoTSORT", "BoTSORTConfig",
    "ByteTrackConfig", "ByteTracker", "TrackerConfig", "TrackerError", "build_config", "load_config", "make_tracker",
    "save_config", "tracker_config_class",
]

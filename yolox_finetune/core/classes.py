"""The seven detection classes and how nuScenes categories map onto them.

One place for the class list: the converter, the Exp, the detector cache, the trackers' output and the evaluator
all number classes the same way (category_id / class_id 1..7 in files, 0..6 inside the model).
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("car", "truck", "bus", "trailer", "pedestrian", "motorcycle", "bicycle")

#: class name -> 1-based id used in COCO ``category_id`` and in MOT files' class column.
CLASS_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(CLASS_NAMES)}

#: nuScenes category name -> our class name. nuScenes has no plain ``vehicle.bus``: buses are bendy or rigid.
DEFAULT_CLASS_MAP: dict[str, str] = {
    "vehicle.car": "car",
    "vehicle.truck": "truck",
    "vehicle.bus.bendy": "bus",
    "vehicle.bus.rigid": "bus",
    "vehicle.trailer": "trailer",
    "human.pedestrian.adult": "pedestrian",
    "human.pedestrian.child": "pedestrian",
    "human.pedestrian.construction_worker": "pedestrian",
    "human.pedestrian.police_officer": "pedestrian",
    "vehicle.motorcycle": "motorcycle",
    "vehicle.bicycle": "bicycle",
}

#: classes for which pedestrian-only heuristics (ByteTrack's aspect-ratio filter) are meaningful.
PEDESTRIAN_CLASS_IDS: frozenset[int] = frozenset({CLASS_IDS["pedestrian"]})


def class_name(class_id: int) -> str:
    """Name of a 1-based class id; ``class_<id>`` for ids outside the default list (custom class maps)."""
    if 1 <= class_id <= len(CLASS_NAMES):
        return CLASS_NAMES[class_id - 1]
    return f"class_{class_id}"

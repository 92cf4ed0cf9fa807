"""Which nuScenes categories become which of our classes (the default map, a user's file, or the default updated by
a user's file), and which dropped categories look like one of our classes (for ``--ignore-dropped``)."""

from __future__ import annotations

import json
from pathlib import Path

from yolox_finetune.core.classes import CLASS_IDS, DEFAULT_CLASS_MAP
from yolox_finetune.core.errors import UserError

#: dropped categories that look like one of our classes: a detector will find them, so ``--ignore-dropped`` writes
#: them to gt.txt as ignore entries of that class (a tracker box on them is then neither TP nor FP).
LOOKALIKE_CLASS: dict[str, str] = {
    "vehicle.emergency.police": "car",
    "vehicle.emergency.ambulance": "truck",
    "vehicle.construction": "truck",
    "human.pedestrian.stroller": "pedestrian",
    "human.pedestrian.wheelchair": "pedestrian",
}


def _read_map_file(path: str | Path, flag: str) -> dict[str, str | None]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class map {path} does not exist; pass {flag} with a JSON file like "
                        f'{{"vehicle.car": "car"}}')
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"class map {path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix the file") from None
    if not isinstance(mapping, dict):
        raise UserError(f"class map {path} must be a JSON object of nuScenes category -> class name")
    unknown = sorted({str(v) for v in mapping.values() if v is not None and v not in CLASS_IDS})
    if unknown:
        raise UserError(f"class map {path} uses unknown class name(s) {', '.join(unknown)}; "
                        f"allowed: {', '.join(CLASS_IDS)}")
    return mapping


def load_class_map(path: str | Path | None, update: str | Path | None = None) -> dict[str, int]:
    """nuScenes category name -> 1-based class id.

    ``path`` (``--class-map``) replaces the default map: categories absent from the file are dropped.
    ``update`` (``--class-map-update``) edits the default map instead: its entries are added or changed, null
    removes a category. Both files are JSON objects ``{"vehicle.emergency.police": "car", ...}`` whose values are
    our class names (null drops the category).
    """
    if path is not None and update is not None:
        raise UserError("--class-map replaces the default map and --class-map-update edits it; pass only one")
    mapping: dict[str, str | None] = dict(DEFAULT_CLASS_MAP) if path is None else _read_map_file(path, "--class-map")
    if update is not None:
        mapping.update(_read_map_file(update, "--class-map-update"))
    return {category: CLASS_IDS[name] for category, name in mapping.items() if name is not None}


def ignore_map(class_map: dict[str, int]) -> dict[str, int]:
    """Dropped look-alike category -> the class id its ignore entries get (categories the map keeps are left out)."""
    return {category: CLASS_IDS[name] for category, name in LOOKALIKE_CLASS.items() if category not in class_map}

"""Which nuScenes categories become which of our classes (the default map, or a user's JSON file)."""

from __future__ import annotations

import json
from pathlib import Path

from yolox_finetune.core.classes import CLASS_IDS, DEFAULT_CLASS_MAP
from yolox_finetune.core.errors import UserError


def load_class_map(path: str | Path | None) -> dict[str, int]:
    """nuScenes category name -> 1-based class id. ``None`` gives the default map.

    The file is a JSON object ``{"vehicle.car": "car", "vehicle.emergency.police": "car", ...}``; values are our
    class names (null drops the category). Categories absent from the map are dropped.
    """
    if path is None:
        return {category: CLASS_IDS[name] for category, name in DEFAULT_CLASS_MAP.items()}
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class map {path} does not exist; pass --class-map with a JSON file like "
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
    return {category: CLASS_IDS[name] for category, name in mapping.items() if name is not None}

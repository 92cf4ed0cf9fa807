"""Which nuScenes categories become which of our classes (the default map, a user's file, or the default updated by
a user's file), and which dropped categories look like one of our classes (for ``--ignore-dropped``).

A user's map file is checked whole before any work: it must be a JSON object (or a YAML mapping in a ``.yaml``
file) of full nuScenes category names to one of our class names or null. A key that is not a category of the
release is an error, not a warning: ``--class-map`` drops every category it does not name, so a misspelt key
(``vehicle.bus`` for ``vehicle.bus.bendy`` / ``vehicle.bus.rigid``) silently removes a whole class from the
training data, and under ``--class-map-update`` the intended change silently does not happen.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection
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
#: file name endings read as YAML; anything else is read as JSON.
YAML_SUFFIXES = (".yaml", ".yml")
_EXAMPLE = '{"vehicle.car": "car", "vehicle.bus.rigid": "bus", "movable_object.barrier": null}'


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``object_pairs_hook`` of json: a key given twice would silently keep only its last value."""
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def _parse(path: Path, text: str, flag: str) -> object:
    if not text.strip():
        raise UserError(f"{flag} {path} is empty; write a JSON object like {_EXAMPLE}")
    if path.suffix.lower() in YAML_SUFFIXES:
        import yaml  # only for YAML maps

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise UserError(f"{flag} {path} is not valid YAML{where} ({getattr(exc, 'problem', None) or exc}); "
                            f"write a mapping of 'category: class' lines") from None
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise UserError(f"{flag} {path} is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}); write "
                        f"a JSON object like {_EXAMPLE}, or a YAML mapping in a file ending in .yaml") from None
    except ValueError as exc:
        raise UserError(f"{flag} {path}: {exc}; keep one entry per category") from None


def _close_classes(name: str) -> str:
    close = difflib.get_close_matches(name.lower(), CLASS_IDS, n=2)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _read_map_file(path: str | Path, flag: str) -> dict[str, str | None]:
    """The map in ``path``: category -> class name or None. UserError for anything that is not such a map."""
    path = Path(path)
    if not path.is_file():
        where = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"class map {path} {where}; pass {flag} with a JSON file like {_EXAMPLE}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{flag} {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                        f"{exc.start}); save it as UTF-8 JSON") from None
    except PermissionError as exc:
        raise UserError(f"cannot read {flag} {path} ({exc.strerror}); make the file readable") from None
    mapping = _parse(path, text, flag)
    if not isinstance(mapping, dict):
        raise UserError(f"{flag} {path} holds {_kind(mapping)}, not an object of nuScenes category -> class name; "
                        f"write it like {_EXAMPLE}")
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise UserError(f"{flag} {path}: the key {key!r} is not a nuScenes category name (a text such as "
                            f"vehicle.car)")
        if value is not None and not isinstance(value, str):
            raise UserError(f"{flag} {path}: the value of {key!r} is {_kind(value)} ({json.dumps(value)[:40]}), "
                            f"not a class name; map each category to one of {', '.join(CLASS_IDS)}, or null to drop "
                            f"it")
    unknown = sorted({v for v in mapping.values() if v is not None and v not in CLASS_IDS})
    if unknown:
        raise UserError(f"{flag} {path} uses unknown class name(s) {', '.join(unknown)}{_close_classes(unknown[0])}; "
                        f"allowed: {', '.join(CLASS_IDS)} (or null to drop a category)")
    return mapping


def close_categories(name: str, categories: Collection[str], n: int = 3) -> list[str]:
    """Categories a mistyped ``name`` may have meant: its sub-categories (``vehicle.bus`` -> bendy, rigid), those
    with a part equal to it (``pedestrian``), else spelling neighbours (``vehicle.cars``)."""
    found = [c for c in sorted(categories) if c.startswith(name + ".")]
    found += [c for c in sorted(categories) if name in c.split(".") and c not in found]
    if not found:
        found = difflib.get_close_matches(name, list(categories), n=n, cutoff=0.6)
    return found[:n]


def _check_categories(path: str | Path, flag: str, keys: list[str], categories: Collection[str],
                      release: str) -> None:
    unknown = [key for key in keys if key not in categories]
    if not unknown:
        return
    named = []
    for key in unknown[:3]:
        close = close_categories(key, categories)
        named.append(f"{key!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
    which = f"none of its {len(keys)} keys is" if len(unknown) == len(keys) else \
        f"{len(unknown)} of its {len(keys)} keys {'is' if len(unknown) == 1 else 'are'} not"
    raise UserError(f"{flag} {path}: {which} a nuScenes category of {release}: {'; '.join(named)}{more}; "
                    f"use the full category names listed in {release}/category.json (e.g. vehicle.car, "
                    f"vehicle.bus.rigid)")


def load_class_map(path: str | Path | None, update: str | Path | None = None,
                   categories: Collection[str] | None = None, release: str = "the release") -> dict[str, int]:
    """nuScenes category name -> 1-based class id.

    ``path`` (``--class-map``) replaces the default map: categories absent from the file are dropped.
    ``update`` (``--class-map-update``) edits the default map instead: its entries are added or changed, null
    removes a category. Both files are JSON objects ``{"vehicle.emergency.police": "car", ...}`` (or YAML mappings
    in ``.yaml`` files) whose values are our class names (null drops the category). With ``categories`` (those of
    the release), every key of a user's file must be one of them. A map that keeps no category is an error.
    """
    if path is not None and update is not None:
        raise UserError("--class-map replaces the default map and --class-map-update edits it; pass only one")
    files = [(flag, given, _read_map_file(given, flag))
             for flag, given in (("--class-map", path), ("--class-map-update", update)) if given is not None]
    if categories is not None:
        for flag, given, read in files:
            _check_categories(given, flag, list(read), categories, release)
    mapping: dict[str, str | None] = dict(DEFAULT_CLASS_MAP) if path is None else {}
    for _, _, read in files:
        mapping.update(read)
    kept = {category: CLASS_IDS[name] for category, name in mapping.items() if name is not None}
    if not kept:
        flag, given, _ = files[-1]
        raise UserError(f"{flag} {given} leaves no category mapped to a class (every value is null or the map is "
                        f"empty), so there is nothing to train on; map at least one category, e.g. {_EXAMPLE}")
    return kept


def ignore_map(class_map: dict[str, int]) -> dict[str, int]:
    """Dropped look-alike category -> the class id its ignore entries get (categories the map keeps are left out)."""
    return {category: CLASS_IDS[name] for category, name in LOOKALIKE_CLASS.items() if category not in class_map}

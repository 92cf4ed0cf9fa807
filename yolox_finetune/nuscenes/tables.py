"""Read a nuScenes release (v1.0 table schema) into plain lists and token indexes, with one-line errors.

We read the JSON tables ourselves rather than through ``nuscenes.nuscenes.NuScenes``: the converter needs a handful
of joins, clear messages for broken folders, and no map masks or explorer. The schema is the devkit's.

Every table is checked before anything else runs (:func:`validate_tables`): each record is a JSON object with the
fields the converter reads, tokens are unique, and every token reference points at an existing record. The devkit
itself stops on such releases with a bare KeyError or AssertionError deep inside; here a damaged or mixed-up
release is one line naming the table, the record and the missing token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from yolox_finetune.core.errors import UserError

#: the 13 tables of a v1.0 release, as nuscenes-devkit loads them.
ALL_TABLES: tuple[str, ...] = (
    "attribute", "calibrated_sensor", "category", "ego_pose", "instance", "log", "map",
    "sample", "sample_annotation", "sample_data", "scene", "sensor", "visibility",
)
#: the tables the converter joins; a release missing any of them cannot be converted.
REQUIRED_TABLES: tuple[str, ...] = (
    "calibrated_sensor", "category", "ego_pose", "instance", "sample", "sample_annotation", "sample_data",
    "scene", "sensor", "visibility",
)
#: tables the converter does not join but reads when present, so that references into them are checked too.
CHECKED_TABLES: tuple[str, ...] = ("attribute", "log")

#: fields every record of a table must have: the ones the converter (or the devkit's loader) reads.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "attribute": ("token", "name"),
    "calibrated_sensor": ("token", "sensor_token", "translation", "rotation", "camera_intrinsic"),
    "category": ("token", "name"),
    "ego_pose": ("token", "translation", "rotation"),
    "instance": ("token", "category_token"),
    "log": ("token",),
    "sample": ("token", "timestamp", "scene_token"),
    "sample_annotation": ("token", "sample_token", "instance_token", "visibility_token", "translation", "size",
                          "rotation"),
    "sample_data": ("token", "sample_token", "ego_pose_token", "calibrated_sensor_token", "timestamp",
                    "is_key_frame", "filename", "width", "height"),
    "scene": ("token", "name"),
    "sensor": ("token", "channel", "modality"),
    "visibility": ("token",),
}


#: numeric fields of a fixed length (3D positions, sizes, quaternions) that the projection stacks into arrays.
VECTOR_FIELDS: dict[str, dict[str, int]] = {
    "sample_annotation": {"translation": 3, "size": 3, "rotation": 4},
    "ego_pose": {"translation": 3, "rotation": 4},
    "calibrated_sensor": {"translation": 3, "rotation": 4},
}


@dataclass(frozen=True)
class Reference:
    """``table.field`` holds the token of a ``target`` record (a list of tokens when ``many``); "" means none
    where ``empty_ok``. A field that is not required is checked only where a record has it."""

    table: str
    field: str
    target: str
    many: bool = False
    empty_ok: bool = False


#: the token references of the schema that the converter or the devkit's loader follows (prev/next chains are
#: not followed by either and are left alone).
REFERENCES: tuple[Reference, ...] = (
    Reference("scene", "log_token", "log"),
    Reference("scene", "first_sample_token", "sample"),
    Reference("scene", "last_sample_token", "sample"),
    Reference("sample", "scene_token", "scene"),
    Reference("sample_data", "sample_token", "sample"),
    Reference("sample_data", "calibrated_sensor_token", "calibrated_sensor"),
    Reference("sample_data", "ego_pose_token", "ego_pose"),
    Reference("calibrated_sensor", "sensor_token", "sensor"),
    Reference("instance", "category_token", "category"),
    Reference("instance", "first_annotation_token", "sample_annotation"),
    Reference("instance", "last_annotation_token", "sample_annotation"),
    Reference("sample_annotation", "sample_token", "sample"),
    Reference("sample_annotation", "instance_token", "instance"),
    Reference("sample_annotation", "visibility_token", "visibility", empty_ok=True),
    Reference("sample_annotation", "attribute_tokens", "attribute", many=True),
)


@dataclass
class NuScenesTables:
    """The tables of one release plus the joins the converter needs (token -> record)."""

    dataroot: Path
    version: str
    tables: dict[str, list[dict]]
    by_token: dict[str, dict[str, dict]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, records in self.tables.items():
            self.by_token[name] = {record["token"]: record for record in records}

    def get(self, table: str, token: str) -> dict:
        return self.by_token[table][token]

    def camera_channels(self) -> list[str]:
        """Camera sensor channels of the release, sorted."""
        return sorted(s["channel"] for s in self.tables["sensor"] if s["modality"] == "camera")

    def channel_of(self, sample_data: dict) -> str:
        calibration = self.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
        return self.get("sensor", calibration["sensor_token"])["channel"]

    def category_of_instance(self, instance_token: str) -> str:
        return self.get("category", self.get("instance", instance_token)["category_token"])["name"]


def _restore_hint(table_dir: Path) -> str:
    return (f"restore {table_dir.name}/ from the nuScenes download (re-extract the release's metadata archive into "
            f"{table_dir.parent})")


def _read_table(path: Path) -> list[dict]:
    """The records of one table file; UserError for an unreadable file, bad JSON or anything but a list of objects."""
    fix = _restore_hint(path.parent)
    try:
        with open(path, encoding="utf-8") as handle:
            records = json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}; a truncated "
                        f"or edited file); {fix}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                        f"{fix}") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); make the file readable or {fix}") from None
    if not isinstance(records, list):
        raise UserError(f"{path} holds a JSON {type(records).__name__}, not a list of records; {fix}")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UserError(f"{path}: record {index} is a JSON {type(record).__name__} ({_short(record)}), not an "
                            f"object with a token; {fix}")
    return records


def _short(value: object, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record_name(records: list[dict], index: int) -> str:
    token = records[index].get("token")
    return f"record {index} (token {token})" if isinstance(token, str) else f"record {index}"


def _missing_fields(name: str, records: list[dict], path: Path) -> None:
    required = REQUIRED_FIELDS.get(name, ("token",))
    required_set = set(required)
    lacking = [i for i, record in enumerate(records) if not record.keys() >= required_set]
    if lacking:
        first = lacking[0]
        missing = [f for f in required if f not in records[first]]
        raise UserError(f"{path}: {_record_name(records, first)} has no {', '.join(map(repr, missing))} field "
                        f"({len(lacking)} of {len(records)} records lack a required field; each needs "
                        f"{', '.join(required)}); {_restore_hint(path.parent)}")
    tokens = [record["token"] for record in records]
    bad = [i for i, token in enumerate(tokens) if not isinstance(token, str) or not token]
    if bad:
        raise UserError(f"{path}: record {bad[0]} has the token {_short(tokens[bad[0]])}, not a non-empty string "
                        f"({len(bad)} such records); {_restore_hint(path.parent)}")
    if len(set(tokens)) != len(tokens):
        seen, twice = set(), []
        for token in tokens:
            (twice.append if token in seen else seen.add)(token)
        raise UserError(f"{path}: token {twice[0]} appears more than once ({len(twice)} repeated tokens: the file "
                        f"joins two releases or was appended to); {_restore_hint(path.parent)}")


def _is_vector(value: object, length: int) -> bool:
    return (isinstance(value, list) and len(value) == length
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value))


def _bad_vectors(name: str, records: list[dict], path: Path) -> None:
    for field_name, length in VECTOR_FIELDS.get(name, {}).items():
        bad = [i for i, record in enumerate(records) if not _is_vector(record[field_name], length)]
        if bad:
            raise UserError(f"{path}: {_record_name(records, bad[0])} has {field_name} "
                            f"{_short(records[bad[0]][field_name])}, not a list of {length} numbers ({len(bad)} such "
                            f"records); {_restore_hint(path.parent)}")


def _dangling(records: list[dict], ref: Reference, targets: set[str]) -> Iterator[tuple[int, object]]:
    """(record index, missing value) for each record whose ``ref`` does not resolve."""
    for index, record in enumerate(records):
        if ref.field not in record:
            continue
        value = record[ref.field]
        if ref.many:
            if not isinstance(value, list):
                yield index, value
                continue
            missing = [v for v in value if not isinstance(v, str) or v not in targets]
            if missing:
                yield index, missing[0]
        elif not isinstance(value, str) or (value not in targets and not (ref.empty_ok and value == "")):
            yield index, value


def validate_tables(tables: dict[str, list[dict]], table_dir: Path) -> None:
    """Raise one UserError for the first problem of a loaded release: a record without a required field, a
    repeated or non-string token, a position, size or rotation that is not a list of numbers, or a token reference
    to a record that does not exist (naming the table, the record, the missing token and how many records are
    affected)."""
    for name, records in tables.items():
        _missing_fields(name, records, table_dir / f"{name}.json")
        _bad_vectors(name, records, table_dir / f"{name}.json")
    tokens = {name: {record["token"] for record in records} for name, records in tables.items()}
    broken: list[tuple[Reference, list[tuple[int, object]]]] = []
    for ref in REFERENCES:
        if ref.table in tables and ref.target in tables:
            found = list(_dangling(tables[ref.table], ref, tokens[ref.target]))
            if found:
                broken.append((ref, found))
    if not broken:
        return
    ref, found = broken[0]
    index, missing = found[0]
    records = tables[ref.table]
    what = f"{ref.target} {_short(missing)}" if isinstance(missing, str) else f"{_short(missing)} (not a token)"
    others = sum(len(f) for _, f in broken[1:])
    more = (f"; {others} more broken reference(s) in "
            f"{', '.join(sorted({f'{r.table}.{r.field}' for r, _ in broken[1:]}))}") if others else ""
    raise UserError(f"{table_dir / ref.table}.json: {_record_name(records, index)} points in {ref.field} to "
                    f"{what}, which is not in {ref.target}.json ({len(found)} of {len(records)} {ref.table} "
                    f"records point to missing {ref.target} records{more}); the tables come from different "
                    f"releases or a broken download: {_restore_hint(table_dir)}")


def _table_folders(root: Path) -> list[str]:
    """Sub-folders of ``root`` that hold nuScenes tables (a scene.json), sorted."""
    try:
        return sorted(p.name for p in root.iterdir() if (p / "scene.json").is_file())
    except OSError:
        return []


def _check_dataroot(dataroot: Path, version: str) -> Path:
    """The table folder ``dataroot/version``; UserError naming the versions (or the dataroot) found instead."""
    how = "pass --dataroot pointing at the folder that holds samples/ and the v1.0-* table folders"
    if not dataroot.exists():
        raise UserError(f"nuScenes dataroot {dataroot} does not exist; {how}")
    if not dataroot.is_dir():
        raise UserError(f"nuScenes dataroot {dataroot} is a file, not a folder; {how}")
    if not version or Path(version).name != version.rstrip("/"):
        raise UserError(f"--version {version!r} must be the name of a table folder inside the dataroot (e.g. "
                        f"v1.0-trainval), not a path")
    table_dir = dataroot / version
    if table_dir.is_dir():
        return table_dir
    if (dataroot / "scene.json").is_file():
        raise UserError(f"--dataroot {dataroot} is itself a table folder; pass --dataroot {dataroot.parent} "
                        f"--version {dataroot.name}")
    found = _table_folders(dataroot)
    if found:
        raise UserError(f"version folder {table_dir} does not exist (versions found in {dataroot}: "
                        f"{', '.join(found)}); pass --version with one of them")
    nested = [f"--dataroot {child} --version {versions[0]}" for child in sorted(dataroot.iterdir())
              if child.is_dir() for versions in [_table_folders(child)] if versions]
    if nested:
        how = f"the nuScenes folder is one level down: pass {' or '.join(nested[:2])}"
    raise UserError(f"{dataroot} is not a nuScenes dataroot: no sub-folder holds nuScenes tables (a "
                    f"v1.0-*/scene.json); {how}")


def load_tables(dataroot: str | Path, version: str, tables: tuple[str, ...] = REQUIRED_TABLES) -> NuScenesTables:
    """Load and validate ``tables`` (and :data:`CHECKED_TABLES` where present) from ``dataroot/version``;
    UserError for a missing folder or table (naming what exists) and for damaged tables."""
    dataroot = Path(dataroot)
    table_dir = _check_dataroot(dataroot, version)
    missing = [name for name in tables if not (table_dir / f"{name}.json").is_file()]
    if missing:
        raise UserError(f"missing table(s) {', '.join(f'{m}.json' for m in missing)} in {table_dir}; a nuScenes "
                        f"release needs all of {', '.join(tables)}: {_restore_hint(table_dir)}")
    names = [*tables, *(n for n in CHECKED_TABLES if n not in tables and (table_dir / f"{n}.json").is_file())]
    loaded = {name: _read_table(table_dir / f"{name}.json") for name in names}
    validate_tables(loaded, table_dir)
    return NuScenesTables(dataroot=dataroot, version=version, tables=loaded)

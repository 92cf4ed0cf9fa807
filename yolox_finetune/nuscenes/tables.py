"""Read a nuScenes release (v1.0 table schema) into plain lists and token indexes, with one-line errors.

We read the JSON tables ourselves rather than through ``nuscenes.nuscenes.NuScenes``: the converter needs a handful
of joins, clear messages for broken folders, and no map masks or explorer. The schema is the devkit's.
"""

from __future__ import annotations

import json
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


def _read_table(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            records = json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); restore the file from the "
                        f"nuScenes release") from None
    if not isinstance(records, list):
        raise UserError(f"{path} must hold a JSON list of records; restore the file from the nuScenes release")
    return records


def load_tables(dataroot: str | Path, version: str, tables: tuple[str, ...] = REQUIRED_TABLES) -> NuScenesTables:
    """Load ``tables`` from ``dataroot/version``; UserError for a missing folder or table, naming what exists."""
    dataroot = Path(dataroot)
    if not dataroot.is_dir():
        raise UserError(f"nuScenes dataroot {dataroot} does not exist; pass --dataroot pointing at the folder that "
                        f"holds samples/ and the v1.0-* table folders")
    table_dir = dataroot / version
    if not table_dir.is_dir():
        found = sorted(p.name for p in dataroot.iterdir() if p.is_dir() and p.name.startswith("v1.0"))
        hint = f"versions found there: {', '.join(found)}" if found else "no v1.0-* folder found there"
        raise UserError(f"version folder {table_dir} does not exist ({hint}); pass --version with one of them")
    missing = [name for name in tables if not (table_dir / f"{name}.json").is_file()]
    if missing:
        raise UserError(f"missing table(s) {', '.join(f'{m}.json' for m in missing)} in {table_dir}; a nuScenes "
                        f"release needs all of {', '.join(tables)}")
    loaded = {name: _read_table(table_dir / f"{name}.json") for name in tables}
    return NuScenesTables(dataroot=dataroot, version=version, tables=loaded)

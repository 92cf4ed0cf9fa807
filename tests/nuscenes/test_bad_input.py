"""tools/convert_nuscenes.py on damaged releases and wrong arguments: one `error:` line naming the file, record or
argument and the fix, exit 2, no traceback, and no output folder (or the previous one untouched).

Each case corrupts a copy of the tiny synthetic release's tables (the real nuScenes schema), as a broken download,
a hand edit or two releases extracted into one folder would. The first case of each parametrized test and a few
others start the tool as a separate process, as a user does (``run_tool``); the rest run its ``__main__`` in the test
process (``run_tool_inprocess``: same arguments, same result, no interpreter start).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from yolox_finetune.core.classes import DEFAULT_CLASS_MAP
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION

TOOL = "convert_nuscenes.py"


@pytest.fixture()
def runner(request, run_tool, run_tool_inprocess):
    """How this test runs the tool: a separate process for the first parameter set of a parametrized test, in this
    process for the other sets and for tests without parameters (those pick ``run_tool`` themselves where wanted)."""
    callspec = getattr(request.node, "callspec", None)
    return run_tool if callspec is not None and not any(callspec.indices.values()) else run_tool_inprocess


@pytest.fixture()
def fails(tmp_path, one_error_line):
    """``fails(runner, root, *args, version=VERSION)``: converts ``root`` to ``tmp_path/out``, expects one error line
    (exit 2, no traceback, nothing after it) and no output or staging folder; returns the line."""

    def check(runner, root: Path, *args: str, version: str = VERSION) -> str:
        out = tmp_path / "out"
        error = one_error_line(_convert(runner, root, out, *args, version=version), last=True)
        assert not out.exists(), "a failed conversion must leave no output folder"
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")], "no staging folder left behind"
        return error

    return check


def _convert(runner, root: Path, out: Path, *args: str, version: str = VERSION):
    return runner(TOOL, "--dataroot", str(root), "--version", version, "--out", str(out), "--cameras", "CAM_FRONT",
                  *args, timeout=300)


# --- table files -----------------------------------------------------------------------------------------------


def _remove(name):
    return lambda folder: (folder / f"{name}.json").unlink()


def _write(name, data: bytes):
    return lambda folder: (folder / f"{name}.json").write_bytes(data)


def _truncate(name):
    return lambda folder: (folder / f"{name}.json").write_bytes((folder / f"{name}.json").read_bytes()[:700])


@pytest.mark.parametrize("damage, expected", [
    (_remove("sample_annotation"), r"missing table\(s\) sample_annotation\.json in .*v1\.0-synthetic; .*restore"),
    (_truncate("sample_data"), r"sample_data\.json is not valid JSON \(.*line 1 column \d+; a truncated"),
    (_write("scene", b""), r"scene\.json is not valid JSON"),
    (_write("sensor", b'{"token": "x"}'), r"sensor\.json holds a JSON dict, not a list of records"),
    (_write("category", b"[1, 2]"), r"category\.json: record 0 is a JSON int \(1\), not an object"),
    (_write("log", b'["\xff"]'), r"log\.json is not UTF-8 text \(byte 0xff"),
], ids=["missing", "truncated", "empty", "not-a-list", "not-records", "not-utf8"])
def test_a_damaged_table_file_is_named(synthetic_root, derive_release, tmp_path, runner, fails, damage, expected):
    root = derive_release(synthetic_root, tmp_path / "release", VERSION)
    damage(root / VERSION)
    error = fails(runner, root)
    assert re.search(expected, error), error


def _drop_field(table: str, index: int, field: str):
    return lambda tables: tables[table][index].pop(field)


def _set(table: str, index: int, **values):
    return lambda tables: tables[table][index].update(values)


@pytest.mark.parametrize("edit, table, index, expected", [
    (_drop_field("sample", 3, "scene_token"), "sample", 3,
     "sample.json: record 3 (token {token}) has no 'scene_token' field (1 of 12 records lack a required field"),
    (_drop_field("sample_annotation", 5, "token"), "sample_annotation", 5,
     "sample_annotation.json: record 5 has no 'token' field"),
    (_drop_field("sample_data", 0, "filename"), "sample_data", 0,
     "sample_data.json: record 0 (token {token}) has no 'filename' field"),
    (_set("sample_annotation", 7, size=[1.0, 2.0]), "sample_annotation", 7,
     "sample_annotation.json: record 7 (token {token}) has size [1.0, 2.0], not a list of 3 numbers"),
    (_set("ego_pose", 2, rotation=None), "ego_pose", 2, "ego_pose.json: record 2 (token {token}) has rotation null"),
    (lambda tables: tables["sample"].append(dict(tables["sample"][0])), "sample", 0,
     "sample.json: token {token} appears more than once"),
], ids=["no-reference-field", "no-token", "no-filename", "short-size", "null-rotation", "repeated-token"])
def test_a_damaged_record_is_named(synthetic_root, derive_release, tmp_path, runner, fails, edit, table, index,
                                   expected):
    token = json.loads((synthetic_root / VERSION / f"{table}.json").read_text())[index]["token"]
    root = derive_release(synthetic_root, tmp_path / "release", VERSION, edit=edit)
    error = fails(runner, root)
    assert expected.format(token=token) in error and "restore v1.0-synthetic/" in error, error


# --- dangling tokens -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table, field, target", [
    ("sample_annotation", "sample_token", "sample"),
    ("sample_annotation", "instance_token", "instance"),
    ("sample_annotation", "visibility_token", "visibility"),
    ("sample_annotation", "attribute_tokens", "attribute"),
    ("instance", "category_token", "category"),
    ("sample_data", "sample_token", "sample"),
    ("sample_data", "calibrated_sensor_token", "calibrated_sensor"),
    ("sample_data", "ego_pose_token", "ego_pose"),
    ("sample", "scene_token", "scene"),
    ("scene", "log_token", "log"),
    ("scene", "first_sample_token", "sample"),
    ("calibrated_sensor", "sensor_token", "sensor"),
])
def test_a_token_pointing_nowhere_is_named_before_anything_runs(synthetic_root, derive_release, tmp_path, runner, fails,
                                                                table, field, target):
    """Three records point at a token that no record has: the error names the table, the first record's token, the
    missing token and the count (the devkit would stop on a bare KeyError here, or silently skip the record)."""
    broken_tokens = []

    def dangle(tables):
        for record in tables[table][:3]:
            record[field] = ["ghost-token"] if field == "attribute_tokens" else "ghost-token"
            broken_tokens.append(record["token"])

    root = derive_release(synthetic_root, tmp_path / "release", VERSION, edit=dangle)
    error = fails(runner, root)
    assert f"{table}.json: record 0 (token {broken_tokens[0]}) points in {field} to {target} \"ghost-token\"" in error
    assert f"which is not in {target}.json (3 of " in error and "different releases" in error, error


def test_several_broken_references_are_counted_in_the_one_line(synthetic_root, derive_release, tmp_path, runner, fails):
    def dangle(tables):
        tables["sample"][0]["scene_token"] = "ghost"
        for ann in tables["sample_annotation"][:4]:
            ann["instance_token"] = "ghost"

    root = derive_release(synthetic_root, tmp_path / "release", VERSION, edit=dangle)
    error = fails(runner, root)
    assert "sample.json: record 0" in error
    assert "4 more broken reference(s) in sample_annotation.instance_token" in error, error


# --- class maps --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, content, expected", [
    ("list.json", '{"vehicle.car": ["car"]}', "the value of 'vehicle.car' is a list ([\"car\"]), not a class name"),
    ("object.json", '{"vehicle.car": {"class": "car"}}', "the value of 'vehicle.car' is an object"),
    ("number.json", '{"vehicle.car": 1}', "the value of 'vehicle.car' is a number (1)"),
    ("latin1.json", b'{"vehicle.car": "c\xe4r"}', "is not UTF-8 text (byte 0xe4"),
    ("map.csv", "vehicle.car,car\n", "is not valid JSON (Expecting value: line 1 column 1); write a JSON object"),
    ("broken.yaml", "vehicle.car: [car\n", "is not valid YAML at line 2"),
    ("list.yaml", "- vehicle.car\n", "holds a list, not an object of nuScenes category -> class name"),
    ("twice.json", '{"vehicle.car": "car", "vehicle.car": "truck"}', "the key 'vehicle.car' appears twice"),
    ("empty.json", "", "is empty"),
    ("class.json", '{"vehicle.car": "Car"}', "unknown class name(s) Car (did you mean car?)"),
    ("nulls.json", '{"vehicle.car": null}', "leaves no category mapped to a class"),
])
def test_a_malformed_class_map_is_named_before_the_tables_load(synthetic_root, tmp_path, runner, fails, name, content,
                                                               expected):
    mapping = tmp_path / name
    mapping.write_bytes(content if isinstance(content, bytes) else content.encode())
    error = fails(runner, synthetic_root, "--class-map", str(mapping))
    assert error.startswith(f"error: --class-map {mapping}") and expected in error, error


def test_a_key_that_is_no_category_is_an_error_with_close_names(synthetic_root, tmp_path, runner, fails):
    """Lesson 4: nuScenes has no plain vehicle.bus. One unknown key is an error too, not a warning: --class-map drops
    every category it does not name, so the typo would silently remove buses from the training data."""
    some = tmp_path / "some.json"
    some.write_text(json.dumps({"vehicle.car": "car", "vehicle.bus": "bus"}))
    error = fails(runner, synthetic_root, "--class-map", str(some))
    assert "1 of its 2 keys is not a nuScenes category of v1.0-synthetic: 'vehicle.bus' (did you mean " \
           "vehicle.bus.bendy, vehicle.bus.rigid?)" in error, error
    every = tmp_path / "every.yaml"
    every.write_text("vehicle.bus: bus\npedestrian: pedestrian\nvehicle.cars: car\n")
    error = fails(runner, synthetic_root, "--class-map-update", str(every))
    assert "none of its 3 keys is a nuScenes category" in error and "human.pedestrian.adult" in error
    assert "'vehicle.cars' (did you mean vehicle.car" in error, error


def test_a_yaml_class_map_converts(synthetic_root, tmp_path, runner):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("vehicle.car: car\nvehicle.bus.rigid: bus\nvehicle.bus.bendy: bus\n")
    out = tmp_path / "out"
    done = runner(TOOL, "--dataroot", str(synthetic_root), "--version", VERSION, "--out", str(out),
                  "--class-map", str(mapping), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["splits"]["train"]["boxes_per_class"]) <= {"car", "bus"}
    assert "vehicle.truck" in summary["dropped_categories"]


# --- what is skipped is counted; an empty training set is an error ---------------------------------------------


def test_dropped_categories_are_counted_in_the_summary_and_the_line(synthetic_root, tmp_path, run_tool):
    out = tmp_path / "out"
    done = run_tool(TOOL, "--dataroot", str(synthetic_root), "--version", VERSION, "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = {name: json.loads((synthetic_root / VERSION / f"{name}.json").read_text())
             for name in ("category", "instance", "sample_annotation")}
    category = {c["token"]: c["name"] for c in table["category"]}
    of_instance = {i["token"]: category[i["category_token"]] for i in table["instance"]}
    expected = Counter(of_instance[a["instance_token"]] for a in table["sample_annotation"]
                       if of_instance[a["instance_token"]] not in DEFAULT_CLASS_MAP)
    summary = json.loads((out / "summary.json").read_text())
    assert expected and summary["dropped_categories"] == dict(sorted(expected.items()))
    assert f"annotations of unmapped categories: {sum(expected.values())};" in done.stdout
    for counted in ("skipped degenerate boxes", "missing images skipped", "empty scenes", "absent cameras",
                    "missing keyframes"):
        assert counted in done.stdout


def test_a_train_split_without_boxes_is_an_error(synthetic_root, derive_release, tmp_path, runner, fails):
    instances = json.loads((synthetic_root / VERSION / "instance.json").read_text())
    used = {i["category_token"] for i in instances}
    unused = next(c["name"] for c in json.loads((synthetic_root / VERSION / "category.json").read_text())
                  if c["token"] not in used)
    mapping = tmp_path / "unused.json"
    mapping.write_text(json.dumps({unused: "car"}))
    error = fails(runner, synthetic_root, "--class-map", str(mapping))
    assert error.startswith("error: the train split would hold no annotated box") and "nothing was written" in error
    assert f"the class map keeps 1 categories ({unused})" in error, error

    root = derive_release(synthetic_root, tmp_path / "no_images", VERSION)
    (root / "samples").unlink()
    (root / "samples").mkdir()  # every keyframe image missing: --allow-missing would skip them all
    error = fails(runner, root, "--allow-missing")
    assert "the train split would hold no annotated box (0 images from --cameras CAM_FRONT" in error, error


# --- dataroot, version, cameras ----------------------------------------------------------------------------------


def test_a_folder_that_is_not_a_dataroot_says_where_the_release_is(synthetic_root, tmp_path, run_tool, runner,
                                                                    fails):
    error = fails(run_tool, synthetic_root / VERSION)  # a separate process; the others in this one
    assert f"is itself a table folder; pass --dataroot {synthetic_root} --version {VERSION}" in error, error
    parent = tmp_path / "data"
    parent.mkdir()
    os.symlink(synthetic_root, parent / "nuscenes")
    error = fails(runner, parent)
    assert "is not a nuScenes dataroot" in error and f"--dataroot {parent / 'nuscenes'} --version {VERSION}" in error
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "is not a nuScenes dataroot" in fails(runner, empty)
    assert "does not exist" in fails(runner, tmp_path / "nowhere")


def test_an_unknown_version_lists_the_versions_found(synthetic_root, tmp_path, runner, fails):
    error = fails(runner, synthetic_root, version="v1.0-trainval")
    assert f"versions found in {synthetic_root}: {VERSION}); pass --version with one of them" in error, error
    error = fails(runner, synthetic_root.parent, version=f"{synthetic_root.name}/{VERSION}")
    assert "must be the name of a table folder inside the dataroot" in error, error


@pytest.mark.parametrize("cameras, expected", [
    (["cam_front"], "unknown camera(s) cam_front in {table_dir} (did you mean CAM_FRONT"),
    (["LIDAR_TOP"], "unknown camera(s) LIDAR_TOP in {table_dir} (LIDAR_TOP is a lidar sensor, not a camera)"),
    (["CAM_FRONT", "CAM_TOP"], "unknown camera(s) CAM_TOP in {table_dir}"),
    (["all", "CAM_FRONT"], "--cameras all already means every camera"),
])
def test_an_unknown_camera_lists_the_valid_ones(synthetic_root, tmp_path, runner, one_error_line, cameras, expected):
    done = runner(TOOL, "--dataroot", str(synthetic_root), "--version", VERSION, "--out", str(tmp_path / "out"),
                  "--cameras", *cameras, timeout=300)
    error = one_error_line(done, last=True)
    assert expected.format(table_dir=synthetic_root / VERSION) in error, error
    assert "CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT, CAM_FRONT, CAM_FRONT_LEFT, CAM_FRONT_RIGHT" in error
    assert not (tmp_path / "out").exists()


# --- a failed rerun leaves the previous conversion as it was ------------------------------------------------------


def test_a_failed_overwrite_keeps_the_previous_output(synthetic_root, derive_release, tmp_path, runner, one_error_line,
                                                      snapshot):
    out = tmp_path / "out"
    assert _convert(runner, synthetic_root, out).returncode == 0
    before = snapshot(out)
    broken = derive_release(synthetic_root, tmp_path / "broken", VERSION,
                            edit=_set("sample_data", 0, ego_pose_token="ghost-token"))
    bus = tmp_path / "bus.json"
    bus.write_text(json.dumps({"vehicle.bus": "bus"}))
    for done in (_convert(runner, broken, out, "--overwrite"),
                 _convert(runner, synthetic_root, out, "--overwrite", "--class-map", str(bus))):
        one_error_line(done, last=True)
        assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "bus.json", "out"], "no staging folder left"

"""tools/convert_nuscenes.py through its library function, on a tiny generated synthetic release."""

from __future__ import annotations

import configparser
import json
import os
import shutil
from collections import defaultdict
from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest

from yolox_finetune.core.classes import CLASS_IDS, CLASS_NAMES
from yolox_finetune.core.errors import UserError
from yolox_finetune.nuscenes.convert import convert_nuscenes
from yolox_finetune.nuscenes.split import assign_splits
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION

REPO = Path(__file__).resolve().parents[2]


def _tree_state(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def converted(synthetic_root, tmp_path_factory):
    before = _tree_state(synthetic_root)
    out = tmp_path_factory.mktemp("converted") / "coco"
    summary = convert_nuscenes(synthetic_root, VERSION, out, mot=True, seed=5, progress=False)
    assert _tree_state(synthetic_root) == before, "the source release must not be touched"
    cocos = {split: json.loads((out / "annotations" / f"{split}.json").read_text())
             for split in ("train", "val", "test")}
    return out, summary, cocos


def _source_table(root: Path, name: str) -> list[dict]:
    return json.loads((root / VERSION / f"{name}.json").read_text())


def test_coco_files_have_the_contract_fields(converted):
    out, summary, cocos = converted
    for split, coco in cocos.items():
        assert [(c["id"], c["name"]) for c in coco["categories"]] == list(enumerate(CLASS_NAMES, start=1))
        assert len(coco["images"]) == summary["splits"][split]["images"] > 0
        sizes = {}
        for image in coco["images"]:
            assert (out / image["file_name"]).is_file()  # relative to OUT, through the samples symlink
            assert not Path(image["file_name"]).is_absolute()
            for key in ("sample_data_token", "sample_token", "scene_name", "camera", "timestamp", "frame_index"):
                assert key in image
            sizes[image["id"]] = (image["width"], image["height"])
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            width, height = sizes[ann["image_id"]]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width + 1e-6 and y + h <= height + 1e-6
            assert ann["area"] == pytest.approx(w * h) and ann["iscrowd"] == 0
            assert 1 <= ann["category_id"] <= 7 and 1 <= ann["visibility"] <= 4
            assert isinstance(ann["track_id"], int) and ann["nusc_category"].count(".") >= 1
            assert {"sample_annotation_token", "instance_token"} <= set(ann)
    assert (out / "samples").is_symlink()


def test_class_mapping_keeps_buses_and_drops_other_categories(converted, synthetic_root):
    _, summary, cocos = converted
    categories = {c["token"]: c["name"] for c in _source_table(synthetic_root, "category")}
    source = {categories[i["category_token"]] for i in _source_table(synthetic_root, "instance")}
    assert {"vehicle.construction", "movable_object.barrier", "vehicle.bus.rigid"} <= source
    anns = [a for coco in cocos.values() for a in coco["annotations"]]
    assert {a["nusc_category"] for a in anns} <= set(source) - {"vehicle.construction", "movable_object.barrier",
                                                               "movable_object.trafficcone"}
    buses = [a for a in anns if a["nusc_category"].startswith("vehicle.bus.")]
    assert buses and all(a["category_id"] == CLASS_IDS["bus"] for a in buses)
    assert all(a["category_id"] == CLASS_IDS["pedestrian"] for a in anns if a["nusc_category"].startswith("human."))
    per_class = defaultdict(int)
    for a in cocos["train"]["annotations"]:
        per_class[CLASS_NAMES[a["category_id"] - 1]] += 1
    assert dict(per_class) == summary["splits"]["train"]["boxes_per_class"]


def test_custom_class_map(synthetic_root, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"vehicle.construction": "truck", "vehicle.car": None}))
    convert_nuscenes(synthetic_root, VERSION, tmp_path / "out", class_map=mapping, progress=False)
    anns = [a for split in ("train", "val", "test")
            for a in json.loads((tmp_path / "out" / "annotations" / f"{split}.json").read_text())["annotations"]]
    assert anns and {a["nusc_category"] for a in anns} == {"vehicle.construction"}
    assert {a["category_id"] for a in anns} == {CLASS_IDS["truck"]}
    mapping.write_text(json.dumps({"vehicle.car": "lorry"}))
    with pytest.raises(UserError, match="unknown class name"):
        convert_nuscenes(synthetic_root, VERSION, tmp_path / "out2", class_map=mapping, progress=False)


def test_split_is_by_scene_without_overlap_and_reproducible(converted, synthetic_root):
    _, summary, cocos = converted
    scenes = {split: {im["scene_name"] for im in coco["images"]} for split, coco in cocos.items()}
    assert all(scenes.values()), "three scenes give non-empty train, val and test"
    assert not (scenes["train"] & scenes["val"]) and not (scenes["train"] & scenes["test"])
    assert not (scenes["val"] & scenes["test"])
    names = sorted(s["name"] for s in _source_table(synthetic_root, "scene"))
    assert summary["split_policy"] == "hash" and all(n.startswith("synth-") for n in names)
    assert assign_splits(names, VERSION, seed=5) == summary["scene_splits"]
    assert {s: {n for n, sp in summary["scene_splits"].items() if sp == s} for s in scenes} == scenes


def test_ids_are_deterministic_across_runs_and_workers(converted, synthetic_root, tmp_path):
    out, _, cocos = converted
    again = convert_nuscenes(synthetic_root, VERSION, tmp_path / "again", mot=True, seed=5, workers=2,
                             progress=False)
    for split in ("train", "val", "test"):
        assert (tmp_path / "again" / "annotations" / f"{split}.json").read_bytes() == \
            (out / "annotations" / f"{split}.json").read_bytes()
    assert again["skipped_degenerate"] == 0
    track_of_instance = {}
    for coco in cocos.values():
        for ann in coco["annotations"]:
            assert track_of_instance.setdefault(ann["instance_token"], ann["track_id"]) == ann["track_id"]
    assert len(set(track_of_instance.values())) == len(track_of_instance)


def test_mot_sequences_match_coco_and_load_in_motmetrics(converted):
    out, summary, cocos = converted
    seq_dirs = sorted((out / "mot").glob("*/*"))
    assert len(seq_dirs) == summary["mot_sequences"] == 3 * 6
    coco = cocos["val"]
    boxes_of_image = defaultdict(list)
    for ann in coco["annotations"]:
        boxes_of_image[ann["image_id"]].append(ann)
    for seq_dir in sorted((out / "mot" / "val").iterdir()):
        images = sorted((im for im in coco["images"] if f"{im['scene_name']}_{im['camera']}" == seq_dir.name),
                        key=lambda im: im["timestamp"])
        info = configparser.ConfigParser()
        info.read(seq_dir / "seqinfo.ini")
        seq = info["Sequence"]
        assert seq["name"] == seq_dir.name and int(seq["seqLength"]) == len(images) == 4
        assert int(seq["frameRate"]) == 2 and seq["imExt"] == ".jpg"
        assert (int(seq["imWidth"]), int(seq["imHeight"])) == (images[0]["width"], images[0]["height"])
        links = sorted((seq_dir / "img1").iterdir())
        assert [p.name for p in links] == [f"{i:06d}.jpg" for i in range(1, len(images) + 1)]
        assert [os.path.realpath(p) for p in links] == [os.path.realpath(out / im["file_name"]) for im in images]

        gt = mm.io.loadtxt(seq_dir / "gt" / "gt.txt", fmt="mot15-2D")
        expected = sorted((im["frame_index"], a["track_id"], round(a["bbox"][0], 3), a["category_id"])
                          for im in images for a in boxes_of_image[im["id"]])
        rows = np.loadtxt(seq_dir / "gt" / "gt.txt", delimiter=",", ndmin=2)
        assert sorted((int(r[0]), int(r[1]), round(r[2], 3), int(r[7])) for r in rows) == expected
        assert np.all((rows[:, 8] >= 0) & (rows[:, 8] <= 1)) and np.all(rows[:, 6] == 1)
        if len(gt):
            acc = mm.utils.compare_to_groundtruth(gt, gt, "iou", distth=0.5)
            metrics = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches"])
            assert metrics["mota"].iloc[0] == 1.0 and metrics["num_switches"].iloc[0] == 0


def test_bad_inputs_fail_with_one_clear_error(synthetic_root, tmp_path):
    with pytest.raises(UserError, match="version folder .* does not exist"):
        convert_nuscenes(synthetic_root, "v1.0-trainval", tmp_path / "o", progress=False)
    with pytest.raises(UserError, match="unknown camera.*CAM_TOP"):
        convert_nuscenes(synthetic_root, VERSION, tmp_path / "o", cameras=["CAM_TOP"], progress=False)
    with pytest.raises(UserError, match="overlaps the source"):
        convert_nuscenes(synthetic_root, VERSION, synthetic_root / "converted", progress=False)
    broken = tmp_path / "broken"
    shutil.copytree(synthetic_root / VERSION, broken / VERSION)
    (broken / VERSION / "ego_pose.json").unlink()
    with pytest.raises(UserError, match="missing table.*ego_pose.json"):
        convert_nuscenes(broken, VERSION, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite_and_survives_a_failed_run(synthetic_root, tmp_path):
    out = tmp_path / "out"
    convert_nuscenes(synthetic_root, VERSION, out, cameras=["CAM_BACK"], progress=False)
    keep = (out / "annotations" / "train.json").read_bytes()
    with pytest.raises(UserError, match="already exists.*--overwrite"):
        convert_nuscenes(synthetic_root, VERSION, out, progress=False)
    with pytest.raises(UserError):
        convert_nuscenes(synthetic_root, VERSION, out, cameras=["CAM_NOPE"], overwrite=True, progress=False)
    assert (out / "annotations" / "train.json").read_bytes() == keep
    convert_nuscenes(synthetic_root, VERSION, out, cameras=["CAM_FRONT"], overwrite=True, progress=False)
    cameras = {im["camera"] for im in json.loads((out / "annotations" / "train.json").read_text())["images"]}
    assert cameras == {"CAM_FRONT"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging folders left behind"


def test_cli_reports_bad_input_as_one_line(synthetic_root, tmp_path, run_tool):
    done = run_tool("convert_nuscenes.py", "--dataroot", str(synthetic_root), "--version", "v9",
         "--out", str(tmp_path / "o"), timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: version folder") and done.stderr.count("\n") == 1

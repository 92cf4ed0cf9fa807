"""The built-in synthetic nuScenes release: schema, rig, motion, visibility and rendering."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes

from yolox_finetune.core.errors import UserError
from yolox_finetune.nuscenes.convert import convert_nuscenes
from yolox_finetune.nuscenes.synthetic.camera_rig import CAMERA_CHANNELS
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION
from yolox_finetune.nuscenes.synthetic.generate import make_synthetic_nuscenes
from yolox_finetune.nuscenes.synthetic.world import KINDS
from yolox_finetune.nuscenes.tables import ALL_TABLES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nusc(synthetic_root):
    return NuScenes(version=VERSION, dataroot=str(synthetic_root), verbose=False)


def test_devkit_loads_all_thirteen_tables(nusc, synthetic_root):
    assert sorted(p.stem for p in (synthetic_root / VERSION).glob("*.json")) == sorted(ALL_TABLES)
    assert len(nusc.scene) == 3 and all(s["name"].startswith("synth-") for s in nusc.scene)
    for scene in nusc.scene:
        sample = nusc.get("sample", scene["first_sample_token"])
        count = 1
        while sample["next"]:
            sample = nusc.get("sample", sample["next"])
            count += 1
        assert count == scene["nbr_samples"] == 4 and sample["token"] == scene["last_sample_token"]
        assert set(sample["data"]) == {*CAMERA_CHANNELS, "LIDAR_TOP"}
    lidar = nusc.get_sample_data_path(nusc.sample[0]["data"]["LIDAR_TOP"])
    assert np.fromfile(lidar, dtype=np.float32).reshape(-1, 5).shape[0] > 100


def test_cameras_have_realistic_calibration_and_images(nusc, synthetic_root):
    cameras = [s for s in nusc.sample_data if s["sensor_modality"] == "camera"]
    assert {s["channel"] for s in cameras} == set(CAMERA_CHANNELS)
    sweeps = [s for s in cameras if not s["is_key_frame"]]
    assert len(sweeps) == 3 * 3 * 6 and all(s["filename"].startswith("sweeps/") for s in sweeps)
    for record in cameras[:40]:
        image = cv2.imread(str(synthetic_root / record["filename"]))
        assert image.shape == (record["height"], record["width"], 3) == (180, 320, 3)
    for calib in nusc.calibrated_sensor:
        if calib["camera_intrinsic"]:
            k = np.array(calib["camera_intrinsic"])
            assert 150 < k[0, 0] < 260 and abs(k[0, 2] - 160) < 16 and abs(k[1, 2] - 90) < 16  # 1600x900 / 5
            assert 1.4 < calib["translation"][2] < 1.7
    # sweeps point at the next keyframe's sample and lie between the two keyframes
    for sweep in sweeps:
        sample = nusc.get("sample", sweep["sample_token"])
        previous = nusc.get("sample", sample["prev"])
        assert previous["timestamp"] < sweep["timestamp"] < sample["timestamp"] + 50_000


def test_instances_move_coherently_with_stable_ids(nusc):
    for instance in nusc.instance:
        chain = [nusc.get("sample_annotation", instance["first_annotation_token"])]
        while chain[-1]["next"]:
            chain.append(nusc.get("sample_annotation", chain[-1]["next"]))
        assert len(chain) == instance["nbr_annotations"] and chain[-1]["token"] == instance["last_annotation_token"]
        assert len({tuple(a["size"]) for a in chain}) == 1
        times = [nusc.get("sample", a["sample_token"])["timestamp"] for a in chain]
        assert times == sorted(times) and len({nusc.get("sample", a["sample_token"])["scene_token"]
                                               for a in chain}) == 1
        xyz = np.array([a["translation"] for a in chain])
        if len(chain) >= 3:  # constant speed along a gently curving road: equal steps, at most 12 m/s
            steps = np.linalg.norm(np.diff(xyz[:, :2], axis=0), axis=1)
            assert steps.max() < 6.0 and np.ptp(steps) < 0.05 + 0.01 * steps.max()


def test_categories_visibility_and_attributes(nusc):
    used = defaultdict(int)
    for ann in nusc.sample_annotation:
        used[ann["category_name"]] += 1
    assert {"vehicle.car", "vehicle.truck", "vehicle.bus.rigid", "vehicle.trailer", "human.pedestrian.adult",
            "vehicle.motorcycle", "vehicle.bicycle", "vehicle.construction", "movable_object.barrier"} <= set(used)
    levels = {a["visibility_token"] for a in nusc.sample_annotation}
    assert {"1", "4"} <= levels and len(levels) >= 3
    assert all(a["num_lidar_pts"] >= 1 for a in nusc.sample_annotation)
    moving = nusc.field2token("attribute", "name", "vehicle.moving")[0]
    assert any(moving in a["attribute_tokens"] for a in nusc.sample_annotation)


def _class_of_pixels(pixels_bgr: np.ndarray) -> np.ndarray:
    """Nearest class colour (by chromaticity) of saturated pixels; -1 for grey ones."""
    palette = {name: np.array(kind.color[::-1], dtype=float) for name, kind in KINDS.items()}
    names = list(palette)
    colors = np.stack([palette[n] / palette[n].sum() for n in names])
    px = pixels_bgr.reshape(-1, 3).astype(float)
    chroma = px / np.maximum(px.sum(axis=1, keepdims=True), 1)
    nearest = np.argmin(((chroma[:, None, :] - colors[None]) ** 2).sum(axis=2), axis=1)
    saturated = px.max(axis=1) - px.min(axis=1) > 40
    return np.where(saturated, nearest, -1), names


def test_objects_are_drawn_where_the_converter_puts_their_boxes(synthetic_root, tmp_path):
    out = tmp_path / "coco"
    convert_nuscenes(synthetic_root, VERSION, out, min_visibility=4, progress=False)
    checked = hits = 0
    for split in ("train", "val", "test"):
        coco = json.loads((out / "annotations" / f"{split}.json").read_text())
        images = {im["id"]: im for im in coco["images"]}
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            if w * h < 150:
                continue
            image = cv2.imread(str(out / images[ann["image_id"]]["file_name"]))
            inner = image[int(y + 0.2 * h):int(y + 0.8 * h) + 1, int(x + 0.2 * w):int(x + 0.8 * w) + 1]
            votes, names = _class_of_pixels(inner)
            own = [i for i, n in enumerate(names) if KINDS[n].color == KINDS[ann["nusc_category"]].color]
            checked += 1
            hits += np.isin(votes, own).mean() >= 0.2
    assert checked > 20 and hits / checked > 0.9


def test_same_seed_same_dataset_with_any_number_of_workers(tmp_path):
    """Scenes rendered in parallel processes give the release made in one process, byte for byte."""
    a = make_synthetic_nuscenes(tmp_path / "a", scenes=2, samples=2, seed=4, image_size=(160, 90), sweeps=1,
                                progress=False)
    make_synthetic_nuscenes(tmp_path / "b", scenes=2, samples=2, seed=4, image_size=(160, 90), sweeps=1,
                            progress=False, workers=2)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 50
    for name in files_a:
        if name.name != ".yolox_finetune.json":  # the marker records time and command line
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    scenes = json.loads((tmp_path / "b" / VERSION / "scene.json").read_text())
    assert [s["name"] for s in scenes] == ["synth-0000", "synth-0001"]
    assert a["tables"]["sample"] == 4 and a["image_size"] == [160, 90]
    with pytest.raises(UserError, match="already exists"):
        make_synthetic_nuscenes(tmp_path / "a", scenes=1, samples=2, progress=False)
    with pytest.raises(UserError, match="too small"):
        make_synthetic_nuscenes(tmp_path / "c", image_size=(10, 10), progress=False)


def test_cli_writes_a_dataset(tmp_path, run_tool):
    done = run_tool("make_synthetic_nuscenes.py", "--out", str(tmp_path / "d"),
                           "--scenes", "1", "--samples", "2", "--sweeps", "0", "--image-size", "160x90", timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tables"]["scene"] == 1
    bad = run_tool("make_synthetic_nuscenes.py", "--out", str(tmp_path / "e"),
                          "--image-size", "big", timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --image-size")
    bad = run_tool("make_synthetic_nuscenes.py", "--out", str(tmp_path / "e"), "--workers", "0", timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --workers 0"), bad.stderr
    assert not (tmp_path / "e").exists()

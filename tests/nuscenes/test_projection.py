"""The converter's 2D boxes against nuscenes-devkit's own re-projection (export_2d_annotations_as_json.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes
from nuscenes.scripts import export_2d_annotations_as_json as devkit_export
from pyquaternion import Quaternion

from yolox_finetune.nuscenes.convert import build_scene_jobs, reproject_scene
from yolox_finetune.nuscenes.geometry import sensor_to_world, yaw_quaternion
from yolox_finetune.nuscenes.projection import BOX_DEGENERATE, BOX_OK, BOX_OUTSIDE, clip_hulls_to_canvas
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION
from yolox_finetune.nuscenes.tables import load_tables

ALL_VISIBILITIES = ["", "1", "2", "3", "4"]


def devkit_boxes(dataroot) -> tuple[dict, list[str]]:
    """{(sample_data, annotation): [x1, y1, x2, y2]} from the devkit's get_2d_boxes, and the images where it raised."""
    nusc = NuScenes(version=VERSION, dataroot=str(dataroot), verbose=False)
    devkit_export.nusc = nusc  # the export script reads its database from this module global
    boxes, crashed = {}, []
    for record in nusc.sample_data:
        if record["sensor_modality"] != "camera" or not record["is_key_frame"]:
            continue
        try:
            found = devkit_export.get_2d_boxes(record["token"], ALL_VISIBILITIES)
        except AttributeError:  # shapely Point / LineString has no exterior: the degenerate hulls
            crashed.append(record["token"])
            continue
        for rec in found:
            boxes[(record["token"], rec["sample_annotation_token"])] = rec["bbox_corners"]
    return boxes, crashed


def converter_boxes(dataroot) -> tuple[dict, int]:
    tables = load_tables(dataroot, VERSION)
    boxes, degenerate = {}, 0
    for job in build_scene_jobs(tables, tables.camera_channels(), class_map=None):
        frames, skipped = reproject_scene(job)
        degenerate += skipped
        for frame in frames:
            for box in frame["boxes"]:
                boxes[(frame["sample_data_token"], box["sample_annotation_token"])] = box["xyxy"]
    return boxes, degenerate


def test_boxes_equal_devkit_reference(native_size_root):
    reference, crashed = devkit_boxes(native_size_root)
    ours, degenerate = converter_boxes(native_size_root)
    assert not crashed and degenerate == 0
    assert len(reference) > 100
    assert set(ours) == set(reference)
    worst = max(np.abs(np.subtract(ours[key], reference[key])).max() for key in reference)
    assert worst < 0.01


def _straddle_camera_plane(dataroot) -> str:
    """Move one annotation so only one vertical edge of its box is in front of CAM_FRONT; return that image token."""
    table_dir = dataroot / VERSION
    tables = {name: json.loads((table_dir / f"{name}.json").read_text())
              for name in ("sample_data", "calibrated_sensor", "sensor", "ego_pose", "sample_annotation")}
    front_sensor = next(s["token"] for s in tables["sensor"] if s["channel"] == "CAM_FRONT")
    front_calibs = {c["token"]: c for c in tables["calibrated_sensor"] if c["sensor_token"] == front_sensor}
    image = next(sd for sd in tables["sample_data"]
                 if sd["is_key_frame"] and sd["calibrated_sensor_token"] in front_calibs)
    calib = front_calibs[image["calibrated_sensor_token"]]
    pose = next(p for p in tables["ego_pose"] if p["token"] == image["ego_pose_token"])
    ann = next(a for a in tables["sample_annotation"] if a["sample_token"] == image["sample_token"])
    width, length = 2.0, 4.0
    # turned 45 degrees, the box's leading vertical edge sits 0.3 m ahead of the lens, on the optical axis
    centre_depth = 0.3 - (length / 2 + width / 2) * np.sqrt(0.5)
    centre_right = (length / 2 - width / 2) * np.sqrt(0.5)
    centre = sensor_to_world(np.array([[centre_right, 0.0, centre_depth]]), np.array(pose["translation"]),
                             np.array(pose["rotation"]), np.array(calib["translation"]), np.array(calib["rotation"]))[0]
    ego_yaw = Quaternion(pose["rotation"]).yaw_pitch_roll[0]
    ann.update(translation=centre.tolist(), size=[width, length, 1.5],
               rotation=yaw_quaternion(ego_yaw + np.pi / 4).tolist())
    (table_dir / "sample_annotation.json").write_text(json.dumps(tables["sample_annotation"]))
    return image["token"]


def test_degenerate_hull_is_skipped_and_counted(native_size_root, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(native_size_root, root)
    broken_image = _straddle_camera_plane(root)
    reference, crashed = devkit_boxes(root)
    ours, degenerate = converter_boxes(root)
    assert broken_image in crashed  # neighbouring cameras may see the same box edge-on as well
    assert degenerate == len(crashed)  # one bad box per crashed image, skipped and counted by the converter
    assert {key for key in ours if key[0] not in crashed} == set(reference)
    assert max(np.abs(np.subtract(ours[key], reference[key])).max() for key in reference) < 0.01


def test_small_images_clip_to_their_own_canvas(synthetic_root, devkit_pixels):
    """At 320x180 the devkit's steps with the image's canvas (post_process_coords imsize) give our boxes."""
    nusc = NuScenes(version=VERSION, dataroot=str(synthetic_root), verbose=False)
    ours, _ = converter_boxes(synthetic_root)
    checked = 0
    for (sd_token, ann_token), box in ours.items():
        sd = nusc.get("sample_data", sd_token)
        pixels = devkit_pixels(nusc, sd_token, ann_token).tolist()
        expected = devkit_export.post_process_coords(pixels, imsize=(sd["width"], sd["height"]))
        assert np.abs(np.subtract(box, expected)).max() < 0.01
        assert 0 <= box[0] < box[2] <= sd["width"] and 0 <= box[1] < box[3] <= sd["height"]
        checked += 1
    assert checked > 50


def test_clip_agrees_with_shapely_on_random_hulls_including_degenerate_ones():
    rng = np.random.default_rng(1)
    n = 3000
    pixels = rng.normal(0, 700, size=(n, 8, 2)) * rng.uniform(0.02, 1, size=(n, 1, 1)) + rng.uniform(-400, 2000,
                                                                                                      size=(n, 1, 2))
    in_front = rng.uniform(size=(n, 8)) > 0.3
    in_front[:200, 2:] = False  # many one- and two-point hulls
    pixels[200:260, :, 0] = 800.0  # vertical collinear sets
    boxes, status = clip_hulls_to_canvas(pixels, in_front, 1600, 900)
    seen = set()
    for k in range(n):
        try:
            expected = devkit_export.post_process_coords(pixels[k][in_front[k]].tolist())
            expected_status = BOX_OUTSIDE if expected is None else BOX_OK
        except AttributeError:
            expected, expected_status = None, BOX_DEGENERATE
        assert status[k] == expected_status, k
        seen.add(expected_status)
        if expected is not None:
            assert np.abs(boxes[k] - expected).max() < 1e-6
    assert seen == {BOX_OK, BOX_OUTSIDE, BOX_DEGENERATE}


@pytest.mark.parametrize("size", [(1600, 900), (320, 180)])
def test_canvas_corners_inside_a_large_hull(size):
    """A hull that covers the whole image yields the full canvas (no projected corner is inside it)."""
    square = np.array([[-5000, -5000], [9000, -5000], [9000, 9000], [-5000, 9000]] * 2, dtype=float)[None]
    boxes, status = clip_hulls_to_canvas(square, np.ones((1, 8), bool), *size)
    assert status[0] == BOX_OK
    assert boxes[0].tolist() == [0, 0, size[0], size[1]]

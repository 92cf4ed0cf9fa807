"""Tiny synthetic nuScenes releases for the converter tests (generated once per test session, in seconds).

Fixtures of this folder's tests (pytest finds them here; nothing imports this file).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from loguru import logger
from nuscenes.utils.geometry_utils import view_points
from pyquaternion import Quaternion

from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION
from yolox_finetune.nuscenes.synthetic.generate import make_synthetic_nuscenes


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Three scenes x four keyframes with small JPEGs and one sweep between keyframes."""
    root = tmp_path_factory.mktemp("nusc") / "synthetic"
    make_synthetic_nuscenes(root, scenes=3, samples=4, seed=7, image_size=(320, 180), sweeps=1, progress=False)
    return root


@pytest.fixture(scope="session")
def native_size_root(tmp_path_factory):
    """Tables only, at nuScenes' native 1600x900 (the devkit's export script clips to that canvas)."""
    root = tmp_path_factory.mktemp("nusc") / "native"
    make_synthetic_nuscenes(root, scenes=2, samples=5, seed=3, image_size=(1600, 900), sweeps=0,
                            render_images=False, progress=False)
    return root


@pytest.fixture(scope="session")
def derive_release():
    """``derive(source, dest, version, names=None, annotated=True, edit=None, copy_images=False)``: a copy of a
    synthetic release's tables under ``dest/version`` in the same schema, scenes renamed (``names``: new names in
    the order of the sorted old ones), annotations emptied (``annotated=False``, as nuScenes ships v1.0-test) and
    ``edit(tables)`` applied; images are linked to the source unless ``copy_images``."""

    def derive(source: Path, dest: Path, version: str, names: list[str] | None = None, annotated: bool = True,
               edit=None, copy_images: bool = False) -> Path:
        tables = {p.stem: json.loads(p.read_text()) for p in (source / VERSION).glob("*.json")}
        if names is not None:
            old = sorted(s["name"] for s in tables["scene"])
            assert len(names) == len(old), "one new name per scene"
            new_of = dict(zip(old, names))
            for scene in tables["scene"]:
                scene["name"] = new_of[scene["name"]]
        if not annotated:
            tables["sample_annotation"], tables["instance"] = [], []
        if edit is not None:
            edit(tables)
        (dest / version).mkdir(parents=True)
        for name, records in tables.items():
            (dest / version / f"{name}.json").write_text(json.dumps(records))
        for top in ("samples", "sweeps"):
            if copy_images:
                shutil.copytree(source / top, dest / top)
            else:
                os.symlink(source / top, dest / top, target_is_directory=True)
        return dest

    return derive


@pytest.fixture
def warnings_log():
    """The converter's loguru warnings of one test, as a list of messages."""
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


def _devkit_pixels(nusc, sample_data_token: str, annotation_token: str) -> np.ndarray:
    """(N, 2) pixel positions of a box's corners in front of the camera, by the devkit's own steps
    (global -> ego -> camera with its Box methods, then view_points): the reference our projection is checked on."""
    record = nusc.get("sample_data", sample_data_token)
    calibration = nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
    pose = nusc.get("ego_pose", record["ego_pose_token"])
    box = nusc.get_box(annotation_token)
    box.translate(-np.array(pose["translation"]))
    box.rotate(Quaternion(pose["rotation"]).inverse)
    box.translate(-np.array(calibration["translation"]))
    box.rotate(Quaternion(calibration["rotation"]).inverse)
    corners = box.corners()
    corners = corners[:, corners[2, :] > 0]
    return view_points(corners, np.array(calibration["camera_intrinsic"]), True)[:2].T


@pytest.fixture()
def devkit_pixels():
    """``devkit_pixels(nusc, sample_data_token, annotation_token)`` -> the devkit's corner pixels (N, 2)."""
    return _devkit_pixels

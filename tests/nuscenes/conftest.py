"""Tiny synthetic nuScenes releases for the converter tests (generated once per test session, in seconds).

Fixtures of this folder's tests (pytest finds them here; nothing imports this file).
"""

from __future__ import annotations

import pytest

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

"""Shared fixtures: a tiny COCO dataset of coloured boxes, tiny exp files that train in seconds on a CPU, and a
runner for the real command-line tools.

Tests that start a tool in a subprocess (the ``run_tool`` fixture) or live in ``e2e/`` are marked ``slow``:
``pytest -m "not slow"`` is the quick inner loop, ``make test`` runs everything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_finetune.core.classes import CLASS_NAMES

REPO = Path(__file__).resolve().parents[1]

# One colour per class, so even a tiny detector can tell them apart.
_COLOURS = [(40, 40, 220), (40, 200, 40), (220, 60, 60), (0, 200, 220), (220, 0, 220), (220, 220, 0), (255, 255, 255)]


def _write_tiny_coco(root: Path, n_train: int = 12, n_val: int = 4, size: tuple[int, int] = (96, 160),
                    seed: int = 0) -> Path:
    """``root/annotations/{train,val}.json`` with images under ``root/images``: file names relative to root."""
    rng = np.random.default_rng(seed)
    height, width = size
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASS_NAMES)]
    ann_id = 1
    for split, count in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for k in range(count):
            img_id = len(images) + 1
            image = np.full((height, width, 3), 90, np.uint8)
            image += rng.integers(0, 20, image.shape, dtype=np.uint8)
            for _ in range(int(rng.integers(1, 4))):
                cls = int(rng.integers(0, 3))  # a few classes so learning is quick
                w, h = int(rng.integers(16, 40)), int(rng.integers(16, 40))
                x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
                cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), _COLOURS[cls], -1)
                annotations.append({"id": ann_id, "image_id": img_id, "category_id": cls + 1, "bbox": [x, y, w, h],
                                    "area": w * h, "iscrowd": 0})
                ann_id += 1
            name = f"images/{split}_{k:03d}.jpg"
            cv2.imwrite(str(root / name), image)
            images.append({"id": img_id, "file_name": name, "width": width, "height": height})
        with open(root / "annotations" / f"{split}.json", "w", encoding="utf-8") as handle:
            json.dump({"images": images, "annotations": annotations, "categories": categories}, handle)
    return root


TINY_EXP = """
from yolox_finetune.training.exp import GROUPS, NuScenesExp, Phase  # noqa: F401 - for exp bodies given by tests


class Exp(NuScenesExp):
    def __init__(self):
        super().__init__()
        self.exp_name = "tiny"
        self.depth = 0.33
        self.width = 0.125
        self.input_size = (96, 160)
        self.test_size = (96, 160)
        self.multiscale_range = 0
        self.data_num_workers = 0
        self.batch_size = 4
        self.max_epoch = 2
        self.warmup_epochs = 1
        self.no_aug_epochs = 1
        self.basic_lr_per_img = 0.01 / 64
        self.print_interval = 1
        self.seed = 0
        self.data_dir = {data_dir!r}
        self.output_dir = {output_dir!r}
{extra}
"""


def _write_tiny_exp(path: Path, data_dir: Path, output_dir: Path, extra: str = "") -> Path:
    body = TINY_EXP.format(data_dir=str(data_dir), output_dir=str(output_dir),
                           extra=textwrap.indent(textwrap.dedent(extra), " " * 8))
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory) -> Path:
    return _write_tiny_coco(tmp_path_factory.mktemp("tiny_coco"))


@pytest.fixture()
def tiny_exp_file(tmp_path, tiny_coco) -> Path:
    return _write_tiny_exp(tmp_path / "tiny_exp.py", tiny_coco, tmp_path / "outputs")


@pytest.fixture()
def make_tiny_exp(tmp_path, tiny_coco):
    """``make_tiny_exp(extra="", name="exp.py", folder=tmp_path)`` writes a tiny exp whose runs go to
    ``<folder>/out`` (``extra`` lines go into ``__init__``) and returns its path."""

    def make(extra: str = "", name: str = "exp.py", folder: Path | None = None) -> Path:
        folder = Path(folder or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        return _write_tiny_exp(folder / name, tiny_coco, folder / "out", extra)

    return make


@pytest.fixture()
def run_tool():
    """``run_tool("train.py", *args, env=None, timeout=600)`` runs ``python tools/<tool>`` from the repo root as a
    user would and returns the CompletedProcess (text output captured)."""

    def run(tool: str, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
        return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=REPO,
                              capture_output=True, text=True, env=full_env, timeout=timeout)

    return run


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if "run_tool" in getattr(item, "fixturenames", ()) or "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(slow)


@pytest.fixture()
def small_disk(tmp_path):
    """``small_disk(megabytes)`` mounts a tmpfs of that size and returns its path (unmounted afterwards): a real
    disk that fills up. Needs root (CI and the developers' machines run as root); elsewhere the test is skipped."""
    mounts: list[Path] = []

    def make(megabytes: float) -> Path:
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(megabytes * 1024)}k", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
        mounts.append(point)
        return point

    yield make
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def fill_disk(folder: Path, leave_bytes: int) -> None:
    """Fill the disk holding ``folder`` until about ``leave_bytes`` are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler.bin", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


@pytest.fixture()
def fill():
    """``fill(folder, leave_bytes)``: fill the disk holding ``folder`` until about ``leave_bytes`` are free."""
    return fill_disk


def tree_bytes(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes) and symlink (target) under ``root`` by relative path: what "untouched" means."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes()
        else:
            found[rel] = "dir"
    return found


@pytest.fixture()
def snapshot():
    """``snapshot(folder)`` -> {relative path: bytes / link target / "dir"} for byte-for-byte comparisons."""
    return tree_bytes


@pytest.fixture()
def log_lines():
    """The messages logged (loguru) while the test runs."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    yield lines
    logger.remove(sink)

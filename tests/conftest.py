"""Shared fixtures: a tiny COCO dataset of coloured boxes, tiny exp files that train in seconds on a CPU, and a
runner for the real command-line tools.

Tests that start a tool in a subprocess (the ``run_tool`` fixture) or live in ``e2e/`` are marked ``slow``:
``pytest -m "not slow"`` is the quick inner loop, ``make test`` runs everything. Each subprocess pays seconds of
interpreter start and torch/YOLOX imports, so most bad-input cases run the same tool in the test process
(``run_tool_inprocess``, same arguments and result) and keep a few cases per tool and kind as real processes;
``one_error_line`` checks the bad-input guarantee (exit 2, one ``error:`` line, no traceback) for both.
"""

from __future__ import annotations

import contextlib
import io
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
# Every tool a test starts imports this checkout first, and keeps whatever PYTHONPATH the session had (a GPU machine
# without a registry carries YOLOX and the pure-Python needs on it): one place, inherited by every subprocess.
_inherited = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(REPO), *_inherited]))

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
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=REPO,
                              capture_output=True, text=True, env=full_env, timeout=timeout)

    return run


class _RestoredProcessState:
    """What a tool may change in the process that runs it, saved on entry and put back on exit, so that tools run
    one after another in the test process do not see each other (a subprocess gets all of this fresh)."""

    def __enter__(self):
        import logging
        import random
        import signal

        from loguru import logger

        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.argv, self.path = list(sys.argv), list(sys.path)
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        root = logging.getLogger()
        self.logging = (list(root.handlers), root.level, logging.root.manager.disable)
        self.loguru_handlers = set(logger._core.handlers)  # no public way to list the handlers
        self.random = random.getstate()
        self.numpy = np.random.get_state()
        self.torch = None
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            self.torch = (torch.get_num_threads(), torch.get_rng_state())
        return self

    def __exit__(self, *exc_info):
        import logging
        import random
        import signal

        from loguru import logger

        os.environ.clear()
        os.environ.update(self.environ)
        os.chdir(self.cwd)
        sys.argv[:], sys.path[:] = self.argv, self.path
        os.umask(self.umask)
        for sig, handler in self.signals.items():
            signal.signal(sig, handler)
        handlers, level, disabled = self.logging
        root = logging.getLogger()
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.disable(disabled)
        current = set(logger._core.handlers)
        for added in current - self.loguru_handlers:  # sinks the tool added (e.g. on the captured stderr)
            with contextlib.suppress(ValueError):
                logger.remove(added)
        if self.loguru_handlers - current:  # the tool removed the test session's sinks: give stderr one back
            logger.add(sys.stderr)
        random.setstate(self.random)
        np.random.set_state(self.numpy)
        if "torch" in sys.modules:
            torch = sys.modules["torch"]
            if self.torch is not None:
                torch.set_num_threads(self.torch[0])
                torch.set_rng_state(self.torch[1])
        return False


def run_tool_in_process(tool: str, *args: str, env: dict | None = None,
                        timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python tools/<tool> ARGS`` run inside the test process, as ``run_tool`` runs it in a new one: the script
    runs as ``__main__`` (its ``if __name__ == "__main__"`` line and ``cli_entry`` included) from the repo root
    with ``env`` added to the environment; stdout, stderr and loguru's messages are captured as text; the exit
    status is what the interpreter would return (``SystemExit`` code, 1 with the traceback printed for an
    uncaught exception). Quick: the imports are already done. ``timeout`` is accepted for the same signature
    and not enforced. A tool that starts processes of its own (``train.py -d 2``) needs ``run_tool``: their
    output goes past this capture."""
    import runpy
    import traceback

    from loguru import logger

    script = REPO / "tools" / tool
    out, err = io.StringIO(), io.StringIO()
    with _RestoredProcessState(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        os.environ.update(**(env or {}))
        os.chdir(REPO)
        sys.argv[:] = [str(script), *map(str, args)]
        sys.path.insert(0, str(script.parent))  # as `python tools/x.py` puts the script's folder first
        logger.add(err)  # loguru's default sink holds the stderr of the session's start, not this one
        try:
            runpy.run_path(str(script), run_name="__main__")
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=err)
                code = 1
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc(file=err)
            code = 1
    return subprocess.CompletedProcess([sys.executable, str(script), *map(str, args)], code, out.getvalue(),
                                       err.getvalue())


@pytest.fixture()
def run_tool_inprocess():
    """``run_tool_inprocess("train.py", *args, env=None)``: like ``run_tool`` (same arguments, same result) but in
    this process, seconds quicker per call; see ``run_tool_in_process`` for what it restores afterwards."""
    return run_tool_in_process


def assert_one_error_line(proc, *fragments: str, last: bool = False) -> str:
    """The guarantee for bad input: exit status 2, exactly one ``error:`` line holding every fragment, no
    traceback (``last``: and nothing after that line); returns the line."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    if last:
        assert proc.stderr.strip().endswith(errors[0]), proc.stderr[-3000:]
    return errors[0]


@pytest.fixture()
def one_error_line():
    """``one_error_line(proc, *fragments, last=False)``: see ``assert_one_error_line``."""
    return assert_one_error_line


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

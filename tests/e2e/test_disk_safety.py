"""Safe on disk, through the real command-line tools: a folder holding anything a tool did not write survives
that tool byte for byte (one error line, non-zero exit), a folder the same tool wrote is replaced, the demo refuses
an --out with foreign content before any step, output folders follow the umask, and a full disk during a
checkpoint save or a conversion is one line with the previous files intact."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from yolox_finetune.core.output_dir import MARKER, read_marker
from yolox_finetune.mot.synthetic import make_scene, write_dataset
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION, make_synthetic_nuscenes


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """What the tools read: a tiny synthetic nuScenes release, MOT sequences with detections, a training run."""
    root = tmp_path_factory.mktemp("inputs")
    make_synthetic_nuscenes(root / "nusc", scenes=2, samples=3, seed=1, image_size=(160, 90), sweeps=0,
                            progress=False)
    rng = np.random.default_rng(3)
    write_dataset(root / "gt", root / "dets", [make_scene(rng, name=f"s{i}", num_frames=8) for i in range(2)])
    run = root / "run"
    run.mkdir()
    records = [{"type": "iter", "epoch": 1, "iter": i, "iters_per_epoch": 4, "global_iter": i,
                "total_loss": 3.0 - 0.1 * i} for i in range(1, 5)]
    records.append({"type": "epoch", "epoch": 1, "ap50_95": 0.1, "ap50": 0.2})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return {"nusc": root / "nusc", "gt": root / "gt", "dets": root / "dets", "run": run}


def command(tool: str, inputs: dict[str, Path], out: Path) -> list[str]:
    """Arguments of a small real run of ``tool`` writing to ``out`` (with --overwrite where the tool has it)."""
    return {
        "make_synthetic_nuscenes.py": ["--out", out, "--scenes", "1", "--samples", "2", "--sweeps", "0",
                                       "--image-size", "160x90", "--overwrite"],
        "convert_nuscenes.py": ["--dataroot", inputs["nusc"], "--version", SYNTHETIC_VERSION, "--out", out, "--mot",
                                "--overwrite"],
        "track_eval.py": ["--dets", inputs["dets"], "--gt", inputs["gt"], "--out", out, "--tracker", "bytetrack"],
        "conf_sweep.py": ["--dets", inputs["dets"], "--gt", inputs["gt"], "--out", out, "--conf", "0.3,0.6",
                          "--tracker", "bytetrack", "--jobs", "1"],
        "analyze_runs.py": [inputs["run"], "--out", out],
        "tune_trackers.py": ["--dets", inputs["dets"], "--gt", inputs["gt"], "--out", out, "--trials", "2"],
    }[tool]


TOOLS = ["make_synthetic_nuscenes.py", "convert_nuscenes.py", "track_eval.py", "conf_sweep.py", "analyze_runs.py",
         "tune_trackers.py"]


def user_folder(path: Path) -> Path:
    """A folder as a user has it: a real nuScenes table, an image and a thesis."""
    (path / "v1.0-trainval").mkdir(parents=True)
    (path / "v1.0-trainval" / "scene.json").write_text('[{"token": "real"}]')
    (path / "samples").mkdir()
    (path / "samples" / "real.jpg").write_bytes(b"\xff\xd8\xff real jpeg bytes")
    (path / "thesis.tex").write_text("\\documentclass{article}")
    return path


@pytest.mark.parametrize("tool", TOOLS)
def test_foreign_folder_survives_byte_for_byte(tool, inputs, tmp_path, run_tool, snapshot, one_error_line):
    out = user_folder(tmp_path / "mine")
    before = snapshot(out)
    line = one_error_line(run_tool(tool, *command(tool, inputs, out)))
    assert "refused" in line and "another --out" in line and ("thesis.tex" in line or "samples" in line)
    assert snapshot(out) == before


@pytest.mark.parametrize("tool", TOOLS)
def test_folder_written_by_the_same_tool_is_replaced(tool, inputs, tmp_path, run_tool, run_tool_inprocess,
                                                     one_error_line):
    """The replacing run is the real command line; the first run (which only writes the folder) and the refusal
    (the real command line refuses in the test above) run the tool's ``__main__`` in this process."""
    out = tmp_path / "out"
    for attempt, runner in enumerate((run_tool_inprocess, run_tool)):
        proc = runner(tool, *command(tool, inputs, out))
        assert proc.returncode == 0, (attempt, proc.stderr[-2000:])
        assert read_marker(out)["tool"] == tool.removesuffix(".py")
    (out / "my_notes.txt").write_text("added by the user afterwards")
    line = one_error_line(run_tool_inprocess(tool, *command(tool, inputs, out)))
    assert "my_notes.txt" in line
    assert (out / "my_notes.txt").read_text() == "added by the user afterwards"


def test_demo_refuses_a_folder_with_foreign_content_before_any_step(tmp_path, run_tool, snapshot, one_error_line):
    out = tmp_path / "data"
    user_folder(out / "nuscenes")  # the user's real nuScenes where the demo would put its synthetic one
    before = snapshot(out)
    proc = run_tool("demo.py", "--quick", "--out", out)
    line = one_error_line(proc)
    assert "nuscenes" in line and "not written by demo" in line
    assert "===" not in proc.stdout  # no step started
    assert snapshot(out) == before


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_folders_honour_the_umask(umask, inputs, tmp_path, run_tool):
    old = os.umask(umask)
    try:
        for tool in ("convert_nuscenes.py", "make_synthetic_nuscenes.py"):
            out = tmp_path / tool
            assert run_tool(tool, *command(tool, inputs, out)).returncode == 0
            assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask, tool
            assert stat.S_IMODE((out / MARKER).stat().st_mode) == 0o666 & ~umask, tool
    finally:
        os.umask(old)


def test_full_disk_during_a_conversion_keeps_the_previous_output(inputs, small_disk, fill, run_tool, snapshot,
                                                                 one_error_line):
    disk = small_disk(8)
    out = disk / "converted"
    assert run_tool("convert_nuscenes.py", *command("convert_nuscenes.py", inputs, out)).returncode == 0
    before = snapshot(out)
    fill(disk, 16 * 1024)
    line = one_error_line(run_tool("convert_nuscenes.py", *command("convert_nuscenes.py", inputs, out)))
    assert "the conversion needs about" in line and "free" in line
    assert snapshot(out) == before
    assert sorted(p.name for p in disk.iterdir()) == ["converted", "filler.bin"]  # no staging debris


def test_full_disk_during_a_checkpoint_save_is_one_line(make_tiny_exp, small_disk, fill, run_tool, run_tool_inprocess,
                                                        one_error_line):
    disk = small_disk(64)
    exp_file = make_tiny_exp(f"""
        self.output_dir = {str(disk / "runs")!r}
        self.max_epoch = 2
        self.no_aug_epochs = 0
        self.eval_interval = 0  # the checkpoint save is what meets the full disk: no validation pass needed
    """)
    first = run_tool_inprocess("train.py", "-f", exp_file, "--device", "cpu", "max_epoch", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    latest = disk / "runs" / "tiny" / "latest_ckpt.pth"
    before = latest.read_bytes()
    fill(disk / "runs", 256 * 1024)  # room for the logs, not for a checkpoint
    line = one_error_line(run_tool("train.py", "-f", exp_file, "--device", "cpu", "--resume"))
    assert "no space left to write" in line and "latest_ckpt.pth" in line and "needed" in line
    assert "previous latest_ckpt.pth is intact" in line
    assert latest.read_bytes() == before

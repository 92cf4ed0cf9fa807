"""Output folders: a tool replaces only what it wrote, swaps whole folders in, and a full disk is one clear error
with the previous output intact."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from yolox_finetune.core.atomic_io import DiskFullError, atomic_save, atomic_write_text
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import (
    MARKER,
    check_output_dir,
    claim_output_dir,
    foreign_entries,
    read_marker,
    staged_output_dir,
    write_marker,
)

REPO = Path(__file__).resolve().parents[2]


def build(out: Path, tool: str = "tool_a", files: dict[str, str] | None = None) -> Path:
    target = check_output_dir(out, tool, overwrite=True)
    with staged_output_dir(target, tool) as staging:
        for name, text in (files or {"result.txt": "new"}).items():
            (staging / name).write_text(text)
    return target


def test_staged_folder_is_marked_with_tool_command_and_entries(tmp_path):
    out = build(tmp_path / "out", files={"a.txt": "1", "b.txt": "2"})
    marker = read_marker(out)
    assert marker["tool"] == "tool_a" and marker["entries"] == ["a.txt", "b.txt"]
    assert marker["version"] and marker["time"] and "command" in marker
    assert foreign_entries(out, "tool_a") == [] and foreign_entries(out, "tool_b") == ["a.txt", "b.txt"]


def test_own_folder_is_replaced_only_with_overwrite(tmp_path):
    out = build(tmp_path / "out", files={"old.txt": "old"})
    with pytest.raises(UserError, match="already exists .*written by tool_a earlier.*pass --overwrite"):
        check_output_dir(out, "tool_a", overwrite=False)
    build(out, files={"new.txt": "new"})
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]


@pytest.mark.parametrize("case", ["unmarked", "other_tool", "file_added_later"])
def test_foreign_content_is_refused_and_untouched(tmp_path, snapshot, case):
    out = tmp_path / "out"
    if case == "unmarked":
        (out / "samples").mkdir(parents=True)
        (out / "samples" / "real.jpg").write_bytes(b"\xff\xd8 a real image")
        (out / "thesis.tex").write_text("\\documentclass{article}")
    elif case == "other_tool":
        build(out, tool="tool_b")
    else:
        build(out)
        (out / "notes.md").write_text("my notes")
    before = snapshot(out)
    with pytest.raises(UserError) as info:
        check_output_dir(out, "tool_a", overwrite=True)
    message = str(info.value)
    assert "--overwrite refused" in message and "nothing was touched" in message and "another --out" in message
    assert "\n" not in message
    expected = {"unmarked": "samples, thesis.tex", "other_tool": "written by tool_b", "file_added_later": "notes.md"}
    assert expected[case] in message
    with pytest.raises(UserError, match="writing refused"):
        claim_output_dir(out, "tool_a")
    assert snapshot(out) == before


def test_claimed_folder_is_created_reused_and_checked_against_inputs(tmp_path):
    out = claim_output_dir(tmp_path / "report", "tool_a")
    (out / "report.md").write_text("r")
    write_marker(out, "tool_a")
    assert claim_output_dir(out, "tool_a") == out
    with pytest.raises(UserError, match="also an input folder"):
        claim_output_dir(tmp_path / "in", "tool_a", [tmp_path / "in"])


def test_a_claim_killed_before_its_marker_is_accepted_by_the_rerun(tmp_path):
    """A claim-type tool killed during its first run (before its final marker) left files its rerun refused as
    foreign; the claim marks the folder "in progress" at once. A finished folder still refuses what it did not list."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "tracking"
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys\n"
        "from yolox_finetune.core.output_dir import claim_output_dir\n"
        "out = claim_output_dir(sys.argv[1], 'tool_a')\n"
        "(out / 'bytetrack').mkdir(); (out / 'bytetrack' / 'seq.txt').write_text('1,1,0,0,5,5,1,-1,-1,-1')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"), str(out)])
    assert killed.returncode == -signal.SIGKILL
    assert read_marker(out)["in_progress"] is True and foreign_entries(out, "tool_a") == []
    assert claim_output_dir(out, "tool_a") == out  # the rerun goes ahead
    assert foreign_entries(out, "tool_b")  # another tool still sees it as foreign
    write_marker(out, "tool_a")  # the rerun finished
    assert "in_progress" not in read_marker(out)
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(UserError, match="thesis.tex"):
        claim_output_dir(out, "tool_a")


def test_failed_build_leaves_the_previous_output(tmp_path, snapshot):
    out = build(tmp_path / "out", files={"good.txt": "good"})
    before = snapshot(out)
    with pytest.raises(RuntimeError), staged_output_dir(out, "tool_a") as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("crash mid-way")
    assert snapshot(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["out"]  # no staging debris


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_final_folders_and_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        out = build(tmp_path / f"out{umask:o}")
        atomic_write_text(out / "x.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((out / "x.txt").stat().st_mode) == 0o666 & ~umask


def test_full_disk_while_staging_keeps_the_previous_output(small_disk, fill, snapshot):
    disk = small_disk(2)
    out = build(disk / "out", files={"good.txt": "good"})
    before = snapshot(out)
    fill(disk, 64 * 1024)
    with pytest.raises(DiskFullError) as info, staged_output_dir(out, "tool_a") as staging:
        with open(staging / "big.bin", "wb") as handle:
            handle.write(b"x" * (1 << 20))
    message = str(info.value)
    assert f"no space left while writing {out}" in message and "is intact" in message and "free" in message
    assert snapshot(out) == before


def test_full_disk_in_an_atomic_save_names_file_free_space_and_need(small_disk, fill):
    disk = small_disk(2)
    target = disk / "latest_ckpt.pth"
    atomic_save(target, lambda handle: handle.write(b"previous checkpoint"))
    fill(disk, 32 * 1024)
    with pytest.raises(DiskFullError) as info:
        atomic_save(target, lambda handle: handle.write(b"\1" * (256 * 1024)))
    message = str(info.value)
    assert str(target) in message and "free on that disk" in message and "256.0 KiB needed" in message
    assert "previous latest_ckpt.pth is intact" in message
    assert target.read_bytes() == b"previous checkpoint"
    assert sorted(p.name for p in disk.iterdir()) == ["filler.bin", "latest_ckpt.pth"]

"""Debris of killed runs: temp files and staging folders of a process that died (kill -9) are removed at the next
start, those of a running process and anything not named by our pattern never are; a swap killed half-way puts the
previous output back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from yolox_finetune.core.atomic_io import owner_tag, parse_temp_name, temp_prefix
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import (
    check_output_dir,
    claim_output_dir,
    remove_stale_temps,
    staged_output_dir,
    write_marker,
)

REPO = Path(__file__).resolve().parents[2]

# A real writer in its own process: it starts an atomic write ("file") or a staged folder ("stage"), says
# "ready" and then kills itself with SIGKILL ("kill") or waits to be killed ("wait").
WRITER = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from yolox_finetune.core.atomic_io import atomic_open
    from yolox_finetune.core.output_dir import check_output_dir, staged_output_dir
    mode, path, then = sys.argv[1:4]
    if mode == "file":
        context = atomic_open(path, "w")
    else:
        context = staged_output_dir(check_output_dir(path, "tool_a", overwrite=True), "tool_a")
    with context as handle:
        if mode == "file":
            handle.write("half a file")
            handle.flush()
        else:
            (handle / "half.txt").write_text("half a dataset")
        print("ready", flush=True)
        if then == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(120)
""")


def start_writer(mode: str, path: Path, then: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, mode, str(path), then], stdout=subprocess.PIPE, text=True)
    if then == "wait":
        assert proc.stdout.readline().strip() == "ready"
    else:
        proc.wait(timeout=60)
        assert proc.returncode == -9
    return proc


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_temp_name_carries_the_writer_and_is_recognised():
    name = f"{temp_prefix('latest_ckpt.pth')}k3j_x9ab.tmp"
    parsed = parse_temp_name(name)
    assert parsed.target == "latest_ckpt.pth" and parsed.kind == "tmp" and parsed.pid == os.getpid()
    assert f"{parsed.pid}-{parsed.start}-{parsed.host}" == owner_tag()
    video = parse_temp_name(f"{temp_prefix('tracks.mp4')}k3j_x9ab.tmp.mp4")  # OpenCV picks the format by extension
    assert video.target == "tracks.mp4" and video.kind == "tmp"
    for not_ours in ("latest_ckpt.pth", ".latest_ckpt.pth.abc123.tmp", "notes.tmp", ".x.12-34-nothex00.abc.tmp",
                     ".x.12-34-0a7c9cdf.abc.swp"):
        assert parse_temp_name(not_ours) is None, not_ours


def test_temp_of_a_killed_writer_goes_and_a_live_ones_stays(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    start_writer("file", out / "metrics.json", "kill")
    live = start_writer("file", out / "sweep.csv", "wait")
    try:
        debris, running = hidden(out)[0], hidden(out)[1]
        assert parse_temp_name(debris).target == "metrics.json" and parse_temp_name(running).target == "sweep.csv"
        user_files = {"notes.tmp": "mine", ".metrics.json.swp": "my editor's", ".sweep.csv.1234.tmp": "old style"}
        for name, text in user_files.items():
            (out / name).write_text(text)
        write_marker(out, "tool_a", entries=sorted(user_files))
        removed = remove_stale_temps(out)
        assert [p.name for p in removed] == [debris]
        assert running in hidden(out)  # the live writer's temp is its work in progress
        assert {name: (out / name).read_text() for name in user_files} == user_files
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(out) and running not in hidden(out)  # now that writer is gone too


def test_reused_pid_and_other_machines(tmp_path):
    pid, start, host = owner_tag().split("-")
    reused = tmp_path / f".a.pth.{pid}-{int(start) + 1}-{host}.abcdefgh.tmp"  # our pid, started at another time
    elsewhere = tmp_path / f".b.pth.999999-1-{'f' * 8 if host != 'f' * 8 else 'e' * 8}.abcdefgh.tmp"
    ours_now = tmp_path / f".c.pth.{owner_tag()}.abcdefgh.tmp"
    for path in (reused, elsewhere, ours_now):
        path.write_text("x")
    assert remove_stale_temps(tmp_path) == [reused]  # another machine's process cannot be checked: it stays
    assert elsewhere.exists() and ours_now.exists()


def test_claim_cleans_its_own_folder_and_refuses_a_foreign_one_untouched(tmp_path, log_lines):
    own = tmp_path / "own"
    own.mkdir()
    (own / "metrics.json").write_text("{}")
    (own / "sub").mkdir()
    write_marker(own, "tool_a")
    start_writer("file", own / "metrics.json", "kill")
    start_writer("file", own / "sub" / "seq.txt", "kill")  # debris below the top level too
    (own / "sub" / "seq.txt").write_text("kept")
    assert claim_output_dir(own, "tool_a") == own.resolve()
    assert hidden(own) == [".yolox_finetune.json"] and hidden(own / "sub") == []
    assert (own / "metrics.json").read_text() == "{}" and (own / "sub" / "seq.txt").read_text() == "kept"
    logged = [ln for ln in log_lines if "leftover temporary" in ln]
    assert len(logged) == 1 and "removed 2 leftover temporary file(s)" in logged[0]

    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("mine")
    start_writer("file", foreign / "report.md", "kill")
    before = hidden(foreign)
    with pytest.raises(UserError, match="not written by tool_a"):
        claim_output_dir(foreign, "tool_a")
    assert hidden(foreign) == before  # a refused folder is not touched at all


def test_killed_staged_write_leaves_nothing_beside_the_output(tmp_path):
    out = tmp_path / "converted"
    check_output_dir(out, "tool_a", overwrite=True)
    with staged_output_dir(out, "tool_a") as staging:
        (staging / "v1.txt").write_text("previous")
    start_writer("stage", out, "kill")
    live = start_writer("stage", tmp_path / "other", "wait")
    try:
        assert len([p for p in tmp_path.iterdir() if p.name.endswith(".staging")]) == 2
        check_output_dir(out, "tool_a", overwrite=True)
        staging_left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".staging")]
        assert len(staging_left) == 1 and staging_left[0].startswith(".other.")  # another run, still at work
        assert (out / "v1.txt").read_text() == "previous"
    finally:
        live.kill()
        live.wait()


def test_swap_killed_between_the_two_renames_puts_the_previous_output_back(tmp_path):
    out = tmp_path / "converted"
    with staged_output_dir(out, "tool_a") as staging:
        (staging / "v1.txt").write_text("previous")
    probe = subprocess.Popen(["true"])
    probe.wait()
    _, start, host = owner_tag().split("-")
    retired = tmp_path / f".converted.{probe.pid}-{start}-{host}.abcdefgh.retired"
    retired.mkdir()
    os.replace(out, retired / "converted")  # what the swap had done when the kill came
    check_output_dir(out, "tool_a", overwrite=True)
    assert (out / "v1.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted"]

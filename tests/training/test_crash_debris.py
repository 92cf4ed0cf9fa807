"""What a killed or failed training leaves behind: a kill -9 at any point resumes to exactly one metrics row per
epoch with its leftover temp files removed, a line cut short in metrics.jsonl costs one warning, and a start that
stops on bad input leaves no new run dir (and touches nothing of an earlier run)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yolox_finetune.core.atomic_io import parse_temp_name
from yolox_finetune.training.checkpoint import read_checkpoint
from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.trainer import MetricsFile, TrainOptions, train

REPO = Path(__file__).resolve().parents[2]

# a real atomic write in its own process, killed (SIGKILL) half-way: the debris a kill -9 leaves
KILLED_MID_WRITE = ("import os, signal, sys\nfrom yolox_finetune.core.atomic_io import atomic_open\n"
                    "with atomic_open(sys.argv[1], 'wb') as handle:\n"
                    "    handle.write(b'half a checkpoint'); handle.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")


def leave_killed_temp(path: Path) -> Path:
    """Run an atomic write of ``path`` that is killed half-way; returns the temp file it left."""
    before = set(path.parent.iterdir())
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(path)])
    assert proc.returncode == -signal.SIGKILL
    (temp,) = set(path.parent.iterdir()) - before
    return temp


def rows(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def our_temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if parse_temp_name(p.name)]


@pytest.mark.slow
def test_kill_9_then_resume_cleans_up_and_keeps_one_row_per_epoch(tmp_path, make_tiny_exp, run_tool):
    # two epochs: the kill lands once epoch 1's checkpoint is there, the resume redoes epoch 2; no validation pass
    exp_file = make_tiny_exp("self.max_epoch = 2\nself.eval_interval = 0")
    run_dir = tmp_path / "out" / "tiny"
    proc = subprocess.Popen([sys.executable, str(REPO / "tools" / "train.py"), "-f", str(exp_file), "--device", "cpu"],
                            cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (run_dir / "latest_ckpt.pth").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # the moment the first checkpoint lands
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    done = read_checkpoint(run_dir / "latest_ckpt.pth")["start_epoch"]
    # the epoch's row is written before its checkpoint: no checkpoint without its row
    assert set(range(1, done + 1)) <= {r["epoch"] for r in rows(run_dir, "epoch")}

    temp = leave_killed_temp(run_dir / "latest_ckpt.pth")
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"type": "iter", "epoch": 2, "it')  # a line the kill cut short
    (run_dir / "notes.txt").write_text("my notes")

    resumed = run_tool("train.py", "-f", str(exp_file), "--device", "cpu", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["epoch"] for r in rows(run_dir, "epoch")] == [1, 2]
    iters = [r["global_iter"] for r in rows(run_dir, "iter")]
    assert iters == list(range(1, len(iters) + 1)) and len(iters) == 2 * rows(run_dir, "iter")[0]["iters_per_epoch"]
    assert not temp.exists() and our_temps(run_dir) == []
    assert (run_dir / "notes.txt").read_text() == "my notes"
    removed = [ln for ln in resumed.stderr.splitlines() if "leftover temporary" in ln]
    dropped = [ln for ln in resumed.stderr.splitlines() if "unreadable line" in ln]
    assert len(removed) == 1 and temp.name in removed[0], resumed.stderr[-2000:]
    assert len(dropped) == 1 and "metrics.jsonl" in dropped[0]
    assert "Traceback" not in resumed.stderr


def test_kill_between_the_row_and_the_checkpoints_redoes_or_completes_the_epoch_once(tmp_path, make_tiny_exp):
    exp = load_exp(make_tiny_exp("self.max_epoch = 2\nself.eval_interval = 0"))
    train(exp, TrainOptions(device="cpu"))
    run_dir = exp.run_dir
    assert [r["epoch"] for r in rows(run_dir, "epoch")] == [1, 2]
    # a kill after epoch 2's row and before its checkpoint: the checkpoint on disk is still epoch 1's
    shutil.copyfile(run_dir / "epoch_1.pth", run_dir / "latest_ckpt.pth")
    result = train(load_exp(make_tiny_exp("self.max_epoch = 2\nself.eval_interval = 0")),
                   TrainOptions(device="cpu", resume=True))
    assert result["epochs_done"] == 2
    assert [r["epoch"] for r in rows(run_dir, "epoch")] == [1, 2]
    iters = [r["global_iter"] for r in rows(run_dir, "iter")]
    assert iters == sorted(set(iters))  # epoch 2's iterations once, after epoch 1's

    # a kill after latest_ckpt.pth and before its copy as epoch_2.pth: the resume completes the copy
    (run_dir / "epoch_2.pth").unlink()
    done = train(load_exp(make_tiny_exp("self.max_epoch = 2\nself.eval_interval = 0")),
                 TrainOptions(device="cpu", resume=True))
    assert done["epochs_done"] == 2
    assert (run_dir / "epoch_2.pth").read_bytes() == (run_dir / "latest_ckpt.pth").read_bytes()


def test_resume_drops_lines_cut_short_and_later_epochs_with_one_warning(tmp_path, log_lines):
    path = tmp_path / "metrics.jsonl"
    good = [{"type": "iter", "epoch": 1, "iter": 1}, {"type": "epoch", "epoch": 1},
            {"type": "iter", "epoch": 2, "iter": 1}, {"type": "epoch", "epoch": 2},
            {"type": "iter", "epoch": 3, "iter": 1}]
    lines = [json.dumps(r) for r in good]
    lines.insert(2, '{"type": "iter", "epo')  # a truncated line inside the tail (an earlier kill)
    path.write_text("\n".join(lines) + '\n{"type": "epoch", "epoch": 3, "val_lo')  # and one at the very end
    metrics = MetricsFile(path, keep_until_epoch=2)
    metrics.write({"type": "iter", "epoch": 3, "iter": 1})
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == [*good[:4], {"type": "iter", "epoch": 3, "iter": 1}]
    warnings = [ln for ln in log_lines if "unreadable" in ln]
    assert len(warnings) == 1 and "dropped 2 unreadable line(s)" in warnings[0] and "3, 7" in warnings[0]


@pytest.mark.parametrize("case", ["bad_ckpt_new_dirs", "resume_nothing", "existing_empty_run_dir",
                                  "overwrite_with_bad_ckpt"])
def test_failed_start_leaves_no_new_run_dir_and_touches_no_old_run(tmp_path, make_tiny_exp, case, run_tool,
                                                                     run_tool_inprocess, one_error_line, snapshot):
    exp_file = make_tiny_exp()
    out = tmp_path / "out"
    run_dir = out / "tiny"
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    args = ["-f", str(exp_file), "--device", "cpu", "-c", str(tmp_path / "junk.pth")]
    if case == "resume_nothing":
        args = ["-f", str(exp_file), "--device", "cpu", "--resume"]
    if case == "existing_empty_run_dir":
        run_dir.mkdir(parents=True)
    if case == "overwrite_with_bad_ckpt":
        run_dir.mkdir(parents=True)
        for name, data in {"epoch_1.pth": b"the earlier run", "metrics.jsonl": b'{"type": "epoch", "epoch": 1}\n',
                           "train_log.txt": b"earlier log\n", "tensorboard/events.out.tfevents.1": b"x"}.items():
            (run_dir / name).parent.mkdir(exist_ok=True)
            (run_dir / name).write_bytes(data)
        args.append("--overwrite")
    before = snapshot(tmp_path / "out") if out.exists() else None
    runner = run_tool if case == "bad_ckpt_new_dirs" else run_tool_inprocess  # one as a separate process
    one_error_line(runner("train.py", *args))
    if before is None:
        assert not out.exists()  # neither the run dir nor the output_dir above it was left behind
    else:
        assert snapshot(out) == before  # a run dir that was there is left as it was

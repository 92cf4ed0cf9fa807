"""Bad input to the tracking and analysis tools (track_eval, conf_sweep, tune_trackers, visualize, analyze_runs),
through their command lines: one ``error:`` line, exit 2, no traceback, and no output folder or file left behind;
what the tools tolerate (a half-written last line of metrics.jsonl) they keep tolerating, and say so.

Most cases run the tool's own ``__main__`` in the test process (``run_tool_inprocess``: the imports are done once);
one case of each tool and kind starts it as a separate process, exactly as a user does (``run_tool``)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackers.config import ByteTrackConfig, save_config
from yolox_finetune.mot.formats import SeqInfo, write_seqinfo
from yolox_finetune.mot.synthetic import make_scene, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """``gt/`` and ``dets/`` of two short sequences."""
    root = tmp_path_factory.mktemp("mot")
    rng = np.random.default_rng(5)
    write_dataset(root / "gt", root / "dets", [make_scene(rng, name=f"s{i}", num_frames=8, num_objects=3)
                                               for i in range(2)])
    return root


# -- --tracker-config -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, fragments", [
    ('tracker: bytetrack\ntrack_thresh: "high"\n', ["option track_thresh='high' is not a number", "e.g. 0.5"]),
    ("tracker: bytetrack\ntrack_thresh: 1.5\n", ["track_thresh=1.5 is outside [0, 1]"]),
    ("tracker: bytetrack\ntrack_buffer: 2.5\n", ["track_buffer=2.5 is not a whole number"]),
    ("tracker: bytetrack\nmatch_tresh: 0.7\n", ["unknown bytetrack option 'match_tresh'", "valid options:"]),
    ("tracker: sort\n", ["unknown tracker 'sort'; choose one of bytetrack, botsort"]),
    ("tracker: [bytetrack\n", [":2: not valid YAML"]),
    ("- bytetrack\n- botsort\n", ["expected tracker options"]),
    (b"tracker: bytetrack\nlow_thresh: \xff\xfe\n", ["not a UTF-8 text file"]),
])
def test_a_bad_tracker_config_is_one_line_naming_the_file(dataset, tmp_path, run_tool, run_tool_inprocess,
                                                          one_error_line, content, fragments):
    config = tmp_path / "mine.yaml"
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    runner = run_tool if content == "tracker: sort\n" else run_tool_inprocess  # one in its own process
    proc = runner("track_eval.py", "--dets", dataset / "dets", "--gt", dataset / "gt", "--out", tmp_path / "out",
                  "--tracker-config", config, timeout=120)
    one_error_line(proc, str(config), *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_saved_tracker_config_gets_the_umask_mode(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = save_config(ByteTrackConfig(), tmp_path / "tracker_config.yaml")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


# -- --ckpt and --split ---------------------------------------------------------------------------------------------

@pytest.fixture()
def run_dir_exp(make_tiny_exp, dataset, tmp_path) -> tuple[Path, Path]:
    """(exp file, run dir holding epoch_1.pth and best_ckpt.pth); --data with a val split only."""
    exp_file = make_tiny_exp()
    run_dir = tmp_path / "out" / "tiny"
    run_dir.mkdir(parents=True)
    for name in ("epoch_1.pth", "best_ckpt.pth"):
        (run_dir / name).write_bytes(b"not loaded before the inputs are checked")
    mot = tmp_path / "mot"
    (mot / "test").mkdir(parents=True)  # a split without sequences
    (mot / "val").symlink_to(dataset / "gt", target_is_directory=True)
    return exp_file, run_dir


@pytest.mark.parametrize("ckpt, split, fragments", [
    ("epoch_9", "val", ["no checkpoint 'epoch_9'", "available: epoch_1, best"]),
    ("runs/epoch_9.pth", "val", ["checkpoint file runs/epoch_9.pth not found", ": epoch_1, best)"]),
    ("epoch_1", "test", ["no sequences in", "test"]),
])
def test_a_missing_checkpoint_or_an_empty_split_is_refused_before_the_detector(run_dir_exp, tmp_path, run_tool,
                                                                               run_tool_inprocess, one_error_line,
                                                                               ckpt, split, fragments):
    exp_file, run_dir = run_dir_exp
    runner = run_tool if ckpt == "epoch_9" else run_tool_inprocess  # one in its own process
    proc = runner("track_eval.py", "-f", exp_file, "--ckpt", ckpt, "--split", split, "--data", tmp_path / "mot",
                  "--device", "cpu", timeout=300)
    one_error_line(proc, *fragments)
    assert not (run_dir / "tracking").exists()  # no det cache, no output folder


def test_a_sweep_over_checkpoints_checks_every_one_before_detecting(run_dir_exp, tmp_path, run_tool_inprocess,
                                                                    one_error_line):
    exp_file, run_dir = run_dir_exp
    proc = run_tool_inprocess("conf_sweep.py", "-f", exp_file, "--ckpt", "epoch_1", "epoch_7", "--data",
                              tmp_path / "mot", "--device", "cpu", "--conf", "0.5", timeout=300)
    one_error_line(proc, "no checkpoint 'epoch_7'")
    assert not (run_dir / "tracking").exists()


# -- unbounded work ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["--conf", "0:1:0.0000001"], ["has 10,000,001 values, more than the 1,000,000"]),
    (["--conf", "0:1e308:1e-308"], ["has countless values"]),
    (["--grid", "match_thresh=0:1:0.0001", "track_buffer=1:1000:1"], ["this sweep has 180,018,000 runs"]),
    (["--grid", "match_thresh=0:1:0.001", "low_thresh=0:0.1:0.01"], ["(more than 5,000); pass --yes"]),
    (["--jobs", "-1"], ["--jobs -1"]),
    (["--iou", "7"], ["--iou 7.0"]),
])
def test_a_sweep_too_big_or_badly_set_is_refused_before_any_work(dataset, tmp_path, run_tool, run_tool_inprocess,
                                                                  one_error_line, args, fragments):
    runner = run_tool if args[0] == "--grid" and "track_buffer" in args[-1] else run_tool_inprocess  # one apart
    proc = runner("conf_sweep.py", "--dets", dataset / "dets", "--gt", dataset / "gt", "--out", tmp_path / "out",
                  *args, timeout=120)
    one_error_line(proc, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, fragments", [
    (["--trials", "-3"], ["--trials -3"]),
    (["--trials", "0"], ["--trials 0 rewrites the outputs of an existing study", "study.db does not exist yet"]),
    (["--workers", "0"], ["--workers 0"]),
    (["--population", "1"], ["--population 1"]),
])
def test_tuning_without_trials_to_run_is_refused_before_any_work(dataset, tmp_path, run_tool, run_tool_inprocess,
                                                                  one_error_line, args, fragments):
    runner = run_tool if args == ["--trials", "-3"] else run_tool_inprocess  # one in its own process
    proc = runner("tune_trackers.py", "--dets", dataset / "dets", "--gt", dataset / "gt", "--out",
                  tmp_path / "out", *args, timeout=120)
    one_error_line(proc, *fragments)
    assert not (tmp_path / "out").exists()


def test_zero_trials_rewrite_the_outputs_of_an_existing_study(dataset, tmp_path, run_tool_inprocess):
    args = ["--dets", dataset / "dets", "--gt", dataset / "gt", "--out", tmp_path / "out", "--search", "match_thresh"]
    first = run_tool_inprocess("tune_trackers.py", *args, "--trials", "1", timeout=300)
    assert first.returncode == 0, first.stderr
    (tmp_path / "out" / "summary.md").unlink()
    again = run_tool_inprocess("tune_trackers.py", *args, "--trials", "0", timeout=300)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out" / "summary.md").is_file()


# -- visualize --------------------------------------------------------------------------------------------------------

@pytest.fixture()
def sequence(tmp_path) -> tuple[Path, Path, Path]:
    """(sequence folder of 6 frames, its results, results of a longer sequence)."""
    seq = tmp_path / "seq-a"
    (seq / "img1").mkdir(parents=True)
    for frame in range(1, 7):
        cv2.imwrite(str(seq / "img1" / f"{frame:06d}.jpg"), np.full((48, 64, 3), 90, np.uint8))
    write_seqinfo(seq, SeqInfo(name=seq.name, frame_rate=12, seq_length=6, im_width=64, im_height=48))
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text("".join(f"{f},1,10,10,20,20,1,1,1\n" for f in range(1, 7)))
    own = tmp_path / "seq-a.txt"
    own.write_text("".join(f"{f},1,10,10,20,20,0.9,-1,-1,-1\n" for f in range(1, 7)))
    other = tmp_path / "seq-b.txt"
    other.write_text("".join(f"{f},1,10,10,20,20,0.9,-1,-1,-1\n" for f in range(1, 40)))
    return seq, own, other


@pytest.mark.parametrize("case, fragments", [
    ("frames_outside", ["--frames 10:20: the sequence has no image in that range (frames 1..6)"]),
    ("frames_reversed", ["--frames 5:2: the first frame comes after the last"]),
    ("frames_text", ["--frames 'all' is not a range A:B"]),
    ("other_sequence", ["seq-b.txt:7:", "past the sequence's last frame 6", "another sequence"]),
    ("no_sequence", ["is not a folder"]),
    ("zero_fps", ["--fps 0.0"]),
    ("no_frames", ["--max-frames 0"]),
])
def test_visualize_refuses_bad_ranges_and_foreign_results(sequence, tmp_path, run_tool, run_tool_inprocess,
                                                          one_error_line, case, fragments):
    seq, own, other = sequence
    out = tmp_path / "picture.png"
    args = {"frames_outside": ["--frames", "10:20"], "frames_reversed": ["--frames", "5:2"],
            "frames_text": ["--frames", "all"], "other_sequence": [], "no_sequence": [],
            "zero_fps": ["--fps", "0"], "no_frames": ["--max-frames", "0"]}[case]
    results = other if case == "other_sequence" else own
    folder = tmp_path / "nowhere" if case == "no_sequence" else seq
    runner = run_tool if case == "frames_outside" else run_tool_inprocess  # one in its own process
    proc = runner("visualize.py", "--seq", folder, "--results", results, "--out", out, *args, timeout=120)
    one_error_line(proc, *fragments)
    assert not out.exists()


def test_a_video_gets_the_umask_mode(sequence, tmp_path, run_tool_inprocess):
    seq, own, _ = sequence
    video = tmp_path / "tracks.mp4"
    proc = run_tool_inprocess("visualize.py", "--seq", seq, "--results", own, "--out", video, "--no-events",
                              timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(video.stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- analyze_runs -----------------------------------------------------------------------------------------------------

def write_metrics(run_dir: Path, tail: str = "") -> Path:
    """A run dir with three epochs of records, and ``tail`` after them (a half-written line)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for epoch in (1, 2, 3):
        for it in (1, 2):
            lines.append({"type": "iter", "epoch": epoch, "iter": it, "iters_per_epoch": 2,
                          "total_loss": 3.0 / epoch + 0.1 * it, "lr": 0.01})
        lines.append({"type": "epoch", "epoch": epoch, "ap50_95": 0.1 * epoch, "ap50": 0.2 * epoch})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + tail)
    return run_dir


def test_analyze_runs_refuses_what_is_not_a_run_dir(dataset, tmp_path, run_tool, run_tool_inprocess, one_error_line):
    run_dir = write_metrics(tmp_path / "run")
    cases = [(run_dir / "metrics.jsonl", ["is a file, not a run dir", str(run_dir)], run_tool),  # its own process
             (dataset / "gt", ["no metrics.jsonl in", str(dataset / "gt")], run_tool_inprocess),
             (tmp_path / "missing", ["does not exist"], run_tool_inprocess)]
    for given, fragments, runner in cases:
        proc = runner("analyze_runs.py", given, "--out", tmp_path / "report", timeout=120)
        one_error_line(proc, *fragments)
        assert not (tmp_path / "report").exists()
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "metrics.jsonl").write_text('{"type": "iter", "ep')
    proc = run_tool_inprocess("analyze_runs.py", tmp_path / "blank", "--out", tmp_path / "report", timeout=120)
    one_error_line(proc, "holds no iteration or epoch records")


def test_a_half_written_last_line_is_skipped_and_counted(tmp_path, run_tool_inprocess):
    run_dir = write_metrics(tmp_path / "run", tail='{"type": "iter", "epoch": 4, "it')
    proc = run_tool_inprocess("analyze_runs.py", run_dir, "--out", tmp_path / "report", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "metrics.jsonl: skipped 1 unreadable line(s): 10" in proc.stderr
    analysis = json.loads((tmp_path / "report" / "analysis.json").read_text())
    assert json.dumps(analysis).count('"skipped_lines": 1') == 1
    assert "best AP50-95 0.3 (epoch 3)" in proc.stdout

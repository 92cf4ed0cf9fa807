"""Tracking on every frame, scoring on annotated frames only, and interpolation as its own report row."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from yolox_finetune.mot.evaluate import evaluate_sequence, unit_metrics
from yolox_finetune.mot.formats import (
    MotRows,
    read_gt,
    write_annotated_frames,
    write_gt,
    write_results,
)
from yolox_finetune.mot.synthetic import make_scene, write_dataset

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import track_eval as tool  # noqa: E402


def _concat(a: MotRows, b: MotRows) -> MotRows:
    return MotRows(*(np.concatenate([getattr(a, k), getattr(b, k)]) for k in
                     ("frame", "track_id", "box", "score", "class_id", "visibility")))


@pytest.fixture
def all_frames(tmp_path):
    """Scenes tracked at every frame whose ground truth sits on every third frame, as keyframes between sweeps."""
    rng = np.random.default_rng(3)
    scenes = [make_scene(rng, name=f"scene-{i}_CAM_FRONT", num_frames=24, num_objects=5) for i in range(2)]
    write_dataset(tmp_path / "gt", tmp_path / "dets", scenes)
    annotated = list(range(1, 25, 3))
    for scene in scenes:
        seq = tmp_path / "gt" / scene.info.name
        gt = read_gt(seq / "gt" / "gt.txt")
        write_gt(seq / "gt" / "gt.txt", gt.select(np.isin(gt.frame, annotated)))
        write_annotated_frames(seq, annotated)
    return tmp_path, scenes, annotated


def test_a_row_on_an_unannotated_frame_changes_nothing(all_frames):
    root, scenes, annotated = all_frames
    gt = read_gt(root / "gt" / scenes[0].info.name / "gt" / "gt.txt")
    on_annotated = gt.select(np.arange(len(gt)) % 4 != 0)  # some misses on annotated frames
    stray = MotRows(np.array([2, 3, 5]), np.array([90, 91, 92]), np.array([[5.0, 5, 40, 40]] * 3), np.ones(3),
                    np.ones(3, np.int64), np.ones(3))
    base = evaluate_sequence(gt, on_annotated, scored_frames=annotated)
    with_stray = evaluate_sequence(gt, _concat(on_annotated, stray), scored_frames=annotated)
    assert {c: unit_metrics(v) for c, v in with_stray.items()} == {c: unit_metrics(v) for c, v in base.items()}
    # scored on every frame the same rows are false positives: the restriction is what keeps them out
    unrestricted = evaluate_sequence(gt, _concat(on_annotated, stray))
    assert sum(c.false_positives for c in unrestricted.values()) == sum(c.false_positives for c in base.values()) + 3
    # a stray row on an annotated frame still counts
    on_keyframe = MotRows(np.array([4]), np.array([93]), np.array([[5.0, 5, 40, 40]]), np.ones(1),
                          np.ones(1, np.int64), np.ones(1))
    counted = evaluate_sequence(gt, _concat(on_annotated, on_keyframe), scored_frames=annotated)
    assert sum(c.false_positives for c in counted.values()) == sum(c.false_positives for c in base.values()) + 1


def test_track_eval_scores_annotated_frames_and_says_so(all_frames, tmp_path, capsys):
    root, scenes, annotated = all_frames
    results = tmp_path / "mine"
    for scene in scenes:
        gt = read_gt(root / "gt" / scene.info.name / "gt" / "gt.txt")
        stray = MotRows(np.array([2, 8]), np.array([77, 78]), np.array([[1.0, 1, 30, 30]] * 2), np.ones(2),
                        np.ones(2, np.int64), np.ones(2))
        write_results(results / f"{scene.info.name}.txt", _concat(gt, stray), "mot+class")
    tool.main(["--results", str(results), "--gt", str(root / "gt"), "--out", str(tmp_path / "out")])
    document = json.loads((tmp_path / "out" / "metrics.json").read_text())
    overall = document["trackers"]["mine"]["overall"]
    assert overall["FP"] == 0 and overall["MOTA"] == pytest.approx(100.0)
    note = document["settings"]["scored_frames"]
    assert note["scored_frames"] == 2 * len(annotated) and note["frames"] == 2 * 24
    assert "only the" in capsys.readouterr().out


def test_interpolation_is_reported_beside_the_raw_tracker(all_frames, tmp_path):
    root, _, _ = all_frames
    out = tmp_path / "out"
    tool.main(["--dets", str(root / "dets"), "--gt", str(root / "gt"), "--out", str(out), "--tracker", "bytetrack",
               "--interpolate", "10"])
    document = json.loads((out / "metrics.json").read_text())
    raw, filled = document["trackers"]["bytetrack"], document["trackers"]["bytetrack+interp"]
    assert document["settings"]["interpolate"] == 10
    assert filled["overall"]["FN"] <= raw["overall"]["FN"]
    raw_rows = sum(len(p.read_text().splitlines()) for p in (out / "bytetrack").glob("*.txt"))
    filled_rows = sum(len(p.read_text().splitlines()) for p in (out / "bytetrack+interp").glob("*.txt"))
    assert filled_rows > raw_rows  # the detections miss boxes, so the tracks have gaps to fill
    with pytest.raises(SystemExit):
        tool.main(["--dets", str(root / "dets"), "--gt", str(root / "gt"), "--out", str(tmp_path / "o2"),
                   "--interpolate", "-1"])


def test_conf_sweep_reports_interpolated_runs_beside_raw_ones(all_frames, tmp_path, run_tool_inprocess):
    root, _, _ = all_frames
    out = tmp_path / "sweep"
    done = run_tool_inprocess("conf_sweep.py", "--dets", root / "dets", "--gt", root / "gt", "--out", out,
                              "--tracker", "bytetrack", "--conf", "0.3,0.6", "--interpolate", "10", "--jobs", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    import csv

    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert sorted((r["conf"], r["interpolate"]) for r in rows) == [("0.3", "0"), ("0.3", "10"), ("0.6", "0"),
                                                                    ("0.6", "10")]
    by = {(r["conf"], r["interpolate"]): r for r in rows}
    assert int(by[("0.3", "10")]["FN"]) <= int(by[("0.3", "0")]["FN"])
    assert "annotated frames" in (out / "sweep.md").read_text()

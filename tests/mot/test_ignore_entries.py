"""Ignore entries (gt consider 0): tracker boxes on them are neither TP nor FP, as TrackEval's MotChallenge2DBox."""

from __future__ import annotations

from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest
import trackeval

from yolox_finetune.mot.clear import ClearCounts
from yolox_finetune.mot.evaluate import evaluate_sequence, ignored_tracker_rows
from yolox_finetune.mot.formats import MotRows, SeqInfo, read_gt, read_results, write_gt, write_results, write_seqinfo
from yolox_finetune.mot.synthetic import corrupt_tracks, make_scene

#: TrackEval's class numbers for the reference files: a target, and a distractor (its ignore mechanism).
PEDESTRIAN, DISTRACTOR = 1, 8


def _rows(*rows, fmt="mot16") -> MotRows:
    """rows of (frame, id, [x, y, w, h], class, consider)."""
    return MotRows(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                   np.array([r[2] for r in rows], float), np.array([float(r[4]) for r in rows]),
                   np.array([r[3] for r in rows]), np.ones(len(rows)), fmt=fmt)


def test_a_box_on_an_ignore_entry_is_neither_tp_nor_fp_but_a_box_beside_it_is_fp():
    gt = _rows((1, 1, [0, 0, 100, 100], 1, 0), (1, 2, [300, 0, 100, 100], 1, 1))
    on_it = _rows((1, 7, [5, 5, 100, 100], 1, 1), (1, 8, [300, 0, 100, 100], 1, 1))
    counts = evaluate_sequence(gt, on_it)[1]
    assert (counts.matches, counts.false_positives, counts.misses, counts.num_predictions) == (1, 0, 0, 1)
    beside = _rows((1, 7, [60, 60, 100, 100], 1, 1), (1, 8, [300, 0, 100, 100], 1, 1))  # IoU 0.09 < 0.5
    counts = evaluate_sequence(gt, beside)[1]
    assert (counts.matches, counts.false_positives, counts.num_predictions) == (1, 1, 2)


def test_matching_is_against_all_gt_of_the_class_and_within_the_class_only():
    # one tracker box overlapping a scored object (IoU 0.6) and an ignore entry (IoU ~0.9): the Hungarian
    # assignment over all gt boxes gives it to the ignore entry, so it is removed and the object is missed
    gt = _rows((1, 1, [0, 0, 100, 100], 1, 1), (1, 2, [32, 0, 100, 100], 1, 0))
    tracker = _rows((1, 5, [28, 0, 100, 100], 1, 1))
    assert ignored_tracker_rows(gt, tracker).tolist() == [True]
    counts = evaluate_sequence(gt, tracker)[1]
    assert (counts.matches, counts.false_positives, counts.misses) == (0, 0, 1)
    # two tracker boxes: each gets its own partner, only the one on the ignore entry goes
    tracker = _rows((1, 5, [0, 0, 100, 100], 1, 1), (1, 6, [30, 0, 100, 100], 1, 1))
    assert ignored_tracker_rows(gt, tracker).tolist() == [False, True]
    # an ignore entry of another class ignores nothing: the car box on an ignored pedestrian is a car FP
    gt = _rows((1, 1, [0, 0, 100, 100], 5, 0))
    per_class = evaluate_sequence(gt, _rows((1, 5, [0, 0, 100, 100], 1, 1)))
    assert per_class[1].false_positives == 1 and per_class[5].num_objects == 0


def test_following_an_occluded_object_costs_nothing_in_clear_identity_and_hota():
    box = [10, 10, 80, 120]
    consider = [1, 1, 1, 0, 0, 1]  # frames 4-5: occluded, written as ignore entries
    gt = _rows(*[(f, 1, box, 5, c) for f, c in zip(range(1, 7), consider)])
    tracker = _rows(*[(f, 9, box, 5, 1) for f in range(1, 7)])
    metrics = evaluate_sequence(gt, tracker)[5].metrics()
    assert (metrics["FP"], metrics["FN"], metrics["IDSW"]) == (0, 0, 0)
    assert metrics["MOTA"] == metrics["IDF1"] == metrics["HOTA"] == pytest.approx(100.0)
    deleted = gt.select(gt.score >= 1)  # what deleting the rows (the old converter) made of the same tracker
    assert evaluate_sequence(deleted, tracker)[5].metrics()["FP"] == 2


def _scene_with_ignore_entries(seed: int) -> tuple[MotRows, np.ndarray, MotRows]:
    """A one-class scene where some rows (and two whole objects) are ignore entries, and a tracker that follows
    every object, ignored or not, with jitter, misses, switches and false alarms."""
    rng = np.random.default_rng(seed)
    gt = make_scene(rng, num_frames=30, num_objects=14, class_ids=(PEDESTRIAN,)).gt
    ignore = (rng.random(len(gt)) < 0.2) | np.isin(gt.track_id, [2, 5])
    tracker = corrupt_tracks(rng, gt, switch_rate=0.05, jitter=8.0)
    return gt, ignore, tracker


def _trackeval_reference(tmp_path: Path, gt: MotRows, ignore: np.ndarray, tracker_file: Path, frames: int):
    """TrackEval's MotChallenge2DBox (MOT17 rules) on the same boxes, ignore entries written as its distractor
    class: returns (metrics, kept) with kept a mask of the tracker rows that survive its preprocessing."""
    seq = tmp_path / "trackeval_gt" / "seq"
    write_gt(seq / "gt" / "gt.txt", MotRows(gt.frame, gt.track_id, gt.box, np.where(ignore, 0.0, 1.0),
                                            np.where(ignore, DISTRACTOR, PEDESTRIAN), gt.visibility))
    write_seqinfo(seq, SeqInfo("seq", 12.0, frames, 1600, 900))
    trackers = tmp_path / "trackeval_trackers"
    (trackers / "t" / "data").mkdir(parents=True)
    (trackers / "t" / "data" / "seq.txt").write_bytes(tracker_file.read_bytes())
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(tmp_path / "trackeval_gt"), "TRACKERS_FOLDER": str(trackers), "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": {"seq": frames}, "TRACKERS_TO_EVAL": ["t"], "BENCHMARK": "MOT17", "PRINT_CONFIG": False})
    raw = dataset.get_raw_seq_data("t", "seq")
    data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
    metrics = {}
    for metric in (trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
                   trackeval.metrics.Identity({"PRINT_CONFIG": False}), trackeval.metrics.HOTA()):
        metrics.update(metric.eval_sequence(data))
    kept = []  # np.delete keeps order: walk each frame's raw boxes against the kept ones
    for before, after in zip(raw["tracker_dets"], data["tracker_dets"]):
        k = 0
        for det in before:
            same = k < len(after) and np.array_equal(det, after[k])
            kept.append(same)
            k += same
    return metrics, np.array(kept, bool)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ignore_entries_score_as_trackeval_motchallenge2dbox(tmp_path, seed):
    gt, ignore, tracker = _scene_with_ignore_entries(seed)
    ours_gt = MotRows(gt.frame, gt.track_id, gt.box, np.where(ignore, 0.0, 1.0), gt.class_id, gt.visibility)
    write_gt(tmp_path / "gt.txt", ours_gt)
    write_results(tmp_path / "res.txt", tracker)  # one file read by both: same rounding, same row order
    frames = int(gt.frame.max())
    reference, kept = _trackeval_reference(tmp_path, gt, ignore, tmp_path / "res.txt", frames)
    results = read_results(tmp_path / "res.txt")
    counts = sum(evaluate_sequence(read_gt(tmp_path / "gt.txt"), results).values(), ClearCounts())
    ours = counts.metrics()

    removed = len(results) - counts.num_predictions
    assert removed == int((~kept).sum()) > 20, "the case must really remove tracker boxes"
    for name, key in (("MOTA", "MOTA"), ("MOTP", "MOTP"), ("IDF1", "IDF1"), ("IDP", "IDP"), ("IDR", "IDR")):
        assert ours[name] == pytest.approx(100 * reference[key], abs=1e-9), name
    for name, key in (("FP", "CLR_FP"), ("FN", "CLR_FN"), ("IDSW", "IDSW")):
        assert ours[name] == reference[key], name
    arrays = counts.hota.arrays()
    for name in ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "LocA"):
        np.testing.assert_allclose(arrays[name], reference[name], atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(counts.hota.tp, reference["HOTA_TP"])

    # MT/PT/ML/Frag: TrackEval defines them differently (MT > 80 %; an object's ignored frames start a new
    # fragment), so they are checked against motmetrics on what TrackEval's preprocessing kept
    write_results(tmp_path / "kept.txt", results.select(kept))
    gt_mm = mm.io.loadtxt(str(tmp_path / "gt.txt"), fmt="mot15-2D", min_confidence=1)
    res_mm = mm.io.loadtxt(str(tmp_path / "kept.txt"), fmt="mot15-2D")
    acc = mm.utils.compare_to_groundtruth(gt_mm, res_mm, "iou", distth=0.5)
    names = ["mostly_tracked", "partially_tracked", "mostly_lost", "num_fragmentations", "num_switches", "mota"]
    expected = mm.metrics.create().compute(acc, metrics=names).iloc[0]
    ours_counts = (ours["MT"], ours["PT"], ours["ML"], ours["Frag"], ours["IDSW"])
    assert ours_counts == tuple(int(expected[n]) for n in names[:5])
    assert ours["MOTA"] == pytest.approx(100 * expected["mota"], abs=1e-9)

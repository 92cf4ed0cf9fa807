"""The evaluator against its references: motmetrics (CLEAR, identity) and TrackEval (HOTA)."""

from __future__ import annotations

from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest

from yolox_finetune.mot.clear import ClearCounts, iou_matrix
from yolox_finetune.mot.evaluate import evaluate_sequence, evaluate_tracker
from yolox_finetune.mot.formats import MotRows, read_gt, read_results, write_gt, write_results
from yolox_finetune.mot.hota import ALPHAS, hota_counts
from yolox_finetune.mot.synthetic import corrupt_tracks, make_scene

TUD = Path(mm.__file__).parent / "data"
MM_NAMES = {"MOTA": "mota", "IDF1": "idf1", "IDP": "idp", "IDR": "idr", "Recall": "recall",
            "Precision": "precision", "IDSW": "num_switches", "FP": "num_false_positives", "FN": "num_misses",
            "MT": "mostly_tracked", "PT": "partially_tracked", "ML": "mostly_lost", "Frag": "num_fragmentations"}
PERCENT = {"MOTA", "IDF1", "IDP", "IDR", "Recall", "Precision"}


def assert_equals_motmetrics(ours: dict, reference) -> None:
    for name, mm_name in MM_NAMES.items():
        expected = reference[mm_name] * (100.0 if name in PERCENT else 1)
        assert ours[name] == pytest.approx(expected, abs=1e-9), name
    assert ours["MOTP"] == pytest.approx((1.0 - reference["motp"]) * 100.0, abs=1e-9)


def motmetrics_accumulator(gt_file: Path, res_file: Path, class_id: int | None = None):
    gt = mm.io.loadtxt(str(gt_file), fmt="mot15-2D", min_confidence=1)
    res = mm.io.loadtxt(str(res_file), fmt="mot15-2D")
    if class_id is not None:
        gt, res = gt[gt["ClassId"] == class_id], res[res["ClassId"] == class_id]
    return mm.utils.compare_to_groundtruth(gt, res, "iou", distth=0.5)


MM_METRICS = sorted(set(MM_NAMES.values()) | {"motp"})


def test_tud_sequences_equal_motmetrics():
    host = mm.metrics.create()
    accumulators, total = [], ClearCounts()
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        gt = read_gt(TUD / seq / "gt.txt")
        assert gt.fmt == "mot15"
        per_class = evaluate_sequence(gt, read_results(TUD / seq / "test.txt"))
        assert list(per_class) == [0]
        acc = motmetrics_accumulator(TUD / seq / "gt.txt", TUD / seq / "test.txt")
        accumulators.append(acc)
        assert_equals_motmetrics(per_class[0].metrics(), host.compute(acc, metrics=MM_METRICS).iloc[0])
        total = total + per_class[0]
    overall = host.compute_many(accumulators, metrics=MM_METRICS, generate_overall=True).loc["OVERALL"]
    assert_equals_motmetrics(total.metrics(), overall)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_scenes_equal_motmetrics_per_class(tmp_path, seed):
    """Generated scenes with switches, misses, false alarms and two classes: every class equals motmetrics run on
    that class alone, and a box never matches across classes."""
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, num_frames=30, num_objects=12, class_ids=(1, 5))
    tracks = corrupt_tracks(rng, scene.gt, switch_rate=0.08)
    write_gt(tmp_path / "gt.txt", scene.gt)
    write_results(tmp_path / "res.txt", tracks, "mot+class")  # motmetrics reads the class from column 8
    per_class = evaluate_sequence(read_gt(tmp_path / "gt.txt"), read_results(tmp_path / "res.txt"))
    assert sorted(per_class) == [1, 5]
    host = mm.metrics.create()
    for cls, counts in per_class.items():
        acc = motmetrics_accumulator(tmp_path / "gt.txt", tmp_path / "res.txt", class_id=cls)
        assert_equals_motmetrics(counts.metrics(), host.compute(acc, metrics=MM_METRICS).iloc[0])
    assert sum(c.switches for c in per_class.values()) > 0  # the scene really exercises switches


def _single(frame, tid, box, cls, score=1.0) -> MotRows:
    return MotRows(np.array([frame]), np.array([tid]), np.array([box], float), np.array([score]),
                   np.array([cls]), np.ones(1), fmt="mot16")


def test_class_aware_matching_never_pairs_a_car_with_a_pedestrian():
    gt = _single(1, 1, [10, 10, 50, 80], cls=5)
    result = _single(1, 7, [10, 10, 50, 80], cls=1)
    per_class = evaluate_sequence(gt, result)
    assert per_class[5].misses == 1 and per_class[1].false_positives == 1
    assert per_class[1].matches == per_class[5].matches == 0
    blind = evaluate_sequence(gt, result, class_aware=False)
    assert blind[0].matches == 1 and blind[0].false_positives == 0


def test_consider_zero_rows_are_ignore_entries_not_objects():
    gt = _single(1, 1, [10, 10, 50, 80], cls=1, score=0)
    per_class = evaluate_sequence(gt, _single(1, 3, [10, 10, 50, 80], cls=1))
    assert per_class[1].num_objects == 0 and per_class[1].num_predictions == 0
    assert per_class[1].false_positives == 0 and per_class[1].matches == 0
    # MOT15 ground truth has no ignore semantics (TrackEval does no preprocessing there): the box is a false positive
    mot15 = MotRows(gt.frame, gt.track_id, gt.box, gt.score, gt.class_id, gt.visibility, fmt="mot15")
    per_class = evaluate_sequence(mot15, _single(1, 3, [10, 10, 50, 80], cls=1))
    assert per_class[0].num_objects == 0 and per_class[0].false_positives == 1


def test_missing_result_sequence_counts_everything_missed():
    gt = _single(1, 1, [10, 10, 50, 80], cls=1)
    counts = evaluate_tracker({"a": gt}, {})
    report = counts.report()
    assert report["overall"]["FN"] == 1 and report["overall"]["MOTA"] == 0.0
    assert report["per_sequence"]["a"]["Recall"] == 0.0 and report["per_class"]["car"]["FN"] == 1


def _trackeval_hota(gt_ids, tr_ids, gt_boxes, tr_boxes):
    trackeval = pytest.importorskip("trackeval")
    from trackeval.datasets._base_dataset import _BaseDataset

    gt_index = {v: i for i, v in enumerate(np.unique(np.concatenate(gt_ids)))}
    tr_index = {v: i for i, v in enumerate(np.unique(np.concatenate(tr_ids)))}
    data = {
        "gt_ids": [np.array([gt_index[v] for v in g], int) for g in gt_ids],
        "tracker_ids": [np.array([tr_index[v] for v in t], int) for t in tr_ids],
        "similarity_scores": [_BaseDataset._calculate_box_ious(g, t, box_format="xywh")
                              for g, t in zip(gt_boxes, tr_boxes)],
        "num_gt_dets": sum(len(g) for g in gt_ids), "num_tracker_dets": sum(len(t) for t in tr_ids),
        "num_gt_ids": len(gt_index), "num_tracker_ids": len(tr_index),
    }
    return trackeval.metrics.HOTA().eval_sequence(data)


def _frames(rows: MotRows, frames):
    idx = rows.frame_slices()
    return ([rows.track_id[idx[f]] if f in idx else np.zeros(0, int) for f in frames],
            [rows.box[idx[f]] if f in idx else np.zeros((0, 4)) for f in frames])


@pytest.mark.parametrize("source", ["TUD-Campus", "TUD-Stadtmitte", "synthetic"])
def test_hota_equals_trackeval(source):
    if source == "synthetic":
        rng = np.random.default_rng(5)
        gt = make_scene(rng, num_frames=25, num_objects=10, class_ids=(1,)).gt
        res = corrupt_tracks(rng, gt, switch_rate=0.1, jitter=12.0)
    else:
        gt, res = read_gt(TUD / source / "gt.txt"), read_results(TUD / source / "test.txt")
    frames = sorted(set(gt.frame.tolist()) | set(res.frame.tolist()))
    (gi, gb), (ti, tb) = _frames(gt, frames), _frames(res, frames)
    reference = _trackeval_hota(gi, ti, gb, tb)
    ours = hota_counts(gi, ti, [iou_matrix(g, t) for g, t in zip(gb, tb)])
    arrays = ours.arrays()
    for name in ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "LocA"):
        np.testing.assert_allclose(arrays[name], reference[name], atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(ours.tp, reference["HOTA_TP"])
    # and through the evaluator, in percent
    report = evaluate_sequence(gt, res)
    assert sum(report.values(), ClearCounts()).metrics()["HOTA"] == pytest.approx(100 * reference["HOTA"].mean())


def test_hota_combines_sequences_like_trackeval():
    trackeval = pytest.importorskip("trackeval")
    metric = trackeval.metrics.HOTA()
    sequences, total = {}, None
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        gt, res = read_gt(TUD / seq / "gt.txt"), read_results(TUD / seq / "test.txt")
        frames = sorted(set(gt.frame.tolist()) | set(res.frame.tolist()))
        (gi, gb), (ti, tb) = _frames(gt, frames), _frames(res, frames)
        sequences[seq] = _trackeval_hota(gi, ti, gb, tb)
        counts = hota_counts(gi, ti, [iou_matrix(g, t) for g, t in zip(gb, tb)])
        total = counts if total is None else total + counts
    combined = metric.combine_sequences(sequences)
    for name in ("HOTA", "DetA", "AssA"):
        np.testing.assert_allclose(total.arrays()[name], combined[name], atol=1e-12)


def test_hota_hand_computed_cases():
    """From the paper's definitions, no reference implementation needed."""
    box = np.array([[0.0, 0.0, 10.0, 10.0]])
    # one object seen 4 times; the tracker's id changes halfway: DetA = 1, every TP has TPA 2, FNA 2 -> AssA 0.5
    counts = hota_counts([np.array([1])] * 4, [np.array([7]), np.array([7]), np.array([8]), np.array([8])],
                         [np.ones((1, 1))] * 4)
    summary = counts.summary()
    assert summary["DetA"] == pytest.approx(100.0)
    assert summary["AssA"] == pytest.approx(50.0)
    assert summary["HOTA"] == pytest.approx(100 * np.sqrt(0.5))
    # a perfect id but IoU 0.625 everywhere: a TP only for alpha <= 0.6 (12 of 19 alphas), AssA 1 there
    shrunk = np.array([[0.0, 0.0, 10.0, 6.25]])
    counts = hota_counts([np.array([1])] * 3, [np.array([4])] * 3, [iou_matrix(box, shrunk)] * 3)
    assert iou_matrix(box, shrunk)[0, 0] == pytest.approx(0.625)
    assert counts.tp.tolist() == [3.0 if a <= 0.6 + 1e-9 else 0.0 for a in ALPHAS]
    assert counts.summary()["HOTA"] == pytest.approx(100 * 12 / 19)
    # nothing tracked: all FN, HOTA 0
    empty = hota_counts([np.array([1])], [np.zeros(0, int)], [np.zeros((1, 0))])
    assert empty.summary()["HOTA"] == 0.0 and empty.fn.tolist() == [1.0] * len(ALPHAS)

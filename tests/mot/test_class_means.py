"""Class means beside the detection-weighted overall (TrackEval's class average, BDD100K's mHOTA/mMOTA/mIDF1), and
what a sequence or class without ground truth reports: TrackEval's values, never None."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trackeval

from yolox_finetune.mot.evaluate import CLASS_MEAN_METRICS, evaluate_tracker, unit_metrics
from yolox_finetune.mot.formats import MotRows, empty_rows
from yolox_finetune.mot.synthetic import corrupt_tracks, make_scene


def rows(frames, ids, boxes, classes, score=1.0) -> MotRows:
    n = len(frames)
    return MotRows(np.asarray(frames), np.asarray(ids), np.asarray(boxes, float), np.full(n, score),
                   np.asarray(classes), np.ones(n))


def trackeval_clear_identity(counts) -> dict:
    """TrackEval's own final-field formulas on our counts (CLEAR and Identity)."""
    tp = counts.matches + counts.switches
    clear = trackeval.metrics.CLEAR._compute_final_fields({
        "CLR_TP": tp, "CLR_FN": counts.misses, "CLR_FP": counts.false_positives, "IDSW": counts.switches,
        "MOTP_sum": tp - counts.distance_sum, "MT": counts.mostly_tracked, "ML": counts.mostly_lost,
        "PT": counts.partially_tracked, "Frag": counts.fragmentations, "CLR_Frames": 1})
    identity = trackeval.metrics.Identity._compute_final_fields({
        "IDTP": counts.idtp, "IDFN": counts.num_objects - counts.idtp, "IDFP": counts.num_predictions - counts.idtp})
    return {"MOTA": clear["MOTA"], "MOTP": clear["MOTP"], "Recall": clear["CLR_Re"], "Precision": clear["CLR_Pr"],
            "IDF1": identity["IDF1"], "IDP": identity["IDP"], "IDR": identity["IDR"]}


def test_a_class_without_ground_truth_reports_trackeval_values():
    # class 1: one object followed perfectly for 10 frames; class 2: 3 false positives and no ground truth
    gt = rows(range(1, 11), [1] * 10, [[10, 10, 50, 80]] * 10, [1] * 10)
    res = rows([*range(1, 11), 2, 3, 4], [7] * 10 + [9] * 3, [[10, 10, 50, 80]] * 10 + [[500, 500, 40, 40]] * 3,
               [1] * 10 + [2] * 3)
    counts = evaluate_tracker({"s": gt}, {"s": res})
    report = counts.report()
    lonely = report["per_class"]["truck"]
    assert all(lonely[m] is not None for m in lonely)
    assert lonely["MOTA"] == -300.0 and lonely["IDF1"] == 0.0 and lonely["Recall"] == 0.0 and lonely["HOTA"] == 0.0
    assert "no ground truth" in lonely["note"]
    reference = trackeval_clear_identity(counts.per_class()["truck"])
    for name, value in reference.items():
        assert lonely[name] == pytest.approx(100 * value), name
    json.dumps(report, allow_nan=False)  # plain JSON: no NaN or Infinity anywhere
    # the class means are the plain mean over the two classes; the overall is detection-weighted
    car = report["per_class"]["car"]
    assert report["overall"]["mMOTA"] == pytest.approx((car["MOTA"] + lonely["MOTA"]) / 2) == -100.0
    assert report["overall"]["MOTA"] == pytest.approx(100 * (1 - 3 / 10))
    assert report["class_mean"]["classes"] == ["car", "truck"]
    assert report["overall"]["mHOTA"] == report["class_mean"]["HOTA"] == pytest.approx(car["HOTA"] / 2)


def test_a_sequence_without_ground_truth_or_boxes_has_numbers():
    gt = rows([1], [1], [[10, 10, 50, 80]], [1])
    report = evaluate_tracker({"a": gt, "empty": empty_rows()}, {"a": gt}).report()
    empty = report["per_sequence"]["empty"]
    assert all(v is not None for v in empty.values())
    assert empty["MOTA"] == 0.0 and empty["IDF1"] == 0.0 and empty["HOTA"] == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_class_means_equal_trackeval_class_average(seed):
    """Per-class metrics combined by TrackEval's own combine_classes_class_averaged (empty classes ignored)."""
    rng = np.random.default_rng(seed)
    gts, results = {}, {}
    for k in range(3):
        scene = make_scene(rng, name=f"s{k}", num_frames=20, num_objects=9, class_ids=(1, 2, 5))
        gts[f"s{k}"] = scene.gt
        results[f"s{k}"] = corrupt_tracks(rng, scene.gt, switch_rate=0.05)
    report = evaluate_tracker(gts, results).report()
    per_class = report["per_class"]
    assert len(per_class) == 3
    clear = {name: {"MOTA": v["MOTA"] / 100, "MOTP": v["MOTP"] / 100, "CLR_TP": 1, "CLR_FN": 0, "CLR_FP": 0}
             for name, v in per_class.items()}
    averaged = trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).combine_classes_class_averaged(
        {name: {**{f: 0 for f in trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).fields}, **v}
         for name, v in clear.items()}, ignore_empty_classes=True)
    assert report["class_mean"]["MOTA"] == pytest.approx(100 * averaged["MOTA"])
    for metric in CLASS_MEAN_METRICS:
        assert report["class_mean"][metric] == pytest.approx(np.mean([v[metric] for v in per_class.values()]))
    weighted = report["overall"]
    assert weighted["mMOTA"] != pytest.approx(weighted["MOTA"])  # the two averages really differ here


def test_unit_metrics_keep_defined_values_as_they_are():
    gt = rows(range(1, 6), [1] * 5, [[10, 10, 50, 80]] * 5, [1] * 5)
    counts = evaluate_tracker({"s": gt}, {"s": gt}).overall()
    assert unit_metrics(counts) == counts.metrics() and "note" not in unit_metrics(counts)

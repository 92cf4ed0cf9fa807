"""Results files: MOTChallenge standard by default (TrackEval reads them), the class in a sidecar or in column 8
(mot+class), and a sidecar that does not belong to its file refused."""

from __future__ import annotations

import numpy as np
import pytest
import trackeval

from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.evaluate import evaluate_sequence
from yolox_finetune.mot.formats import (
    UNKNOWN_CLASS,
    MotRows,
    SeqInfo,
    class_sidecar,
    read_results,
    write_gt,
    write_results,
    write_seqinfo,
)
from yolox_finetune.mot.synthetic import corrupt_tracks, make_scene


def scene_tracks(seed: int = 4, class_ids: tuple[int, ...] = (1, 5)) -> tuple[MotRows, MotRows]:
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, num_frames=15, num_objects=8, class_ids=class_ids)
    return scene.gt, corrupt_tracks(rng, scene.gt, switch_rate=0.05)


def test_default_results_are_standard_with_the_class_in_a_sidecar(tmp_path):
    gt, tracks = scene_tracks()
    path = tmp_path / "seq.txt"
    assert write_results(path, tracks) == [path, tmp_path / "seq.classes.csv"] == [path, class_sidecar(path)]
    for line in path.read_text().splitlines():
        assert line.split(",")[7:] == ["-1", "-1", "-1"]  # frame,id,x,y,w,h,score,-1,-1,-1
    back = read_results(path)
    order = np.lexsort((tracks.track_id, tracks.frame))
    assert back.class_id.tolist() == tracks.class_id[order].tolist() and set(back.class_id.tolist()) == {1, 5}
    # the class-aware evaluation of the standard file + sidecar equals that of the in-memory rows
    ours = evaluate_sequence(gt, back)
    direct = evaluate_sequence(gt, tracks)
    counts = {c: (v.num_objects, v.num_predictions, v.matches, v.switches) for c, v in ours.items()}
    assert counts == {c: (v.num_objects, v.num_predictions, v.matches, v.switches) for c, v in direct.items()}
    # without the sidecar the file is class-less, and multi-class ground truth refuses it in one line
    class_sidecar(path).rename(tmp_path / "kept.csv")
    assert set(read_results(path).class_id.tolist()) == {UNKNOWN_CLASS}
    with pytest.raises(UserError, match="--class-agnostic") as info:
        evaluate_sequence(gt, read_results(path))
    assert "\n" not in str(info.value) and "sidecar" in str(info.value)
    pooled = evaluate_sequence(gt, read_results(path), class_aware=False)
    assert list(pooled) == [UNKNOWN_CLASS] and pooled[UNKNOWN_CLASS].num_objects == len(gt)


def test_mot_plus_class_keeps_the_class_in_column_8_and_removes_a_stale_sidecar(tmp_path):
    _, tracks = scene_tracks()
    path = tmp_path / "seq.txt"
    write_results(path, tracks)
    assert write_results(path, tracks, "mot+class") == [path] and not class_sidecar(path).exists()
    assert {line.split(",")[7] for line in path.read_text().splitlines()} == {"1", "5"}
    assert set(read_results(path).class_id.tolist()) == {1, 5}  # auto: column 8 holds classes
    assert set(read_results(path, "mot").class_id.tolist()) == {UNKNOWN_CLASS}  # mot: column 8 is not a class
    with pytest.raises(UserError, match="unknown results format"):
        write_results(path, tracks, "kitti")


def test_a_sidecar_of_other_results_is_refused(tmp_path):
    _, tracks = scene_tracks()
    path = tmp_path / "seq.txt"
    write_results(path, tracks)
    write_results(path, tracks.select(tracks.frame > 3), "mot")  # rewrites the sidecar too: still consistent
    assert len(read_results(path)) == int((tracks.frame > 3).sum())
    sidecar = class_sidecar(path)
    sidecar.write_text("frame,id,class\n1,999,1\n")
    with pytest.raises(UserError, match="belongs to another version") as info:
        read_results(path)
    assert "\n" not in str(info.value)


def test_trackeval_motchallenge_reads_the_default_file_and_rejects_class_in_column_8(tmp_path):
    """TrackEval's MotChallenge2DBox (MOT17 rules) accepts our default results; the old layout (class 3 in column
    8) is what it refused."""
    rng = np.random.default_rng(9)
    scene = make_scene(rng, num_frames=12, num_objects=5, class_ids=(1,))
    gt = scene.gt
    seq = tmp_path / "gt" / "seq"
    write_gt(seq / "gt" / "gt.txt", gt)  # class 1 = MOT17 pedestrian
    write_seqinfo(seq, SeqInfo("seq", 12.0, int(gt.frame.max()), 1600, 900))
    tracks = MotRows(gt.frame, gt.track_id, gt.box, np.ones(len(gt)), np.full(len(gt), 3, np.int64),
                     np.ones(len(gt)))  # a perfect tracker whose rows carry our class 3
    data_dir = tmp_path / "trackers" / "t" / "data"
    write_results(data_dir / "seq.txt", tracks)
    config = {"GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trackers"),
              "SKIP_SPLIT_FOL": True, "SEQ_INFO": {"seq": int(gt.frame.max())}, "TRACKERS_TO_EVAL": ["t"],
              "BENCHMARK": "MOT17", "PRINT_CONFIG": False}
    dataset = trackeval.datasets.MotChallenge2DBox(config)
    data = dataset.get_preprocessed_seq_data(dataset.get_raw_seq_data("t", "seq"), "pedestrian")
    result = trackeval.metrics.CLEAR({"PRINT_CONFIG": False}).eval_sequence(data)
    assert (result["CLR_TP"], result["CLR_FP"], result["CLR_FN"]) == (len(gt), 0, 0)
    write_results(data_dir / "seq.txt", tracks, "mot+class")
    dataset = trackeval.datasets.MotChallenge2DBox(config)
    with pytest.raises(trackeval.utils.TrackEvalException, match="Non pedestrian class"):
        dataset.get_preprocessed_seq_data(dataset.get_raw_seq_data("t", "seq"), "pedestrian")

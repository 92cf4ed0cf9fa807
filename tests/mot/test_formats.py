"""MOT file reading/writing: formats, round trips, and malformed rows named by file and line."""

from __future__ import annotations

import numpy as np
import pytest

from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import (
    UNKNOWN_CLASS,
    MotRows,
    SeqInfo,
    detect_gt_format,
    frame_images,
    list_sequences,
    read_detections,
    read_gt,
    read_results,
    read_seqinfo,
    write_detections,
    write_gt,
    write_results,
    write_seqinfo,
)
from yolox_finetune.mot.synthetic import make_scene


def test_formats_are_detected_by_their_columns(tmp_path):
    mot15 = tmp_path / "mot15.txt"
    mot15.write_text("1,1,399,182,121,229,1,-1,-1,-1\n2,1,400,182,121,229,1,-1,-1,-1\n")
    ours = tmp_path / "ours.txt"
    ours.write_text("1,3,10,20,30,40,1,5,0.75\n\n1,4,10,20,30,40,0,1,0.25\n")
    assert detect_gt_format(mot15) == "mot15" and detect_gt_format(ours) == "mot16"
    single = read_gt(mot15)
    assert single.class_id.tolist() == [UNKNOWN_CLASS] * 2 and single.fmt == "mot15"
    gt = read_gt(ours)
    assert gt.class_id.tolist() == [5, 1] and gt.score.tolist() == [1.0, 0.0] and gt.visibility.tolist() == [.75, .25]
    assert gt.box[0].tolist() == [10, 20, 30, 40]


def test_round_trip_of_gt_detections_and_results(tmp_path):
    scene = make_scene(np.random.default_rng(3), num_frames=10, num_objects=4)
    write_gt(tmp_path / "gt.txt", scene.gt)
    write_detections(tmp_path / "det.txt", scene.detections)
    gt, dets = read_gt(tmp_path / "gt.txt"), read_detections(tmp_path / "det.txt")
    np.testing.assert_allclose(gt.box, scene.gt.box, atol=0.006)
    assert gt.track_id.tolist() == scene.gt.track_id.tolist() and gt.class_id.tolist() == scene.gt.class_id.tolist()
    np.testing.assert_array_equal(dets.score, scene.detections.score)  # scores round-trip exactly
    np.testing.assert_allclose(dets.box, scene.detections.box, atol=5e-4)  # a thousandth of a pixel
    assert (dets.track_id == -1).all() and dets.class_id.tolist() == scene.detections.class_id.tolist()
    write_results(tmp_path / "res.txt", scene.gt)
    res = read_results(tmp_path / "res.txt")
    assert len(res) == len(gt) and set(res.class_id.tolist()) == set(gt.class_id.tolist())
    first = (tmp_path / "res.txt").read_text().splitlines()[0].split(",")
    assert len(first) == 10 and first[-2:] == ["-1", "-1"]


def test_a_score_just_below_a_threshold_stays_below_it(tmp_path):
    below = np.nextafter(0.1, 0.0)
    scores = np.array([below, 0.1, np.float32(0.3), 1e-7, 0.123456789012345])
    n = len(scores)
    rows = MotRows(np.ones(n, np.int64), np.full(n, -1, np.int64), np.tile([1.23456, 2.0, 3.0006, 4.1], (n, 1)),
                   scores, np.ones(n, np.int64), np.ones(n), fmt="det")
    write_detections(tmp_path / "det.txt", rows)
    back = read_detections(tmp_path / "det.txt")
    assert back.score.tolist() == scores.tolist() and (back.score >= 0.1).tolist() == [False, True, True, False, True]
    assert (tmp_path / "det.txt").read_text().splitlines()[0].split(",")[2:6] == ["1.235", "2", "3.001", "4.1"]


def test_motchallenge_detections_without_class_are_unknown(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,20,20,0.9,-1,-1,-1\n")
    assert read_detections(path).class_id.tolist() == [UNKNOWN_CLASS]


@pytest.mark.parametrize("row, problem", [
    ("1,1,10,20,abc,40,1,1,1", "non-numeric"),
    ("1,1,10,20,30", "columns"),
    ("0,1,10,20,30,40,1,1,1", "frame"),
    ("1.5,1,10,20,30,40,1,1,1", "frame"),
    ("1,1,10,20,30,40,1,1,1,0,0", "11 columns"),  # a box without area is skipped, not an error (test_bad_input)
    ("1,1,10,20,nan,40,1,1,1", "nan"),
    ("1,1,10,20,30,40,1,1,1", "twice"),
])
def test_malformed_rows_name_file_and_line(tmp_path, row, problem):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,20,30,40,1,1,1\n" + row + "\n")
    with pytest.raises(UserError) as info:
        read_gt(path, fmt="mot16")
    message = str(info.value)
    assert f"{path}:2:" in message and problem in message and "\n" not in message


def test_results_and_missing_files_are_checked(tmp_path):
    bad = tmp_path / "res.txt"
    bad.write_text("1,1,1,1,5,5,1,1,-1,-1\n2,x,1,1,5,5,1,1,-1,-1\n")
    with pytest.raises(UserError, match=r"res.txt:2:"):
        read_results(bad)
    with pytest.raises(UserError, match="not found"):
        read_detections(tmp_path / "nope.txt")
    with pytest.raises(UserError, match="no sequences"):
        list_sequences(tmp_path)


def test_seqinfo_and_layout(tmp_path):
    seq = tmp_path / "scene-0001_CAM_FRONT"
    write_seqinfo(seq, SeqInfo(name=seq.name, frame_rate=12, seq_length=3, im_width=1600, im_height=900))
    info = read_seqinfo(seq)
    assert (info.frame_rate, info.seq_length, info.im_width, info.im_height) == (12.0, 3, 1600, 900)
    assert read_seqinfo(tmp_path / "plain").frame_rate is None
    (seq / "img1").mkdir()
    for f in (2, 1):
        (seq / "img1" / f"{f:06d}.jpg").write_bytes(b"")
    assert list(frame_images(seq)) == [1, 2]
    (seq / "img1" / "1.png").write_bytes(b"")
    with pytest.raises(UserError, match="both frame 1"):
        frame_images(seq)
    (seq / "img1" / "1.png").unlink()
    (seq / "img1" / "000000.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="numbered from 1"):
        frame_images(seq)
    (seq / "img1" / "000000.jpg").unlink()
    write_gt(seq / "gt" / "gt.txt", read_gt_rows())
    assert list_sequences(tmp_path) == [seq.name]
    (seq / "seqinfo.ini").write_text("[Sequence]\nframeRate=fast\n")
    with pytest.raises(UserError, match="seqinfo.ini"):
        read_seqinfo(seq)


def read_gt_rows():
    return make_scene(np.random.default_rng(0), num_frames=3, num_objects=1).gt

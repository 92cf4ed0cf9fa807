"""tools/visualize.py: the video and strip decode back with the right frame count and size, and the events it tags
are the evaluator's (motmetrics) events."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolox_finetune.analysis.visualize import IDSW_COLOUR, tracking_events
from yolox_finetune.mot.evaluate import evaluate_sequence
from yolox_finetune.mot.formats import MotRows, SeqInfo, write_annotated_frames, write_gt, write_results, write_seqinfo

WIDTH, HEIGHT, FRAMES = 160, 120, 6


def _rows(table: list[tuple]) -> MotRows:
    a = np.array(table, dtype=np.float64)
    return MotRows(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6], a[:, 6], a[:, 7].astype(np.int64),
                   np.ones(len(a)))


@pytest.fixture
def sequence(tmp_path):
    """Two cars moving right; the tracker swaps ids at frame 4 and adds a false positive at frame 2."""
    seq = tmp_path / "seq-0001_CAM_FRONT"
    (seq / "img1").mkdir(parents=True)
    for frame in range(1, FRAMES + 1):
        cv2.imwrite(str(seq / "img1" / f"{frame:06d}.jpg"), np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    write_seqinfo(seq, SeqInfo(name=seq.name, frame_rate=12, seq_length=FRAMES, im_width=WIDTH, im_height=HEIGHT))
    gt = _rows([(f, t, 10 + 5 * f + 60 * (t - 1), 40, 30, 20, 1, 1) for f in range(1, FRAMES + 1) for t in (1, 2)])
    write_gt(seq / "gt" / "gt.txt", MotRows(gt.frame, gt.track_id, gt.box, gt.score, gt.class_id, gt.visibility))
    results = []
    for f in range(1, FRAMES + 1):
        for t in (1, 2):
            tid = t if f < 4 else 3 - t  # the two ids swap from frame 4 on
            results.append((f, tid, 10 + 5 * f + 60 * (t - 1), 40, 30, 20, 0.9, 1))
    results.append((2, 9, 120, 90, 20, 20, 0.8, 1))  # a false positive
    res = _rows(results)
    write_results(tmp_path / "res.txt", res)
    return seq, tmp_path / "res.txt", gt, res


def test_events_are_the_evaluators(sequence):
    _, _, gt, res = sequence
    events = tracking_events(gt, res)
    counts = evaluate_sequence(gt, res)[1]
    assert sum(len(e["IDSW"]) for e in events.values()) == counts.switches == 2
    assert sum(len(e["FP"]) for e in events.values()) == counts.false_positives == 1
    assert events[4]["IDSW"] == {1, 2} and events[2]["FP"] == {9}
    # on an all-frames sequence only the annotated frames are scored: the swap shows at frame 5, the FP not at all
    scored = tracking_events(gt, res, annotated=[1, 3, 5])
    assert list(scored) == [5] and scored[5]["IDSW"] == {1, 2} and not scored[5]["FP"]


def test_video_and_strip_decode_back(sequence, run_tool, tmp_path):
    seq, res, _, _ = sequence
    video = tmp_path / "tracks.mp4"
    done = run_tool("visualize.py", "--seq", seq, "--results", res, "--gt", "--out", video, "--scale", "0.5")
    assert done.returncode == 0, done.stderr
    assert "2 ID switches and 1 false positives" in done.stdout
    capture = cv2.VideoCapture(str(video))
    decoded = []
    while True:
        ok, picture = capture.read()
        if not ok:
            break
        decoded.append(picture)
    assert len(decoded) == FRAMES
    assert decoded[0].shape == (HEIGHT // 2, WIDTH, 3)  # two panels side by side at half scale

    strip = tmp_path / "strip.png"
    done = run_tool("visualize.py", "--seq", seq, "--results", res, "--out", strip, "--columns", "3")
    assert done.returncode == 0, done.stderr
    sheet = cv2.imread(str(strip))
    assert sheet.shape == (2 * HEIGHT, 3 * WIDTH, 3)
    tiles = [sheet[r * HEIGHT:(r + 1) * HEIGHT, c * WIDTH:(c + 1) * WIDTH] for r in range(2) for c in range(3)]
    magenta = [bool(np.all(tile == IDSW_COLOUR, axis=-1).any()) for tile in tiles]
    assert magenta == [False, False, False, True, False, False]  # the IDSW tag on frame 4 only

    again = run_tool("visualize.py", "--seq", seq, "--results", res, "--out", strip)
    assert again.returncode != 0 and "exists" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_annotated_frames_are_marked_and_bad_ranges_refused(sequence, run_tool, tmp_path):
    seq, res, _, _ = sequence
    write_annotated_frames(seq, [1, 3, 5])
    done = run_tool("visualize.py", "--seq", seq, "--results", res, "--out", tmp_path / "a.png", "--frames", "2:3")
    assert done.returncode == 0, done.stderr
    assert "2 ID switches and 0 false positives" in done.stdout  # counted over the sequence's scored frames
    assert cv2.imread(str(tmp_path / "a.png")).shape == (HEIGHT, 2 * WIDTH, 3)
    bad = run_tool("visualize.py", "--seq", seq, "--results", res, "--out", tmp_path / "b.png", "--frames", "40:50")
    assert bad.returncode != 0 and "no image in that range" in bad.stderr

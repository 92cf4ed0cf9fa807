"""ByteTrack and BoT-SORT on scripted scenes: each test builds the object paths, feeds detections frame by frame
and checks which track id every object received."""

from __future__ import annotations

import numpy as np
import pytest

from trackers import TRACKER_CONFIGS, BoTSORT, ByteTracker, build_config, make_tracker
from trackers.errors import TrackerError
from trackers.matching import iou_matrix
from yolox_finetune.core.classes import CLASS_IDS

CAR, PEDESTRIAN = CLASS_IDS["car"], CLASS_IDS["pedestrian"]
TRACKERS = ["bytetrack", "botsort"]


def box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def det(cx: float, cy: float, w: float, h: float, score: float = 0.9, cls: int = PEDESTRIAN) -> list[float]:
    return box(cx, cy, w, h) + [score, cls]


def run(tracker, frames: list[list[list[float]]]) -> list[np.ndarray]:
    return [tracker.update(np.array(dets, dtype=float).reshape(-1, 6)) for dets in frames]


def ids_of_object(outputs: list[np.ndarray], frames: list[list[list[float]]], obj: int) -> list[int]:
    """Track id given to detection ``obj`` (its position in each frame's list) in every frame it was reported."""
    ids = []
    for rows, dets in zip(outputs, frames):
        if obj >= len(dets) or len(rows) == 0:
            continue
        overlap = iou_matrix(np.array(dets)[obj:obj + 1, :4], rows[:, :4])[0]
        if overlap.max() > 0.7:
            ids.append(int(rows[overlap.argmax(), 4]))
    return ids


@pytest.mark.parametrize("name", TRACKERS)
def test_crossing_objects_keep_their_ids(name):
    # two pedestrians walk towards each other on nearly the same line and pass with heavy overlap
    frames = [[det(100 + 6 * t, 200, 40, 100), det(400 - 6 * t, 215, 40, 100)] for t in range(50)]
    outputs = run(make_tracker(name), frames)
    left, right = ids_of_object(outputs, frames, 0), ids_of_object(outputs, frames, 1)
    assert len(left) >= 45 and len(right) >= 45
    assert set(left) == {1} and set(right) == {2}


def _occluded_walk(gap: int, start: int = 20, total_after: int = 15) -> list[list[list[float]]]:
    """One pedestrian walking right; its detections vanish for ``gap`` frames from frame ``start``."""
    frames = []
    for t in range(start + gap + total_after):
        frames.append([] if start <= t < start + gap else [det(100 + 3 * t, 200, 40, 100)])
    return frames


@pytest.mark.parametrize("name", TRACKERS)
def test_occlusion_shorter_than_the_buffer_keeps_the_id(name):
    frames = _occluded_walk(gap=20)  # buffer: 30 frames at 30 fps
    outputs = run(make_tracker(name, frame_rate=30), frames)
    assert all(len(outputs[t]) == 0 for t in range(20, 40))  # nothing reported while unseen
    assert set(ids_of_object(outputs, frames, 0)) == {1}
    assert len(ids_of_object(outputs, frames, 0)) == len(frames) - 20


@pytest.mark.parametrize("name", TRACKERS)
def test_occlusion_longer_than_the_buffer_starts_a_new_id(name):
    frames = _occluded_walk(gap=40)
    ids = ids_of_object(run(make_tracker(name, frame_rate=30), frames), frames, 0)
    assert ids[0] == 1 and ids[-1] == 2


def test_buffer_scales_with_the_frame_rate():
    frames = _occluded_walk(gap=20)
    # at 12 fps the 30-frame buffer becomes 12 frames: a 20-frame gap is too long
    assert ids_of_object(run(make_tracker("bytetrack", frame_rate=12), frames), frames, 0)[-1] == 2
    assert make_tracker("bytetrack", frame_rate=12).max_time_lost == 12
    assert ids_of_object(run(make_tracker("bytetrack", config={"track_buffer": 60}, frame_rate=12), frames),
                         frames, 0)[-1] == 1


@pytest.mark.parametrize("name", TRACKERS)
def test_low_score_detections_keep_the_track_through_the_second_association(name):
    scores = [0.9] * 15 + [0.3] * 6 + [0.9] * 10  # the detector's confidence dips (partial occlusion)
    frames = [[det(100 + 4 * t, 200, 40, 100, score=s)] for t, s in enumerate(scores)]
    outputs = run(make_tracker(name), frames)
    dip = outputs[15:21]
    assert all(len(rows) == 1 and rows[0, 4] == 1 and rows[0, 5] == pytest.approx(0.3) for rows in dip)
    # without the second association (low threshold above the dip) the track is not followed through the dip
    outputs = run(make_tracker(name, config={"low_thresh": 0.35}), frames)
    assert all(len(rows) == 0 for rows in outputs[15:21])


def test_new_tracks_start_only_above_the_new_track_threshold():
    frames = [[det(100, 200, 40, 100, score=0.55), det(300, 200, 40, 100, score=0.65)] for _ in range(10)]
    outputs = run(make_tracker("bytetrack"), frames)  # high 0.5, new track 0.6
    assert all(rows[:, 4].tolist() == [1] for rows in outputs)
    assert outputs[-1][0, 0] == pytest.approx(280, abs=0.5)
    assert make_tracker("bytetrack", config={"track_thresh": 0.3}).config.effective_new_track_thresh == 0.4
    assert make_tracker("botsort").config.effective_new_track_thresh == 0.7


@pytest.mark.parametrize("name", TRACKERS)
def test_a_car_track_never_takes_a_pedestrian_detection(name):
    # a car drives right; from frame 10 on only a pedestrian is detected exactly where the car would be
    frames = [[det(100 + 5 * t, 200, 120, 60, cls=CAR if t < 10 else PEDESTRIAN)] for t in range(20)]
    outputs = run(make_tracker(name), frames)
    car_ids = {int(r[4]) for rows in outputs for r in rows if r[6] == CAR}
    pedestrian_ids = {int(r[4]) for rows in outputs for r in rows if r[6] == PEDESTRIAN}
    assert car_ids == {1} and pedestrian_ids and 1 not in pedestrian_ids
    assert all(r[6] == CAR for rows in outputs for r in rows if r[4] == 1)
    # class-agnostic association lets the car's track take the pedestrian (what class_aware prevents)
    outputs = run(make_tracker(name, config={"class_aware": False}), frames)
    assert {int(r[4]) for rows in outputs for r in rows} == {1}


@pytest.mark.parametrize("name", TRACKERS)
def test_aspect_ratio_filter_is_off_by_default_and_never_deletes_cars(name):
    frames = [[det(100 + 2 * t, 200, 150, 50, cls=CAR), det(400, 200, 100, 50, cls=PEDESTRIAN)] for t in range(5)]
    default = run(make_tracker(name), frames)
    assert all(sorted(rows[:, 6].tolist()) == [CAR, PEDESTRIAN] for rows in default)  # wide boxes reported
    assert TRACKER_CONFIGS[name]().aspect_ratio_thresh == 0
    filtered = run(make_tracker(name, config={"aspect_ratio_thresh": 1.6}), frames)
    assert all(rows[:, 6].tolist() == [CAR] for rows in filtered)  # the wide "pedestrian" is dropped, the car kept


def test_tiny_boxes_are_tracked_but_not_reported():
    frames = [[det(100, 100, 3, 3), det(300, 200, 40, 100)] for _ in range(5)]
    outputs = run(make_tracker("bytetrack"), frames)  # min_box_area 10 px^2
    assert all(rows[:, 4].tolist() == [2] for rows in outputs)
    outputs = run(make_tracker("bytetrack", config={"min_box_area": 0}), frames)
    assert all(rows[:, 4].tolist() == [1, 2] for rows in outputs)


@pytest.mark.parametrize("name", TRACKERS)
def test_ids_are_deterministic_and_start_at_one_per_instance(name):
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(40):
        k = rng.integers(0, 8)
        centres = rng.uniform(50, 600, size=(k, 2))
        frames.append([det(x, y, 40, 90, score=float(s)) for (x, y), s in zip(centres, rng.uniform(0, 1, k))])
    frames[5] = []  # an empty frame in the middle
    first = run(make_tracker(name), frames)
    second = run(make_tracker(name), frames)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    all_ids = sorted({int(i) for rows in first for i in rows[:, 4]})
    assert all_ids[0] == 1
    assert all(rows.shape[1] == 7 for rows in first)


def test_output_rows_carry_box_id_score_and_class():
    tracker = make_tracker("bytetrack")
    rows = tracker.update(np.array([det(100, 200, 40, 100, score=0.8, cls=PEDESTRIAN)]))
    assert rows.shape == (1, 7)
    assert rows[0].tolist() == pytest.approx(box(100, 200, 40, 100) + [1, 0.8, PEDESTRIAN])
    assert tracker.update(np.zeros((0, 6))).shape == (0, 7)
    assert tracker.update(np.array([])).shape == (0, 7)


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(TrackerError, match="unknown tracker 'sort'.*bytetrack, botsort"):
        make_tracker("sort")
    with pytest.raises(TrackerError, match="unknown bytetrack option.*trackthresh"):
        build_config("bytetrack", {"trackthresh": 0.4})
    with pytest.raises(TrackerError, match="cmc='optflow'"):
        make_tracker("botsort", config={"cmc": "optflow"})
    with pytest.raises(TrackerError, match="low_thresh=0.7 is above track_thresh=0.5"):
        make_tracker("bytetrack", config={"low_thresh": 0.7})
    with pytest.raises(TrackerError, match="frame rate"):
        make_tracker("bytetrack", frame_rate=0)
    with pytest.raises(ValueError, match=r"expected \(N, 6\)"):
        make_tracker("bytetrack").update(np.zeros((3, 5)))
    assert build_config("botsort", {"track_thresh": None, "match_thresh": 0.7}).match_thresh == 0.7
    assert isinstance(make_tracker("botsort"), BoTSORT) and type(make_tracker("bytetrack")) is ByteTracker


def _render_patches(boxes_and_colours: list[tuple[list[float], tuple[int, int, int]]]) -> np.ndarray:
    image = np.full((400, 400, 3), 128, dtype=np.uint8)
    for (x1, y1, x2, y2), colour in boxes_and_colours:
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
        image[cy - 4:cy + 5, cx - 4:cx + 5] = colour
    return image


def centre_colour(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """A real (if tiny) appearance model: the mean colour of a 5x5 patch at each box centre."""
    out = []
    for x1, y1, x2, y2 in boxes:
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
        out.append(image[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3).mean(axis=0) + 1.0)
    return np.array(out).reshape(-1, 3)


def test_reid_hook_keeps_identities_when_two_overlapping_objects_swap_places():
    red, blue = (0, 0, 255), (255, 0, 0)
    place_a, place_b = box(150, 200, 100, 200), box(160, 220, 100, 200)
    frames = [[(place_a, red), (place_b, blue)]] * 6 + [[(place_b, red), (place_a, blue)]] * 4  # swap at frame 6

    def colour_per_id(reid) -> dict[int, list[tuple]]:
        """Colour of the detection nearest to each track, before the swap and at the end."""
        tracker = make_tracker("botsort", config={"cmc": "none"}, reid_encoder=reid)
        colours: dict[int, list[tuple]] = {}
        for t, scene in enumerate(frames):
            rows = tracker.update(np.array([b + [0.9, PEDESTRIAN] for b, _ in scene]), _render_patches(scene))
            if t in (5, len(frames) - 1):
                centres = np.array([[(b[0] + b[2]) / 2, (b[1] + b[3]) / 2] for b, _ in scene])
                for row in rows:
                    nearest = np.linalg.norm(centres - (row[:2] + row[2:4]) / 2, axis=1).argmin()
                    colours.setdefault(int(row[4]), []).append(scene[nearest][1])
        return colours

    with_reid = colour_per_id(centre_colour)
    assert with_reid == {1: [red, red], 2: [blue, blue]}
    motion_only = colour_per_id(None)  # IoU alone follows the places: the ids change objects
    assert motion_only == {1: [red, blue], 2: [blue, red]}


def test_defaults_are_the_published_ones():
    byte, bot = TRACKER_CONFIGS["bytetrack"](), TRACKER_CONFIGS["botsort"]()
    assert (byte.track_thresh, byte.low_thresh, byte.effective_new_track_thresh, byte.match_thresh) == \
        pytest.approx((0.5, 0.1, 0.6, 0.8))
    assert (bot.track_thresh, bot.low_thresh, bot.effective_new_track_thresh, bot.match_thresh) == \
        pytest.approx((0.6, 0.1, 0.7, 0.8))
    assert byte.track_buffer == bot.track_buffer == 30 and bot.cmc == "sparseOptFlow"
    assert byte.class_aware and bot.class_aware and byte.aspect_ratio_thresh == bot.aspect_ratio_thresh == 0
    assert make_tracker("botsort").reid_encoder is None  # appearance is opt-in


@pytest.mark.parametrize("name", TRACKERS)
def test_a_newer_track_walking_onto_a_lost_track_keeps_its_id(name):
    # A stands at x=500 for frames 1-7, then is gone; B, born on frame 3, walks right at 4 px a frame and passes
    # A's last position on frames 25-26 (at 498 and 502), overlapping A's lost track enough to be its duplicate.
    # B has been followed for 22 frames, A for 6: B survives (reference rule); judged by start frame, B would be
    # dropped on frame 25 and A would take B's detection on frame 26 (a miss and an id switch).
    frames = []
    for f in range(1, 41):
        dets = [det(500, 300, 40, 100)] if f <= 7 else []
        if f >= 3:
            dets.append(det(498 + 4 * (f - 25), 300, 40, 100))
        frames.append(dets)
    outputs = run(make_tracker(name, frame_rate=30), frames)
    b_ids = [ids_of_object(outputs[f - 1:f], frames[f - 1:f], len(frames[f - 1]) - 1) for f in range(4, 41)]
    assert b_ids == [[2]] * len(b_ids)  # reported on every frame from its confirmation on, always as track 2
    assert all(1 not in rows[:, 4] for rows in outputs[7:])


def test_reference_options_do_what_they_say():
    # a detection scoring exactly track_thresh (0.5) is a high one here; the reference code ignores it
    frames = [[det(100 + 3 * t, 200, 40, 100, score=0.9 if t < 3 else 0.5)] for t in range(6)]
    assert [len(rows) for rows in run(make_tracker("bytetrack"), frames)] == [1] * 6
    reference_rule = make_tracker("bytetrack", {"track_thresh_inclusive": False})
    assert [len(rows) for rows in run(reference_rule, frames)] == [1, 1, 1, 0, 0, 0]
    # a track born after the first frame is reported from its second hit; the reference BoT-SORT reports it at once
    frames = [[det(100, 200, 40, 100)], [det(100, 200, 40, 100), det(300, 200, 40, 100)]]
    assert run(make_tracker("botsort"), frames)[1][:, 4].tolist() == [1]
    assert run(make_tracker("botsort", {"report_unconfirmed": True}), frames)[1][:, 4].tolist() == [1, 2]
    # hidden for one frame more than the 30-frame buffer allows: a new id, but the reference keeps the track a
    # frame longer and finds it again
    frames = _occluded_walk(gap=31)
    assert ids_of_object(run(make_tracker("bytetrack", frame_rate=30), frames), frames, 0)[-1] == 2
    late = make_tracker("bytetrack", {"strict_removal": False}, frame_rate=30)
    assert set(ids_of_object(run(late, frames), frames, 0)) == {1}
    just_in_buffer = _occluded_walk(gap=30)
    assert set(ids_of_object(run(make_tracker("bytetrack", frame_rate=30), just_in_buffer), just_in_buffer, 0)) == {1}

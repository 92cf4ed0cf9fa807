"""Parity with the reference trackers: with the options of ``Config.reference()`` our ByteTrack and BoT-SORT give the
same tracks as the update rules of the reference code (ifzhang/ByteTrack ``yolox/tracker/byte_tracker.py``,
NirAharon/BoT-SORT ``tracker/bot_sort.py``) on seeded generated scenes.

``ReferenceRules`` below is written for this test from the published algorithm, not copied: per-track objects and
the reference's bookkeeping (tracked / lost / removed lists merged by id at the end of each frame, removal list
applied a frame late, duplicates judged by frames followed), a per-track Kalman filter with the reference's noise
model solved by Cholesky (scipy), IoU with cython_bbox's +1-pixel convention, and lap's ``lapjv`` with
``cost_limit`` as the assignment, as the reference ``matching.linear_assignment`` calls it. Our trackers batch the
filter, solve the gain by elimination and keep one list; the test shows those are implementation choices only.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import lap
import numpy as np
import pytest
import scipy.linalg

from trackers import TRACKER_CONFIGS, make_tracker
from trackers.config import TrackerConfig
from yolox_finetune.mot.synthetic import make_scene

TRACKED, LOST, REMOVED = "tracked", "lost", "removed"
POSITION_WEIGHT, VELOCITY_WEIGHT = 1.0 / 20, 1.0 / 160


class ReferenceKalman:
    """Constant-velocity filter of one track: (cx, cy, a, h) for ByteTrack, (cx, cy, w, h) for BoT-SORT."""

    def __init__(self, xywh: bool) -> None:
        self.xywh = xywh
        self.motion = np.eye(8)
        self.motion[:4, 4:] = np.eye(4)

    def measurement(self, tlbr: np.ndarray) -> np.ndarray:
        w, h = tlbr[2] - tlbr[0], tlbr[3] - tlbr[1]
        centre = [tlbr[0] + w / 2, tlbr[1] + h / 2]
        return np.array(centre + ([w, h] if self.xywh else [w / h, h]))

    def box(self, mean: np.ndarray) -> np.ndarray:
        w = mean[2] if self.xywh else mean[2] * mean[3]
        h = mean[3]
        return np.array([mean[0] - w / 2, mean[1] - h / 2, mean[0] + w / 2, mean[1] + h / 2])

    def _std(self, state: np.ndarray, position: float, velocity: float | None, ratio: tuple[float, float]):
        """Standard deviations: position-like entries scale with the box, the aspect ratio has constants."""
        if self.xywh:
            w, h = state[2], state[3]
            out = [position * w, position * h, position * w, position * h]
            if velocity is not None:
                out += [velocity * w, velocity * h, velocity * w, velocity * h]
            return np.array(out)
        h = state[3]
        out = [position * h, position * h, ratio[0], position * h]
        if velocity is not None:
            out += [velocity * h, velocity * h, ratio[1], velocity * h]
        return np.array(out)

    def initiate(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        std = self._std(measurement, 2 * POSITION_WEIGHT, 10 * VELOCITY_WEIGHT, (1e-2, 1e-5))
        return np.r_[measurement, np.zeros(4)], np.diag(std ** 2)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        noise = np.diag(self._std(mean, POSITION_WEIGHT, VELOCITY_WEIGHT, (1e-2, 1e-5)) ** 2)
        return self.motion @ mean, self.motion @ cov @ self.motion.T + noise

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        innovation_cov = cov[:4, :4] + np.diag(self._std(mean, POSITION_WEIGHT, None, (1e-1, 0.0)) ** 2)
        factor = scipy.linalg.cho_factor(innovation_cov, lower=True, check_finite=False)
        gain = scipy.linalg.cho_solve(factor, cov[:, :4].T, check_finite=False).T
        return mean + gain @ (measurement - mean[:4]), cov - gain @ innovation_cov @ gain.T


class RefTrack:
    def __init__(self, tlbr: np.ndarray, score: float, class_id: int) -> None:
        self.tlbr, self.score, self.class_id = tlbr, score, class_id
        self.state, self.is_activated = TRACKED, False
        self.track_id = self.frame_id = self.start_frame = 0
        self.mean = self.cov = None


def _by_id_union(first: list[RefTrack], second: list[RefTrack]) -> list[RefTrack]:
    ids = {t.track_id for t in first}
    return first + [t for t in second if t.track_id not in ids]


def _by_id_difference(first: list[RefTrack], second: list[RefTrack]) -> list[RefTrack]:
    ids = {t.track_id for t in second}
    return [t for t in first if t.track_id not in ids]


def _iou_cost(boxes_a: list[np.ndarray], boxes_b: list[np.ndarray]) -> np.ndarray:
    """1 - IoU with cython_bbox's pixel convention (sizes and overlaps + 1)."""
    a, b = np.reshape(boxes_a, (-1, 4)), np.reshape(boxes_b, (-1, 4))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    overlap = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return 1 - overlap / (area_a[:, None] + area_b[None, :] - overlap)


def _assign(cost: np.ndarray, thresh: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    _, row_to_col, col_to_row = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
    matches = [(r, int(c)) for r, c in enumerate(row_to_col) if c >= 0]
    return matches, [r for r, c in enumerate(row_to_col) if c < 0], [c for c, r in enumerate(col_to_row) if r < 0]


class ReferenceRules:
    """One sequence through the reference ``update`` (motion only, no ReID; BoT-SORT's camera warps are given)."""

    def __init__(self, name: str, config: TrackerConfig, frame_rate: float, warps: list[np.ndarray] | None = None):
        self.config = config
        self.warps = warps
        self.kalman = ReferenceKalman(xywh=name == "botsort")
        self.report_unconfirmed = name == "botsort"  # BoT-SORT returns every tracked track
        self.max_time_lost = int(frame_rate / 30.0 * config.track_buffer)
        self.tracked: list[RefTrack] = []
        self.lost: list[RefTrack] = []
        self.removed: list[RefTrack] = []
        self.frame = 0
        self.last_id = 0
        #: how often each rule that differs from our defaults decided something (the scenes must exercise them).
        self.events: Counter[str] = Counter()

    def _box(self, track: RefTrack) -> np.ndarray:
        return self.kalman.box(track.mean) if track.mean is not None else track.tlbr

    def _cost(self, tracks: list[RefTrack], dets: list[RefTrack], fuse: bool) -> np.ndarray:
        cost = _iou_cost([self._box(t) for t in tracks], [d.tlbr for d in dets])
        if fuse and cost.size:
            cost = 1 - (1 - cost) * np.array([d.score for d in dets])[None, :]
        return cost

    def _update(self, track: RefTrack, det: RefTrack) -> None:
        track.mean, track.cov = self.kalman.update(track.mean, track.cov, self.kalman.measurement(det.tlbr))
        track.state, track.is_activated, track.frame_id = TRACKED, True, self.frame
        track.score, track.class_id = det.score, det.class_id

    def update(self, dets: np.ndarray) -> np.ndarray:
        cfg = self.config
        self.frame += 1
        activated, refound, newly_lost, newly_removed = [], [], [], []
        scores = dets[:, 4]
        self.events["score at track_thresh"] += int((scores == cfg.track_thresh).sum())

        def detections(mask: np.ndarray) -> list[RefTrack]:
            return [RefTrack(d[:4].copy(), float(d[4]), int(d[5])) for d in dets[mask]]

        high = detections(scores > cfg.track_thresh)
        low = detections((scores > cfg.low_thresh) & (scores < cfg.track_thresh))

        unconfirmed = [t for t in self.tracked if not t.is_activated]
        pool = _by_id_union([t for t in self.tracked if t.is_activated], self.lost)
        for track in pool:  # only these are predicted; a track born last frame is not
            mean = track.mean.copy()
            if track.state != TRACKED:  # lost: stop the size from drifting
                mean[7] = 0.0
                if self.kalman.xywh:
                    mean[6] = 0.0
            track.mean, track.cov = self.kalman.predict(mean, track.cov)
        if self.warps is not None:  # BoT-SORT: the camera's warp moves predicted and unconfirmed tracks alike
            warp = self.warps[self.frame - 1]
            turn = np.kron(np.eye(4), warp[:, :2])
            for track in pool + unconfirmed:
                track.mean = turn @ track.mean
                track.mean[:2] += warp[:, 2]
                track.cov = turn @ track.cov @ turn.T

        matches, lone_tracks, lone_high = _assign(self._cost(pool, high, fuse=True), cfg.match_thresh)
        for r, c in matches:
            track = pool[r]
            if track.state != TRACKED:
                self.events["refound after buffer"] += track.state == REMOVED
                refound.append(track)
            else:
                activated.append(track)
            self._update(track, high[c])

        followed = [pool[i] for i in lone_tracks if pool[i].state == TRACKED]
        matches, lone_followed, _ = _assign(self._cost(followed, low, fuse=False), cfg.second_match_thresh)
        for r, c in matches:
            self._update(followed[r], low[c])
            activated.append(followed[r])
        for i in lone_followed:
            followed[i].state = LOST
            newly_lost.append(followed[i])

        remaining = [high[i] for i in lone_high]
        matches, lone_unconfirmed, lone_high = _assign(self._cost(unconfirmed, remaining, fuse=True),
                                                       cfg.unconfirmed_match_thresh)
        for r, c in matches:
            self._update(unconfirmed[r], remaining[c])
            activated.append(unconfirmed[r])
        for i in lone_unconfirmed:
            unconfirmed[i].state = REMOVED
            newly_removed.append(unconfirmed[i])

        for i in lone_high:
            track = remaining[i]
            if track.score < cfg.effective_new_track_thresh:
                continue
            self.last_id += 1
            track.track_id, track.frame_id, track.start_frame = self.last_id, self.frame, self.frame
            track.mean, track.cov = self.kalman.initiate(self.kalman.measurement(track.tlbr))
            track.is_activated = self.frame == 1
            activated.append(track)

        for track in self.lost:
            if self.frame - track.frame_id > self.max_time_lost:
                track.state = REMOVED
                newly_removed.append(track)

        self.tracked = _by_id_union(_by_id_union([t for t in self.tracked if t.state == TRACKED], activated), refound)
        self.lost = _by_id_difference(self.lost, self.tracked) + newly_lost
        self.events["lost again after the buffer"] += len(newly_lost) - len(_by_id_difference(newly_lost, self.removed))
        self.lost = _by_id_difference(self.lost, self.removed)  # this frame's removals wait for the next frame
        self.removed += newly_removed
        self._remove_duplicates()

        reported = self.tracked if self.report_unconfirmed else [t for t in self.tracked if t.is_activated]
        self.events["unconfirmed reported"] += sum(not t.is_activated for t in reported)
        rows = [list(self._box(t)) + [t.track_id, t.score, t.class_id] for t in reported]
        return _filtered(np.array(rows).reshape(-1, 7), cfg)

    def _remove_duplicates(self) -> None:
        cost = _iou_cost([self._box(t) for t in self.tracked], [self._box(t) for t in self.lost])
        drop_tracked, drop_lost = set(), set()
        for i, j in zip(*np.nonzero(cost < self.config.duplicate_thresh)):
            tracked, lost = self.tracked[i], self.lost[j]
            if tracked.frame_id - tracked.start_frame > lost.frame_id - lost.start_frame:
                drop_lost.add(j)
            else:
                drop_tracked.add(i)
            earlier_start_wins = tracked.start_frame <= lost.start_frame  # the rule this project used before
            self.events["duplicate not won by the earlier start"] += earlier_start_wins != (j in drop_lost)
        self.events["duplicates"] += len(drop_tracked) + len(drop_lost)
        self.tracked = [t for i, t in enumerate(self.tracked) if i not in drop_tracked]
        self.lost = [t for j, t in enumerate(self.lost) if j not in drop_lost]


def _filtered(rows: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """The reference demo's output filter (tiny and too-wide boxes), applied to every class."""
    w, h = rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]
    keep = (w * h > config.min_box_area) & ~(w / h > config.aspect_ratio_thresh)
    return rows[keep]


def generated_scenes(count: int = 12, frames: int = 60) -> list[list[np.ndarray]]:
    """Seeded scenes (12 fps) with crossings, misses, false alarms, a second box on some objects (which starts a
    second track that later duplicates the first) and scores on a 0.05 grid, so that some fall exactly on the
    thresholds."""
    scenes = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        dets = make_scene(rng, num_frames=frames, num_objects=14, miss_rate=0.15, false_alarms=1.5).detections
        rows = np.column_stack([dets.box[:, :2], dets.box[:, :2] + dets.box[:, 2:], dets.score, dets.class_id])
        frame = dets.frame
        doubled = rng.random(len(rows)) < 0.15
        second = rows[doubled].copy()
        second[:, :4] += rng.normal(0, 2, (len(second), 4))
        second[:, 4] = rng.uniform(0.5, 0.95, len(second))
        rows, frame = np.concatenate([rows, second]), np.concatenate([frame, frame[doubled]])
        for make in (walk_onto_lost_track, walk_onto_lost_track, hidden_past_the_buffer):
            extra_rows, extra_frames = make(rng, frames)
            rows, frame = np.concatenate([rows, extra_rows]), np.concatenate([frame, extra_frames])
        rows[:, 4] = np.round(rows[:, 4] * 20) / 20
        scenes.append([rows[frame == f] for f in range(1, frames + 1)])
    return scenes


def walk_onto_lost_track(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Detection rows and frames of two same-sized objects: one seen for 5 frames standing still, then gone; the
    other walks for longer and stops where the first one stood, a few frames after it vanished."""
    w, h = rng.uniform(50, 120, 2)
    x, y = rng.uniform(200, 1300), rng.uniform(200, 700)
    gone = int(rng.integers(10, frames - 20))
    arrive, walked = gone + int(rng.integers(2, 8)), int(rng.integers(8, 15))
    step = rng.uniform(-5, 5, 2)
    out_rows, out_frames = [], []
    for f in range(gone - 5, gone):
        out_rows.append([x, y, x + w, y + h, 0.9, 5])
        out_frames.append(f)
    for f in range(arrive - walked, min(arrive + 10, frames + 1)):
        bx, by = np.array([x, y]) - step * max(arrive - f, 0)
        out_rows.append([bx, by, bx + w, by + h, 0.9, 5])
        out_frames.append(f)
    rows = np.array(out_rows)
    rows[:, :4] += rng.normal(0, 1, (len(rows), 4))
    return rows, np.array(out_frames)


def hidden_past_the_buffer(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """An object nearly standing still, seen for 10 frames, hidden for 13 (one more than the 12-frame buffer at
    12 fps), seen for 5, hidden for 2, seen again."""
    w, h = rng.uniform(50, 120, 2)
    corner, step = rng.uniform([200, 200], [1300, 700]), rng.uniform(-0.5, 0.5, 2)
    start = int(rng.integers(1, frames - 35))
    seen = [*range(start, start + 10), *range(start + 23, start + 28), *range(start + 30, start + 36)]
    rows = np.array([[*(corner + step * (f - start)), *(corner + step * (f - start) + [w, h]), 0.9, 1] for f in seen])
    rows[:, :4] += rng.normal(0, 1, (len(rows), 4))
    return rows, np.array(seen)


SCENES = generated_scenes()


def reference_config(name: str) -> TrackerConfig:
    """The reference options, plus the reference demo's aspect-ratio filter applied to every class of the scenes."""
    overrides = {"aspect_ratio_thresh": 1.6, "aspect_ratio_class_ids": [1, 5]}
    if name == "botsort":
        overrides["cmc"] = "none"  # no images here; a test below gives the camera warps instead
    return TRACKER_CONFIGS[name].reference(**overrides)


def camera_warps(frames: int, seed: int) -> list[np.ndarray]:
    """A slightly turning, zooming and shifting camera: one 2x3 similarity warp per frame."""
    rng = np.random.default_rng(1000 + seed)
    warps = []
    for _ in range(frames):
        angle, scale = rng.normal(0, 0.001), 1 + rng.normal(0, 0.001)
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        warps.append(np.array([[c, -s, rng.normal(0, 0.5)], [s, c, rng.normal(0, 0.5)]]))
    return warps


def _run_ours(name: str, config: TrackerConfig, frames: list[np.ndarray],
              warps: list[np.ndarray] | None = None) -> list[np.ndarray]:
    tracker = make_tracker(name, config, frame_rate=12)
    if warps is not None:  # the estimate is given, so this checks how the warp is applied (estimation: test_gmc)
        given = iter(warps)
        tracker.gmc.estimate = lambda image, boxes: next(given)
    return [_by_id(tracker.update(d)) for d in frames]


def _by_id(rows: np.ndarray) -> np.ndarray:
    return rows[np.argsort(rows[:, 4], kind="stable")]


def _run_reference(name: str, config: TrackerConfig, frames: list[np.ndarray],
                   warps: list[np.ndarray] | None = None) -> tuple[list[np.ndarray], Counter]:
    rules = ReferenceRules(name, config, frame_rate=12, warps=warps)
    return [_by_id(rules.update(d)) for d in frames], rules.events


def _same(ours: list[np.ndarray], reference: list[np.ndarray]) -> bool:
    return all(a.shape == b.shape and np.array_equal(a[:, 4], b[:, 4]) and np.allclose(a, b, rtol=0, atol=1e-6)
               for a, b in zip(ours, reference))


@pytest.mark.parametrize("name, moving_camera", [("bytetrack", False), ("botsort", False), ("botsort", True)])
def test_reference_options_give_the_reference_tracks_on_generated_scenes(name, moving_camera):
    config = reference_config(name)
    events: Counter[str] = Counter()
    for seed, frames in enumerate(SCENES):
        warps = camera_warps(len(frames), seed) if moving_camera else None
        ours = _run_ours(name, config, frames, warps)
        reference, scene_events = _run_reference(name, config, frames, warps)
        events += scene_events
        for f, (a, b) in enumerate(zip(ours, reference), start=1):
            assert np.array_equal(a[:, 4], b[:, 4]), f"scene {seed} frame {f}: ids {a[:, 4]} vs reference {b[:, 4]}"
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6, err_msg=f"scene {seed} frame {f}")
    # the scenes exercise the rules where the defaults differ, so the equality above means something
    assert events["score at track_thresh"] > 10 and events["duplicates"] > 3
    assert events["duplicate not won by the earlier start"] > 0
    assert events["refound after buffer"] > 0 and events["lost again after the buffer"] > 0
    if name == "botsort":
        assert events["unconfirmed reported"] > 10


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_each_reference_option_matters(name):
    """Undo one reference option at a time: each changes the output on some scene, so none is redundant (ByteTrack
    reports confirmed tracks only in the reference too, so report_unconfirmed is not undone there)."""
    config = reference_config(name)
    references = [_run_reference(name, config, frames)[0] for frames in SCENES]
    for option, reference_value in type(config).reference_options.items():
        if option == "report_unconfirmed" and name == "bytetrack":
            continue
        changed = dataclasses.replace(config, **{option: not reference_value})
        assert any(not _same(_run_ours(name, changed, frames), ref) for frames, ref in zip(SCENES, references)), \
            option


def test_iou_plus_one_is_the_pixel_inclusive_overlap():
    from trackers.matching import iou_matrix

    a, b = np.array([[0.0, 0.0, 9.0, 9.0]]), np.array([[5.0, 0.0, 14.0, 9.0]])
    assert iou_matrix(a, b)[0, 0] == pytest.approx(4 * 9 / (2 * 81 - 4 * 9))
    assert iou_matrix(a, b, plus_one=True)[0, 0] == pytest.approx(5 * 10 / (2 * 100 - 5 * 10))
    assert 1 - iou_matrix(a, b, plus_one=True)[0, 0] == pytest.approx(_iou_cost([a[0]], [b[0]])[0, 0])


def test_reference_preset_and_yaml_round_trip(tmp_path):
    from trackers.config import load_config, save_config

    bot = TRACKER_CONFIGS["botsort"].reference()
    assert (bot.class_aware, bot.track_thresh_inclusive, bot.strict_removal, bot.report_unconfirmed,
            bot.iou_plus_one) == (False, False, False, True, True)
    byte = TRACKER_CONFIGS["bytetrack"].reference(match_thresh=0.7)
    assert byte.report_unconfirmed is False and byte.match_thresh == 0.7 and byte.track_thresh == 0.5
    defaults = TRACKER_CONFIGS["bytetrack"]()
    assert (defaults.class_aware, defaults.track_thresh_inclusive, defaults.strict_removal,
            defaults.report_unconfirmed, defaults.iou_plus_one) == (True, True, True, False, False)
    assert load_config(save_config(bot, tmp_path / "ref.yaml"))["botsort"] == bot

"""Seeded synthetic MOT scenes (ground truth, detections, imperfect tracker output) for tests and benchmarks.

Objects move at constant velocity through a frame; detections are noisy copies with random misses, low-score
duplicates and false alarms; "tracker output" adds id switches. Nothing here is realistic: it only has to exercise
every branch of trackers and evaluators with known seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yolox_finetune.mot.formats import MotRows, SeqInfo, write_detections, write_gt, write_seqinfo


@dataclass
class Scene:
    gt: MotRows
    detections: MotRows
    info: SeqInfo


def _rows(frame, track_id, box, score, class_id, visibility=None) -> MotRows:
    n = len(frame)
    return MotRows(np.asarray(frame, np.int64).reshape(n), np.asarray(track_id, np.int64).reshape(n),
                   np.asarray(box, float).reshape(n, 4), np.asarray(score, float).reshape(n),
                   np.asarray(class_id, np.int64).reshape(n),
                   np.ones(n) if visibility is None else np.asarray(visibility, float).reshape(n))


def make_scene(rng: np.random.Generator, name: str = "seq", num_frames: int = 40, num_objects: int = 8,
               class_ids: tuple[int, ...] = (1, 5), image_size: tuple[int, int] = (900, 1600),
               miss_rate: float = 0.1, false_alarms: float = 0.5) -> Scene:
    """A scene of ``num_objects`` boxes drifting across a ``(h, w)`` image for ``num_frames`` frames."""
    height, width = image_size
    scale = min(1.0, min(height, width) / 900)  # box sizes shrink with small test images
    gt_cols: list[list] = [[], [], [], [], []]
    det_cols: list[list] = [[], [], [], [], []]
    for obj in range(1, num_objects + 1):
        cls = int(rng.choice(class_ids))
        w, h = rng.uniform(40, 160) * scale, rng.uniform(40, 160) * scale
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        vx, vy = rng.normal(0, 4), rng.normal(0, 2)
        start = int(rng.integers(1, max(2, num_frames // 3)))
        end = int(rng.integers(start + num_frames // 3, num_frames + 1))
        for f in range(start, end + 1):
            box = [x + vx * (f - start), y + vy * (f - start), w, h]
            for col, v in zip(gt_cols, (f, obj, box, 1.0, cls)):
                col.append(v)
            if rng.random() < miss_rate:
                continue
            noisy = np.asarray(box) + rng.normal(0, 3, 4) * [1, 1, 0.5, 0.5]
            score = float(np.clip(rng.beta(5, 2), 0.02, 0.99))
            for col, v in zip(det_cols, (f, -1, noisy, score, cls)):
                col.append(v)
    for f in range(1, num_frames + 1):
        for _ in range(rng.poisson(false_alarms)):
            w, h = rng.uniform(30, 120) * scale, rng.uniform(30, 120) * scale
            box = [rng.uniform(0, width - w), rng.uniform(0, height - h), w, h]
            for col, v in zip(det_cols, (f, -1, box, float(rng.uniform(0.02, 0.6)), int(rng.choice(class_ids)))):
                col.append(v)
    gt = _rows(*gt_cols, visibility=rng.uniform(0.2, 1.0, len(gt_cols[0])))
    dets = _rows(*det_cols)
    order = np.argsort(dets.frame, kind="stable")
    info = SeqInfo(name=name, frame_rate=12.0, seq_length=num_frames, im_width=width, im_height=height)
    return Scene(gt, dets.select(order), info)


def corrupt_tracks(rng: np.random.Generator, gt: MotRows, switch_rate: float = 0.03, miss_rate: float = 0.1,
                   jitter: float = 6.0, false_alarms: float = 0.3) -> MotRows:
    """An imperfect tracker output for ``gt``: jittered boxes, dropped boxes, id switches, false alarms."""
    keep = rng.random(len(gt)) >= miss_rate
    out = gt.select(keep)
    jittered = out.box + rng.normal(0, jitter, out.box.shape) * [1, 1, 0.5, 0.5]
    out = MotRows(out.frame.copy(), out.track_id.copy(), jittered, np.full(len(out), 0.9), out.class_id.copy(),
                  np.ones(len(out)))
    next_id = int(gt.track_id.max(initial=0)) + 100
    for obj in np.unique(out.track_id):
        rows = np.flatnonzero(out.track_id == obj)
        for cut in rows[rng.random(len(rows)) < switch_rate]:
            later = rows[rows >= cut]
            out.track_id[later] = next_id
            next_id += 1
    frames = int(gt.frame.max(initial=1))
    extra = [(f, next_id + i, [rng.uniform(0, 1400), rng.uniform(0, 800), 60, 60], int(rng.choice(gt.class_id)))
             for i, f in enumerate(rng.integers(1, frames + 1, rng.poisson(false_alarms * frames)))]
    if extra:
        fa = _rows([e[0] for e in extra], [e[1] for e in extra], [e[2] for e in extra], np.full(len(extra), 0.5),
                   [e[3] for e in extra])
        out = MotRows(*(np.concatenate([a, b]) for a, b in zip(
            (out.frame, out.track_id, out.box, out.score, out.class_id, out.visibility),
            (fa.frame, fa.track_id, fa.box, fa.score, fa.class_id, fa.visibility))))
    order = np.argsort(out.frame, kind="stable")
    return out.select(order)


def write_dataset(root: str | Path, det_dir: str | Path | None, scenes: list[Scene]) -> None:
    """MOTChallenge layout: ``root/<seq>/{seqinfo.ini,gt/gt.txt}`` and ``det_dir/<seq>.txt``."""
    for scene in scenes:
        seq_dir = Path(root) / scene.info.name
        write_gt(seq_dir / "gt" / "gt.txt", scene.gt)
        write_seqinfo(seq_dir, scene.info)
        if det_dir is not None:
            write_detections(Path(det_dir) / f"{scene.info.name}.txt", scene.detections)

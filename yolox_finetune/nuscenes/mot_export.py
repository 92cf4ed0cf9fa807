"""MOTChallenge-style sequences (one per scene and camera) so trackers can be scored against nuScenes tracks.

Layout: ``<root>/<scene>_<CAM>/seqinfo.ini``, ``img1/000001.jpg`` (symlinks to the source images, in time order)
and ``gt/gt.txt`` rows ``frame,track_id,x,y,w,h,1,class_id,visibility``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from yolox_finetune.mot.formats import MotRows, SeqInfo, empty_rows, write_gt, write_seqinfo

#: nuScenes visibility level -> visible fraction written to gt.txt (the middle of each level's range:
#: 1 = 0-40 %, 2 = 40-60 %, 3 = 60-80 %, 4 = 80-100 %; 0 = unknown).
VISIBILITY_FRACTION: dict[int, float] = {0: 0.0, 1: 0.2, 2: 0.5, 3: 0.7, 4: 0.9}

#: keyframe rate of nuScenes, used when a sequence has a single frame.
DEFAULT_FRAME_RATE = 2


def frame_rate(timestamps_us: list[int]) -> int:
    """Frames per second from keyframe timestamps (microseconds): the median spacing, rounded, at least 1."""
    if len(timestamps_us) < 2:
        return DEFAULT_FRAME_RATE
    spacing = float(np.median(np.diff(np.sort(np.asarray(timestamps_us, dtype=np.int64))))) / 1e6
    return max(1, round(1.0 / spacing)) if spacing > 0 else DEFAULT_FRAME_RATE


def seqinfo(name: str, frames: list[dict]) -> SeqInfo:
    """The sequence's seqinfo.ini content: size and extension of its first frame, rate from its timestamps."""
    return SeqInfo(name=name, frame_rate=frame_rate([f["timestamp"] for f in frames]), seq_length=len(frames),
                   im_width=frames[0]["width"], im_height=frames[0]["height"],
                   im_ext=os.path.splitext(frames[0]["file_name"])[1] or ".jpg")


def gt_rows(frames: list[dict]) -> MotRows:
    """Ground-truth rows ``frame,track_id,x,y,w,h,1,class_id,visibility`` in frame then track order."""
    rows = [(frame["frame_index"], box["track_id"], *box["xyxy"], box["class_id"],
             VISIBILITY_FRACTION.get(box["visibility"], 0.0))
            for frame in frames for box in sorted(frame["boxes"], key=lambda b: b["track_id"])]
    if not rows:
        return empty_rows()
    table = np.array(rows, dtype=np.float64)
    xyxy = table[:, 2:6]
    boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    return MotRows(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), boxes, np.ones(len(rows)),
                   table[:, 6].astype(np.int64), table[:, 7])


def write_sequence(root: Path, frames: list[dict], dataroot: Path) -> Path:
    """Write one sequence; ``frames`` are the camera's keyframes of one scene in time order (frame_index 1..n)."""
    name = frames[0]["sequence"]
    seq_dir = root / name
    (seq_dir / "img1").mkdir(parents=True, exist_ok=True)
    (seq_dir / "gt").mkdir(exist_ok=True)
    for frame in frames:
        ext = os.path.splitext(frame["file_name"])[1] or ".jpg"
        os.symlink(dataroot / frame["file_name"], seq_dir / "img1" / f"{frame['frame_index']:06d}{ext}")
    write_seqinfo(seq_dir, seqinfo(name, frames))
    write_gt(seq_dir / "gt" / "gt.txt", gt_rows(frames))
    return seq_dir

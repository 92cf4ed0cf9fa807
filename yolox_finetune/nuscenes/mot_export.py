"""MOTChallenge-style sequences (one per scene and camera) so trackers can be scored against nuScenes tracks.

Layout: ``<root>/<scene>_<CAM>/seqinfo.ini``, ``classes.json`` (what the class, consider and visibility columns
mean), ``img1/000001.jpg`` (symlinks to the source images) and ``gt/gt.txt`` rows
``frame,track_id,x,y,w,h,consider,class,visibility``:

- frame: numbered by time, ``round((t - t0) * frameRate) + 1`` with t the time of the keyframe's sample (shared by
  the six cameras) and t0 the scene's first sample, so a keyframe missing from the release leaves a gap instead of
  shifting later frames;
- consider: 1 = scored, 0 = ignore entry (below ``--min-visibility``, or a dropped look-alike category with
  ``--ignore-dropped``): a tracker box matched to it is neither a true nor a false positive;
- class: this project's ids (1 car ... 7 bicycle), or MOT17's with ``--mot-classes mot17``;
- visibility: the share of the box's projection that lies inside this image (clipped area / projected area).
  It measures truncation at the image border only; nuScenes' visibility level (occlusion, over all six cameras)
  stays in the COCO annotations and decides ``--min-visibility``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.classes import CLASS_IDS, CLASS_NAMES
from yolox_finetune.mot.formats import (
    ANNOTATED_FRAMES_FILE,
    MotRows,
    SeqInfo,
    empty_rows,
    write_annotated_frames,
    write_gt,
    write_seqinfo,
)

#: values of ``--mot-classes``: the class numbering written to gt.txt.
MOT_CLASS_SCHEMES: tuple[str, ...] = ("ours", "mot17")

#: MOT17's class table (as MOTChallenge and TrackEval number it).
MOT17_CLASSES: dict[int, str] = {
    1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike", 6: "non_mot_vehicle",
    7: "static_person", 8: "distractor", 9: "occluder", 10: "occluder_on_ground", 11: "occluder_full",
    12: "reflection", 13: "crowd",
}
#: our class name -> MOT17 class id. Only pedestrians are MOT17 targets; the rest are written with consider 0.
MOT17_OF_CLASS: dict[str, int] = {"car": 3, "truck": 6, "bus": 6, "trailer": 6, "pedestrian": 1, "motorcycle": 5,
                                  "bicycle": 4}
#: MOT17 class of pedestrian ignore entries: a distractor class, so MOTChallenge tools ignore tracker boxes on them.
MOT17_DISTRACTOR = 8

#: keyframe rate of nuScenes, used when a scene has a single sample.
DEFAULT_FRAME_RATE = 2

#: what each gt.txt column means, written to every sequence's classes.json.
COLUMN_MEANINGS: dict[str, str] = {
    "frame": "1-based, numbered by time: round((t - t0) * frameRate) + 1, so missing keyframes leave gaps",
    "consider": "1 = scored; 0 = ignore entry: a tracker box matched to it (IoU >= 0.5, same class) is neither TP "
                "nor FP",
    "visibility": "share of the projected box inside this image (clipped area / projected area): truncation at "
                  "the image border only, not occlusion",
}


def frame_rate(timestamps_us: list[int]) -> int:
    """Frames per second from keyframe timestamps (microseconds): the median spacing, rounded, at least 1."""
    if len(timestamps_us) < 2:
        return DEFAULT_FRAME_RATE
    spacing = float(np.median(np.diff(np.sort(np.asarray(timestamps_us, dtype=np.int64))))) / 1e6
    return max(1, round(1.0 / spacing)) if spacing > 0 else DEFAULT_FRAME_RATE


def frame_numbers(timestamps_us: list[int], rate: float) -> list[int]:
    """1-based frame numbers from time: ``round((t - t0) * rate) + 1`` (a gap in time stays a gap); two keyframes
    closer than one frame apart still get increasing numbers."""
    numbers: list[int] = []
    if not timestamps_us:
        return numbers
    t0 = timestamps_us[0]
    for t in timestamps_us:
        number = round((t - t0) / 1e6 * rate) + 1
        numbers.append(max(number, numbers[-1] + 1) if numbers else number)
    return numbers


def class_table(scheme: str = "ours") -> dict[int, str]:
    """Class id -> name of the numbering ``scheme`` writes to gt.txt."""
    return dict(MOT17_CLASSES) if scheme == "mot17" else {i + 1: name for i, name in enumerate(CLASS_NAMES)}


def seqinfo(name: str, frames: list[dict]) -> SeqInfo:
    """The sequence's seqinfo.ini content: size and extension of its first frame, rate from its timestamps, length
    up to its last frame number (gaps included)."""
    rate = frames[0].get("frame_rate") or frame_rate([f["timestamp"] for f in frames])
    return SeqInfo(name=name, frame_rate=rate, seq_length=max(f["frame_index"] for f in frames),
                   im_width=frames[0]["width"], im_height=frames[0]["height"],
                   im_ext=os.path.splitext(frames[0]["file_name"])[1] or ".jpg")


def _class_and_consider(box: dict, scheme: str) -> tuple[int, int]:
    """(class, consider) of a box in ``scheme``: under mot17 only pedestrians are scored (MOT17's targets)."""
    consider = 0 if box.get("ignore") else 1
    if scheme != "mot17" or not 1 <= box["class_id"] <= len(CLASS_NAMES):
        return box["class_id"], consider
    mot17 = MOT17_OF_CLASS[CLASS_NAMES[box["class_id"] - 1]]
    if mot17 != MOT17_OF_CLASS["pedestrian"]:
        return mot17, 0
    return (mot17, 1) if consider else (MOT17_DISTRACTOR, 0)


def gt_rows(frames: list[dict], scheme: str = "ours") -> MotRows:
    """Ground-truth rows ``frame,track_id,x,y,w,h,consider,class,visibility`` in frame then track order."""
    rows = []
    for frame in frames:
        for box in sorted(frame["boxes"], key=lambda b: b["track_id"]):
            class_id, consider = _class_and_consider(box, scheme)
            rows.append((frame["frame_index"], box["track_id"], *box["xyxy"], consider, class_id,
                         box.get("in_image", 1.0)))
    if not rows:
        return empty_rows()
    table = np.array(rows, dtype=np.float64)
    xyxy = table[:, 2:6]
    boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    return MotRows(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), boxes, table[:, 6],
                   table[:, 7].astype(np.int64), table[:, 8])


def classes_json(scheme: str = "ours", all_frames: bool = False) -> dict:
    """The content of a sequence's classes.json: the column layout, the class table and what the columns mean."""
    info = {
        "columns": ["frame", "id", "x", "y", "w", "h", "consider", "class", "visibility"],
        "class_scheme": scheme,
        "classes": {str(k): v for k, v in class_table(scheme).items()},
        "meaning": dict(COLUMN_MEANINGS),
    }
    if scheme == "mot17":
        info["meaning"]["class"] = ("MOT17 numbering: only pedestrians (1) are scored; other classes are written "
                                    "with consider 0, pedestrian ignore entries as class 8 (distractor)")
        info["from_our_classes"] = {name: MOT17_OF_CLASS[name] for name in CLASS_IDS}
    else:
        info["meaning"]["class"] = "this project's class ids (not MOT17's: 1 is car, not pedestrian)"
    if all_frames:
        info["meaning"]["frames"] = (f"every camera frame (keyframes and sweeps) numbered at the camera's rate; "
                                     f"ground truth on the keyframes listed in {ANNOTATED_FRAMES_FILE}, and only "
                                     f"those frames are scored")
    return info


def write_sequence(root: Path, frames: list[dict], dataroot: Path, scheme: str = "ours",
                   annotated_frames: list[int] | None = None) -> Path:
    """Write one sequence; ``frames`` are the camera's frames of one scene in time order (frame_index by time).

    ``annotated_frames`` (all-frames sequences): the frames that carry ground truth, written to
    annotated_frames.txt so the evaluator scores those alone.
    """
    name = frames[0]["sequence"]
    seq_dir = root / name
    (seq_dir / "img1").mkdir(parents=True, exist_ok=True)
    (seq_dir / "gt").mkdir(exist_ok=True)
    for frame in frames:
        ext = os.path.splitext(frame["file_name"])[1] or ".jpg"
        os.symlink(dataroot / frame["file_name"], seq_dir / "img1" / f"{frame['frame_index']:06d}{ext}")
    write_seqinfo(seq_dir, seqinfo(name, frames))
    write_gt(seq_dir / "gt" / "gt.txt", gt_rows(frames, scheme))
    atomic_write_json(seq_dir / "classes.json", classes_json(scheme, all_frames=annotated_frames is not None))
    if annotated_frames is not None:
        write_annotated_frames(seq_dir, annotated_frames)
    return seq_dir

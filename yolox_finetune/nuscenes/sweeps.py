"""MOT sequences at the camera's own frame rate: every camera frame of a scene (keyframes and sweeps) in time order.

nuScenes annotates only the 2 Hz keyframes, but its cameras record at 12 Hz. A tracker fed keyframes alone sees
objects jump tens of pixels between frames and its motion model cannot follow; fed every frame it can. So these
sequences hold all frames (``img1/`` links), ground truth on the keyframes only, and ``annotated_frames.txt``
naming the frames that are scored (a keyframe without boxes is still annotated: a tracker box there is a false
positive; a box on a sweep frame is neither).

Frames are numbered by time at the camera's rate (``round((t - t0) * rate) + 1``, rate from the median spacing of
the camera's frames), so a dropped camera frame leaves a gap instead of shifting later frames.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from yolox_finetune.nuscenes.mot_export import frame_numbers, frame_rate
from yolox_finetune.nuscenes.tables import NuScenesTables


def camera_records(tables: NuScenesTables, cameras: list[str]) -> dict[str, list[dict]]:
    """Sequence name (``<scene>_<CAM>``) -> that camera's sample_data records of the scene (keyframes and
    sweeps), in time order."""
    scene_name = {s["token"]: s["name"] for s in tables.tables["scene"]}
    scene_of_sample = {s["token"]: scene_name[s["scene_token"]] for s in tables.tables["sample"]}
    channel_of_calibration = {
        c["token"]: tables.get("sensor", c["sensor_token"])["channel"] for c in tables.tables["calibrated_sensor"]
    }
    wanted = set(cameras)
    records: dict[str, list[dict]] = defaultdict(list)
    for record in tables.tables["sample_data"]:
        channel = channel_of_calibration[record["calibrated_sensor_token"]]
        if channel in wanted:
            records[f"{scene_of_sample[record['sample_token']]}_{channel}"].append(record)
    return {name: sorted(found, key=lambda r: (r["timestamp"], r["token"])) for name, found in records.items()}


def sweep_sequence_frames(name: str, records: list[dict], keyframes: dict[str, dict], skip: set[str]) -> list[dict]:
    """The frames of the all-frames sequence ``name``.

    ``keyframes`` maps a keyframe's sample_data token to its converted frame (boxes); a keyframe absent there (in
    another split, or its image missing) is dropped, as is every record whose file name is in ``skip`` (missing
    images under --allow-missing). Each frame gets ``annotated`` (a converted keyframe) and its ``frame_index`` /
    ``frame_rate`` at the camera's rate.
    """
    kept = [r for r in records if r["filename"] not in skip and (not r["is_key_frame"] or r["token"] in keyframes)]
    if not any(r["token"] in keyframes for r in kept):
        return []
    times = [r["timestamp"] for r in kept]
    rate = frame_rate(times)
    frames = []
    for record, number in zip(kept, frame_numbers(times, rate)):
        keyframe = keyframes.get(record["token"])
        frames.append({
            "file_name": record["filename"], "width": record["width"], "height": record["height"],
            "sample_data_token": record["token"], "timestamp": record["timestamp"], "sequence": name,
            "frame_index": number, "frame_rate": rate, "annotated": keyframe is not None,
            "boxes": keyframe["boxes"] if keyframe else [],
        })
    return frames


def keyframes_by_sequence(frames_of_split: dict[str, list[dict]]) -> dict[tuple[str, str], dict[str, dict]]:
    """(split, sequence) -> {keyframe sample_data token: converted frame}."""
    found: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for split, frames in frames_of_split.items():
        for frame in frames:
            found[(split, frame["sequence"])][frame["sample_data_token"]] = frame
    return dict(sorted(found.items()))


def sweep_file_names(records: dict[str, list[dict]], sequences: list[str]) -> list[str]:
    """File names of the non-keyframe images of ``sequences`` (checked on disk before anything is written)."""
    return [r["filename"] for name in sequences for r in records.get(name, []) if not r["is_key_frame"]]


def sweep_sequences(records: dict[str, list[dict]], frames_of_split: dict[str, list[dict]],
                    skip: set[str]) -> dict[tuple[str, str], list[dict]]:
    """(split, sequence) -> all-frames sequence, for every sequence with at least one converted keyframe."""
    out = {}
    for (split, name), keyframes in keyframes_by_sequence(frames_of_split).items():
        frames = sweep_sequence_frames(name, records.get(name, []), keyframes, skip)
        if frames:
            out[(split, name)] = frames
    return out


def annotated_frame_numbers(frames: list[dict]) -> list[int]:
    return [f["frame_index"] for f in frames if f["annotated"]]


def sequence_root(out: Path, split: str) -> Path:
    """Where the all-frames sequences of ``split`` go: beside the keyframe sequences (``mot/<split>``)."""
    return out / "mot_sweeps" / split

"""nuScenes release -> COCO detection files (and MOT sequences) for camera keyframes, split by scene.

The database is read once in the main process; each scene becomes a compact job of numpy arrays (annotation
boxes, camera poses, (annotation, image) pairs) that a worker turns into 2D boxes with the vectorised projection,
and whose images it checks on disk (one stat per file, in the pool), so a partial download stops the conversion
before anything is written instead of failing hours later in the training loader.
"""

from __future__ import annotations

import difflib
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from loguru import logger
from tabulate import tabulate
from tqdm import tqdm

from yolox_finetune.core.atomic_io import atomic_write_json, check_free_space
from yolox_finetune.core.classes import CLASS_NAMES, class_name
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import check_output_dir, staged_output_dir
from yolox_finetune.nuscenes.class_map import ignore_map, load_class_map
from yolox_finetune.nuscenes.coco_writer import write_coco
from yolox_finetune.nuscenes.mot_export import MOT_CLASS_SCHEMES, frame_numbers, frame_rate, write_sequence
from yolox_finetune.nuscenes.projection import (
    BOX_DEGENERATE,
    BOX_OK,
    in_image_fraction,
    project_boxes_into_frames,
)
from yolox_finetune.nuscenes.split import SPLITS, assign_splits, resolve_split_policy
from yolox_finetune.nuscenes.sweeps import (
    annotated_frame_numbers,
    camera_records,
    keyframes_by_sequence,
    sequence_root,
    sweep_file_names,
    sweep_sequences,
)
from yolox_finetune.nuscenes.tables import NuScenesTables, load_tables

#: reasons an annotation becomes an ignore entry of the MOT ground truth (consider 0) instead of a target.
IGNORE_LOW_VISIBILITY = "low_visibility"
IGNORE_DROPPED = "dropped_category"
#: how many names an error or warning line lists before "...".
_EXAMPLES = 3


@dataclass
class SceneJob:
    """Everything needed to compute one scene's 2D boxes, as arrays (cheap to send to a worker)."""

    scene_name: str
    frames: list[dict]  # camera keyframes, ordered by camera then time; boxes are filled in by reproject_scene
    ann_meta: list[dict]  # per annotation: tokens, category, class id, track id, visibility, ignore reason ("")
    ann_translation: np.ndarray  # (A, 3)
    ann_size: np.ndarray  # (A, 3) w, l, h
    ann_rotation: np.ndarray  # (A, 4)
    frame_pose: np.ndarray  # (F, 3 + 4 + 3 + 4): ego translation, ego rotation, camera translation, camera rotation
    frame_intrinsics: np.ndarray  # (F, 3, 3)
    frame_size: np.ndarray  # (F, 2) width, height
    pair_frame: np.ndarray  # (P,) frame index of each (annotation, image) pair
    pair_ann: np.ndarray  # (P,) annotation index of each pair
    dataroot: str = ""  # where the images are checked ("" skips the check)
    absent_cameras: list[str] = field(default_factory=list)  # chosen cameras with no keyframe in this scene
    missing_keyframes: int = 0  # samples where a camera of this scene has no keyframe (gaps inside a sequence)
    dropped_categories: Counter = field(default_factory=Counter)  # annotations the class map drops, per category


@dataclass
class SceneResult:
    """What a worker sends back for one scene."""

    frames: list[dict]
    degenerate: int
    missing_images: list[str]  # file names (relative to the dataroot) that do not exist


def visibility_level(token: str) -> int:
    """nuScenes visibility token ('1'..'4', '' when unknown) -> level 0..4."""
    return int(token) if token else 0


def instance_track_ids(tables: NuScenesTables) -> dict[str, int]:
    """A deterministic 1-based id per instance: order of first appearance over scenes sorted by name, then by time
    and instance token. Independent of cameras, classes and filters, so ids agree across conversions."""
    scene_name = {s["token"]: s["name"] for s in tables.tables["scene"]}
    sample_key = {s["token"]: (scene_name[s["scene_token"]], s["timestamp"]) for s in tables.tables["sample"]}
    ordered = sorted(tables.tables["sample_annotation"],
                     key=lambda a: (*sample_key[a["sample_token"]], a["instance_token"]))
    ids: dict[str, int] = {}
    for ann in ordered:
        ids.setdefault(ann["instance_token"], len(ids) + 1)
    return ids


def _camera_keyframes(tables: NuScenesTables, cameras: list[str]) -> dict[tuple[str, str], dict]:
    """(sample token, camera channel) -> keyframe sample_data record, for the chosen cameras."""
    channel_of_calibration = {
        c["token"]: tables.get("sensor", c["sensor_token"])["channel"] for c in tables.tables["calibrated_sensor"]
    }
    wanted = set(cameras)
    keyframes = {}
    for record in tables.tables["sample_data"]:
        if record["is_key_frame"]:
            channel = channel_of_calibration[record["calibrated_sensor_token"]]
            if channel in wanted:
                keyframes[(record["sample_token"], channel)] = record
    return keyframes


def build_scene_jobs(tables: NuScenesTables, cameras: list[str], class_map: dict[str, int] | None,
                     min_visibility: int = 0, ignore_categories: dict[str, int] | None = None,
                     check_images: bool = False) -> list[SceneJob]:
    """One job per scene (sorted by name). ``class_map=None`` keeps every category (class id 0), as the devkit.

    Boxes below ``min_visibility`` and boxes of ``ignore_categories`` (category -> class id) are kept as ignore
    entries (``ignore`` = the reason): MOT ground truth writes them with consider 0, COCO leaves them out. Frames
    are numbered by the time of their sample (:func:`frame_numbers`), so a missing keyframe leaves a gap.
    ``check_images`` lets the worker stat every image.
    """
    track_ids = instance_track_ids(tables)
    keyframes = _camera_keyframes(tables, cameras)
    ignore_categories = ignore_categories or {}
    anns_of_sample = defaultdict(list)
    for ann in tables.tables["sample_annotation"]:
        anns_of_sample[ann["sample_token"]].append(ann)
    samples_of_scene = defaultdict(list)
    for sample in tables.tables["sample"]:
        samples_of_scene[sample["scene_token"]].append(sample)

    jobs = []
    for scene in sorted(tables.tables["scene"], key=lambda s: s["name"]):
        samples = sorted(samples_of_scene[scene["token"]], key=lambda s: s["timestamp"])
        ann_meta, ann_boxes, ann_index_of_sample, dropped = [], [], {}, Counter()
        for sample in samples:
            indices = []
            for ann in anns_of_sample[sample["token"]]:
                category = tables.category_of_instance(ann["instance_token"])
                level = visibility_level(ann["visibility_token"])
                if class_map is None or category in class_map:
                    class_id = 0 if class_map is None else class_map[category]
                    ignore = IGNORE_LOW_VISIBILITY if level < min_visibility else ""
                elif category in ignore_categories:
                    class_id, ignore = ignore_categories[category], IGNORE_DROPPED
                else:
                    dropped[category] += 1
                    continue
                indices.append(len(ann_meta))
                ann_meta.append({
                    "sample_annotation_token": ann["token"],
                    "instance_token": ann["instance_token"],
                    "track_id": track_ids[ann["instance_token"]],
                    "visibility": level,
                    "nusc_category": category,
                    "class_id": class_id,
                    "ignore": ignore,
                })
                ann_boxes.append((ann["translation"], ann["size"], ann["rotation"]))
            ann_index_of_sample[sample["token"]] = np.asarray(indices, dtype=np.int64)

        # frames are numbered by the time of their sample (shared by all cameras, present or not)
        sample_times = [sample["timestamp"] for sample in samples]
        rate = frame_rate(sample_times)
        number_of = dict(zip((sample["token"] for sample in samples), frame_numbers(sample_times, rate)))
        frames, poses, intrinsics, sizes, pair_frame, pair_ann = [], [], [], [], [], []
        absent, gaps = [], 0
        for camera in cameras:
            present = [(sample, keyframes[(sample["token"], camera)]) for sample in samples
                       if (sample["token"], camera) in keyframes]
            if not present:
                absent.append(camera)
                continue
            gaps += len(samples) - len(present)
            for sample, record in present:
                number = number_of[sample["token"]]
                calibration = tables.get("calibrated_sensor", record["calibrated_sensor_token"])
                pose = tables.get("ego_pose", record["ego_pose_token"])
                frames.append({
                    "file_name": record["filename"], "width": record["width"], "height": record["height"],
                    "sample_data_token": record["token"], "sample_token": sample["token"],
                    "scene_name": scene["name"], "camera": camera, "sequence": f"{scene['name']}_{camera}",
                    "timestamp": record["timestamp"], "frame_index": number, "frame_rate": rate, "boxes": [],
                })
                poses.append([*pose["translation"], *pose["rotation"], *calibration["translation"],
                              *calibration["rotation"]])
                intrinsics.append(calibration["camera_intrinsic"])
                sizes.append((record["width"], record["height"]))
                members = ann_index_of_sample[sample["token"]]
                pair_frame.append(np.full(len(members), len(frames) - 1, dtype=np.int64))
                pair_ann.append(members)

        boxes = np.asarray([t + s + r for t, s, r in ann_boxes], dtype=np.float64).reshape(-1, 10)
        jobs.append(SceneJob(
            scene_name=scene["name"], frames=frames, ann_meta=ann_meta,
            ann_translation=boxes[:, 0:3], ann_size=boxes[:, 3:6], ann_rotation=boxes[:, 6:10],
            frame_pose=np.asarray(poses, dtype=np.float64).reshape(-1, 14),
            frame_intrinsics=np.asarray(intrinsics, dtype=np.float64).reshape(-1, 3, 3),
            frame_size=np.asarray(sizes, dtype=np.float64).reshape(-1, 2),
            pair_frame=np.concatenate(pair_frame) if pair_frame else np.zeros(0, dtype=np.int64),
            pair_ann=np.concatenate(pair_ann) if pair_ann else np.zeros(0, dtype=np.int64),
            dataroot=str(tables.dataroot) if check_images else "",
            absent_cameras=absent if frames else [], missing_keyframes=gaps, dropped_categories=dropped,
        ))
    return jobs


def reproject_scene(job: SceneJob) -> tuple[list[dict], int]:
    """Fill each frame's ``boxes`` with the 2D boxes of its annotations; returns (frames, degenerate count).

    Each box also gets ``in_image``: the share of its projection inside this image (clipped / projected area).
    """
    f, a = job.pair_frame, job.pair_ann
    boxes, status, extent = project_boxes_into_frames(
        job.ann_translation, job.ann_size, job.ann_rotation, job.frame_pose, job.frame_intrinsics, job.frame_size,
        f, a, with_extent=True)
    fraction = in_image_fraction(boxes, extent)
    for row in np.flatnonzero(status == BOX_OK):
        job.frames[f[row]]["boxes"].append({**job.ann_meta[a[row]], "xyxy": boxes[row].tolist(),
                                            "in_image": round(float(fraction[row]), 4)})
    return job.frames, int(np.count_nonzero(status == BOX_DEGENERATE))


def missing_images(dataroot: str | Path, file_names: list[str]) -> list[str]:
    """The file names (relative to ``dataroot``) that are not files there: one stat each."""
    root = Path(dataroot)
    return [name for name in file_names if not (root / name).is_file()]


def convert_scene(job: SceneJob) -> SceneResult:
    """The worker's task: re-project a scene's boxes and check that its images exist."""
    frames, degenerate = reproject_scene(job)
    missing = missing_images(job.dataroot, [frame["file_name"] for frame in frames]) if job.dataroot else []
    return SceneResult(frames, degenerate, missing)


def _resolve_cameras(tables: NuScenesTables, cameras: list[str] | str | None) -> list[str]:
    """The chosen camera channels; UserError naming the valid ones (and close names) for an unknown one."""
    available = tables.camera_channels()
    if cameras is None or cameras == "all" or list(cameras) == ["all"]:
        return available
    cameras = [cameras] if isinstance(cameras, str) else list(cameras)
    if "all" in cameras:
        raise UserError(f"--cameras all already means every camera; pass either all or some of "
                        f"{', '.join(available)}")
    unknown = [c for c in cameras if c not in available]
    if unknown:
        other_sensors = {s["channel"]: s["modality"] for s in tables.tables["sensor"]}
        first = unknown[0]
        if first in other_sensors:
            why = f" ({first} is a {other_sensors[first]} sensor, not a camera)"
        else:
            close = difflib.get_close_matches(first.upper(), available, n=2)
            why = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UserError(f"unknown camera(s) {', '.join(unknown)} in {tables.dataroot / tables.version}{why}; "
                        f"use 'all' or some of {', '.join(available)}")
    return list(dict.fromkeys(cameras))


def _run_jobs(jobs: list[SceneJob], workers: int, progress: bool):
    bar = dict(total=len(jobs), desc="reprojecting scenes", unit="scene", disable=not progress)
    if workers <= 1 or len(jobs) <= 1:
        yield from tqdm(map(convert_scene, jobs), **bar)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from tqdm(pool.map(convert_scene, jobs, chunksize=1), **bar)


def _link_sources(staging: Path, dataroot: Path, frames: list[dict]) -> None:
    """Symlink each top-level source folder used by file names (``samples``) into the output: no copying."""
    for top in sorted({Path(frame["file_name"]).parts[0] for frame in frames}):
        os.symlink(dataroot / top, staging / top, target_is_directory=True)


def summary_table(summary: dict) -> str:
    """Human-readable summary: scenes, images and boxes per class for each split, ignore entries, skipped boxes."""
    classes = list(CLASS_NAMES)
    rows = []
    for split in SPLITS:
        s = summary["splits"][split]
        rows.append([split, s["scenes"], s["images"], s["boxes"], *(s["boxes_per_class"].get(c, 0) for c in classes),
                     sum(s["ignore_entries"].values()), s["skipped_degenerate"]])
    headers = ["split", "scenes", "images", "boxes", *classes, "ignore", "degenerate"]
    return tabulate(rows, headers=headers, tablefmt="simple")


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (", ..." if len(names) > _EXAMPLES else "")


def _report_scene_gaps(jobs: list[SceneJob], summary: dict) -> None:
    """Count (in the summary) and report empty scenes, cameras absent from a scene, missing keyframes and the
    annotations of categories the class map drops."""
    empty = [job.scene_name for job in jobs if not job.frames]
    absent = {job.scene_name: job.absent_cameras for job in jobs if job.absent_cameras}
    gaps = {job.scene_name: job.missing_keyframes for job in jobs if job.missing_keyframes}
    dropped = sum((job.dropped_categories for job in jobs), Counter())
    summary.update(empty_scenes=empty, absent_cameras=absent, missing_keyframes=sum(gaps.values()),
                   dropped_categories=dict(sorted(dropped.items())))
    if dropped:
        logger.info(f"{sum(dropped.values())} annotation(s) of {len(dropped)} categories the class map does not "
                    f"keep are left out ({_examples(sorted(dropped, key=dropped.get, reverse=True))}; "
                    f"summary.json: dropped_categories)")
    if empty:
        logger.warning(f"{len(empty)} scene(s) have no keyframe of the chosen cameras ({_examples(empty)}); they "
                       f"add no images (summary.json: empty_scenes)")
    if absent:
        pairs = [f"{scene} {camera}" for scene, cameras in absent.items() for camera in cameras]
        logger.warning(f"{len(pairs)} camera(s) are absent from a scene ({_examples(pairs)}); those sequences are "
                       f"not written (summary.json: absent_cameras)")
    if gaps:
        logger.warning(f"{sum(gaps.values())} camera keyframe(s) are missing inside {len(gaps)} scene(s) "
                       f"({_examples(sorted(gaps))}); frames are numbered by time, so the MOT sequences keep a gap "
                       f"there (summary.json: missing_keyframes)")


def _check_images(missing: list[str], total: int, dataroot: Path, version: str, allow_missing: bool) -> None:
    if not missing:
        return
    if not allow_missing:
        raise UserError(f"{len(missing)} of {total} camera keyframe images listed in {version} are missing under "
                        f"{dataroot} (first: {_examples(missing)}); finish the download (extract every samples "
                        f"archive of the release into the dataroot) or pass --allow-missing to convert without them")
    logger.warning(f"--allow-missing: skipping {len(missing)} of {total} keyframe images that are missing under "
                   f"{dataroot} (first: {_examples(missing)}); their frames are left out of COCO and MOT")


def _check_training_targets(frames_of_split: dict[str, list[dict]], jobs: list[SceneJob], mapping: dict[str, int],
                            min_visibility: int, cameras: list[str]) -> None:
    """An annotated release whose train split ends up with no box to learn from is an error, not an empty dataset;
    an empty val or test split of an annotated release is a warning."""
    targets = {split: sum(1 for f in frames for b in f["boxes"] if not b["ignore"])
               for split, frames in frames_of_split.items()}
    for split in ("val", "test"):
        if frames_of_split[split] and not targets[split]:
            logger.warning(f"the {split} split has {len(frames_of_split[split])} images but no box of the mapped "
                           f"classes: its scores will be meaningless")
    if targets["train"]:
        return
    train = frames_of_split["train"]
    low = sum(1 for f in train for b in f["boxes"] if b["ignore"] == IGNORE_LOW_VISIBILITY)
    dropped = sum(sum(job.dropped_categories.values()) for job in jobs)
    causes = [f"{len(train)} images from --cameras {' '.join(cameras)}", f"the class map keeps {len(mapping)} "
              f"categories ({_examples(sorted(mapping))})", f"{dropped} annotations are of other categories"]
    if low:
        causes.append(f"{low} boxes are below --min-visibility {min_visibility}")
    raise UserError(f"the train split would hold no annotated box ({'; '.join(causes)}); nothing was written; "
                    f"check --class-map/--class-map-update, --cameras and --min-visibility (or --split-policy "
                    f"hash if every scene is a held-out one)")


def _check_sweep_images(missing: list[str], total: int, dataroot: Path, version: str, allow_missing: bool) -> None:
    if not missing:
        return
    if not allow_missing:
        raise UserError(f"--sweeps: {len(missing)} of {total} camera sweep images listed in {version} are missing "
                        f"under {dataroot} (first: {_examples(missing)}); extract the release's sweeps archives into "
                        f"the dataroot, drop --sweeps to track on keyframes only, or pass --allow-missing")
    logger.warning(f"--allow-missing: skipping {len(missing)} of {total} sweep images that are missing under "
                   f"{dataroot} (first: {_examples(missing)}); the all-frames sequences have gaps there")


#: the name this writer marks its output folder with.
TOOL = "convert_nuscenes"
#: bytes written per image and per box (COCO records, MOT rows, image links), measured on the synthetic set
#: and rounded up: enough to refuse a disk that cannot hold the result before the work starts.
_BYTES_PER_IMAGE, _BYTES_PER_BOX, _MOT_BYTES_PER_BOX = 1024, 320, 96
#: per MOT sequence: seqinfo.ini and classes.json.
_MOT_BYTES_PER_SEQUENCE = 1536


def estimated_output_bytes(frames_of_split: dict[str, list[dict]], mot: bool) -> int:
    """A generous estimate of what a conversion writes (the images are linked, not copied)."""
    images = sum(len(frames) for frames in frames_of_split.values())
    boxes = sum(len(f["boxes"]) for frames in frames_of_split.values() for f in frames)
    sequences = len({(split, f["sequence"]) for split, frames in frames_of_split.items() for f in frames})
    return (images * _BYTES_PER_IMAGE + boxes * (_BYTES_PER_BOX + (_MOT_BYTES_PER_BOX if mot else 0))
            + (sequences * _MOT_BYTES_PER_SEQUENCE if mot else 0))


def convert_nuscenes(dataroot: str | Path, version: str, out: str | Path, cameras: list[str] | str | None = "all",
                     min_visibility: int = 0, val_ratio: float = 0.2, seed: int = 42,
                     class_map: str | Path | None = None, mot: bool = False, workers: int = 1,
                     overwrite: bool = False, test_ratio: float = 0.2, split_policy_name: str = "auto",
                     progress: bool = True, allow_missing: bool = False, ignore_dropped: bool = False,
                     mot_classes: str = "ours", class_map_update: str | Path | None = None,
                     sweeps: bool = False) -> dict:
    """Convert camera keyframes of a nuScenes release to ``out/annotations/{train,val,test}.json`` (+ MOT).

    Returns the summary dict (also written to ``out/summary.json``). Raises UserError on bad input (missing images
    included), before anything is written; an existing ``out`` is only replaced (with ``overwrite``) once the new
    one is complete. ``sweeps`` (with ``mot``) also writes every camera frame's sequence at the camera's rate
    to ``out/mot_sweeps/<split>/`` (:mod:`yolox_finetune.nuscenes.sweeps`).
    """
    if not 0 <= min_visibility <= 4:
        raise UserError(f"--min-visibility {min_visibility} is outside 0..4; pass a nuScenes visibility level")
    if workers < 1:
        raise UserError(f"--workers {workers} must be at least 1")
    if mot_classes not in MOT_CLASS_SCHEMES:
        raise UserError(f"--mot-classes {mot_classes!r} is unknown; use {' or '.join(MOT_CLASS_SCHEMES)}")
    if sweeps and not mot:
        raise UserError("--sweeps writes MOT sequences at the camera's frame rate; add --mot")
    load_class_map(class_map, class_map_update)  # a broken map file fails before the (slow) tables load
    dataroot = Path(dataroot).expanduser().resolve()
    tables = load_tables(dataroot, version)
    out = check_output_dir(out, TOOL, overwrite, protected=[dataroot])
    chosen_cameras = _resolve_cameras(tables, cameras)
    known = {c["name"] for c in tables.tables["category"]}
    mapping = load_class_map(class_map, class_map_update, categories=known, release=version)
    for category in sorted(set(mapping) - known):
        logger.warning(f"class map category {category!r} does not occur in {version}")
    scene_names = [s["name"] for s in tables.tables["scene"]]
    policy = resolve_split_policy(split_policy_name, scene_names, version)
    annotated = bool(tables.tables["sample_annotation"])
    if annotated:
        split_of = assign_splits(scene_names, version, val_ratio, test_ratio, seed, policy)
    else:
        split_of = {name: "test" for name in scene_names}
        policy = "test-only"
        logger.warning(f"{version} has no annotations: all {len(scene_names)} scenes go to the test split "
                       f"(detections and tracking run on it; there is nothing to train on or to score)")

    ignored = ignore_map(mapping) if ignore_dropped else {}
    jobs = build_scene_jobs(tables, chosen_cameras, mapping, min_visibility, ignored, check_images=True)
    frames_of_split = {split: [] for split in SPLITS}
    degenerate_of_split = Counter()
    missing, listed = [], 0
    for job, result in zip(jobs, _run_jobs(jobs, workers, progress)):
        absent = set(result.missing_images)
        listed += len(result.frames)
        missing.extend(result.missing_images)
        frames_of_split[split_of[job.scene_name]].extend(f for f in result.frames if f["file_name"] not in absent)
        degenerate_of_split[split_of[job.scene_name]] += result.degenerate
    _check_images(missing, listed, dataroot, version, allow_missing)
    if annotated:
        _check_training_targets(frames_of_split, jobs, mapping, min_visibility, chosen_cameras)
    sweep_records, missing_sweeps = {}, []
    if sweeps:
        sweep_records = camera_records(tables, chosen_cameras)
        names = sorted({name for _, name in keyframes_by_sequence(frames_of_split)})
        wanted = sweep_file_names(sweep_records, names)
        missing_sweeps = missing_images(dataroot, wanted)
        _check_sweep_images(missing_sweeps, len(wanted), dataroot, version, allow_missing)

    summary = {
        "dataroot": str(dataroot), "version": version, "out": str(out), "cameras": chosen_cameras,
        "annotated": annotated, "min_visibility": min_visibility, "ignore_dropped": sorted(ignored),
        "mot_classes": mot_classes, "split_policy": policy, "seed": seed, "val_ratio": val_ratio,
        "test_ratio": test_ratio, "splits": {}, "skipped_degenerate": sum(degenerate_of_split.values()),
        "missing_images": len(missing), "scene_splits": dict(sorted(split_of.items())), "mot_sequences": 0,
    }
    if sweeps:
        summary.update(mot_sweep_sequences=0, missing_sweep_images=len(missing_sweeps), sweep_frames={})
    _report_scene_gaps(jobs, summary)
    check_free_space(out.parent, estimated_output_bytes(frames_of_split, mot), "the conversion")
    with staged_output_dir(out, TOOL) as staging:
        all_frames = [f for frames in frames_of_split.values() for f in frames]
        if all_frames:
            _link_sources(staging, dataroot, all_frames)
        for split in SPLITS:
            frames = frames_of_split[split]
            write_coco(staging / "annotations" / f"{split}.json", frames, split, version)
            boxes = [b for f in frames for b in f["boxes"]]
            per_class = Counter(class_name(b["class_id"]) for b in boxes if not b["ignore"])
            summary["splits"][split] = {
                "scenes": sum(1 for s in split_of.values() if s == split), "images": len(frames),
                "boxes": sum(per_class.values()), "boxes_per_class": dict(sorted(per_class.items())),
                "ignore_entries": dict(sorted(Counter(b["ignore"] for b in boxes if b["ignore"]).items())),
                "skipped_degenerate": degenerate_of_split[split],
            }
        if mot:
            sequences = defaultdict(list)
            for split in SPLITS:
                for frame in frames_of_split[split]:
                    sequences[(split, frame["sequence"])].append(frame)
            for (split, _), frames in tqdm(sorted(sequences.items()), desc="writing MOT sequences", unit="seq",
                                           disable=not progress):
                write_sequence(staging / "mot" / split, frames, dataroot, mot_classes)
            summary["mot_sequences"] = len(sequences)
        if sweeps:
            all_frames = sweep_sequences(sweep_records, frames_of_split, set(missing_sweeps))
            for (split, _), frames in tqdm(sorted(all_frames.items()), desc="writing all-frames sequences",
                                           unit="seq", disable=not progress):
                write_sequence(sequence_root(staging, split), frames, dataroot, mot_classes,
                               annotated_frames=annotated_frame_numbers(frames))
            summary["mot_sweep_sequences"] = len(all_frames)
            summary["sweep_frames"] = {split: sum(len(f) for (s, _), f in all_frames.items() if s == split)
                                       for split in SPLITS}
        atomic_write_json(staging / "summary.json", summary)
    return summary

"""The built-in synthetic nuScenes dataset: the project's default data when the real one is not at hand.

It is written in the real v1.0 schema (all 13 tables, ``nuscenes.nuscenes.NuScenes`` loads it), with nuScenes' six
cameras and top lidar, an ego car driving a street, road users of the seven classes plus others that the converter
drops (construction vehicles, barriers, traffic cones), keyframes at 2 Hz with camera sweeps in between, and JPEGs
where every object is drawn where the converter's projection puts it, in a colour and shape typical of its class.

Scene names are ``synth-0000``, ``synth-0001``, ...: they are not official nuScenes names, so the converter splits
them with its seeded rule (train / val / test all non-empty from three scenes on).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import check_output_dir, staged_output_dir
from yolox_finetune.nuscenes.geometry import world_to_sensor, yaw_quaternion
from yolox_finetune.nuscenes.synthetic.camera_rig import (
    CAMERA_CHANNELS,
    LIDAR_CHANNEL,
    camera_calibrations,
    lidar_calibration,
)
from yolox_finetune.nuscenes.synthetic.render import CameraView, render_view, snapshot, visibility_token
from yolox_finetune.nuscenes.synthetic.world import KINDS, World, annotate_windows, make_world

SYNTHETIC_VERSION = "v1.0-synthetic"
DEFAULT_IMAGE_SIZE = (800, 450)
KEYFRAME_INTERVAL_US = 500_000  # nuScenes annotates at 2 Hz
#: camera trigger delays after the lidar keyframe (µs): the cameras fire one after another as the lidar sweeps.
CAMERA_DELAY_US = dict(zip(CAMERA_CHANNELS, (10_000, 18_000, 30_000, 40_000, 48_000, 4_000)))

NUSCENES_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("animal", "All animals, e.g. cats, rats, dogs, deer, birds."),
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    ("human.pedestrian.personal_mobility", "A small electric or self-propelled vehicle."),
    ("human.pedestrian.police_officer", "Police officer."),
    ("human.pedestrian.stroller", "Strollers."),
    ("human.pedestrian.wheelchair", "Wheelchairs."),
    ("movable_object.barrier", "Temporary road barrier placed in the scene in order to redirect traffic."),
    ("movable_object.debris", "Movable object that is left on the driveable surface."),
    ("movable_object.pushable_pullable", "Objects that a pedestrian may push or pull."),
    ("movable_object.trafficcone", "All types of traffic cone."),
    ("static_object.bicycle_rack", "Area or device intended to park or secure the bicycles in a row."),
    ("vehicle.bicycle", "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds."),
    ("vehicle.bus.bendy", "Bendy bus subcategory."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    ("vehicle.car", "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans."),
    ("vehicle.construction", "Vehicles primarily designed for construction."),
    ("vehicle.emergency.ambulance", "All types of ambulances."),
    ("vehicle.emergency.police", "All types of police vehicles."),
    ("vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly."),
    ("vehicle.trailer", "Any vehicle trailer, both for trucks, cars and bikes."),
    ("vehicle.truck", "Vehicles primarily designed to haul cargo: pick-ups, lorrys, trucks and semi-tractors."),
)
ATTRIBUTES: tuple[str, ...] = (
    "vehicle.moving", "vehicle.stopped", "vehicle.parked", "cycle.with_rider", "cycle.without_rider",
    "pedestrian.sitting_lying_down", "pedestrian.standing", "pedestrian.moving",
)
VISIBILITY_LEVELS: tuple[tuple[str, str], ...] = (
    ("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100"),
)


class _Tokens:
    """Deterministic 32-hex tokens: the same seed and key always give the same token."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, *key) -> str:
        return hashlib.md5(f"{self.seed}/{'/'.join(map(str, key))}".encode()).hexdigest()


def _chain(records: list[dict]) -> None:
    """Link records (already in time order) through their ``prev`` / ``next`` tokens."""
    for before, after in zip(records, records[1:]):
        before["next"], after["prev"] = after["token"], before["token"]


def _lidar_points(world: World, t: float, actors: list[int], ego: tuple, calibration: dict,
                  rng: np.random.Generator) -> tuple[np.ndarray, dict[int, int]]:
    """A sparse LIDAR_TOP point cloud (N, 5) in the sensor frame: ground ring plus points on annotated objects."""
    ego_xyz, ego_yaw = ego
    angle, radius = rng.uniform(-np.pi, np.pi, 800), rng.uniform(3.0, 40.0, 800)
    clouds = [np.stack([ego_xyz[0] + radius * np.cos(angle), ego_xyz[1] + radius * np.sin(angle),
                        np.zeros(800)], axis=1)]
    counts = {}
    for index in actors:
        actor = world.actors[index]
        centre, yaw = actor.pose(world.road, t)
        distance = float(np.linalg.norm(centre[:2] - ego_xyz[:2]))
        count = int(np.clip(20000.0 / max(distance, 1.0) ** 2, 1, 300))
        local = rng.uniform(-0.5, 0.5, size=(count, 3)) * np.asarray(actor.size_wlh)[[1, 0, 2]]
        c, s = np.cos(yaw), np.sin(yaw)
        clouds.append(local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) + centre)
        counts[index] = count
    points = np.concatenate(clouds)
    in_lidar = world_to_sensor(points[None], ego_xyz[None], yaw_quaternion(ego_yaw)[None],
                               np.asarray(calibration["translation"])[None],
                               np.asarray(calibration["rotation"])[None])[0]
    cloud = np.zeros((len(points), 5), dtype=np.float32)
    cloud[:, :3] = in_lidar
    cloud[:, 3] = rng.uniform(0, 100, len(points))
    return cloud, counts


class _DatasetWriter:
    """Accumulates the 13 tables and writes sensor files while scenes are generated."""

    def __init__(self, root: Path, seed: int, image_size: tuple[int, int], sweeps: int, render_images: bool):
        self.root, self.image_size, self.sweeps, self.render_images = root, image_size, sweeps, render_images
        self.token = _Tokens(seed)
        self.tables: dict[str, list[dict]] = {name: [] for name in (
            "attribute", "calibrated_sensor", "category", "ego_pose", "instance", "log", "map", "sample",
            "sample_annotation", "sample_data", "scene", "sensor", "visibility")}
        self.category_token = {}
        for index, (name, description) in enumerate(NUSCENES_CATEGORIES):
            self.category_token[name] = self.token("category", name)
            self.tables["category"].append({"token": self.category_token[name], "name": name,
                                            "description": description, "index": index})
        self.attribute_token = {name: self.token("attribute", name) for name in ATTRIBUTES}
        self.tables["attribute"] = [{"token": t, "name": n, "description": n} for n, t in self.attribute_token.items()]
        self.tables["visibility"] = [{"token": token, "level": level,
                                      "description": f"visibility of whole object is between {level[1:]}%"}
                                     for token, level in VISIBILITY_LEVELS]
        self.sensor_token = {}
        for channel in (*CAMERA_CHANNELS, LIDAR_CHANNEL):
            self.sensor_token[channel] = self.token("sensor", channel)
            self.tables["sensor"].append({"token": self.sensor_token[channel], "channel": channel,
                                          "modality": "lidar" if channel == LIDAR_CHANNEL else "camera"})
        self.boxes_per_category = Counter()

    def _ego_pose(self, world: World, t_us: int, scene_start_us: int) -> tuple[dict, tuple]:
        ego_xyz, ego_yaw = world.ego_pose((t_us - scene_start_us) / 1e6)
        record = {"token": self.token("ego_pose", t_us), "timestamp": t_us, "translation": ego_xyz.tolist(),
                  "rotation": yaw_quaternion(ego_yaw).tolist()}
        self.tables["ego_pose"].append(record)
        return record, (ego_xyz, ego_yaw)

    def _sample_data(self, key: str, sample_token: str, pose: dict, calibration: dict, t_us: int, keyframe: bool,
                     filename: str, fileformat: str, size: tuple[int, int]) -> dict:
        record = {"token": self.token("sample_data", key), "sample_token": sample_token,
                  "ego_pose_token": pose["token"], "calibrated_sensor_token": calibration["token"],
                  "timestamp": t_us, "fileformat": fileformat, "is_key_frame": keyframe, "height": size[1],
                  "width": size[0], "filename": filename, "prev": "", "next": ""}
        self.tables["sample_data"].append(record)
        return record

    def _camera_image(self, world, calibration, pose_record, scene, t_objects, rng, path, with_ids):
        view = CameraView(np.asarray(pose_record["translation"]), np.asarray(pose_record["rotation"]),
                          np.asarray(calibration["translation"]), np.asarray(calibration["rotation"]),
                          np.asarray(calibration["camera_intrinsic"]), *self.image_size)
        image, visibility = render_view(view, world, t_objects, rng, with_ids=with_ids, scene=scene)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {path}")
        return visibility

    def add_scene(self, index: int, samples: int, rng: np.random.Generator) -> None:
        name = f"synth-{index:04d}"
        world = make_world(rng, duration=(samples - 1) * KEYFRAME_INTERVAL_US / 1e6)
        start_us = 1_538_000_000_000_000 + index * 3_600_000_000
        key_us = [start_us + i * KEYFRAME_INTERVAL_US for i in range(samples)]
        annotate_windows(world, [(t - start_us) / 1e6 for t in key_us])

        log_token = self.token("log", name)
        self.tables["log"].append({"token": log_token, "logfile": f"{name}-log", "vehicle": "synth-ego",
                                   "date_captured": "2018-09-27", "location": "synthetic-town"})
        calibrations = {}
        for calibration in [*camera_calibrations(self.image_size, rng), lidar_calibration()]:
            channel = calibration.pop("channel")
            calibration.update(token=self.token("calibrated_sensor", name, channel),
                               sensor_token=self.sensor_token[channel])
            self.tables["calibrated_sensor"].append(calibration)
            calibrations[channel] = calibration

        sample_records = [{"token": self.token("sample", name, i), "timestamp": t, "prev": "", "next": "",
                           "scene_token": self.token("scene", name)} for i, t in enumerate(key_us)]
        _chain(sample_records)
        self.tables["sample"].extend(sample_records)
        self.tables["scene"].append({"token": self.token("scene", name), "log_token": log_token,
                                     "nbr_samples": samples, "first_sample_token": sample_records[0]["token"],
                                     "last_sample_token": sample_records[-1]["token"], "name": name,
                                     "description": "Synthetic street, ego driving, mixed traffic and pedestrians."})

        annotated = [[a for a, actor in enumerate(world.actors) if i in actor.annotated_keyframes]
                     for i in range(samples)]
        visible = Counter()
        silhouette = Counter()
        lidar_counts: dict[tuple[int, int], int] = {}
        per_channel: dict[str, list[dict]] = {c: [] for c in (*CAMERA_CHANNELS, LIDAR_CHANNEL)}
        sweep_offsets = [k * KEYFRAME_INTERVAL_US // (self.sweeps + 1) for k in range(1, self.sweeps + 1)]
        for i, t_us in enumerate(key_us):
            t = (t_us - start_us) / 1e6
            key_scene = snapshot(world, t) if self.render_images else None
            sweep_scenes = ([snapshot(world, t + dt / 1e6) for dt in sweep_offsets]
                            if self.render_images and i + 1 < samples else [None] * len(sweep_offsets))
            for channel in CAMERA_CHANNELS:
                cam_us = t_us + CAMERA_DELAY_US[channel]
                pose_record, pose = self._ego_pose(world, cam_us, start_us)
                stem = f"{name}__{channel}__{cam_us}.jpg"
                per_channel[channel].append(self._sample_data(
                    f"{name}/{channel}/{cam_us}", sample_records[i]["token"], pose_record, calibrations[channel],
                    cam_us, True, f"samples/{channel}/{stem}", "jpg", self.image_size))
                if self.render_images:  # objects at the annotation time, as the labels describe them
                    seen = self._camera_image(world, calibrations[channel], pose_record, key_scene, t, rng,
                                              self.root / "samples" / channel / stem, with_ids=True)
                    for actor_index, (vis_px, sil_px) in seen.items():
                        visible[(i, actor_index)] += vis_px
                        silhouette[(i, actor_index)] += sil_px
                if i + 1 < samples:
                    for dt, sweep_scene in zip(sweep_offsets, sweep_scenes):
                        sweep_us = cam_us + dt
                        sweep_pose_record, _ = self._ego_pose(world, sweep_us, start_us)
                        sweep_stem = f"{name}__{channel}__{sweep_us}.jpg"
                        per_channel[channel].append(self._sample_data(
                            f"{name}/{channel}/{sweep_us}", sample_records[i + 1]["token"], sweep_pose_record,
                            calibrations[channel], sweep_us, False, f"sweeps/{channel}/{sweep_stem}", "jpg",
                            self.image_size))
                        if self.render_images:
                            self._camera_image(world, calibrations[channel], sweep_pose_record, sweep_scene,
                                               t + dt / 1e6, rng,
                                               self.root / "sweeps" / channel / sweep_stem, with_ids=False)
            pose_record, pose = self._ego_pose(world, t_us, start_us)
            stem = f"{name}__{LIDAR_CHANNEL}__{t_us}.pcd.bin"
            per_channel[LIDAR_CHANNEL].append(self._sample_data(
                f"{name}/{LIDAR_CHANNEL}/{t_us}", sample_records[i]["token"], pose_record,
                calibrations[LIDAR_CHANNEL], t_us, True, f"samples/{LIDAR_CHANNEL}/{stem}", "pcd", (0, 0)))
            cloud, counts = _lidar_points(world, t, annotated[i], pose, calibrations[LIDAR_CHANNEL], rng)
            lidar_counts.update({(i, a): n for a, n in counts.items()})
            if self.render_images:
                (self.root / "samples" / LIDAR_CHANNEL).mkdir(parents=True, exist_ok=True)
                cloud.tofile(self.root / "samples" / LIDAR_CHANNEL / stem)
        for records in per_channel.values():
            _chain(sorted(records, key=lambda r: r["timestamp"]))

        for a, actor in enumerate(world.actors):
            if not actor.annotated_keyframes:
                continue
            instance_token = self.token("instance", name, a)
            chain = []
            for i in actor.annotated_keyframes:
                centre, yaw = actor.pose(world.road, (key_us[i] - start_us) / 1e6)
                if self.render_images:
                    level = visibility_token(visible[(i, a)], silhouette[(i, a)])
                else:
                    level = str(rng.choice(["1", "2", "3", "4"], p=[0.15, 0.1, 0.15, 0.6]))
                chain.append({
                    "token": self.token("sample_annotation", name, a, i), "sample_token": sample_records[i]["token"],
                    "instance_token": instance_token, "visibility_token": level,
                    "attribute_tokens": [self.attribute_token[actor.attribute]] if actor.attribute else [],
                    "translation": centre.tolist(), "size": list(actor.size_wlh),
                    "rotation": yaw_quaternion(yaw).tolist(), "prev": "", "next": "",
                    "num_lidar_pts": lidar_counts.get((i, a), 1), "num_radar_pts": 0,
                })
            _chain(chain)
            self.tables["sample_annotation"].extend(chain)
            self.tables["instance"].append({
                "token": instance_token, "category_token": self.category_token[actor.kind.category],
                "nbr_annotations": len(chain), "first_annotation_token": chain[0]["token"],
                "last_annotation_token": chain[-1]["token"]})
            self.boxes_per_category[actor.kind.category] += len(chain)

    def finish(self) -> None:
        map_token = self.token("map", "synthetic-town")
        self.tables["map"].append({"token": map_token, "log_tokens": [r["token"] for r in self.tables["log"]],
                                   "category": "semantic_prior", "filename": f"maps/{map_token}.png"})
        (self.root / "maps").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(self.root / "maps" / f"{map_token}.png"), np.full((64, 64), 255, dtype=np.uint8))
        for name, records in self.tables.items():
            atomic_write_json(self.root / SYNTHETIC_VERSION / f"{name}.json", records, indent=None)


#: the name this writer marks its output folder with.
TOOL = "make_synthetic_nuscenes"
#: the tables a scene adds records to (the others are fixed lists written once).
SCENE_TABLES = ("calibrated_sensor", "ego_pose", "instance", "log", "sample", "sample_annotation", "sample_data",
                "scene")


def _generate_scene(root: Path, seed: int, image_size: tuple[int, int], sweeps: int, render_images: bool,
                    index: int, samples: int) -> tuple[dict[str, list[dict]], Counter]:
    """One scene's records and box counts (its images are written under ``root``); a scene depends only on the seed
    and its index, so scenes may be made in any process and in any order."""
    cv2.setNumThreads(1)  # one process per core when scenes are made in parallel
    writer = _DatasetWriter(root, seed, image_size, sweeps, render_images)
    writer.add_scene(index, samples, np.random.default_rng([seed, index]))
    return {name: writer.tables[name] for name in SCENE_TABLES}, writer.boxes_per_category


def make_synthetic_nuscenes(out: str | Path, scenes: int = 6, samples: int = 16, seed: int = 0,
                            image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE, sweeps: int = 2,
                            render_images: bool = True, overwrite: bool = False, progress: bool = True,
                            workers: int = 1) -> dict:
    """Write a synthetic nuScenes release to ``out`` (tables in ``out/v1.0-synthetic``); returns a summary dict.

    ``sweeps`` camera frames are generated between consecutive keyframes. ``render_images=False`` writes the
    tables only (fast: for benchmarks of the geometry); visibility levels are then drawn at random. ``workers``
    processes render scenes in parallel; the release is byte-for-byte the same for any number of workers.
    """
    if scenes < 1 or samples < 2:
        raise UserError(f"need at least 1 scene and 2 samples per scene (got {scenes} and {samples})")
    if sweeps < 0:
        raise UserError(f"--sweeps {sweeps} must be 0 or more")
    width, height = (int(v) for v in image_size)
    if width < 64 or height < 36:
        raise UserError(f"image size {width}x{height} is too small; use at least 64x36 (default 800x450)")
    if workers < 1:
        raise UserError(f"--workers {workers} must be 1 or more (one process per core is fastest)")
    target = check_output_dir(out, TOOL, overwrite)
    with staged_output_dir(target, TOOL) as staging:
        writer = _DatasetWriter(staging, seed, (width, height), sweeps, render_images)
        jobs = [(staging, seed, (width, height), sweeps, render_images, index, samples) for index in range(scenes)]
        pool = (ProcessPoolExecutor(min(workers, scenes), mp_context=multiprocessing.get_context("spawn"))
                if workers > 1 and scenes > 1 else None)
        try:
            made = pool.map(_generate_scene, *zip(*jobs)) if pool else (_generate_scene(*job) for job in jobs)
            for tables, boxes in tqdm(made, total=scenes, desc="synthetic scenes", unit="scene",
                                      disable=not progress):
                for name in SCENE_TABLES:  # scene order, whatever process made the scene
                    writer.tables[name].extend(tables[name])
                writer.boxes_per_category.update(boxes)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        writer.finish()
        counts = {name: len(records) for name, records in writer.tables.items()}
    return {
        "dataroot": str(target), "version": SYNTHETIC_VERSION, "scenes": scenes, "samples_per_scene": samples,
        "image_size": [width, height], "tables": counts,
        "boxes_per_category": dict(sorted(writer.boxes_per_category.items())),
        "categories_in_use": sorted(k for k in writer.boxes_per_category if k in KINDS),
    }

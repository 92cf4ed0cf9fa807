"""YOLOX over MOT sequences, once per checkpoint, into an on-disk detection cache.

Detections are stock YOLOX's, unless an option says otherwise: ``ValTransform`` letterbox, fp32 (``fp16`` opts
in, CUDA only), ``yolox.utils.postprocess`` with class-aware NMS as stock COCOEvaluator (``class_agnostic`` gives
stock tools/demo.py's NMS), boxes scaled back as stock does. One documented change, shared with COCO validation
(``training.validation.image_boxes``): boxes are clipped to the image and those left without area are dropped.

The detector runs at a low confidence (``min(0.01, exp.test_conf)``) and writes one MOT det file per sequence; every
tracking run and every threshold of a sweep then filters those files, so the detector runs again only when
something its output depends on changed. The cache folder's key (``manifest.json`` beside the det files) holds the
checkpoint content, the exp's model-defining fields, test size, NMS, confidence floor, precision and data folder;
each sequence's entry holds a fingerprint of its frame list (names, the files they point to, sizes, modification
times, and a symlink's own time), so a sequence whose images changed, or that was converted again, is detected
again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from loguru import logger
from yolox.data.data_augment import ValTransform
from yolox.utils import postprocess

from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import MotRows, frame_images, list_sequences, write_detections
from yolox_finetune.training.checkpoint import load_model_weights
from yolox_finetune.training.device import resolve_device
from yolox_finetune.training.validation import FP16, FP32, image_boxes

#: the detector's confidence floor for the cache (lower than any threshold a sweep would try).
CACHE_MIN_CONF = 0.01

#: names of the two NMS modes as recorded in the cache key and metrics.json.
NMS_CLASS_AWARE, NMS_CLASS_AGNOSTIC = "class-aware", "class-agnostic"

#: exp attributes that define the network (a change builds another model from the same checkpoint).
MODEL_FIELDS: tuple[str, ...] = ("depth", "width", "act", "num_classes")

def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inference_precision(device: torch.device, fp16: bool) -> str:
    """``fp16`` only where asked and on CUDA (half convolutions are a GPU feature); fp32 otherwise, as stock."""
    if fp16 and device.type != "cuda":
        logger.warning(f"--fp16 is a CUDA feature; detecting in fp32 on {device}")
    return FP16 if fp16 and device.type == "cuda" else FP32


def nms_name(class_agnostic: bool) -> str:
    """The NMS mode as recorded: class-aware is stock COCOEvaluator's, class-agnostic stock tools/demo.py's."""
    return NMS_CLASS_AGNOSTIC if class_agnostic else NMS_CLASS_AWARE


def cache_identity(exp: Any, ckpt_path: str | os.PathLike, data_dir: str | os.PathLike, min_conf: float,
                   precision: str = FP32, class_agnostic: bool = False) -> dict[str, Any]:
    """What every sequence's cached detections depend on (the manifest's header; its hash names the folder)."""
    return {"checkpoint_sha256": file_sha256(ckpt_path),
            "model": {name: getattr(exp, name) for name in MODEL_FIELDS},
            "test_size": [int(exp.test_size[0]), int(exp.test_size[1])], "nmsthre": float(exp.nmsthre),
            "nms": nms_name(class_agnostic), "min_conf": float(min_conf), "precision": precision,
            "data": str(Path(data_dir).resolve())}


def cache_dir_for(cache_root: str | os.PathLike, identity: dict[str, Any]) -> Path:
    """``<cache_root>/<checkpoint hash>_<key hash>``: one folder per cache key."""
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_root) / f"{identity['checkpoint_sha256'][:12]}_{key}"


def frames_fingerprint(images: dict[int, Path]) -> str:
    """sha256 of a sequence's frame list: frame numbers, file names, and for each file what it points to (the
    resolved path), its size and modification time; for a symlink (the converter links ``img1/`` into nuScenes'
    ``samples/``) also the link's own modification time, so a re-converted sequence (links made anew, perhaps to
    other images) is detected again even when the images behind the links are the same files."""
    listing = []
    for frame, path in images.items():
        stat = path.stat()
        link = path.lstat()
        link_time = link.st_mtime_ns if path.is_symlink() else None
        listing.append([frame, path.name, os.path.realpath(path), stat.st_size, stat.st_mtime_ns, link_time])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def detector_settings(det_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The settings a det folder was made with (its manifest's key), or None for det files from elsewhere."""
    path = Path(det_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict):
        return None
    return {k: v for k, v in manifest.items() if k != "sequences"}


def describe_detector(settings: dict[str, Any]) -> str:
    """One line of a det folder's detector settings (``detector_settings``), for reports."""
    size = settings.get("test_size") or ["?", "?"]
    return (f"detector {settings.get('precision', '?')}, {settings.get('nms', '?')} NMS "
            f"(IoU {settings.get('nmsthre')}), test size {size[0]}x{size[1]}, score floor {settings.get('min_conf')}")


def build_model(exp: Any) -> torch.nn.Module:
    """A new model from the exp's current fields (``exp.get_model()`` alone returns the model it built first, even
    after ``act`` or ``width`` changed)."""
    saved = getattr(exp, "model", None)
    exp.model = None
    try:
        return exp.get_model()
    finally:
        exp.model = saved


class Detector:
    """A YOLOX model with its preprocessing and postprocessing: BGR frames in, boxes in frame pixels out."""

    def __init__(self, exp: Any, ckpt_path: str | os.PathLike, device: str = "auto", fp16: bool = False,
                 min_conf: float | None = None, class_agnostic: bool = False) -> None:
        self.exp = exp
        self.device = resolve_device(device)
        self.precision = inference_precision(self.device, fp16)
        self.class_agnostic = class_agnostic
        self.test_size = (int(exp.test_size[0]), int(exp.test_size[1]))
        self.min_conf = min(CACHE_MIN_CONF, float(exp.test_conf)) if min_conf is None else float(min_conf)
        self.transform = ValTransform(legacy=False)
        model = build_model(exp)
        load_model_weights(model, ckpt_path, exp)
        model.to(self.device).eval()
        self.model = model.half() if self.precision == FP16 else model

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One (N, 6) array [x1, y1, x2, y2, score, class_id(1-based)] per image: stock YOLOX's boxes, clipped to
        the image, those without area dropped (float64 holding the float32 values exactly)."""
        batch = np.stack([self.transform(img, None, self.test_size)[0] for img in images])
        tensor = torch.from_numpy(batch).to(self.device)
        tensor = tensor.half() if self.precision == FP16 else tensor
        outputs = postprocess(self.model(tensor).float(), self.exp.num_classes, self.min_conf, self.exp.nmsthre,
                              class_agnostic=self.class_agnostic)
        results = []
        for img, out in zip(images, outputs):
            boxes, scores, classes = image_boxes(out, self.test_size, img.shape[0], img.shape[1])
            results.append(np.column_stack([boxes.numpy().astype(np.float64), scores.numpy().astype(np.float64),
                                            classes.numpy() + 1]))
        return results


def detect_sequence(detector: Detector, images: dict[int, Path], batch_size: int = 8) -> MotRows:
    """Detections of every frame of one sequence as MOT det rows (xywh)."""
    frames, boxes = [], []
    items = list(images.items())
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        loaded = []
        for _, path in chunk:
            img = cv2.imread(str(path))
            if img is None:
                raise UserError(f"cannot read image {path}; replace or delete the file")
            loaded.append(img)
        for (frame, _), dets in zip(chunk, detector(loaded)):
            frames.append(np.full(len(dets), frame, np.int64))
            boxes.append(dets)
    dets = np.concatenate(boxes) if boxes else np.zeros((0, 6))
    xywh = np.column_stack([dets[:, :2], dets[:, 2:4] - dets[:, :2]])
    n = len(dets)
    return MotRows(np.concatenate(frames) if frames else np.zeros(0, np.int64), np.full(n, -1, np.int64), xywh,
                   dets[:, 4], dets[:, 5].astype(np.int64), np.ones(n), fmt="det")


def cached_detections(exp: Any, ckpt_path: str | os.PathLike, data_dir: str | os.PathLike,
                      cache_root: str | os.PathLike, device: str = "auto", batch_size: int = 8,
                      fp16: bool = False, min_conf: float | None = None, class_agnostic: bool = False) -> Path:
    """Folder of ``<seq>.txt`` det files for every sequence of ``data_dir``; only sequences missing from the cache's
    manifest, or whose frames changed since, are detected (the model is not even built when none is)."""
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: need at least one frame per batch")
    floor = min(CACHE_MIN_CONF, float(exp.test_conf)) if min_conf is None else float(min_conf)
    resolved = resolve_device(device)
    identity = cache_identity(exp, ckpt_path, data_dir, floor, inference_precision(resolved, fp16), class_agnostic)
    folder = cache_dir_for(cache_root, identity)
    manifest_path = folder / "manifest.json"
    manifest = {**identity, "checkpoint": str(ckpt_path), "sequences": {}}
    if manifest_path.is_file():
        try:
            manifest["sequences"] = json.loads(manifest_path.read_text())["sequences"]
        except (json.JSONDecodeError, KeyError, TypeError):
            logger.warning(f"{manifest_path} is unreadable; detecting every sequence again")
    todo: list[tuple[str, dict[int, Path], str]] = []
    for name in list_sequences(data_dir):
        images = frame_images(Path(data_dir) / name)
        if not images:
            raise UserError(f"sequence {Path(data_dir) / name} has no frames in img1/; the detector needs them "
                            "(or pass detections with --dets)")
        fingerprint = frames_fingerprint(images)
        entry = manifest["sequences"].get(name)
        fresh = isinstance(entry, dict) and entry.get("frames_sha256") == fingerprint
        if not fresh or not (folder / f"{name}.txt").is_file():
            todo.append((name, images, fingerprint))
    if not todo:
        return folder
    detector = Detector(exp, ckpt_path, device, fp16, floor, class_agnostic)
    for name, images, fingerprint in todo:
        logger.info(f"detecting {name}: {len(images)} frames on {detector.device} ({detector.precision}, "
                    f"{nms_name(class_agnostic)} NMS)")
        rows = detect_sequence(detector, images, batch_size)
        write_detections(folder / f"{name}.txt", rows)
        manifest["sequences"][name] = {"frames": len(images), "frames_sha256": fingerprint, "detections": len(rows),
                                       "device": str(detector.device)}
        atomic_write_json(manifest_path, manifest)
    return folder

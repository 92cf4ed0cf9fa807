"""YOLOX over MOT sequences, once per checkpoint, into an on-disk detection cache.

The detector runs at a low confidence (``min(0.01, exp.test_conf)``) and writes one MOT det file per sequence; every
tracking run and every threshold of a sweep then filters those files, so the detector never runs twice for the same
checkpoint content, test size, NMS threshold and minimum confidence (the cache folder's key, kept in
``manifest.json`` beside the det files).
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

#: the detector's confidence floor for the cache (lower than any threshold a sweep would try).
CACHE_MIN_CONF = 0.01

def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_identity(ckpt_path: str | os.PathLike, test_size: tuple[int, int], nmsthre: float, min_conf: float,
                   data_dir: str | os.PathLike) -> dict[str, Any]:
    """What the cached detections depend on (the manifest's header; its hash names the cache folder)."""
    return {"checkpoint_sha256": file_sha256(ckpt_path), "test_size": [int(test_size[0]), int(test_size[1])],
            "nmsthre": float(nmsthre), "min_conf": float(min_conf), "data": str(Path(data_dir).resolve())}


def cache_dir_for(cache_root: str | os.PathLike, identity: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_root) / f"{identity['checkpoint_sha256'][:12]}_{key}"


class Detector:
    """A YOLOX model with its preprocessing and postprocessing: BGR frames in, boxes in frame pixels out."""

    def __init__(self, exp: Any, ckpt_path: str | os.PathLike, device: str = "auto", fp16: bool | None = None,
                 min_conf: float | None = None) -> None:
        self.exp = exp
        self.device = resolve_device(device)
        self.fp16 = self.device.type == "cuda" if fp16 is None else fp16 and self.device.type == "cuda"
        self.test_size = tuple(exp.test_size)
        self.min_conf = min(CACHE_MIN_CONF, float(exp.test_conf)) if min_conf is None else float(min_conf)
        self.transform = ValTransform(legacy=False)
        model = exp.get_model()
        load_model_weights(model, ckpt_path)
        model.to(self.device).eval()
        self.model = model.half() if self.fp16 else model

    @torch.no_grad()
    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """One (N, 6) array [x1, y1, x2, y2, score, class_id(1-based)] per image, clipped to the image."""
        batch = np.stack([self.transform(img, None, self.test_size)[0] for img in images])
        tensor = torch.from_numpy(batch).to(self.device)
        tensor = tensor.half() if self.fp16 else tensor
        outputs = postprocess(self.model(tensor).float(), self.exp.num_classes, self.min_conf, self.exp.nmsthre)
        results = []
        for img, out in zip(images, outputs):
            if out is None:
                results.append(np.zeros((0, 6)))
                continue
            out = out.cpu().numpy().astype(np.float64)
            ratio = min(self.test_size[0] / img.shape[0], self.test_size[1] / img.shape[1])
            boxes = out[:, :4] / ratio
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, img.shape[1])
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, img.shape[0])
            results.append(np.column_stack([boxes, out[:, 4] * out[:, 5], out[:, 6] + 1]))
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
                      fp16: bool | None = None, min_conf: float | None = None) -> Path:
    """Folder of ``<seq>.txt`` det files for every sequence of ``data_dir``; only sequences missing from the cache's
    manifest are detected (the model is not even built when all are there)."""
    floor = min(CACHE_MIN_CONF, float(exp.test_conf)) if min_conf is None else float(min_conf)
    identity = cache_identity(ckpt_path, exp.test_size, exp.nmsthre, floor, data_dir)
    folder = cache_dir_for(cache_root, identity)
    manifest_path = folder / "manifest.json"
    manifest = {**identity, "checkpoint": str(ckpt_path), "sequences": {}}
    if manifest_path.is_file():
        try:
            manifest["sequences"] = json.loads(manifest_path.read_text())["sequences"]
        except (json.JSONDecodeError, KeyError):
            logger.warning(f"{manifest_path} is unreadable; detecting every sequence again")
    names = list_sequences(data_dir)
    todo = [n for n in names if n not in manifest["sequences"] or not (folder / f"{n}.txt").is_file()]
    if not todo:
        return folder
    detector = Detector(exp, ckpt_path, device, fp16, floor)
    for name in todo:
        images = frame_images(Path(data_dir) / name)
        if not images:
            raise UserError(f"sequence {Path(data_dir) / name} has no frames in img1/; the detector needs them "
                            "(or pass detections with --dets)")
        logger.info(f"detecting {name}: {len(images)} frames on {detector.device}")
        rows = detect_sequence(detector, images, batch_size)
        write_detections(folder / f"{name}.txt", rows)
        manifest["sequences"][name] = {"frames": len(images), "detections": len(rows)}
        atomic_write_json(manifest_path, manifest)
    return folder

"""COCO detection files for the training Exp: one JSON per split, file names relative to the output folder."""

from __future__ import annotations

from pathlib import Path

from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.classes import CLASS_NAMES

#: the per-image fields copied from a converted frame into the COCO image record.
IMAGE_FIELDS: tuple[str, ...] = (
    "file_name", "width", "height", "sample_data_token", "sample_token", "scene_name", "camera", "sequence",
    "timestamp", "frame_index",
)


def coco_categories() -> list[dict]:
    return [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(CLASS_NAMES)]


def build_coco(frames: list[dict], split: str, version: str) -> dict:
    """COCO dict for one split. ``frames`` carry their boxes under ``"boxes"``; ids are 1-based in list order.

    Ignore entries (boxes below ``--min-visibility``, dropped look-alikes) exist for the MOT ground truth only:
    COCO has no ignore flag that YOLOX's loader honours, so they are left out here.
    """
    images, annotations = [], []
    for image_id, frame in enumerate(frames, start=1):
        images.append({"id": image_id, **{key: frame[key] for key in IMAGE_FIELDS}})
        for box in frame["boxes"]:
            if box.get("ignore"):
                continue
            x1, y1, x2, y2 = box["xyxy"]
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": box["class_id"],
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
                "sample_annotation_token": box["sample_annotation_token"],
                "instance_token": box["instance_token"],
                "track_id": box["track_id"],
                "visibility": box["visibility"],
                "nusc_category": box["nusc_category"],
            })
    return {
        "info": {"description": f"nuScenes {version} camera keyframes, {split} split", "version": version},
        "licenses": [],
        "categories": coco_categories(),
        "images": images,
        "annotations": annotations,
    }


def write_coco(path: Path, frames: list[dict], split: str, version: str) -> None:
    """Write one split's COCO file atomically, as compact JSON."""
    atomic_write_json(path, build_coco(frames, split, version), indent=None)

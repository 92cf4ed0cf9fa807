"""Training inputs checked before any work starts: the COCO files of the splits, the images they list, the batch
size against the processes, and the checkpoint a run starts or resumes from.

Every mistake is one UserError naming the file, the record and the fix, raised before the run dir is made, the
data is loaded or a process is launched. Boxes without area are the one thing skipped instead of refused: YOLOX
would train on them as zero-size targets; they are counted and the count is logged per split.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolox_finetune.core.errors import UserError
from yolox_finetune.training.checkpoint import (
    check_model_size,
    read_checkpoint,
    read_resume_state,
    resolve_checkpoint,
)

#: a ``NuScenesExp``; not imported, as exp.py builds its datasets with this module's helpers
NuScenesExp = Any

#: fields YOLOX's loader and pycocotools read from each record (a missing one is a KeyError deep in the loader).
IMAGE_FIELDS: tuple[str, ...] = ("id", "file_name", "width", "height")
ANNOTATION_FIELDS: tuple[str, ...] = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")
#: how many missing image paths an error shows.
SHOWN_PATHS = 3


@dataclass(frozen=True)
class SplitCheck:
    """What the check of one split found: its file, image and box counts, and the boxes YOLOX cannot use."""

    split: str
    path: Path
    images: int
    annotations: int
    unusable_boxes: int


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """pycocotools prints progress on stdout; keep stdout for what the user asked for."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def check_data(exp: NuScenesExp, split: str) -> None:
    """Fail with one line when the data the Exp points at is not there."""
    data_dir = Path(exp.data_dir)
    if not data_dir.is_dir():
        raise UserError(
            f"data_dir {data_dir} does not exist (exp {exp.exp_name}); convert nuScenes with "
            f"tools/convert_nuscenes.py --out {data_dir} or pass 'data_dir /path/to/converted' to tools/train.py"
        )
    path = exp.annotation_path(split)
    if not path.is_file():
        raise UserError(f"{split} annotation file {path} not found; run tools/convert_nuscenes.py --out {data_dir}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def box_is_usable(bbox: Sequence[float], area: float, width: float, height: float) -> bool:
    """Whether a COCO box keeps some area once clipped to its image, by YOLOX's own rule (``load_anno_from_ids``:
    the corner is clipped first, the size added to the clipped corner) and with a positive ``area`` field, which
    YOLOX also requires. A zero or negative width or height, or a box wholly outside the image, is not usable."""
    x, y, w, h = bbox
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(width, x1 + max(0.0, w)), min(height, y1 + max(0.0, h))
    return area > 0 and x2 > x1 and y2 > y1


def read_coco_file(path: Path, split: str) -> dict[str, Any]:
    """The parsed COCO object of one split; invalid JSON or a JSON that is not a COCO detection file is one line."""
    convert = "convert the data again with tools/convert_nuscenes.py, or fix the file"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{split} annotation file {path} is not valid JSON ({exc.msg}: line {exc.lineno} column "
                        f"{exc.colno}; cut short by an interrupted copy?); {convert}") from None
    except UnicodeDecodeError:
        raise UserError(f"{split} annotation file {path} is not UTF-8 text (a binary file?); {convert}") from None
    if not isinstance(data, dict):
        raise UserError(f"{split} annotation file {path} holds a JSON {type(data).__name__}, not a COCO object with "
                        f"'images', 'annotations' and 'categories' lists; {convert}")
    absent = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if absent:
        raise UserError(f"{split} annotation file {path} is not a COCO detection file: no {' or '.join(absent)} "
                        f"list (a COCO file has 'images', 'annotations' and 'categories'); {convert}")
    return data


def _record_problem(record: Any, fields: Sequence[str]) -> str | None:
    if not isinstance(record, dict):
        return f"is a JSON {type(record).__name__}, not an object"
    missing = [name for name in fields if name not in record]
    return f"lacks {', '.join(repr(m) for m in missing)}" if missing else None


def _first_problem(records: list[Any], what: str, problem_of, path: Path, fix: str) -> None:
    """Raise on the first record ``problem_of`` objects to, with how many records share a problem."""
    problems = [(index, record, text) for index, record in enumerate(records)
                if (text := problem_of(record)) is not None]
    if not problems:
        return
    index, record, text = problems[0]
    ident = f" (id {record['id']})" if isinstance(record, dict) and "id" in record else ""
    more = f"; {len(problems) - 1} more {what}s have problems" if len(problems) > 1 else ""
    raise UserError(f"{path}: {what} #{index}{ident} {text}{more}; {fix}")


def check_categories(categories: list[Any], path: Path, exp: NuScenesExp) -> set[int]:
    """The file's category ids, after checking that they map onto the exp's classes as YOLOX maps them (sorted by
    id, the k-th category is class index k): a category past the head or under another name would train the
    wrong class."""
    fix = "fix the file's categories or set num_classes and class_names in the exp to them (in id order)"
    _first_problem(categories, "category", lambda c: _record_problem(c, ("id", "name")), path, fix)
    ids = [c["id"] for c in categories]
    if not categories or not all(isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
        raise UserError(f"{path}: categories must be a non-empty list of unique integer ids, got ids {ids[:10]}; "
                        f"{fix}")
    names = tuple(exp.class_names)
    for index, category in enumerate(sorted(categories, key=lambda c: c["id"])):
        if index >= exp.num_classes:
            raise UserError(f"{path}: category id {category['id']} ({category['name']!r}) is class index {index}, "
                            f"beyond the exp's num_classes {exp.num_classes}; {fix}")
        if index < len(names) and category["name"] != names[index]:
            raise UserError(f"{path}: category id {category['id']} ({category['name']!r}) becomes class index "
                            f"{index}, which the exp names {names[index]!r} (the exp's classes: "
                            f"{', '.join(names)}); {fix}")
    return set(ids)


def check_images_exist(images: list[dict[str, Any]], data_dir: Path, path: Path) -> None:
    """Every listed image is on disk (``os.path.exists``, cheap): found now, not when the loader reaches it."""
    missing = [image["file_name"] for image in images if not os.path.exists(data_dir / str(image["file_name"]))]
    if missing:
        shown = ", ".join(missing[:SHOWN_PATHS]) + (" ..." if len(missing) > SHOWN_PATHS else "")
        raise UserError(f"{len(missing)} of {len(images)} images listed in {path} are missing under {data_dir} "
                        f"(first: {shown}); restore them, point data_dir at the converted folder, or convert again")


def check_split(exp: NuScenesExp, split: str) -> SplitCheck:
    """One split's COCO file, record by record, and its images on disk."""
    check_data(exp, split)
    path = exp.annotation_path(split)
    data = read_coco_file(path, split)
    category_ids = check_categories(data["categories"], path, exp)
    images, annotations = data["images"], data["annotations"]

    def image_problem(image: Any) -> str | None:
        problem = _record_problem(image, IMAGE_FIELDS)
        if problem is None and not isinstance(image["id"], (int, str)):
            problem = f"has id {image['id']!r}; an image id is an integer"
        if problem is None and not (_is_number(image["width"]) and _is_number(image["height"])
                                    and image["width"] > 0 and image["height"] > 0):
            problem = f"has width {image['width']!r} and height {image['height']!r}; both must be positive numbers"
        return problem

    _first_problem(images, "image", image_problem, path, "fix the record or convert the data again")
    duplicates = [image_id for image_id, count in Counter(image["id"] for image in images).items() if count > 1]
    if duplicates:
        raise UserError(f"{path}: image id {duplicates[0]!r} is listed more than once ({len(duplicates)} ids are); "
                        "image ids must be unique")
    if not images:
        raise UserError(f"{split} annotation file {path} lists no images: a {split} split of nothing is "
                        "meaningless; convert the data again or point data_dir at a converted folder")
    sizes = {image["id"]: (image["width"], image["height"]) for image in images}

    def annotation_problem(annotation: Any) -> str | None:
        problem = _record_problem(annotation, ANNOTATION_FIELDS)
        if problem is not None:
            return problem
        if not isinstance(annotation["image_id"], (int, str)) or annotation["image_id"] not in sizes:
            return f"has image_id {annotation['image_id']!r}, which no image in the file has"
        if not isinstance(annotation["category_id"], int) or annotation["category_id"] not in category_ids:
            return (f"has category_id {annotation['category_id']!r}, which is none of the file's categories "
                    f"(ids {sorted(category_ids)}, the exp's {', '.join(exp.class_names)})")
        bbox = annotation["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            return f"has bbox {bbox!r}; a COCO bbox is 4 finite numbers [x, y, width, height]"
        if not _is_number(annotation["area"]):
            return f"has area {annotation['area']!r}; it must be a finite number (width * height)"
        return None

    _first_problem(annotations, "annotation", annotation_problem, path, "fix or remove the record")
    usable = sum(box_is_usable(a["bbox"], a["area"], *sizes[a["image_id"]]) for a in annotations
                 if not a["iscrowd"])
    unusable = sum(1 for a in annotations if not a["iscrowd"]) - usable
    if usable == 0:
        why = f" ({unusable} have no width, height or area inside their image)" if unusable else ""
        raise UserError(f"{split} annotation file {path} has no usable box among its {len(annotations)} "
                        f"annotations{why}: a {split} split without objects is meaningless; fix the boxes or "
                        "convert the data again")
    check_images_exist(images, Path(exp.data_dir), path)
    return SplitCheck(split, path, len(images), len(annotations), unusable)


def check_batch_size(batch_size: int | None, world_size: int, exp_batch_size: int) -> int:
    """The global batch a run uses (``-b`` or the exp's): at least 1 and a multiple of the processes."""
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UserError(f"-b {batch_size}: the batch size must be a whole number of images, at least 1 (it is the "
                        f"global batch over all devices; leave -b out for the exp's {exp_batch_size})")
    batch = batch_size if batch_size is not None else exp_batch_size
    if batch % world_size:
        source = "-b" if batch_size is not None else "the exp's batch_size"
        raise UserError(f"batch size {batch} ({source}) is not divisible by the {world_size} processes of "
                        f"-d {world_size}: each process takes batch/{world_size} images; pass a multiple of "
                        f"{world_size} with -b")
    return batch


def check_device_count(device: str, devices: int) -> None:
    """``-d N`` on CUDA needs N visible GPUs (one process per GPU); on the CPU any N runs (gloo)."""
    import torch

    from yolox_finetune.training.device import resolve_device

    kind = resolve_device(device).type
    if kind == "cuda" and devices > torch.cuda.device_count():
        raise UserError(f"-d {devices} asks for {devices} GPUs but {torch.cuda.device_count()} are visible; pass "
                        f"-d {torch.cuda.device_count()} or fewer, or --device cpu")


def check_start_checkpoint(exp: NuScenesExp, ckpt: str | None, resume: bool) -> None:
    """The checkpoint a run resumes (``--resume``) or starts from (``-c``) exists and is of the exp's model size,
    read lazily (tensor shapes, not their data); the full shape check still comes with the load."""
    if resume:
        path, state = read_resume_state(ckpt, exp.run_dir, lazy=True)
        what = "--resume"
        saved = state.get("optimizer_name", "sgd")  # states from before the choice existed are SGD's
        if saved != exp.optimizer_name:
            raise UserError(f"--resume: {path} was trained with optimizer_name {saved!r}, the exp now says "
                            f"{exp.optimizer_name!r}; its optimizer state cannot continue: set optimizer_name back, "
                            f"or start a new run from its weights with -c")
    elif ckpt:
        path = resolve_checkpoint(ckpt, exp.run_dir)
        state = read_checkpoint(path, lazy=True)
        what = "-c"
    else:
        return
    check_model_size(state["model"], path, (float(exp.depth), float(exp.width)), what)


def check_training_inputs(exp: NuScenesExp, *, batch_size: int | None = None, world_size: int = 1,
                          ckpt: str | None = None, resume: bool = False) -> list[SplitCheck]:
    """Everything a training run reads, checked before it starts; the splits' findings come back."""
    check_batch_size(batch_size, world_size, exp.batch_size)
    splits = ["train"] + (["val"] if exp.eval_interval > 0 else [])
    found = [check_split(exp, split) for split in splits]
    check_start_checkpoint(exp, ckpt, resume)
    return found


def drop_unusable_boxes(dataset: Any, prune_ground_truth: bool) -> tuple[int, int]:
    """Remove the boxes :func:`box_is_usable` rejects from a YOLOX ``COCODataset``'s training targets (and, with
    ``prune_ground_truth``, from the pycocotools index COCO mAP is scored against); returns (dropped, boxes before)."""
    coco = dataset.coco
    kept, dropped = [], 0
    for annotation in coco.dataset["annotations"]:
        image = coco.imgs[annotation["image_id"]]
        if annotation.get("iscrowd") or box_is_usable(annotation["bbox"], annotation["area"], image["width"],
                                                      image["height"]):
            kept.append(annotation)
        else:
            dropped += 1
    total = len(coco.dataset["annotations"])
    if not dropped:
        return 0, total
    for index, (targets, *rest) in enumerate(dataset.annotations):
        has_area = (targets[:, 2] > targets[:, 0]) & (targets[:, 3] > targets[:, 1])
        dataset.annotations[index] = (np.ascontiguousarray(targets[has_area]), *rest)
    if prune_ground_truth:
        coco.dataset["annotations"] = kept
        with quiet_stdout():
            coco.createIndex()
    return dropped, total

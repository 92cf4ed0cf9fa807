"""Validation on any device: the loss on val images and COCO mAP through pycocotools.

YOLOX 0.3.0's COCOEvaluator builds ``torch.cuda`` tensors, so it cannot run on a CPU; this one shares the
backbone pass between the loss and the detections, and shards images over DDP ranks. Detections are stock
YOLOX's (fp32 unless asked, class-aware NMS, boxes scaled back as COCOEvaluator does) with one documented change
shared with the tracking detector (``image_boxes``): boxes are clipped to the image and those left without area
are dropped.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Subset

from yolox_finetune.core.run_files import LOSS_KEYS
from yolox_finetune.training.distributed import is_distributed, rank_and_world, unwrap

#: precision names as recorded in metrics.jsonl, metrics.json and the detection cache key.
FP32, FP16 = "fp32", "fp16"


def letterbox_ratio(test_size: tuple[int, int], height: int, width: int) -> float:
    """The resize factor of YOLOX's letterbox (``preproc``), computed as stock COCOEvaluator does."""
    return min(test_size[0] / float(height), test_size[1] / float(width))


def image_boxes(det: torch.Tensor | None, test_size: tuple[int, int], height: int,
                width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's ``postprocess`` rows -> (xyxy boxes, scores, 0-based class indices) in image pixels, float32 on
    the CPU.

    Scaled back and scored exactly as stock YOLOX (``bboxes /= ratio``, score = obj * cls, in float32), then clipped
    to the image; a box whose clipped area is zero (it lay wholly in the letterbox padding) is dropped. COCO
    validation and the tracking detector both use this, so mAP and tracking see the same boxes.
    """
    if det is None or not len(det):
        return torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    det = det.detach().float().cpu()
    boxes = det[:, :4].clone()
    boxes /= letterbox_ratio(test_size, height, width)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    scores = det[:, 4] * det[:, 5]
    return boxes[keep], scores[keep], det[keep, 6].long()


def coco_detections(outputs: list[torch.Tensor | None], infos: list[Any], ids: list[int], class_ids: list[int],
                    test_size: tuple[int, int]) -> list[dict[str, Any]]:
    """COCO result dicts of a batch, as stock ``COCOEvaluator.convert_to_coco_format`` writes them after the
    clip rule of ``image_boxes``; classes beyond ``class_ids`` (a wider head, e.g. COCO's 80) are left out."""
    from yolox.utils import xyxy2xywh

    detections = []
    for det, info, img_id in zip(outputs, infos, ids):
        boxes, scores, classes = image_boxes(det, test_size, int(info[0]), int(info[1]))
        for box, score, cls in zip(xyxy2xywh(boxes).numpy().tolist(), scores.numpy().tolist(), classes.tolist()):
            if cls >= len(class_ids):
                continue
            detections.append({"image_id": int(img_id), "category_id": int(class_ids[cls]), "bbox": box,
                               "score": score})
    return detections


def tracking_boxes(det: torch.Tensor | None, test_size: tuple[int, int], height: int, width: int) -> np.ndarray:
    """One image's detections as the tracking detector gives them: (N, 6) float64 [x1, y1, x2, y2, score,
    class_id (1-based)] in image pixels, from ``image_boxes``, so tracking validation sees what track_eval sees."""
    boxes, scores, classes = image_boxes(det, test_size, height, width)
    return np.column_stack([boxes.numpy().astype(np.float64), scores.numpy().astype(np.float64),
                            classes.numpy().astype(np.float64) + 1]).reshape(-1, 6)


def _collate(batch):
    images = torch.from_numpy(np.stack([b[0] for b in batch])).float()
    targets = torch.from_numpy(np.stack([b[1] for b in batch])).float()
    infos = [b[2] for b in batch]
    ids = [int(np.asarray(b[3]).reshape(-1)[0]) for b in batch]
    return images, targets, infos, ids


@torch.no_grad()
def evaluate(model: nn.Module, dataset, exp, device: torch.device, batch_size: int = 8, fp16: bool = False,
             num_workers: int = 0, keep_boxes: bool = False) -> dict[str, Any]:
    """Val loss (mean per image) and COCO AP of ``model`` on ``dataset`` (a COCODataset with targets).

    fp32 as stock COCOEvaluator unless ``fp16`` (autocast, CUDA only); the result's ``precision`` says which ran.
    With ``keep_boxes`` the result's ``boxes`` maps every image id to its ``tracking_boxes`` (on every rank), so
    tracking validation reuses this pass instead of running the model again.
    """
    from yolox.utils import postprocess

    model = unwrap(model)
    was_training = model.training
    model.eval()
    rank, world = rank_and_world()
    shard = Subset(dataset, list(range(rank, len(dataset), world)))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate)
    loss_sums = torch.zeros(len(LOSS_KEYS) + 1, dtype=torch.float64)
    detections: list[dict[str, Any]] = []
    boxes: dict[int, np.ndarray] = {}
    half = fp16 and device.type == "cuda"
    try:
        for images, targets, infos, ids in loader:
            images, targets = images.to(device), targets.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=half):
                features = model.backbone(images)
                model.head.training = True  # the head alone computes losses; every BN layer stays in eval mode
                losses = model.head(features, targets, images)
                model.head.training = False
                outputs = model.head(features)
            n = images.shape[0]
            for k, value in enumerate(losses[:1] + (losses[1], losses[4], losses[2], losses[3])):
                loss_sums[k] += float(value) * n
            loss_sums[-1] += n
            results = postprocess(outputs.float(), exp.num_classes, exp.test_conf, exp.nmsthre)
            detections += coco_detections(results, infos, ids, dataset.class_ids, exp.test_size)
            if keep_boxes:
                for det, info, img_id in zip(results, infos, ids):
                    boxes[int(img_id)] = tracking_boxes(det, exp.test_size, int(info[0]), int(info[1]))
    finally:
        model.head.training = False
        model.train(was_training)
    if is_distributed():
        dist.all_reduce(loss_sums)
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, detections)
        detections = [d for part in gathered for d in part]
        if keep_boxes:
            gathered_boxes: list[Any] = [None] * world
            dist.all_gather_object(gathered_boxes, boxes)
            boxes = {k: v for part in gathered_boxes for k, v in part.items()}
    count = max(1.0, float(loss_sums[-1]))
    result: dict[str, Any] = {"val_loss": {k: float(loss_sums[i]) / count for i, k in enumerate(LOSS_KEYS)}}
    result.update(coco_map(dataset.coco, detections, dataset._classes))
    result["num_detections"] = len(detections)
    result["precision"] = FP16 if half else FP32
    if keep_boxes:
        result["boxes"] = boxes
    return result


def coco_map(coco_gt, detections: list[dict[str, Any]], class_names) -> dict[str, Any]:
    """AP@[.5:.95], AP@.5 and AP per class from pycocotools; zeros when there is nothing to score."""
    from pycocotools.cocoeval import COCOeval

    if not detections or not coco_gt.getAnnIds():
        return {"ap50_95": 0.0, "ap50": 0.0, "ap_per_class": {}, "summary": "no detections"}
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    per_class = {}
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, maxdets]
    for k, cat_id in enumerate(evaluator.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        name = coco_gt.cats[cat_id]["name"] if cat_id in coco_gt.cats else str(cat_id)
        per_class[name] = float(np.mean(p)) if p.size else None
    return {
        "ap50_95": float(evaluator.stats[0]),
        "ap50": float(evaluator.stats[1]),
        "ap_per_class": per_class,
        "summary": buffer.getvalue(),
    }

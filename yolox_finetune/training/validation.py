"""Validation on any device: the loss on val images and COCO mAP through pycocotools.

YOLOX 0.3.0's COCOEvaluator builds ``torch.cuda`` tensors, so it cannot run on a CPU; this one shares the
backbone pass between the loss and the detections, and shards images over DDP ranks.
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


def _collate(batch):
    images = torch.from_numpy(np.stack([b[0] for b in batch])).float()
    targets = torch.from_numpy(np.stack([b[1] for b in batch])).float()
    infos = [b[2] for b in batch]
    ids = [int(np.asarray(b[3]).reshape(-1)[0]) for b in batch]
    return images, targets, infos, ids


@torch.no_grad()
def evaluate(model: nn.Module, dataset, exp, device: torch.device, batch_size: int = 8, fp16: bool = False,
             num_workers: int = 0) -> dict[str, Any]:
    """Val loss (mean per image) and COCO AP of ``model`` on ``dataset`` (a COCODataset with targets)."""
    from yolox.utils import postprocess

    model = unwrap(model)
    was_training = model.training
    model.eval()
    rank, world = rank_and_world()
    shard = Subset(dataset, list(range(rank, len(dataset), world)))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate)
    loss_sums = torch.zeros(len(LOSS_KEYS) + 1, dtype=torch.float64)
    detections: list[dict[str, Any]] = []
    test_h, test_w = exp.test_size
    try:
        for images, targets, infos, ids in loader:
            images, targets = images.to(device), targets.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=fp16 and device.type == "cuda"):
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
            for det, info, img_id in zip(results, infos, ids):
                if det is None:
                    continue
                height, width = int(info[0]), int(info[1])
                ratio = min(test_h / height, test_w / width)
                det = det.cpu().numpy()
                boxes = det[:, :4] / ratio
                scores = det[:, 4] * det[:, 5]
                for box, score, cls in zip(boxes, scores, det[:, 6]):
                    if int(cls) >= len(dataset.class_ids):  # a wider head (e.g. COCO's 80) than the data's classes
                        continue
                    detections.append({
                        "image_id": img_id,
                        "category_id": int(dataset.class_ids[int(cls)]),
                        "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                        "score": float(score),
                    })
    finally:
        model.head.training = False
        model.train(was_training)
    if is_distributed():
        dist.all_reduce(loss_sums)
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, detections)
        detections = [d for part in gathered for d in part]
    count = max(1.0, float(loss_sums[-1]))
    result: dict[str, Any] = {"val_loss": {k: float(loss_sums[i]) / count for i, k in enumerate(LOSS_KEYS)}}
    result.update(coco_map(dataset.coco, detections, dataset._classes))
    result["num_detections"] = len(detections)
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

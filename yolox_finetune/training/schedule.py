"""The learning-rate schedule per parameter group, and the training plan a user checks before a long run.

The base curve is YOLOX's own ``yoloxwarmcos`` (quadratic warmup, cosine, the last ``no_aug_epochs`` at the
minimum); each parameter group gets base LR x its multiplier in the current phase, and 0 while frozen.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from yolox.utils import LRScheduler

from yolox_finetune.core.groups import GROUPS
from yolox_finetune.training.data import iters_per_epoch_for
from yolox_finetune.training.exp import NuScenesExp
from yolox_finetune.training.freeze import group_param_counts

#: iterations per epoch assumed by ``--plan`` when the train annotation file is not there.
FALLBACK_ITERS_PER_EPOCH = 100


def count_images(annotation_file: Path) -> int:
    with open(annotation_file, encoding="utf-8") as handle:
        return len(json.load(handle).get("images", []))


class GroupLRSchedule:
    """LR of the k-th training iteration (1-based, as YOLOX's trainer counts) for a group multiplier."""

    def __init__(self, exp: NuScenesExp, batch_size: int, iters_per_epoch: int) -> None:
        self.exp = exp
        self.base_lr = exp.base_lr(batch_size)
        self.iters_per_epoch = iters_per_epoch
        self._curve = LRScheduler(
            exp.scheduler, self.base_lr, iters_per_epoch, exp.max_epoch,
            warmup_epochs=exp.warmup_epochs, warmup_lr_start=exp.warmup_lr,
            no_aug_epochs=exp.no_aug_epochs, min_lr_ratio=exp.min_lr_ratio,
        )

    def base(self, iteration: int) -> float:
        """The multiplier-1 LR at 1-based global ``iteration``."""
        return float(self._curve.update_lr(iteration))

    def for_groups(self, iteration: int, epoch: int) -> dict[str, float]:
        """LR of every group at ``iteration`` of 1-based ``epoch``: frozen groups get 0."""
        lr = self.base(iteration)
        phase = self.exp.phase_for_epoch(epoch)
        return {g: lr * float(phase.lr_mult.get(g, 0.0)) for g in GROUPS}


def _count_params_without_allocating(exp: NuScenesExp) -> dict[str, int]:
    saved = getattr(exp, "model", None)
    exp.model = None
    try:
        with torch.device("meta"):
            model = exp.get_model()
    except Exception:  # some custom get_model cannot build on meta: pay for a real one
        exp.model = None
        model = exp.get_model()
    finally:
        exp.model = saved
    return group_param_counts(model)


def default_iters_per_epoch(exp: NuScenesExp, batch_size: int, world_size: int = 1) -> tuple[int, str]:
    ann = exp.annotation_path("train")
    if ann.is_file():
        return iters_per_epoch_for(count_images(ann), batch_size, world_size), f"from {ann}"
    return FALLBACK_ITERS_PER_EPOCH, f"assumed ({ann} not found; pass --iters-per-epoch)"


def build_plan(exp: NuScenesExp, iters_per_epoch: int | None = None, batch_size: int | None = None,
               world_size: int = 1) -> dict[str, Any]:
    """Everything a run will do, epoch by epoch, without touching data or building a real model."""
    batch_size = batch_size or exp.batch_size
    source = "given"
    if iters_per_epoch is None:
        iters_per_epoch, source = default_iters_per_epoch(exp, batch_size, world_size)
    schedule = GroupLRSchedule(exp, batch_size, iters_per_epoch)
    counts = _count_params_without_allocating(exp)
    epochs = []
    for epoch in range(1, exp.max_epoch + 1):
        phase = exp.phase_for_epoch(epoch)
        no_aug = exp.is_no_aug_epoch(epoch)
        mosaic = not no_aug and exp.mosaic_prob > 0
        first = (epoch - 1) * iters_per_epoch + 1
        epochs.append({
            "epoch": epoch,
            "lr_start": schedule.base(first),
            "lr_end": schedule.base(first + iters_per_epoch - 1),
            "mosaic": mosaic,
            "mixup": mosaic and exp.enable_mixup and exp.mixup_prob > 0,
            "l1": no_aug,
            "trainable": phase.trainable,
            "trainable_params": sum(counts[g] for g in phase.trainable),
            "lr_mult": {g: float(phase.lr_mult[g]) for g in phase.trainable},
            "phase": exp.phase_index(epoch),
        })
    return {
        "exp": exp.exp_name,
        "batch_size": batch_size,
        "base_lr": schedule.base_lr,
        "total_params": sum(counts.values()),
        "groups": counts,
        "iters_per_epoch": iters_per_epoch,
        "iters_per_epoch_source": source,
        "max_epoch": exp.max_epoch,
        "warmup_epochs": exp.warmup_epochs,
        "no_aug_epochs": exp.no_aug_epochs,
        "min_lr_ratio": exp.min_lr_ratio,
        "warmup_lr": exp.warmup_lr,
        "bn_policy": exp.bn_policy,
        "epochs": epochs,
    }


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as a readable table, one row per epoch, phase switches and the no-aug start marked."""
    counts = plan["groups"]
    lines = [
        f"exp {plan['exp']}: batch {plan['batch_size']}, base LR {plan['base_lr']:.6g}, "
        f"{plan['iters_per_epoch']} iters/epoch ({plan.get('iters_per_epoch_source', 'given')}), "
        f"{plan['max_epoch']} epochs, warmup {plan['warmup_epochs']}, no-aug {plan['no_aug_epochs']}, "
        f"bn_policy {plan.get('bn_policy', '?')}",
        "groups: " + ", ".join(f"{g} {counts[g]:,}" for g in GROUPS) + f"; total {plan['total_params']:,}",
        "",
        f"{'epoch':>5} {'lr_start':>11} {'lr_end':>11} {'mosaic':>6} {'mixup':>5} {'l1':>3} "
        f"{'trainable params':>17}  groups (lr_mult)",
    ]
    prev_phase = None
    for e in plan["epochs"]:
        marks = []
        if prev_phase is not None and e["phase"] != prev_phase:
            marks.append("<- phase switch")
        if e["l1"] and (e["epoch"] == 1 or not plan["epochs"][e["epoch"] - 2]["l1"]):
            marks.append("<- no-aug starts")
        prev_phase = e["phase"]
        groups = ", ".join(f"{g} x{m:g}" for g, m in e["lr_mult"].items())
        share = 100.0 * e["trainable_params"] / max(1, plan["total_params"])
        lines.append(
            f"{e['epoch']:>5} {e['lr_start']:>11.4e} {e['lr_end']:>11.4e} {'yes' if e['mosaic'] else 'no':>6} "
            f"{'yes' if e['mixup'] else 'no':>5} {'on' if e['l1'] else '-':>3} "
            f"{e['trainable_params']:>11,} {share:>4.1f}%  {groups} {' '.join(marks)}".rstrip()
        )
    return "\n".join(lines)


def print_plan(plan: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(plan) + "\n")
    else:
        print(format_plan(plan))

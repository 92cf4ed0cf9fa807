"""The learning-rate schedule per parameter group, the EMA's memory, and the plan a user checks before a long run.

The base curve is YOLOX's own ``yoloxwarmcos`` (quadratic warmup, cosine, the last ``no_aug_epochs`` at the
minimum); each parameter group gets base LR x its multiplier in the current phase, and 0 while frozen. A phase
that sets its own ``lr_per_img``/``warmup_epochs`` runs the same curve over its own epochs instead (warmup, cosine
to ``min_lr_ratio`` x its base, the no-aug epochs it holds at that minimum), so a newly unfrozen stage learns at
a rate chosen for it rather than at the tail of a cosine that has already decayed.

The EMA share of an iteration is the weight its model has in the final EMA, with YOLOX's ModelEMA ramp
``decay x (1 - exp(-updates / 2000))`` included, so ``--plan`` shows how much of the saved model the no-aug epochs are.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from yolox.utils import LRScheduler
from yolox.utils.lr_scheduler import yolox_warm_cos_lr

from yolox_finetune.core.groups import GROUPS
from yolox_finetune.training.data import iters_per_epoch_for
from yolox_finetune.training.exp import NuScenesExp
from yolox_finetune.training.freeze import bn_locked_groups, effective_bn_policy, group_param_counts

#: iterations per epoch assumed by ``--plan`` when the train annotation file is not there.
FALLBACK_ITERS_PER_EPOCH = 100

#: YOLOX's ModelEMA ramps its decay as ``decay * (1 - exp(-updates / 2000))`` (yolox/utils/ema.py)
YOLOX_EMA_RAMP_UPDATES = 2000.0


def count_images(annotation_file: Path) -> int:
    with open(annotation_file, encoding="utf-8") as handle:
        return len(json.load(handle).get("images", []))


def phase_curve(base_lr: float, warmup_epochs: float, first: int, last: int, max_epoch: int, no_aug_epochs: int,
                min_lr_ratio: float, warmup_lr: float, iters_per_epoch: int) -> Callable[[int], float]:
    """A phase's own yoloxwarmcos over epochs ``first..last``, called with the 1-based iteration within the phase.

    The run's no-aug epochs that fall in the phase sit at ``min_lr_ratio x base_lr``, as in YOLOX's global curve.
    """
    ipe = iters_per_epoch
    tail_epochs = max(0, last - max(first, max_epoch - no_aug_epochs + 1) + 1)
    return partial(yolox_warm_cos_lr, base_lr, min_lr_ratio, max(1, last - first + 1) * ipe, ipe * warmup_epochs,
                   warmup_lr, ipe * tail_epochs)


def with_phase_curves(plan: dict[str, Any], base: np.ndarray) -> np.ndarray:
    """``base`` (the multiplier-1 LR of the exp's global curve at every iteration of a plan) with the iterations of
    phases that run their own LR replaced by those phases' curves; for readers of plan.json such as the analysis."""
    ipe = int(plan["iters_per_epoch"])
    out = np.array(base, dtype=float, copy=True)
    for phase in plan.get("phases") or []:
        first, last = int(phase["first_epoch"]), int(phase["last_epoch"])
        if not phase.get("own_lr") or last < first:
            continue
        curve = phase_curve(phase["base_lr"], phase.get("warmup_epochs") or 0, first, last, plan["max_epoch"],
                            plan["no_aug_epochs"], plan["min_lr_ratio"], plan["warmup_lr"], ipe)
        out[(first - 1) * ipe:last * ipe] = [curve(k) for k in range(1, (last - first + 1) * ipe + 1)]
    return out


class GroupLRSchedule:
    """LR of the k-th training iteration (1-based, as YOLOX's trainer counts) for a group multiplier."""

    def __init__(self, exp: NuScenesExp, batch_size: int, iters_per_epoch: int) -> None:
        self.exp = exp
        self.base_lr = exp.base_lr(batch_size)
        self.batch_size = batch_size
        self.iters_per_epoch = iters_per_epoch
        self._curve = LRScheduler(
            exp.scheduler, self.base_lr, iters_per_epoch, exp.max_epoch,
            warmup_epochs=exp.warmup_epochs, warmup_lr_start=exp.warmup_lr,
            no_aug_epochs=exp.no_aug_epochs, min_lr_ratio=exp.min_lr_ratio,
        )
        self._phase_curves: dict[int, Callable[[int], float]] = {
            index: self._own_curve(index) for index, phase in enumerate(exp.unfreeze_schedule) if phase.has_own_lr
        }

    def phase_base_lr(self, index: int) -> float:
        """The multiplier-1 peak LR of phase ``index``: its own ``lr_per_img`` x batch, else the exp's base LR."""
        phase = self.exp.unfreeze_schedule[index]
        return self.base_lr if phase.lr_per_img is None else float(phase.lr_per_img) * self.batch_size

    def _own_curve(self, index: int) -> Callable[[int], float]:
        exp = self.exp
        first, last = exp.phase_epochs(index)
        return phase_curve(self.phase_base_lr(index), exp.unfreeze_schedule[index].warmup_epochs or 0, first, last,
                           exp.max_epoch, exp.no_aug_epochs, exp.min_lr_ratio, exp.warmup_lr, self.iters_per_epoch)

    def base(self, iteration: int, epoch: int | None = None) -> float:
        """The multiplier-1 LR at 1-based global ``iteration`` (of 1-based ``epoch``, derived when not given)."""
        if not self._phase_curves:
            return float(self._curve.update_lr(iteration))
        if epoch is None:
            epoch = (iteration - 1) // self.iters_per_epoch + 1
        index = self.exp.phase_index(epoch)
        curve = self._phase_curves.get(index)
        if curve is None:
            return float(self._curve.update_lr(iteration))
        first, _ = self.exp.phase_epochs(index)
        return float(curve(iteration - (first - 1) * self.iters_per_epoch))

    def for_groups(self, iteration: int, epoch: int) -> dict[str, float]:
        """LR of every group at ``iteration`` of 1-based ``epoch``: frozen groups get 0."""
        lr = self.base(iteration, epoch)
        phase = self.exp.phase_for_epoch(epoch)
        return {g: lr * float(phase.lr_mult.get(g, 0.0)) for g in GROUPS}


def ema_update_weights(decay: float, updates: int, ramp: float = YOLOX_EMA_RAMP_UPDATES) -> tuple[np.ndarray, float]:
    """Weight of each update's model (1..``updates``) in the EMA after ``updates`` updates, and the initial model's.

    YOLOX's ModelEMA does ``ema = d_t * ema + (1 - d_t) * model_t`` with ``d_t = decay * (1 - exp(-t / ramp))``, so
    model_t keeps ``(1 - d_t) * prod_{s > t} d_s``; the weights and the initial share sum to 1.
    """
    t = np.arange(1, updates + 1, dtype=np.float64)
    d = decay * (1.0 - np.exp(-t / ramp))
    after = np.ones(updates, dtype=np.float64)  # prod_{s > t} d_s
    if updates > 1:
        after[:-1] = np.cumprod(d[::-1])[::-1][1:]
    weights = (1.0 - d) * after
    initial = float(np.prod(d)) if updates else 1.0
    return weights, initial


def ema_plan(exp: NuScenesExp, iters_per_epoch: int) -> dict[str, Any]:
    """The EMA's decay and what share of the final EMA each epoch, phase and the no-aug tail hold."""
    if not exp.ema:
        return {"enabled": False}
    decay = exp.ema_decay_per_iter(iters_per_epoch)
    weights, initial = ema_update_weights(decay, exp.max_epoch * iters_per_epoch)
    per_epoch = weights.reshape(exp.max_epoch, iters_per_epoch).sum(axis=1)
    phases = []
    for index in range(len(exp.unfreeze_schedule)):
        first, last = exp.phase_epochs(index)
        phases.append(float(per_epoch[first - 1:last].sum()) if last >= first else 0.0)
    tail = exp.max_epoch - exp.no_aug_epochs
    return {
        "enabled": True,
        "decay": decay,
        "half_life_epochs": exp.ema_half_life_epochs,
        "half_life_iters": math.log(0.5) / math.log(decay),
        "ramp_updates": YOLOX_EMA_RAMP_UPDATES,
        "epoch_shares": [float(v) for v in per_epoch],
        "phase_shares": phases,
        "no_aug_share": float(per_epoch[tail:].sum()),
        "init_share": initial,
    }


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
    ema = ema_plan(exp, iters_per_epoch)
    epoch_shares = ema.pop("epoch_shares", None)
    epochs = []
    for epoch in range(1, exp.max_epoch + 1):
        phase = exp.phase_for_epoch(epoch)
        no_aug = exp.is_no_aug_epoch(epoch)
        mosaic = not no_aug and exp.mosaic_prob > 0
        first = (epoch - 1) * iters_per_epoch + 1
        last = first + iters_per_epoch - 1
        lr_first, lr_last = schedule.for_groups(first, epoch), schedule.for_groups(last, epoch)
        locked = bn_locked_groups(phase, exp.bn_policy)
        epochs.append({
            "epoch": epoch,
            "lr_start": schedule.base(first, epoch),
            "lr_end": schedule.base(last, epoch),
            "mosaic": mosaic,
            "mixup": mosaic and exp.enable_mixup and exp.mixup_prob > 0,
            "l1": no_aug,
            "trainable": phase.trainable,
            "trainable_params": sum(counts[g] for g in phase.trainable),
            "lr_mult": {g: float(phase.lr_mult[g]) for g in phase.trainable},
            "phase": exp.phase_index(epoch),
            "group_lr": {g: [lr_first[g], lr_last[g]] for g in phase.trainable},
            "bn_frozen": [g for g in GROUPS if g in locked],
            "ema_share": None if epoch_shares is None else epoch_shares[epoch - 1],
        })
    phases = []
    for index, phase in enumerate(exp.unfreeze_schedule):
        first_epoch, last_epoch = exp.phase_epochs(index)
        phases.append({
            "phase": index,
            "first_epoch": first_epoch,
            "last_epoch": last_epoch,
            "trainable": phase.trainable,
            "lr_mult": {g: float(phase.lr_mult[g]) for g in phase.trainable},
            "own_lr": phase.has_own_lr,
            "base_lr": schedule.phase_base_lr(index),
            "warmup_epochs": phase.warmup_epochs if phase.has_own_lr else None,
            "bn_policy": effective_bn_policy(phase, exp.bn_policy),
            "bn_frozen": [g for g in GROUPS if g in bn_locked_groups(phase, exp.bn_policy)],
            "ema_share": ema["phase_shares"][index] if ema["enabled"] else None,
        })
    return {
        "exp": exp.exp_name,
        "batch_size": batch_size,
        "base_lr": schedule.base_lr,
        "optimizer": exp.optimizer_name,
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
        "ema": ema,
        "phases": phases,
        "epochs": epochs,
    }


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100.0 * share:.1f}%"


def format_ema(plan: dict[str, Any]) -> str:
    ema = plan.get("ema") or {}
    if not ema.get("enabled"):
        return "EMA: off (the saved model is the last iterate)"
    memory = (f"half-life {ema['half_life_epochs']:g} epochs" if ema.get("half_life_epochs") is not None
              else "ema_decay")
    phases = ", ".join(f"phase {i + 1} {_pct(v)}" for i, v in enumerate(ema["phase_shares"]))
    return (f"EMA: {memory} = {ema['half_life_iters']:,.0f} iters, decay {ema['decay']:.6g} (YOLOX ramp "
            f"1-exp(-updates/{ema['ramp_updates']:g})); share of the final EMA: {phases}; "
            f"no-aug tail {_pct(ema['no_aug_share'])}")


def _phase_line(plan: dict[str, Any], phase: dict[str, Any]) -> str:
    if phase["own_lr"]:
        lr = f"own LR {phase['base_lr']:.4g}, {phase['warmup_epochs'] or 0:g}-epoch warmup"
    else:
        lr = "exp's LR curve"
    frozen = ", ".join(phase["bn_frozen"]) or "none"
    return (f"-- phase {phase['phase'] + 1}, epochs {phase['first_epoch']}-{phase['last_epoch']}: "
            f"{', '.join(phase['trainable'])}; {lr}; bn_policy {phase['bn_policy']}, BN statistics frozen: {frozen}; "
            f"EMA share {_pct(phase['ema_share'])}")


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as a readable table, one row per epoch, phase switches and the no-aug start marked."""
    counts = plan["groups"]
    lines = [
        f"exp {plan['exp']}: batch {plan['batch_size']}, {plan.get('optimizer', 'sgd')} base LR {plan['base_lr']:.6g}, "
        f"{plan['iters_per_epoch']} iters/epoch ({plan.get('iters_per_epoch_source', 'given')}), "
        f"{plan['max_epoch']} epochs, warmup {plan['warmup_epochs']}, no-aug {plan['no_aug_epochs']}, "
        f"bn_policy {plan.get('bn_policy', '?')}",
        "groups: " + ", ".join(f"{g} {counts[g]:,}" for g in GROUPS) + f"; total {plan['total_params']:,}",
        format_ema(plan),
        "",
        f"{'epoch':>5} {'lr_start':>11} {'lr_end':>11} {'mosaic':>6} {'mixup':>5} {'l1':>3} {'ema':>6} "
        f"{'trainable params':>17}  groups (x lr_mult: LR first > last iteration)",
    ]
    phases = {p["phase"]: p for p in plan.get("phases", [])}
    prev_phase = None
    for e in plan["epochs"]:
        marks = []
        if prev_phase is not None and e["phase"] != prev_phase:
            marks.append("<- phase switch")
        if e["phase"] != prev_phase and e["phase"] in phases:
            lines.append(_phase_line(plan, phases[e["phase"]]))
        if e["l1"] and (e["epoch"] == 1 or not plan["epochs"][e["epoch"] - 2]["l1"]):
            marks.append("<- no-aug starts")
        prev_phase = e["phase"]
        group_lr = e.get("group_lr") or {}
        groups = ", ".join(
            f"{g} x{m:g}" + (f" {group_lr[g][0]:.2e}>{group_lr[g][1]:.2e}" if g in group_lr else "")
            for g, m in e["lr_mult"].items())
        share = 100.0 * e["trainable_params"] / max(1, plan["total_params"])
        lines.append(
            f"{e['epoch']:>5} {e['lr_start']:>11.4e} {e['lr_end']:>11.4e} {'yes' if e['mosaic'] else 'no':>6} "
            f"{'yes' if e['mixup'] else 'no':>5} {'on' if e['l1'] else '-':>3} {_pct(e.get('ema_share')):>6} "
            f"{e['trainable_params']:>11,} {share:>4.1f}%  {groups} {' '.join(marks)}".rstrip()
        )
    return "\n".join(lines)


def print_plan(plan: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(plan) + "\n")
    else:
        print(format_plan(plan))

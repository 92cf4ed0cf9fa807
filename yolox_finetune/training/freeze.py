"""Module groups, phase application, the BatchNorm eval policy and the parameter report.

Why BatchNorm needs care: ``requires_grad=False`` freezes a layer's weights, but a BatchNorm layer in train mode
still moves its running mean/var with every batch, silently changing the "frozen" backbone. Here a frozen group's
BN layers are switched to a subclass whose ``train()`` always means eval, so every ``model.train()`` call, by
anyone, keeps their statistics fixed; unfreezing switches them back.

Policies (the exp's ``bn_policy``, or a phase's own): ``frozen_groups`` locks the statistics of frozen groups;
``backbone`` also those of trainable CSPDarknet/PAFPN groups (pretrained statistics kept while their weights
fine-tune, as detection fine-tuning usually does); ``requires_grad_only`` locks none, reproducing a script that only
set ``requires_grad=False``: frozen weights, yet their BatchNorm still normalises with batch statistics and moves
its running statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from yolox_finetune.core.groups import GROUPS
from yolox_finetune.training.distributed import strip_ddp_prefix, unwrap
from yolox_finetune.training.exp import Phase

_CSP_STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")


class EvalModeBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d whose running statistics never update: ``train(True)`` is treated as ``train(False)``."""

    def train(self, mode: bool = True) -> EvalModeBatchNorm2d:
        return super().train(False)


def group_of(param_name: str) -> str:
    """Module group of a parameter/module name of a YOLOX model (``backbone.backbone.dark3...`` -> ``dark3``)."""
    parts = strip_ddp_prefix(param_name).split(".")
    if parts[0] == "head":
        return "head"
    if parts[0] == "backbone":
        if len(parts) > 2 and parts[1] == "backbone" and parts[2] in _CSP_STAGES:
            return parts[2]
        return "pafpn"
    raise ValueError(f"parameter {param_name} belongs to no YOLOX module group")


def group_param_counts(model: nn.Module) -> dict[str, int]:
    counts = dict.fromkeys(GROUPS, 0)
    for name, param in unwrap(model).named_parameters():
        counts[group_of(name)] += param.numel()
    return counts


def effective_bn_policy(phase: Phase, bn_policy: str) -> str:
    """The phase's own policy when it states one, else the exp's ``bn_policy``."""
    return phase.bn_policy or bn_policy


def bn_locked_groups(phase: Phase, bn_policy: str) -> set[str]:
    """Groups whose BN statistics stay frozen under the phase's policy (its own, else ``bn_policy``)."""
    policy = effective_bn_policy(phase, bn_policy)
    if policy == "requires_grad_only":
        return set()
    locked = {g for g in GROUPS if g not in phase.lr_mult}
    if policy == "backbone":
        locked |= {g for g in GROUPS if g != "head"}
    return locked


def apply_phase(model: nn.Module, phase: Phase, bn_policy: str = "frozen_groups") -> None:
    """Make ``requires_grad`` follow the phase and lock/unlock BN statistics per group."""
    model = unwrap(model)
    trainable = set(phase.lr_mult)
    for name, param in model.named_parameters():
        param.requires_grad_(group_of(name) in trainable)
    locked = bn_locked_groups(phase, bn_policy)
    for name, module in model.named_modules():
        if not isinstance(module, nn.BatchNorm2d) or not name:
            continue
        if group_of(name) in locked:
            if type(module) is not EvalModeBatchNorm2d:
                module.__class__ = EvalModeBatchNorm2d
            module.train(False)
        elif type(module) is EvalModeBatchNorm2d:
            module.__class__ = nn.BatchNorm2d
            module.train(model.training)


def bn_modes(model: nn.Module) -> dict[str, bool]:
    """``{bn_module_name: training}``: what each BN layer does right now (for logs and tests)."""
    return {n: m.training for n, m in unwrap(model).named_modules() if isinstance(m, nn.BatchNorm2d)}


@dataclass
class GroupRow:
    group: str
    params: int
    trainable: bool
    lr_mult: float
    bn_frozen: bool


def parameter_report(model: nn.Module, phase: Phase, bn_policy: str = "frozen_groups") -> list[GroupRow]:
    counts = group_param_counts(model)
    locked = bn_locked_groups(phase, bn_policy)
    return [GroupRow(g, counts[g], g in phase.lr_mult, float(phase.lr_mult.get(g, 0.0)), g in locked) for g in GROUPS]


def format_parameter_report(rows: Iterable[GroupRow], title: str = "") -> str:
    rows = list(rows)
    total = sum(r.params for r in rows) or 1
    trainable = sum(r.params for r in rows if r.trainable)
    lines = [title] if title else []
    lines.append(f"{'group':<7} {'status':<9} {'params':>12} {'share':>7} {'lr_mult':>8} {'bn stats':>9}")
    for r in rows:
        lines.append(f"{r.group:<7} {'trainable' if r.trainable else 'frozen':<9} {r.params:>12,} "
                     f"{100.0 * r.params / total:>6.2f}% {r.lr_mult if r.trainable else 0:>8.3g} "
                     f"{'frozen' if r.bn_frozen else 'update':>9}")
    lines.append(f"trainable {trainable:,} of {total:,} parameters ({100.0 * trainable / total:.2f}%), "
                 f"frozen {total - trainable:,} ({100.0 * (total - trainable) / total:.2f}%)")
    return "\n".join(lines)

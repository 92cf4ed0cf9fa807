"""The analysis' pictures: loss components, LR per group, validation mAP, oscillation per epoch and a run's plan.

Several runs are drawn on the same axes, one colour per run, so V1 vs V2 or head-only vs progressive can be judged
at a glance; the oscillation numbers (:mod:`.oscillation`) say by how much.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from yolox_finetune.analysis.oscillation import OscillationStats, default_window, rolling_median
from yolox_finetune.analysis.runs import Run, as_number, plan_no_aug_start
from yolox_finetune.core.atomic_io import atomic_open
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.groups import GROUPS
from yolox_finetune.core.run_files import LOSS_KEYS

_RUN_COLOURS = plt.get_cmap("tab10").colors
_GROUP_COLOURS = dict(zip(GROUPS, plt.get_cmap("Dark2").colors))


# ---------------------------------------------------------------------------------------------------- plots
def _save(fig: plt.Figure, out_png: Path) -> Path:
    out_png = Path(out_png)
    with atomic_open(out_png, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out_png


def _mark_boundaries(ax: plt.Axes, phase_starts: Sequence[tuple[float, int]], no_aug: float | None,
                     colour: Any = "grey", label: bool = True) -> None:
    for i, (x, phase) in enumerate(phase_starts):
        ax.axvline(x, color=colour, linestyle="--", linewidth=0.9, alpha=0.7,
                   label="phase start" if label and i == 0 else None)
        ax.annotate(f"P{phase}", (x, 1.0), xycoords=("data", "axes fraction"), fontsize=7, color=colour,
                    ha="left", va="top")
    if no_aug is not None:
        ax.axvline(no_aug, color="tab:red", linestyle=":", linewidth=1.3, label="no-aug start" if label else None)


def _no_data(ax: plt.Axes, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


def plot_losses(runs: Sequence[Run], out_png: Path, window: int | None = None) -> Path:
    """Each loss component raw (thin) and smoothed (centred rolling median, thick), one colour per run, plus the
    total loss's residual around its trend (what the oscillation numbers measure)."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = list(LOSS_KEYS) + ["residual"]
    for ax, key in zip(axes.flat, panels):
        drawn = False
        for i, run in enumerate(runs):
            colour = _RUN_COLOURS[i % len(_RUN_COLOURS)]
            x = run.global_iters
            values = run.series("total_loss" if key == "residual" else key)
            keep = np.isfinite(values)
            if not keep.any():
                continue
            x, values = x[keep], values[keep]
            trend = rolling_median(values, window or default_window(len(values)))
            if key == "residual":
                with np.errstate(divide="ignore", invalid="ignore"):
                    ax.plot(x, (values - trend) / trend * 100, color=colour, linewidth=0.8, label=run.name)
            else:
                ax.plot(x, values, color=colour, linewidth=0.6, alpha=0.3)
                ax.plot(x, trend, color=colour, linewidth=1.6, label=run.name)
            if len(runs) == 1:
                _mark_boundaries(ax, run.phase_starts(), run.no_aug_start(), label=key == "total_loss")
            drawn = True
        ax.set_title("total loss: residual around trend (%)" if key == "residual" else key)
        ax.set_xlabel("global iteration")
        ax.grid(alpha=0.3)
        if not drawn:
            _no_data(ax)
        elif key in ("total_loss", "residual"):
            ax.legend(fontsize=8)
    fig.suptitle("training losses: raw (faint) and centred rolling median (solid)")
    fig.tight_layout()
    return _save(fig, out_png)


def plot_lr(runs: Sequence[Run], out_png: Path) -> Path:
    """LR per parameter group vs global iteration, one panel per run (shared axes), with phase boundaries and the
    no-aug start marked. Frozen groups have no line while they are frozen."""
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), sharey=True, squeeze=False)
    for ax, run in zip(axes[0], runs):
        groups = run.lr_groups()
        for group in groups:
            ax.plot(run.global_iters, run.lr_series(group), color=_GROUP_COLOURS.get(group, "black"),
                    linewidth=1.4, label=group)
        _mark_boundaries(ax, run.phase_starts(), run.no_aug_start())
        if not groups:
            _no_data(ax, "no LR in metrics.jsonl")
        ax.set_title(f"{run.name}: learning rate per group")
        ax.set_xlabel("global iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0][0].set_ylabel("learning rate")
    fig.tight_layout()
    return _save(fig, out_png)


def plot_validation(runs: Sequence[Run], out_png: Path) -> Path:
    """Validation total loss and mAP (0.5:0.95, 0.5) per epoch, one colour per run; null values are skipped."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("val total loss", lambda r: as_number((r.get("val_loss") or {}).get("total_loss"))),
              ("val AP50-95", lambda r: as_number(r.get("ap50_95"))),
              ("val AP50", lambda r: as_number(r.get("ap50"))))
    for ax, (title, getter) in zip(axes, panels):
        drawn = False
        for i, run in enumerate(runs):
            epochs = np.array([r["epoch"] for r in run.epochs], dtype=float)
            values = np.array([getter(r) for r in run.epochs], dtype=float)
            keep = np.isfinite(values)
            if keep.any():
                ax.plot(epochs[keep], values[keep], marker="o", markersize=4,
                        color=_RUN_COLOURS[i % len(_RUN_COLOURS)], label=run.name)
                drawn = True
        _finish_epoch_axis(ax, title, drawn, "no validation yet")
    fig.tight_layout()
    return _save(fig, out_png)


def _finish_epoch_axis(ax: plt.Axes, title: str, drawn: bool, empty_text: str = "no data") -> None:
    """Title, epoch axis, grid, and a legend when something was drawn (else a note that there is nothing)."""
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    else:
        _no_data(ax, empty_text)


def plot_epoch_oscillation(per_epoch: dict[str, dict[int, OscillationStats]], out_png: Path) -> Path:
    """Residual RSD and jump share of the total loss per epoch, one colour per run."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    panels = (("residual_rsd_pct", "residual RSD of total loss (%)"),
              ("jump_share_pct", "share of logged steps that jump (%), threshold in the report"))
    for ax, (attr, title) in zip(axes, panels):
        drawn = False
        for i, (name, stats) in enumerate(per_epoch.items()):
            epochs = sorted(stats)
            values = [getattr(stats[e], attr) for e in epochs]
            if any(math.isfinite(v) for v in values):
                ax.plot(epochs, values, marker="o", markersize=4, color=_RUN_COLOURS[i % len(_RUN_COLOURS)],
                        label=name)
                drawn = True
        _finish_epoch_axis(ax, title, drawn)
    fig.tight_layout()
    return _save(fig, out_png)


def plan_lr_curve(plan: dict, exp: Any = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """LR per group at every global iteration (1-based) of a plan; NaN where the group is frozen.

    The base LR follows YOLOX's own ``LRScheduler`` (``exp.scheduler``, default yoloxwarmcos) built from the
    plan's base_lr, iters_per_epoch, max_epoch, warmup_epochs and no_aug_epochs plus warmup_lr and min_lr_ratio
    (from the exp, else from the plan), evaluated at the 1-based global iteration as YOLOX's trainer does. Without
    those two values it is interpolated linearly between each epoch's lr_start and lr_end. Each group's LR is the
    base LR times its ``lr_mult`` in that epoch.
    """
    ipe = int(plan["iters_per_epoch"])
    entries = sorted(plan["epochs"], key=lambda e: e["epoch"])
    iters = np.arange(1, ipe * len(entries) + 1, dtype=float)
    warmup_lr = getattr(exp, "warmup_lr", plan.get("warmup_lr"))
    min_lr_ratio = getattr(exp, "min_lr_ratio", plan.get("min_lr_ratio"))
    if warmup_lr is not None and min_lr_ratio is not None:
        from yolox.utils import LRScheduler

        scheduler = LRScheduler(
            getattr(exp, "scheduler", "yoloxwarmcos"), plan["base_lr"], ipe, plan["max_epoch"],
            warmup_epochs=plan["warmup_epochs"], warmup_lr_start=warmup_lr,
            no_aug_epochs=plan["no_aug_epochs"], min_lr_ratio=min_lr_ratio,
        )
        base = np.array([scheduler.update_lr(int(i)) for i in iters])
    else:
        base = np.concatenate([np.linspace(e["lr_start"], e["lr_end"], ipe) for e in entries])
    groups_present = {g for e in entries for g in (e.get("lr_mult") or {})}
    groups = [g for g in GROUPS if g in groups_present] + sorted(groups_present - set(GROUPS))
    curves = {}
    for group in groups:
        mult = np.concatenate([np.full(ipe, (e.get("lr_mult") or {}).get(group, math.nan), dtype=float)
                               for e in entries])
        curves[group] = base * mult
    return iters, curves


def plot_plan(plan: dict, exp: Any, out_png: Path) -> Path:
    """Draw a plan (``schedule.build_plan`` / plan.json): LR per group per iteration with phase boundaries,
    warmup end and no-aug start marked, and which groups train in which epoch."""
    _check_plan(plan)
    ipe = plan["iters_per_epoch"]
    entries = sorted(plan["epochs"], key=lambda e: e["epoch"])
    iters, curves = plan_lr_curve(plan, exp)
    fig, (ax_lr, ax_groups) = plt.subplots(2, 1, figsize=(12, 7), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 2]})
    for group, curve in curves.items():
        ax_lr.plot(iters, curve, color=_GROUP_COLOURS.get(group, "black"), linewidth=1.5, label=group)
    starts, previous = [], None
    for entry in entries:
        if previous is not None and entry.get("phase") != previous:
            starts.append((float((entry["epoch"] - 1) * ipe), entry.get("phase")))
        previous = entry.get("phase")
    no_aug = plan_no_aug_start(plan)
    for ax in (ax_lr, ax_groups):
        _mark_boundaries(ax, starts, no_aug, label=ax is ax_lr)
    if plan.get("warmup_epochs"):
        ax_lr.axvline(plan["warmup_epochs"] * ipe, color="tab:green", linestyle="-.", linewidth=1, label="warmup end")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title(f"plan of {plan.get('exp', '?')}: batch {plan.get('batch_size', '?')}, base LR "
                    f"{plan.get('base_lr', float('nan')):.3g}, {plan.get('max_epoch', len(entries))} epochs x "
                    f"{ipe} iters")
    ax_lr.grid(alpha=0.3)
    ax_lr.legend(fontsize=8, ncol=3)

    groups = list(curves) or list(GROUPS)
    for row, group in enumerate(groups):
        for first, last, mult in _trainable_spans(entries, group):
            ax_groups.broken_barh([((first - 1) * ipe, (last - first + 1) * ipe)], (row - 0.4, 0.8),
                                  color=_GROUP_COLOURS.get(group, "black"), alpha=0.8)
            ax_groups.text(((first - 1) + (last - first + 1) / 2) * ipe, row, f"LR x{mult:g}", ha="center",
                           va="center", fontsize=8, color="white")
    ax_groups.set_yticks(range(len(groups)), groups)
    ax_groups.set_ylim(-0.6, len(groups) - 0.4)
    ax_groups.set_xlabel("global iteration")
    ax_groups.set_title("trainable groups (bars); faint background = mosaic epochs")
    for entry in entries:
        if entry.get("mosaic"):
            ax_groups.axvspan((entry["epoch"] - 1) * ipe, entry["epoch"] * ipe, color="tab:orange", alpha=0.08,
                              linewidth=0)
    fig.tight_layout()
    return _save(fig, out_png)


def _trainable_spans(entries: Sequence[dict], group: str) -> list[tuple[int, int, float]]:
    """``(first_epoch, last_epoch, lr_mult)`` of each stretch of consecutive epochs where ``group`` trains with
    the same multiplier."""
    spans: list[list] = []
    for entry in entries:
        mult = (entry.get("lr_mult") or {}).get(group)
        if mult is None and group in (entry.get("trainable") or []):
            mult = 1.0
        if mult is None:
            continue
        if spans and spans[-1][1] == entry["epoch"] - 1 and spans[-1][2] == mult:
            spans[-1][1] = entry["epoch"]
        else:
            spans.append([entry["epoch"], entry["epoch"], float(mult)])
    return [tuple(span) for span in spans]


def _check_plan(plan: dict) -> None:
    missing = [k for k in ("iters_per_epoch", "epochs", "base_lr", "max_epoch") if k not in plan]
    if missing or not plan.get("epochs"):
        raise UserError(f"plan is missing {', '.join(missing) or 'epochs'}; make it with tools/train.py --plan --json "
                        f"or yolox_finetune.training.schedule.build_plan")

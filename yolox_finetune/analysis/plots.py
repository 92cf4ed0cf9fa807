"""The analysis' pictures: loss components, LR per group, validation, oscillation per epoch, sweeps and a plan.

Every run is drawn on the common axis, the epoch (images seen / images per epoch), never the global iteration, so
runs with other batch sizes or logging intervals line up. One colour per run, the same in every plot, none reused
however many runs; each run's schedule events (phase starts, no-aug start) are marked in its colour, planned but
unreached ones labelled as planned. Gaps (NaN, missing iterations) are breaks in a line, never bridged.
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

from yolox_finetune.analysis.oscillation import running_trend
from yolox_finetune.analysis.runs import TRACKING_EPOCH_METRICS, Run, as_number, plan_no_aug_start
from yolox_finetune.core.atomic_io import atomic_open
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.groups import GROUPS
from yolox_finetune.core.run_files import LOSS_KEYS
from yolox_finetune.mot.clear import LOWER_IS_BETTER

_GROUP_COLOURS = dict(zip(GROUPS, plt.get_cmap("Dark2").colors))
EPOCH_AXIS = "epoch (images seen / images per epoch)"


def run_colours(count: int) -> list[Any]:
    """``count`` distinct colours: tab10 up to 10 runs, else evenly spaced along a wide colour map (never reused)."""
    if count <= 10:
        return list(plt.get_cmap("tab10").colors[:count])
    cmap = plt.get_cmap("turbo")
    return [cmap(i / (count - 1)) for i in range(count)]


# ---------------------------------------------------------------------------------------------------- helpers
def _save(fig: plt.Figure, out_png: Path) -> Path:
    out_png = Path(out_png)
    with atomic_open(out_png, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out_png


def with_breaks(x: np.ndarray, y: np.ndarray, gap_factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` with a NaN inserted wherever consecutive x are more than ``gap_factor`` typical steps apart, so a
    missing stretch is a break in the line; NaN values stay NaN (also breaks)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return x, y
    steps = np.diff(x)
    typical = float(np.median(steps[steps > 0])) if (steps > 0).any() else 0.0
    gaps = np.nonzero(steps > gap_factor * typical)[0] if typical > 0 else np.array([], int)
    if not len(gaps):
        return x, y
    return np.insert(x, gaps + 1, np.nan), np.insert(y, gaps + 1, np.nan)


def _plain_axis(ax: plt.Axes) -> None:
    """Plain tick numbers (no offset, no scientific notation) on a linear y axis."""
    if ax.get_yscale() == "linear":
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def mark_events(ax: plt.Axes, run: Run, colour: Any, label_runs: bool, row: int = 0) -> int:
    """Mark ``run``'s phase starts (dashed) and no-aug start (dotted) in its colour; events after the last logged
    point are labelled as planned; ``row`` (the run's index) staggers the labels so runs with events at the same
    epoch stay readable. Returns how many were drawn."""
    reached = run.last_epoch_position if run.iters or run.epochs else 0.0
    drawn = 0
    for epoch, label in run.events():
        x = epoch
        planned = epoch > reached + 1e-9
        text = f"{label} (planned)" if planned else label
        if label_runs:
            text = f"{run.name}: {text}"
        ax.axvline(x, color=colour, linestyle=":" if label == "no-aug" else "--", linewidth=1.1,
                   alpha=0.4 if planned else 0.8)
        ax.annotate(text, (x, 0.98 - 0.06 * (2 * row + drawn % 2)), xycoords=("data", "axes fraction"), fontsize=7,
                    color=colour, ha="left", va="top", rotation=0)
        drawn += 1
    return drawn


def _no_data(ax: plt.Axes, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


# ---------------------------------------------------------------------------------------------------- plots
def plot_losses(runs: Sequence[Run], out_png: Path, windows: dict[str, float]) -> Path:
    """Each loss component raw (thin) and its trend (thick) per epoch, one colour per run, plus the total loss's
    relative residual around its trend (what the oscillation numbers measure); events marked per run."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = list(LOSS_KEYS) + ["residual"]
    colours = run_colours(len(runs))
    for ax, key in zip(axes.flat, panels):
        drawn = False
        for run, colour in zip(runs, colours):
            x = run.epoch_axis
            values = run.series("total_loss" if key == "residual" else key)
            finite = np.isfinite(values)
            if not finite.any():
                continue
            breaks = [e for e, _ in run.events()]
            trend = np.full(len(x), np.nan)
            trend[finite] = running_trend(x[finite], values[finite], windows.get(run.name, 1.0), breaks)
            if key == "residual":
                with np.errstate(divide="ignore", invalid="ignore"):
                    ax.plot(*with_breaks(x, (values - trend) / trend * 100), color=colour, linewidth=0.8,
                            label=run.name)
            else:
                ax.plot(*with_breaks(x, values), color=colour, linewidth=0.6, alpha=0.3)
                ax.plot(*with_breaks(x, trend), color=colour, linewidth=1.6, label=run.name)
            mark_events(ax, run, colour, label_runs=len(runs) > 1 and key == "total_loss", row=runs.index(run))
            drawn = True
        ax.set_title("total loss: residual around trend" if key == "residual" else key)
        ax.set_ylabel("residual (% of trend)" if key == "residual" else f"{key} (loss units)")
        ax.set_xlabel(EPOCH_AXIS)
        ax.grid(alpha=0.3)
        _plain_axis(ax)
        if not drawn:
            _no_data(ax)
        elif key in ("total_loss", "residual"):
            ax.legend(fontsize=8, loc="best")
    fig.suptitle("training losses: raw (faint) and trend (solid); dashed: phase starts, dotted: no-aug start")
    fig.tight_layout()
    return _save(fig, out_png)


def plot_lr(runs: Sequence[Run], out_png: Path) -> Path:
    """LR per parameter group per epoch on a log axis (small multipliers stay readable), one panel per run, with
    the run's events marked. Frozen groups have no line while they are frozen."""
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), sharey=True, squeeze=False)
    for ax, run, colour in zip(axes[0], runs, run_colours(len(runs))):
        groups = run.lr_groups()
        for group in groups:
            series = run.lr_series(group)
            series = np.where(series > 0, series, np.nan)
            ax.plot(*with_breaks(run.epoch_axis, series), color=_GROUP_COLOURS.get(group, "black"),
                    linewidth=1.4, label=group)
        mark_events(ax, run, colour, label_runs=False)
        if groups and np.isfinite([run.lr_series(g) for g in groups]).any():
            ax.set_yscale("log")
        else:
            _no_data(ax, "no LR in metrics.jsonl")
        ax.set_title(f"{run.name}: learning rate per group", color=colour)
        ax.set_xlabel(EPOCH_AXIS)
        ax.grid(alpha=0.3, which="both")
        if groups:
            ax.legend(fontsize=7, ncol=2)
    axes[0][0].set_ylabel("learning rate (log scale)")
    fig.tight_layout()
    return _save(fig, out_png)


def _epoch_values(run: Run, getter) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch values over every epoch from 1 to the last, NaN where an epoch has no (finite) value."""
    last = max([r["epoch"] for r in run.epochs] or [0])
    epochs = np.arange(1, last + 1, dtype=float)
    values = np.full(len(epochs), np.nan)
    for record in run.epochs:
        values[record["epoch"] - 1] = getter(record)
    return epochs, values


def plot_validation(runs: Sequence[Run], out_png: Path) -> Path:
    """Validation total loss and mAP (0.5:0.95, 0.5) per epoch, one colour per run, events marked; a missing epoch
    or null value is a break in the line."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("val total loss", lambda r: as_number((r.get("val_loss") or {}).get("total_loss"))),
              ("val AP50-95", lambda r: as_number(r.get("ap50_95"))),
              ("val AP50", lambda r: as_number(r.get("ap50"))))
    colours = run_colours(len(runs))
    for ax, (title, getter) in zip(axes, panels):
        drawn = False
        for run, colour in zip(runs, colours):
            epochs, values = _epoch_values(run, getter)
            if np.isfinite(values).any():
                ax.plot(epochs, values, marker="o", markersize=4, color=colour, label=run.name)
                mark_events(ax, run, colour, label_runs=False, row=runs.index(run))
                drawn = True
        ax.set_ylabel(title)
        _finish_epoch_axis(ax, title, drawn, "no validation yet")
    fig.tight_layout()
    return _save(fig, out_png)


#: line style of each tracker in the tracking plot (colour is the run's).
_TRACKER_STYLES = ("-", "--", ":", "-.")


def plot_tracking(runs: Sequence[Run], bests: Sequence[dict], out_png: Path) -> Path:
    """Tracking validation per epoch beside val mAP: AP50-95, AP50, then HOTA, MOTA, IDF1 and IDSW of each tracker
    (colour: run, line style: tracker), the best epoch of every line starred (IDSW: lowest) and best_ckpt.pth's
    epoch ringed in the panel of the metric that chose it."""
    panels = [("AP50_95", "val AP50-95"), ("AP50", "val AP50")] + [(m, f"val {m}") for m in TRACKING_EPOCH_METRICS]
    fig, axes = plt.subplots(2, (len(panels) + 1) // 2, figsize=(16, 8.5), squeeze=False)
    colours = run_colours(len(runs))
    for ax, (metric, title) in zip(axes.flat, panels):
        drawn = False
        for row, (run, colour) in enumerate(zip(runs, colours)):
            key = metric.lower()  # ap50_95, ap50 in the epoch records
            lines = ([(None, "-", lambda r, key=key: as_number(r.get(key)))] if metric.startswith("AP") else
                     [(t, _TRACKER_STYLES[k % len(_TRACKER_STYLES)],
                       lambda r, t=t, run=run, m=metric: run.tracking_value(r, t, m))
                      for k, t in enumerate(run.trackers())])
            for tracker, style, getter in lines:
                epochs, values = _epoch_values(run, getter)
                if not np.isfinite(values).any():
                    continue
                label = run.name if tracker is None else f"{run.name} {tracker}"
                ax.plot(epochs, values, linestyle=style, marker="o", markersize=3, color=colour, label=label)
                for best in bests:
                    if best["run"] == run.name and best["metric"] == metric and best["tracker"] == tracker:
                        ax.plot([best["epoch"]], [best["value"]], marker="*", markersize=15, color=colour,
                                markeredgecolor="black", linestyle="none")
                        if best["chosen"]:
                            ax.plot([best["epoch"]], [best["value"]], marker="o", markersize=20, fillstyle="none",
                                    color="black", linestyle="none", label=f"{run.name}: best_ckpt.pth")
                drawn = True
            if drawn:
                mark_events(ax, run, colour, label_runs=False, row=row)
        side = "lower" if metric in LOWER_IS_BETTER else "higher"
        ax.set_ylabel(f"{title} ({side} is better)")
        _finish_epoch_axis(ax, title, drawn,
                           "no validation yet" if metric.startswith("AP") else "no tracking validation")
    fig.suptitle("tracking validation per epoch beside mAP; stars: each line's best epoch, ring: best_ckpt.pth")
    fig.tight_layout()
    return _save(fig, out_png)


def _finish_epoch_axis(ax: plt.Axes, title: str, drawn: bool, empty_text: str = "no data") -> None:
    """Title, epoch axis, grid, plain numbers, and a legend when something was drawn (else a note)."""
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    _plain_axis(ax)
    if drawn:
        ax.legend(fontsize=8)
    else:
        _no_data(ax, empty_text)


def plot_epoch_oscillation(runs: Sequence[Run], per_epoch: dict[str, dict[int, float]], out_png: Path) -> Path:
    """Residual RSD of the total loss per epoch, one colour per run, events marked."""
    fig, ax = plt.subplots(figsize=(9, 4))
    drawn = False
    for run, colour in zip(runs, run_colours(len(runs))):
        stats = per_epoch.get(run.name, {})
        if not stats or not any(math.isfinite(v) for v in stats.values()):
            continue
        last = max(stats)
        epochs = np.arange(1, last + 1, dtype=float)
        values = np.array([stats.get(int(e), math.nan) for e in epochs])
        ax.plot(epochs - 0.5, values, marker="o", markersize=4, color=colour, label=run.name)
        mark_events(ax, run, colour, label_runs=False, row=runs.index(run))
        drawn = True
    ax.set_ylabel("residual RSD (%)")
    _finish_epoch_axis(ax, "residual RSD of the total loss per epoch (point at the epoch's middle)", drawn)
    fig.tight_layout()
    return _save(fig, out_png)


def plot_sweep(run: Run, split: str, winners: Sequence[dict], out_png: Path) -> Path:
    """MOTA and IDSW against the confidence threshold, one line per (checkpoint, tracker, setting), the winning
    threshold of each metric starred."""
    rows = [r for r in run.sweep_rows if str(r.get("split", "")) == split]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    keys = sorted({(str(r.get("checkpoint")), str(r.get("tracker", "")), _setting_key(r)) for r in rows})
    colours = run_colours(len(keys))
    for ax, metric in zip(axes, ("MOTA", "IDSW")):
        drawn = False
        for key, colour in zip(keys, colours):
            line = sorted((as_number(r.get("conf")), as_number(r.get(metric))) for r in rows
                          if (str(r.get("checkpoint")), str(r.get("tracker", "")), _setting_key(r)) == key)
            line = [p for p in line if math.isfinite(p[0])]
            if not line or not any(math.isfinite(v) for _, v in line):
                continue
            label = " ".join(part for part in (Path(key[0]).name, key[1], key[2]) if part)
            ax.plot([c for c, _ in line], [v for _, v in line], marker="o", markersize=4, color=colour, label=label)
            drawn = True
        for winner in winners:
            if winner["metric"] == metric and winner["split"] == split:
                side = "min" if metric in LOWER_IS_BETTER else "max"
                ax.plot([winner["conf"]], [winner["value"]], marker="*", markersize=16, color="gold",
                        markeredgecolor="black", label=f"best {metric} ({side})")
        ax.set_ylabel(metric + (" (lower is better)" if metric in LOWER_IS_BETTER else " (higher is better)"))
        ax.set_xlabel("confidence threshold")
        ax.set_title(f"{run.name} [{split}]: {metric} vs threshold")
        ax.grid(alpha=0.3)
        _plain_axis(ax)
        if drawn:
            ax.legend(fontsize=7)
        else:
            _no_data(ax, f"no {metric} in the sweep")
    fig.tight_layout()
    return _save(fig, out_png)


def _setting_key(row: dict) -> str:
    skip = {"checkpoint", "tracker", "conf", "source", "split"}
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                    if k not in skip and k[:1].islower() and v not in ("", None))


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
        from yolox_finetune.training.schedule import with_phase_curves  # phases with their own LR (issue 9)

        base = with_phase_curves(plan, base)
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
    """Draw a plan (``schedule.build_plan`` / plan.json) on the epoch axis: LR per group (log axis) with phase
    boundaries, warmup end and no-aug start marked, and which groups train in which epoch."""
    _check_plan(plan)
    ipe = plan["iters_per_epoch"]
    entries = sorted(plan["epochs"], key=lambda e: e["epoch"])
    iters, curves = plan_lr_curve(plan, exp)
    fig, (ax_lr, ax_groups) = plt.subplots(2, 1, figsize=(12, 7), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 2]})
    for group, curve in curves.items():
        ax_lr.plot(iters / ipe, np.where(curve > 0, curve, np.nan), color=_GROUP_COLOURS.get(group, "black"),
                   linewidth=1.5, label=group)
    starts, previous = [], None
    for entry in entries:
        if previous is not None and entry.get("phase") != previous:
            starts.append((float(entry["epoch"] - 1), entry.get("phase")))
        previous = entry.get("phase")
    no_aug = plan_no_aug_start(plan)
    for ax in (ax_lr, ax_groups):
        for i, (x, phase) in enumerate(starts):
            ax.axvline(x, color="grey", linestyle="--", linewidth=0.9,
                       label="phase start" if ax is ax_lr and i == 0 else None)
            ax.annotate(f"P{phase}", (x, 1.0), xycoords=("data", "axes fraction"), fontsize=7, color="grey",
                        ha="left", va="top")
        if no_aug is not None:
            ax.axvline(no_aug / ipe, color="tab:red", linestyle=":", linewidth=1.3,
                       label="no-aug start" if ax is ax_lr else None)
    if plan.get("warmup_epochs"):
        ax_lr.axvline(plan["warmup_epochs"], color="tab:green", linestyle="-.", linewidth=1, label="warmup end")
    if any(np.isfinite(c).any() for c in curves.values()):
        ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate (log scale)")
    ax_lr.set_title(f"plan of {plan.get('exp', '?')}: batch {plan.get('batch_size', '?')}, base LR "
                    f"{np.format_float_positional(plan.get('base_lr', float('nan')), precision=3, fractional=False)}"
                    f", {plan.get('max_epoch', len(entries))} epochs x {ipe} iters")
    ax_lr.grid(alpha=0.3, which="both")
    ax_lr.legend(fontsize=8, ncol=3)

    groups = list(curves) or list(GROUPS)
    for row, group in enumerate(groups):
        for first, last, mult in _trainable_spans(entries, group):
            ax_groups.broken_barh([(first - 1, last - first + 1)], (row - 0.4, 0.8),
                                  color=_GROUP_COLOURS.get(group, "black"), alpha=0.8)
            ax_groups.text((first - 1) + (last - first + 1) / 2, row, f"LR x{mult:g}", ha="center",
                           va="center", fontsize=8, color="white")
    ax_groups.set_yticks(range(len(groups)), groups)
    ax_groups.set_ylim(-0.6, len(groups) - 0.4)
    ax_groups.set_xlabel("epoch")
    ax_groups.set_title("trainable groups (bars); faint background = mosaic epochs")
    for entry in entries:
        if entry.get("mosaic"):
            ax_groups.axvspan(entry["epoch"] - 1, entry["epoch"], color="tab:orange", alpha=0.08, linewidth=0)
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

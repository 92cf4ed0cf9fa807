"""Training analysis: read run dirs (metrics.jsonl, plan.json, sweep.csv), draw the curves, write the report.

A run dir is what ``tools/train.py`` leaves in ``<output_dir>/<exp_name>/``. Everything here tolerates partial
runs (a crash mid-line, no validation yet, val mAP null, a missing field): the analysis of a half-finished run is
exactly when users want it. Several runs are drawn on the same axes, one colour per run, so V1 vs V2 or
head-only vs progressive can be judged at a glance; the oscillation numbers (:mod:`.oscillation`) say by how much.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from loguru import logger

from .errors import UserError
from .evaluation import METRIC_NAMES
from .groups import GROUPS
from .io_utils import atomic_open, atomic_write_json
from .oscillation import (
    DEFAULT_JUMP_FRACTION,
    OscillationStats,
    comparison_line,
    default_window,
    oscillation_by_epoch,
    oscillation_stats,
    rolling_median,
)

LOSS_KEYS: tuple[str, ...] = ("total_loss", "iou_loss", "l1_loss", "conf_loss", "cls_loss")
#: sweep metrics where higher is better, in the order used to pick the "best" row when --best-by is absent.
SWEEP_METRICS: tuple[str, ...] = ("MOTA", "HOTA", "IDF1")
SWEEP_COLUMNS_SHOWN: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")

_RUN_COLOURS = plt.get_cmap("tab10").colors
_GROUP_COLOURS = dict(zip(GROUPS, plt.get_cmap("Dark2").colors))


# ---------------------------------------------------------------------------------------------------- loading
@dataclass
class Run:
    """One training run as read from its dir: iteration and epoch records in order, plan and sweep rows if any."""

    name: str
    run_dir: Path
    iters: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    plan: dict | None = None
    sweep_rows: list[dict] = field(default_factory=list)
    skipped_lines: int = 0

    @property
    def global_iters(self) -> np.ndarray:
        return np.array([r["global_iter"] for r in self.iters], dtype=float)

    @property
    def iter_epochs(self) -> np.ndarray:
        return np.array([r["epoch"] for r in self.iters], dtype=int)

    def series(self, key: str) -> np.ndarray:
        """Per-iteration-record values of ``key``; NaN where missing or not a number."""
        return np.array([_number(r.get(key)) for r in self.iters], dtype=float)

    @property
    def iters_per_epoch(self) -> int | None:
        for record in self.iters:
            if isinstance(record.get("iters_per_epoch"), int) and record["iters_per_epoch"] > 0:
                return record["iters_per_epoch"]
        if self.plan and isinstance(self.plan.get("iters_per_epoch"), int):
            return self.plan["iters_per_epoch"]
        return None

    def lr_groups(self) -> list[str]:
        seen = {g for r in self.iters if isinstance(r.get("lr"), dict) for g in r["lr"]}
        return [g for g in GROUPS if g in seen] + sorted(seen - set(GROUPS))

    def lr_series(self, group: str) -> np.ndarray:
        """LR of ``group`` per iteration record; NaN while the group is frozen (absent from the record)."""
        return np.array([_number(r["lr"].get(group)) if isinstance(r.get("lr"), dict) else math.nan
                         for r in self.iters], dtype=float)

    def epoch_value(self, epoch: int, key: str) -> float:
        for record in self.epochs:
            if record.get("epoch") == epoch:
                return _number(record.get(key))
        return math.nan

    def epoch_numbers(self) -> list[int]:
        return [r["epoch"] for r in self.epochs]

    def _epoch_start_iter(self, epoch: int, fallback: float) -> float:
        ipe = self.iters_per_epoch
        return float((epoch - 1) * ipe) if ipe else fallback

    def phase_starts(self) -> list[tuple[float, int]]:
        """``(global_iter, phase)`` where each phase after the first begins: from plan.json, else from the records."""
        starts: list[tuple[float, int]] = []
        if self.plan and self.plan.get("epochs") and self.plan.get("iters_per_epoch"):
            ipe = self.plan["iters_per_epoch"]
            previous = None
            for entry in self.plan["epochs"]:
                if previous is not None and entry.get("phase") != previous:
                    starts.append((float((entry["epoch"] - 1) * ipe), entry.get("phase")))
                previous = entry.get("phase")
            return starts
        previous = None
        for record in self.iters:
            phase = record.get("phase")
            if phase is None:
                continue
            if previous is not None and phase != previous:
                starts.append((self._epoch_start_iter(record["epoch"], record["global_iter"]), phase))
            previous = phase
        return starts

    def no_aug_start(self) -> float | None:
        """Global iteration where mosaic stops (the no-aug epochs begin); None when it never does."""
        if self.plan and self.plan.get("epochs") and self.plan.get("iters_per_epoch"):
            return plan_no_aug_start(self.plan)
        had_mosaic = False
        for record in self.iters:
            mosaic = record.get("mosaic")
            if mosaic:
                had_mosaic = True
            elif mosaic is False and had_mosaic:
                return self._epoch_start_iter(record["epoch"], record["global_iter"])
        return None

    def last_mosaic_epoch(self) -> int | None:
        if self.plan and self.plan.get("epochs"):
            mosaic_epochs = [e["epoch"] for e in self.plan["epochs"] if e.get("mosaic")]
            return max(mosaic_epochs) if mosaic_epochs else None
        mosaic_epochs = [r["epoch"] for r in self.iters if r.get("mosaic")]
        return max(mosaic_epochs) if mosaic_epochs else None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _read_jsonl(path: Path) -> tuple[list[dict], int]:
    """Records of a JSON-lines file; lines that do not parse (a crash mid-write) are skipped with a warning."""
    records, bad_lines = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad_lines.append(number)
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad_lines.append(number)
    if bad_lines:
        shown = ", ".join(map(str, bad_lines[:5])) + (" ..." if len(bad_lines) > 5 else "")
        logger.warning(f"{path}: skipped {len(bad_lines)} unreadable line(s): {shown}")
    return records, len(bad_lines)


def _normalise_iter_records(records: Iterable[dict]) -> list[dict]:
    """Fill in global_iter/epoch where a record lacks them and keep the last record per global_iter.

    A resumed run repeats the iterations of the interrupted epoch; the later values are the ones that count.
    """
    by_iter: dict[float, dict] = {}
    for index, record in enumerate(records):
        record = dict(record)
        ipe, epoch, it = record.get("iters_per_epoch"), record.get("epoch"), record.get("iter")
        if not isinstance(record.get("global_iter"), (int, float)):
            if all(isinstance(v, int) for v in (ipe, epoch, it)):
                record["global_iter"] = (epoch - 1) * ipe + it
            else:
                record["global_iter"] = index + 1
        if not isinstance(epoch, int):
            record["epoch"] = int((record["global_iter"] - 1) // ipe) + 1 if isinstance(ipe, int) and ipe > 0 else 1
        if isinstance(record.get("lr"), (int, float)) and not isinstance(record.get("lr"), bool):
            record["lr"] = {"all": float(record["lr"])}
        by_iter[record["global_iter"]] = record
    return [by_iter[k] for k in sorted(by_iter)]


def _normalise_epoch_records(records: Iterable[dict]) -> list[dict]:
    by_epoch = {r["epoch"]: r for r in records if isinstance(r.get("epoch"), int)}
    return [by_epoch[k] for k in sorted(by_epoch)]


def load_run(run_dir: str | Path, name: str | None = None) -> Run:
    """Read a training run dir. Raises UserError when it is not one (no metrics.jsonl, nothing readable)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run dir {run_dir} does not exist; pass a training output dir such as "
                        f"YOLOX_outputs/<exp_name>")
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        raise UserError(f"no metrics.jsonl in {run_dir}; pass the dir tools/train.py wrote (<output_dir>/<exp_name>)")
    records, skipped = _read_jsonl(metrics)
    iters = _normalise_iter_records(r for r in records if r.get("type") == "iter")
    epochs = _normalise_epoch_records(r for r in records if r.get("type") == "epoch")
    if not iters and not epochs:
        raise UserError(f"{metrics} holds no iteration or epoch records; has training logged its first "
                        f"print_interval yet?")
    plan = None
    plan_path = run_dir / "plan.json"
    if plan_path.is_file():
        try:
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            logger.warning(f"{plan_path}: not valid JSON ({exc}); phases are inferred from metrics.jsonl")
    run = Run(name or run_dir.name, run_dir, iters, epochs, plan if isinstance(plan, dict) else None,
              skipped_lines=skipped)
    run.sweep_rows = load_sweep_rows(run_dir)
    return run


def load_runs(run_dirs: Sequence[str | Path]) -> list[Run]:
    """Load several runs; names are the dir names, made unique with the parent dir (then a counter) if needed."""
    if not run_dirs:
        raise UserError("no run dir given; pass one or more training output dirs")
    paths = [Path(p) for p in run_dirs]
    base_names = [p.resolve().name for p in paths]
    names = [f"{p.resolve().parent.name}/{name}" if base_names.count(name) > 1 else name
             for p, name in zip(paths, base_names)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if names.count(name) > 1:
            names[i] = f"{name}#{seen[name]}"
    return [load_run(path, name) for path, name in zip(paths, names)]


# ---------------------------------------------------------------------------------------------------- sweeps
def load_sweep_rows(run_dir: Path) -> list[dict]:
    """Rows of every ``sweep.csv`` under ``run_dir`` (numbers parsed), each with its ``source`` file."""
    rows: list[dict] = []
    for path in sorted(run_dir.rglob("sweep.csv")):
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                table = list(csv.DictReader(handle))
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            logger.warning(f"{path}: cannot read sweep results ({exc}); skipped")
            continue
        if table and "checkpoint" not in table[0]:
            logger.warning(f"{path}: no 'checkpoint' column; skipped (expected checkpoint, tracker, conf, MOTA, ...)")
            continue
        for row in table:
            parsed: dict[str, Any] = {"source": str(path)}
            for key, value in row.items():
                if key is None:
                    continue
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            rows.append(parsed)
    return rows


def checkpoint_epoch(run: Run, checkpoint: str) -> int | None:
    """Which epoch a sweep's checkpoint name/path stands for (epoch_10, best, latest, last_mosaic_epoch)."""
    base = Path(str(checkpoint)).name
    match = re.search(r"epoch_(\d+)", base)
    if match and not base.startswith("last_mosaic"):
        return int(match.group(1))
    for record in run.epochs:
        if record.get("checkpoint") and Path(str(record["checkpoint"])).name == base:
            return record["epoch"]
    stem = base.removesuffix(".pth").removesuffix("_ckpt")
    with_ap = [r for r in run.epochs if math.isfinite(_number(r.get("ap50_95")))]
    if stem == "best" and with_ap:
        best = max(_number(r.get("ap50_95")) for r in with_ap)
        return next(r["epoch"] for r in with_ap if _number(r.get("ap50_95")) == best)
    if stem == "latest" and run.epochs:
        return run.epochs[-1]["epoch"]
    if stem == "last_mosaic_epoch":
        return run.last_mosaic_epoch()
    return None


def _grid_setting(row: dict) -> str:
    """Tracker-grid values of a sweep row (columns neither identity nor metrics), e.g. 'track_buffer=60'."""
    skip = {"checkpoint", "tracker", "conf", "source", *METRIC_NAMES}
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in row.items() if k not in skip and v not in ("", None))


def best_sweep_rows(run: Run, best_by: str | None = None) -> list[dict]:
    """Per (checkpoint, tracker): the sweep row with the highest ``best_by`` metric (default: first of MOTA, HOTA,
    IDF1 present), with the checkpoint's epoch and its val mAP attached."""
    if not run.sweep_rows:
        return []
    metric = best_by or next((m for m in SWEEP_METRICS if any(m in r for r in run.sweep_rows)), None)
    if metric is None:
        logger.warning(f"{run.name}: sweep.csv has none of {', '.join(SWEEP_METRICS)}; no tracking table")
        return []
    groups: dict[tuple[str, str], dict] = {}
    for row in run.sweep_rows:
        value = _number(row.get(metric))
        if not math.isfinite(value):
            continue
        key = (str(row.get("checkpoint")), str(row.get("tracker", "")))
        if key not in groups or value > _number(groups[key].get(metric)):
            groups[key] = row
    result = []
    for (checkpoint, tracker), row in groups.items():
        epoch = checkpoint_epoch(run, checkpoint)
        result.append({
            "run": run.name, "checkpoint": Path(checkpoint).name, "epoch": epoch, "tracker": tracker,
            "best_by": metric, "conf": _number(row.get("conf")), "setting": _grid_setting(row),
            "ap50_95": run.epoch_value(epoch, "ap50_95") if epoch else math.nan,
            "ap50": run.epoch_value(epoch, "ap50") if epoch else math.nan,
            **{m: _number(row.get(m)) for m in SWEEP_COLUMNS_SHOWN},
        })
    result.sort(key=lambda r: (r["epoch"] if r["epoch"] is not None else 10**9, r["checkpoint"], r["tracker"]))
    return result


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
    panels = (("val total loss", lambda r: _number((r.get("val_loss") or {}).get("total_loss"))),
              ("val AP50-95", lambda r: _number(r.get("ap50_95"))),
              ("val AP50", lambda r: _number(r.get("ap50"))))
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


# ---------------------------------------------------------------------------------------------------- plan
def plan_no_aug_start(plan: dict) -> float | None:
    ipe = plan["iters_per_epoch"]
    had_mosaic = False
    for entry in plan["epochs"]:
        if entry.get("mosaic"):
            had_mosaic = True
        elif had_mosaic:
            return float((entry["epoch"] - 1) * ipe)
    return None


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
                        f"or yolox_finetune.schedule.build_plan")


def plan_from_exp_file(exp_file: str | Path, iters_per_epoch: int | None = None) -> tuple[dict, Any]:
    """The plan of an exp file before any training, and the exp (for :func:`plot_plan`)."""
    from .exp import load_exp
    from .schedule import build_plan

    exp = load_exp(exp_file)
    if iters_per_epoch is not None and iters_per_epoch <= 0:
        raise UserError(f"--iters-per-epoch must be positive, got {iters_per_epoch}")
    return build_plan(exp, iters_per_epoch), exp


# ---------------------------------------------------------------------------------------------------- analysis
def default_out_dir(run_dirs: Sequence[str | Path]) -> Path:
    """``<run dir>/analysis`` for one run; ``./analysis`` (in the current dir) when comparing several."""
    return Path(run_dirs[0]) / "analysis" if len(run_dirs) == 1 else Path("analysis")


def analyze_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None, window: int | None = None,
                 jump_fraction: float = DEFAULT_JUMP_FRACTION, best_by: str | None = None) -> dict:
    """Analyse one or more runs: plots, oscillation statistics, report.md/report.html and analysis.json in
    ``out_dir``. Returns the headline numbers per run, the comparison lines and the paths written."""
    from .report import write_report

    if not 0 < jump_fraction:
        raise UserError(f"jump fraction must be positive, got {jump_fraction}")
    if window is not None and window < 1:
        raise UserError(f"trend window must be at least 1 logged point, got {window}")
    runs = load_runs(run_dirs)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_dirs)
    out_dir.mkdir(parents=True, exist_ok=True)

    overall = {r.name: oscillation_stats(r.global_iters, r.series("total_loss"), window, jump_fraction)
               for r in runs}
    per_epoch = {r.name: oscillation_by_epoch(r.iter_epochs, r.global_iters, r.series("total_loss"), window,
                                              jump_fraction) for r in runs}
    reference = runs[0].name
    comparisons = [comparison_line(r.name, overall[r.name], reference, overall[reference]) for r in runs[1:]]
    plots = {
        "losses": plot_losses(runs, out_dir / "losses.png", window),
        "lr": plot_lr(runs, out_dir / "lr.png"),
        "validation": plot_validation(runs, out_dir / "validation.png"),
        "oscillation": plot_epoch_oscillation(per_epoch, out_dir / "oscillation_per_epoch.png"),
    }
    for run in runs:  # the schedule each run was planned with (its plan.json), as tools/train.py --plan showed it
        if run.plan and run.plan.get("epochs"):
            try:
                plots[f"plan {run.name}"] = plot_plan(run.plan, None, out_dir / f"plan_{_file_safe(run.name)}.png")
            except (UserError, KeyError, TypeError, ValueError) as exc:
                logger.warning(f"{run.run_dir / 'plan.json'}: cannot draw the plan ({exc}); skipped")
    tracking = [row for run in runs for row in best_sweep_rows(run, best_by)]
    headline = {r.name: run_headline(r, overall[r.name]) for r in runs}
    report_md, report_html = write_report(out_dir, runs, overall, per_epoch, comparisons, plots, tracking)
    result = {
        "out_dir": str(out_dir), "report_md": str(report_md), "report_html": str(report_html),
        "plots": {k: str(v) for k, v in plots.items()}, "runs": headline, "comparison": comparisons,
        "tracking": tracking,
    }
    atomic_write_json(out_dir / "analysis.json", _json_safe(result))
    result["analysis_json"] = str(out_dir / "analysis.json")
    return result


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def run_headline(run: Run, stats: OscillationStats) -> dict:
    """The numbers a user looks at first: progress, best/last val mAP and the oscillation summary."""
    ap = [(r["epoch"], _number(r.get("ap50_95")), _number(r.get("ap50"))) for r in run.epochs]
    ap = [a for a in ap if math.isfinite(a[1])]
    best = max(ap, key=lambda a: a[1]) if ap else None
    return {
        "run_dir": str(run.run_dir), "epochs_logged": len(run.epochs),
        "last_global_iter": int(run.iters[-1]["global_iter"]) if run.iters else None,
        "best_epoch": best[0] if best else None,
        "best_ap50_95": best[1] if best else None, "best_ap50": best[2] if best else None,
        "last_ap50_95": ap[-1][1] if ap else None, "last_ap50": ap[-1][2] if ap else None,
        "oscillation": stats.as_dict(),
    }


def _json_safe(obj: Any) -> Any:
    """NaN/inf become null (strict JSON), Paths become strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj

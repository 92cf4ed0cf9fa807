"""Sweeps: every checkpoint x tracker x conf mode x x-axis value (x grid value) from cached detections.

The x-axis is the confidence threshold (``--conf``, read by ``--conf-mode``) or any tracker option
(``--sweep match_thresh=0.6:0.95:0.05``); ``--grid`` adds further axes, one curve per combination. The run count
is known before any work from the axis lengths: above :data:`CONFIRM_RUNS` a sweep needs ``--yes``, above
:data:`MAX_RUNS` it is refused.

Work is split by sequence over a process pool: each task tracks one sequence for all runs in lockstep (frames are
decoded once) and returns additive counts, which the parent sums per run. Output: ``sweep.csv``, ``sweep.md``,
one PNG per metric with the best x of every curve marked, and ``tracker_config.yaml`` (each tracker's options
before the sweep axes; ``--tracker-config`` with the same axes reruns the sweep).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import sys
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from trackers.config import OptionSpec, TrackerConfig, option_specs, save_config
from trackers.errors import TrackerError
from yolox_finetune.core.atomic_io import atomic_open, atomic_write_text
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.clear import LOWER_IS_BETTER, METRIC_NAMES
from yolox_finetune.mot.evaluate import HEADLINE_CLASS_MEANS, TrackerCounts, evaluate_sequence
from yolox_finetune.mot.interpolation import interpolate_tracks
from yolox_finetune.mot.runner import Sequence, effective_config, run_trackers
from yolox_finetune.tracking.flows import TRACKER_CONFIG_FILE
from yolox_finetune.tracking.options import CONF_FILTER, CONF_TRACKER, DEFAULT_CONF_MODE, apply_conf

#: metrics plotted against the x-axis.
PLOT_METRICS: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")
#: leading metric columns of the CSV (the rest of METRIC_NAMES follow).
CSV_METRICS: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN", "MOTP", "Recall", "Precision")
#: the x-axis name of a confidence sweep (the CSV column ``conf``).
CONF_AXIS = "conf"
#: a sweep with more runs than this asks for ``--yes``.
CONFIRM_RUNS = 5_000
#: a sweep with more runs than this is refused (it could not finish, and its run list alone would fill memory).
MAX_RUNS = 1_000_000
#: columns naming a row (not settings, not metrics).
IDENTITY_COLUMNS: tuple[str, ...] = ("checkpoint", "tracker", "conf_mode", CONF_AXIS)


def range_count(start: float, end: float, step: float) -> int:
    """Values of the inclusive range START:END:STEP (without building them); a range too long to count (a step
    of 1e-308) counts as ``sys.maxsize``, which every size check refuses."""
    quotient = (end - start) / step
    if not math.isfinite(quotient) or quotient >= sys.maxsize:
        return sys.maxsize
    return int(math.floor(quotient + 1e-9)) + 1


def _range(text: str, what: str, integer: bool = False) -> list[float] | list[int]:
    """START:END:STEP (inclusive end) as values; refused before building when it has more than MAX_RUNS values."""
    try:
        start, end, step = (int(p) if integer else float(p) for p in text.split(":"))
        if step <= 0 or end < start:
            raise ValueError
    except ValueError:
        kind = "whole numbers" if integer else "numbers"
        raise UserError(f"{what} {text!r} is not START:END:STEP of {kind} with END >= START and STEP > 0 "
                        "(e.g. 0.1:0.9:0.1)") from None
    count = range_count(start, end, step)
    if count > MAX_RUNS:
        amount = f"{count:,}" if count < sys.maxsize else "countless"
        raise UserError(f"{what} {text!r} has {amount} values, more than the {MAX_RUNS:,} runs a sweep may have; "
                        "use a larger step")
    if integer:
        return [int(start + i * step) for i in range(count)]
    return [round(start + i * step, 6) for i in range(count)]


def parse_conf_values(text: str) -> list[float]:
    """``0.1:0.9:0.1`` (inclusive end), ``0.2,0.4`` or ``0.3``; values rounded to 6 decimals."""
    try:
        if ":" in text:
            values = _range(text, "--conf")
        else:
            values = [round(float(p), 6) for p in text.split(",") if p.strip()]
    except (ValueError, UserError) as exc:
        if isinstance(exc, UserError) and "values, more than" in str(exc):
            raise
        raise UserError(f"--conf {text!r} is not START:END:STEP (e.g. 0.1:0.9:0.1) or a comma list") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise UserError(f"--conf {text!r}: thresholds must lie in [0, 1]")
    return values


def _axis_specs(tracker_names: list[str]) -> dict[str, OptionSpec]:
    """Options that can be a sweep axis: every single-valued option of the chosen trackers."""
    return {name: spec for name, spec in option_specs(tracker_names).items() if spec.kind is not frozenset}


def parse_axis(item: str, tracker_names: list[str], flag: str) -> tuple[str, list[Any]]:
    """``NAME=v1,v2`` or, for a number option, ``NAME=START:END:STEP`` -> (option, values), read by the option's
    type in ``trackers/config.py`` (dashes in NAME allowed)."""
    specs = _axis_specs(tracker_names)
    if "=" not in item:
        raise UserError(f"{flag} {item!r} is not NAME=v1,v2,... or NAME=START:END:STEP (e.g. match_thresh=0.7,0.8)")
    name, values = item.split("=", 1)
    name = name.strip().replace("-", "_")
    if name not in specs:
        raise UserError(f"{flag} {name}: not an option of {', '.join(tracker_names)}; "
                        f"options: {', '.join(sorted(specs))}")
    spec = specs[name]
    if ":" in values:
        if spec.kind not in (int, float):
            raise UserError(f"{flag} {name}: START:END:STEP needs a number option; {name} takes {spec.described}")
        return name, _range(values, f"{flag} {name}", integer=spec.kind is int)
    try:
        parsed = [spec.parse(v) for v in values.split(",") if v.strip()]
    except TrackerError as exc:
        raise UserError(f"{flag} {exc}") from None
    if not parsed:
        raise UserError(f"{flag} {name}: give at least one value")
    return name, parsed


def parse_grid(items: list[str], tracker_names: list[str]) -> dict[str, list[Any]]:
    """``--grid`` items -> {option: values} (see ``parse_axis``); an option named twice is an error."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, values = parse_axis(item, tracker_names, "--grid")
        if name in grid:
            raise UserError(f"--grid {name} is given twice; give its values in one NAME=v1,v2 item")
        grid[name] = values
    return grid


@dataclass
class SweepPlan:
    """The axes of a sweep: the x-axis (``conf`` or a tracker option), confidence values, conf modes, grid."""

    #: ``conf`` or the tracker option on the x-axis.
    x_name: str
    #: its values (for ``conf``: the thresholds).
    x_values: list[Any]
    #: the confidence values (None: the mode's default); the x values when ``x_name`` is conf.
    confs: list[float | None]
    #: conf modes to run, each its own curves.
    modes: list[str] = field(default_factory=lambda: [DEFAULT_CONF_MODE])
    #: further option axes: option -> values.
    grid: dict[str, list[Any]] = field(default_factory=dict)
    #: new_track_thresh is set by the user (flag or axis), so tracker mode does not move it.
    new_track_fixed: bool = False

    def axes_of(self, config: TrackerConfig) -> dict[str, list[Any]]:
        """The option axes (grid, then the x option) that apply to a tracker with this config."""
        axes = {k: v for k, v in self.grid.items() if k in config.option_names()}
        if self.x_name != CONF_AXIS and self.x_name in config.option_names():
            axes[self.x_name] = self.x_values
        return axes

    def count(self, configs: Mapping[str, TrackerConfig], checkpoints: int = 1) -> int:
        """Runs of this plan: checkpoints x modes x confs x, per tracker, the product of its axes' lengths."""
        per_checkpoint = 0
        for config in configs.values():
            per_checkpoint += math.prod(len(v) for v in self.axes_of(config).values())
        return checkpoints * len(self.modes) * len(self.confs) * per_checkpoint


def make_plan(conf: str | None, sweep: str | None, grid: list[str], modes: list[str],
              configs: Mapping[str, TrackerConfig], new_track_flag: bool = False) -> SweepPlan:
    """The plan of ``--conf``, ``--sweep``, ``--grid`` and ``--conf-mode``, with contradictions refused: an option
    both swept and on the grid, or the high threshold swept as an option while tracker mode sets it from --conf."""
    names = list(configs)
    axes = parse_grid(grid, names)
    if sweep is not None and sweep.split("=", 1)[0].strip().replace("-", "_") == CONF_AXIS:
        conf, sweep = sweep.split("=", 1)[1], None
    confs: list[float | None]
    if sweep is None:
        confs = list(parse_conf_values(conf if conf is not None else "0.1:0.9:0.1"))
        x_name, x_values = CONF_AXIS, list(confs)
    else:
        x_name, x_values = parse_axis(sweep, names, "--sweep")
        if x_name in axes:
            raise UserError(f"{x_name} is both the --sweep axis and a --grid axis; keep it in one of them")
        confs = list(parse_conf_values(conf)) if conf is not None else [None]
    swept = set(axes) | ({x_name} - {CONF_AXIS})
    if CONF_TRACKER in modes and "track_thresh" in swept and any(c is not None for c in confs):
        raise UserError("--conf-mode tracker sets track_thresh from --conf, and track_thresh is also a sweep axis; "
                        "sweep --conf instead, or use --conf-mode filter")
    return SweepPlan(x_name, x_values, confs, list(modes), axes, new_track_flag or "new_track_thresh" in swept)


def check_size(count: int, confirmed: bool) -> None:
    """Refuse a sweep of more than MAX_RUNS runs; one of more than CONFIRM_RUNS needs ``--yes``."""
    if count > MAX_RUNS:
        raise UserError(f"this sweep has {count:,} runs, more than the {MAX_RUNS:,} allowed; use fewer values or "
                        "larger steps")
    if count > CONFIRM_RUNS and not confirmed:
        raise UserError(f"this sweep has {count:,} runs (more than {CONFIRM_RUNS:,}); pass --yes to run them, or "
                        "use fewer values")


@dataclass
class SweepRun:
    """One row of the sweep: which detections, tracker, settings, threshold and its meaning."""

    checkpoint: str
    tracker: str
    #: the confidence value as given (None: the mode's default).
    conf: float | None
    #: option axes of this run (grid and x option): option -> value.
    grid: dict[str, Any]
    #: the config it runs with (conf mode applied).
    config: TrackerConfig
    #: detection score pre-filter before the tracker.
    prefilter: float = 0.0
    conf_mode: str = DEFAULT_CONF_MODE

    @property
    def conf_value(self) -> float:
        """The ``conf`` column: the pre-filter in filter mode, the high threshold in tracker mode."""
        return self.prefilter if self.conf_mode == CONF_FILTER else self.config.track_thresh


def build_runs(checkpoint: str, configs: Mapping[str, TrackerConfig], plan: SweepPlan,
               have_images: bool) -> tuple[list[SweepRun], list[str]]:
    """All runs of one checkpoint: each tracker (name -> config) x conf mode x its option axes x conf value, plus
    notes (e.g. BoT-SORT without frames runs with cmc none). An axis applies to the trackers that have that option.
    A contradicting combination raises UserError before any run."""
    runs, notes = [], []
    for name, base in configs.items():
        axes = plan.axes_of(base)
        keys = list(axes)
        for mode in plan.modes:
            for values in itertools.product(*(axes[k] for k in keys)):
                setting = dict(zip(keys, values))
                try:
                    with_axes = replace(base, **setting)
                except TrackerError as exc:
                    raise UserError(f"{name} with {_setting_text(setting)}: {exc}") from None
                config, note = effective_config(name, with_axes, have_images)
                if note and note not in notes:
                    notes.append(note)
                for conf in plan.confs:
                    final, prefilter = apply_conf(name, config, conf, mode, plan.new_track_fixed)
                    runs.append(SweepRun(checkpoint, name, conf, setting, final, prefilter, mode))
    return runs, notes


def _setting_text(setting: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "its options"


#: the sweep column of the interpolation gap (``--interpolate``): 0 = raw tracker output.
INTERPOLATE_AXIS = "interpolate"


def with_interpolation(runs: list[SweepRun], max_gap: int) -> list[SweepRun]:
    """Each run twice, raw (``interpolate`` 0) and with gaps up to ``max_gap`` frames filled, so the two are
    reported side by side (the tracker runs once for both)."""
    if max_gap <= 0:
        return runs
    return [replace(run, grid={**run.grid, INTERPOLATE_AXIS: gap}) for run in runs for gap in (0, max_gap)]


def _sweep_sequence(task: tuple[Sequence, list[tuple[str, TrackerConfig, float]], float, list[tuple[int, int]]]
                    ) -> list[dict]:
    """Worker: one sequence, every distinct tracker run once -> per-run {class: counts} (a run = spec + gap)."""
    seq, specs, iou, run_specs = task
    results = run_trackers(specs, seq.detections, seq.num_frames, seq.frame_rate, seq.images, seq.image_size)
    out = []
    for spec, gap in run_specs:
        rows = interpolate_tracks(results[spec], gap) if gap else results[spec]
        out.append(evaluate_sequence(seq.gt, rows, iou, scored_frames=seq.scored_frames))
    return out


def run_sweep(sources: dict[str, list[Sequence]], runs: list[SweepRun], jobs: int | None = None,
              iou_threshold: float = 0.5) -> list[TrackerCounts]:
    """Counts per run (same order as ``runs``); ``sources`` maps a checkpoint label to its sequences with
    detections. ``jobs`` processes (default: CPU count; 1 = in this process)."""
    tasks, owners = [], []
    for label, sequences in sources.items():
        mine = [i for i, r in enumerate(runs) if r.checkpoint == label]
        specs: list[tuple[str, TrackerConfig, float]] = []
        index_of: dict[tuple[str, str, float], int] = {}
        run_specs = []
        for i in mine:
            key = (runs[i].tracker, repr(runs[i].config), runs[i].prefilter)
            if key not in index_of:
                index_of[key] = len(specs)
                specs.append((runs[i].tracker, runs[i].config, runs[i].prefilter))
            run_specs.append((index_of[key], int(runs[i].grid.get(INTERPOLATE_AXIS, 0))))
        for seq in sequences:
            tasks.append((seq, specs, iou_threshold, run_specs))
            owners.append((seq.name, mine))
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(tasks) == 1:
        outputs = map(_sweep_sequence, tasks)
        return _collect(runs, owners, outputs)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return _collect(runs, owners, pool.map(_sweep_sequence, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))


def _collect(runs: list[SweepRun], owners: list[tuple[str, list[int]]], outputs) -> list[TrackerCounts]:
    counts = [TrackerCounts() for _ in runs]
    for (seq_name, mine), per_run in zip(owners, outputs):
        for index, per_class in zip(mine, per_run):
            counts[index].add_sequence(seq_name, per_class)
    return counts


def sweep_rows(runs: list[SweepRun], counts: list[TrackerCounts]) -> list[dict[str, Any]]:
    """One flat dict per run: checkpoint, tracker, conf_mode, conf (the pre-filter in filter mode, the high
    threshold in tracker mode), the option axes, then the overall metrics (class means go to ``class_means``)."""
    grid_keys = list(dict.fromkeys(k for r in runs for k in r.grid))
    rows = []
    for run, c in zip(runs, counts):
        metrics = c.summary()
        row = {"checkpoint": run.checkpoint, "tracker": run.tracker, "conf_mode": run.conf_mode,
               CONF_AXIS: run.conf_value}
        row.update({k: run.grid.get(k, "") for k in grid_keys})
        row.update({m: metrics[m] for m in CSV_METRICS})
        row.update({m: metrics[m] for m in METRIC_NAMES if m not in CSV_METRICS})
        rows.append(row)
    return rows


def class_means(counts: list[TrackerCounts]) -> list[dict[str, Any]]:
    """mHOTA, mMOTA, mIDF1 of each run (same order as the rows), for sweep.md. They stay out of sweep.csv, whose
    readers (the analysis) treat unknown columns as tracker settings."""
    return [{k: c.summary()[k] for k in HEADLINE_CLASS_MEANS} for c in counts]


def _metric_columns() -> set[str]:
    return {*METRIC_NAMES, *HEADLINE_CLASS_MEANS}


def _curve_key(row: dict[str, Any], keys: list[str]) -> str:
    parts = [row["checkpoint"], row["tracker"], row.get("conf_mode", "")]
    parts += [f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys if row[k] != ""]
    return " ".join(str(p) for p in parts if p != "")


def sweep_curves(rows: list[dict[str, Any]], x_name: str = CONF_AXIS) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped into curves over ``x_name``: one per (checkpoint, tracker, conf mode, other axis values)."""
    keys = [k for k in rows[0] if k not in ("checkpoint", "tracker", "conf_mode", x_name)
            and k not in _metric_columns()]
    if x_name != CONF_AXIS and len({r[CONF_AXIS] for r in rows}) == 1:
        keys.remove(CONF_AXIS)  # one threshold for every row: said in the title, not in every label
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        curves.setdefault(_curve_key(row, keys), []).append(row)
    return curves


def best_points(rows: list[dict[str, Any]], metrics: tuple[str, ...] = PLOT_METRICS,
                x_name: str = CONF_AXIS) -> list[dict[str, Any]]:
    """For every curve and metric: the best x and its value (ties: the smallest x)."""
    best = []
    for key, curve in sweep_curves(rows, x_name).items():
        entry: dict[str, Any] = {"curve": key}
        for metric in metrics:
            scored = [r for r in curve if r[metric] is not None]
            if not scored:
                entry[metric] = "-"
                continue
            sign = -1 if metric in LOWER_IS_BETTER else 1
            top = max(scored, key=lambda r: (sign * r[metric], -_number(r[x_name])))
            entry[metric] = f"{top[metric]:.4g} @ {_x_text(top[x_name])}"
        best.append(entry)
    return best


def best_thresholds(rows: list[dict[str, Any]], metrics: tuple[str, ...] = PLOT_METRICS) -> list[dict[str, Any]]:
    """``best_points`` over the confidence threshold."""
    return best_points(rows, metrics, CONF_AXIS)


def _number(value: Any) -> float:
    """Tie-break order of x values: numbers by value, words and none after them."""
    return float(value) if isinstance(value, (int, float)) else math.inf


def _x_text(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def axis_label(x_name: str, modes: list[str]) -> str:
    """The x-axis of plots and tables, saying what the threshold means."""
    if x_name != CONF_AXIS:
        return x_name
    meaning = {CONF_FILTER: "filter: detection pre-filter", CONF_TRACKER: "tracker: high threshold, new track +gap"}
    return "confidence threshold (" + "; ".join(meaning[m] for m in modes) + ")"


def write_sweep(rows: list[dict[str, Any]], out: Path, notes: list[str] | None = None,
                configs: Mapping[str, TrackerConfig] | None = None, x_name: str = CONF_AXIS,
                means: list[dict[str, Any]] | None = None) -> list[Path]:
    """sweep.csv, sweep.md, the plots and, given ``configs`` (the trackers' options before the sweep axes),
    tracker_config.yaml in ``out`` (atomic writes); ``means`` (``class_means``) add mHOTA/mMOTA/mIDF1 to
    sweep.md. Returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [save_config(configs, out / TRACKER_CONFIG_FILE)] if configs else []
    with atomic_open(out / "sweep.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
    modes = list(dict.fromkeys(r.get("conf_mode", DEFAULT_CONF_MODE) for r in rows))
    text = io.StringIO()
    text.write(f"# Sweep of {x_name}\n\n")
    text.write(f"- x-axis: {axis_label(x_name, modes)}\n- conf mode: {', '.join(modes)} (what --conf means: "
               f"{CONF_TRACKER} = the trackers' high threshold, {CONF_FILTER} = a pre-filter before tracking)\n\n")
    for note in notes or []:
        text.write(f"> {note}\n\n")
    text.write(f"## Best {x_name} per metric\n\n")
    text.write(tabulate(best_points(rows, PLOT_METRICS, x_name), headers="keys", tablefmt="github") + "\n\n")
    text.write("## All runs\n\nmHOTA, mMOTA, mIDF1: class means (plain mean over classes); the other metrics are "
               "detection-weighted over all classes.\n\n")
    shown = []
    for i, r in enumerate(rows):
        row = {k: (round(v, 2) if isinstance(v, float) and k not in (CONF_AXIS, x_name) else v) for k, v in r.items()}
        if means is not None:
            row.update({k: (round(v, 2) if isinstance(v, float) else v) for k, v in means[i].items()})
        shown.append(row)
    text.write(tabulate(shown, headers="keys", tablefmt="github", missingval="-") + "\n")
    atomic_write_text(out / "sweep.md", text.getvalue())
    return [out / "sweep.csv", out / "sweep.md", *written] + plot_sweep(rows, out, PLOT_METRICS, x_name)


def plot_sweep(rows: list[dict[str, Any]], out: Path, metrics: tuple[str, ...] = PLOT_METRICS,
               x_name: str = CONF_AXIS) -> list[Path]:
    """One PNG per metric: a line per curve against ``x_name``, its best point starred and labelled; curves of
    the two conf modes are solid (tracker) and dashed (filter), so one plot compares them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = sweep_curves(rows, x_name)
    modes = list(dict.fromkeys(r.get("conf_mode", DEFAULT_CONF_MODE) for r in rows))
    raw = list(dict.fromkeys(r[x_name] for r in rows))
    numeric = all(isinstance(v, (int, float)) for v in raw)
    position = {v: (float(v) if numeric else float(i)) for i, v in enumerate(raw)}  # words: one tick each
    paths = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        sign = -1 if metric in LOWER_IS_BETTER else 1
        for key, curve in curves.items():
            points = sorted((position[r[x_name]], r[metric]) for r in curve if r[metric] is not None)
            if not points:
                continue
            xs, ys = zip(*points)
            style = "--" if curve[0].get("conf_mode") == CONF_FILTER and len(modes) > 1 else "-"
            (line,) = ax.plot(xs, ys, style, marker="o", markersize=3, label=key)
            bx, by = max(points, key=lambda p: (sign * p[1], -p[0]))
            ax.plot([bx], [by], marker="*", markersize=14, color=line.get_color(), markeredgecolor="black")
            label = f"{bx:g}" if numeric else _x_text(raw[int(bx)] if raw[int(bx)] is not None else "none")
            ax.annotate(label, (bx, by), textcoords="offset points", xytext=(4, 6), fontsize=8)
        if not numeric:
            ax.set_xticks([position[v] for v in raw], ["none" if v is None else _x_text(v) for v in raw])
        ax.set_xlabel(axis_label(x_name, modes))
        ax.set_ylabel(metric + ("" if metric in LOWER_IS_BETTER else " (%)"))
        fixed = ""
        if x_name != CONF_AXIS and len({r[CONF_AXIS] for r in rows}) == 1:
            fixed = f", conf {_x_text(rows[0][CONF_AXIS])}"
        ax.set_title(f"{metric} vs {x_name} [conf mode {', '.join(modes)}{fixed}] "
                     f"(best: {'lowest' if sign < 0 else 'highest'}, starred)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"sweep_{metric}.png"
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths

"""Confidence sweeps: every checkpoint x tracker x threshold (x grid value) from cached detections.

Work is split by sequence over a process pool: each task tracks one sequence for all runs in lockstep (frames are
decoded once) and returns additive counts, which the parent sums per run. Output: ``sweep.csv``, ``sweep.md``,
one PNG per metric with the best threshold of every curve marked, and ``tracker_config.yaml`` (each tracker's
options before the grid axes; ``--tracker-config`` with the same ``--grid`` reruns the sweep).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tabulate import tabulate

from trackers.config import TrackerConfig, option_specs, save_config
from trackers.errors import TrackerError
from yolox_finetune.core.atomic_io import atomic_open, atomic_write_text
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.clear import LOWER_IS_BETTER, METRIC_NAMES, ClearCounts
from yolox_finetune.mot.evaluate import TrackerCounts, evaluate_sequence
from yolox_finetune.mot.runner import Sequence, effective_config, run_trackers
from yolox_finetune.tracking.flows import TRACKER_CONFIG_FILE

#: metrics plotted against the threshold.
PLOT_METRICS: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")
#: leading metric columns of the CSV (the rest of METRIC_NAMES follow).
CSV_METRICS: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN", "MOTP", "Recall", "Precision")


def parse_conf_values(text: str) -> list[float]:
    """``0.1:0.9:0.1`` (inclusive end), ``0.2,0.4`` or ``0.3``; values rounded to 6 decimals."""
    try:
        if ":" in text:
            start, end, step = (float(p) for p in text.split(":"))
            if step <= 0 or end < start:
                raise ValueError
            count = int(math.floor((end - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 6) for i in range(count)]
        else:
            values = [round(float(p), 6) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UserError(f"--conf {text!r} is not START:END:STEP (e.g. 0.1:0.9:0.1) or a comma list") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise UserError(f"--conf {text!r}: thresholds must lie in [0, 1]")
    return values


def parse_grid(items: list[str], tracker_names: list[str]) -> dict[str, list[Any]]:
    """``NAME=v1,v2`` items -> {option: values}; NAME is a single-valued option (dashes allowed) of a chosen tracker,
    and its values are read by the option's type in ``trackers/config.py``."""
    specs = {name: spec for name, spec in option_specs(tracker_names).items() if spec.kind is not frozenset}
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid {item!r} is not NAME=v1,v2,... (e.g. match_thresh=0.7,0.8)")
        name, values = item.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in specs:
            raise UserError(f"--grid {name}: not an option of {', '.join(tracker_names)}; "
                            f"options: {', '.join(sorted(specs))}")
        try:
            parsed = [specs[name].parse(v) for v in values.split(",") if v.strip()]
        except TrackerError as exc:
            raise UserError(f"--grid {exc}") from None
        if not parsed:
            raise UserError(f"--grid {name}: give at least one value")
        grid[name] = parsed
    return grid


@dataclass
class SweepRun:
    """One row of the sweep: which detections, tracker, settings and threshold."""

    checkpoint: str
    tracker: str
    conf: float
    grid: dict[str, Any]
    config: TrackerConfig


def build_runs(checkpoint: str, configs: Mapping[str, TrackerConfig], confs: list[float],
               grid: dict[str, list[Any]], have_images: bool) -> tuple[list[SweepRun], list[str]]:
    """All runs of one checkpoint: each tracker (name -> config) x its grid axes x threshold, plus notes (e.g.
    BoT-SORT without frames runs with cmc none). A grid axis applies to the trackers that have that option."""
    runs, notes = [], []
    for name, base in configs.items():
        keys = [k for k in grid if k in base.option_names()]
        for values in itertools.product(*(grid[k] for k in keys)):
            setting = dict(zip(keys, values))
            config, note = effective_config(name, replace(base, **setting), have_images)
            if note and note not in notes:
                notes.append(note)
            runs.extend(SweepRun(checkpoint, name, conf, setting, config) for conf in confs)
    return runs, notes


def _sweep_sequence(task: tuple[Sequence, list[tuple[str, TrackerConfig, float]], float]) -> list[dict]:
    """Worker: one sequence, every run -> per-run {class: counts}."""
    seq, runs, iou = task
    results = run_trackers(runs, seq.detections, seq.num_frames, seq.frame_rate, seq.images, seq.image_size)
    return [evaluate_sequence(seq.gt, r, iou) for r in results]


def run_sweep(sources: dict[str, list[Sequence]], runs: list[SweepRun], jobs: int | None = None,
              iou_threshold: float = 0.5) -> list[TrackerCounts]:
    """Counts per run (same order as ``runs``); ``sources`` maps a checkpoint label to its sequences with
    detections. ``jobs`` processes (default: CPU count; 1 = in this process)."""
    tasks, owners = [], []
    for label, sequences in sources.items():
        mine = [i for i, r in enumerate(runs) if r.checkpoint == label]
        specs = [(runs[i].tracker, runs[i].config, runs[i].conf) for i in mine]
        for seq in sequences:
            tasks.append((seq, specs, iou_threshold))
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
    """One flat dict per run: checkpoint, tracker, conf, grid keys, then the overall metrics."""
    grid_keys = sorted({k for r in runs for k in r.grid})
    rows = []
    for run, c in zip(runs, counts):
        metrics = c.overall().metrics() if c.units else ClearCounts().metrics()
        row = {"checkpoint": run.checkpoint, "tracker": run.tracker, "conf": run.conf}
        row.update({k: run.grid.get(k, "") for k in grid_keys})
        row.update({m: metrics[m] for m in CSV_METRICS})
        row.update({m: metrics[m] for m in METRIC_NAMES if m not in CSV_METRICS})
        rows.append(row)
    return rows


def _curve_key(row: dict[str, Any], grid_keys: list[str]) -> str:
    parts = [row["checkpoint"], row["tracker"]] + [f"{k}={row[k]}" for k in grid_keys if row[k] != ""]
    return " ".join(str(p) for p in parts)


def sweep_curves(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped into curves over the threshold: one per (checkpoint, tracker, grid values), named by those."""
    grid_keys = [k for k in rows[0] if k not in ("checkpoint", "tracker", "conf") and k not in METRIC_NAMES]
    curves: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        curves.setdefault(_curve_key(row, grid_keys), []).append(row)
    return curves


def best_thresholds(rows: list[dict[str, Any]], metrics: tuple[str, ...] = PLOT_METRICS) -> list[dict[str, Any]]:
    """For every curve (checkpoint, tracker, grid values) and metric: the best threshold and its value."""
    best = []
    for key, curve in sweep_curves(rows).items():
        entry: dict[str, Any] = {"curve": key}
        for metric in metrics:
            scored = [r for r in curve if r[metric] is not None]
            if not scored:
                entry[metric] = "-"
                continue
            sign = -1 if metric in LOWER_IS_BETTER else 1
            top = max(scored, key=lambda r: (sign * r[metric], -r["conf"]))
            entry[metric] = f"{top[metric]:.4g} @ {top['conf']:g}"
        best.append(entry)
    return best


def write_sweep(rows: list[dict[str, Any]], out: Path, notes: list[str] | None = None,
                configs: Mapping[str, TrackerConfig] | None = None) -> list[Path]:
    """sweep.csv, sweep.md, the plots and, given ``configs`` (the trackers' options before the grid axes),
    tracker_config.yaml in ``out`` (atomic writes); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [save_config(configs, out / TRACKER_CONFIG_FILE)] if configs else []
    with atomic_open(out / "sweep.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
    text = io.StringIO()
    text.write("# Confidence sweep\n\n")
    for note in notes or []:
        text.write(f"> {note}\n\n")
    text.write("## Best threshold per metric\n\n")
    text.write(tabulate(best_thresholds(rows), headers="keys", tablefmt="github") + "\n\n## All runs\n\n")
    shown = [{k: (round(v, 2) if isinstance(v, float) and k != "conf" else v) for k, v in r.items()} for r in rows]
    text.write(tabulate(shown, headers="keys", tablefmt="github", missingval="-") + "\n")
    atomic_write_text(out / "sweep.md", text.getvalue())
    return [out / "sweep.csv", out / "sweep.md", *written] + plot_sweep(rows, out)


def plot_sweep(rows: list[dict[str, Any]], out: Path, metrics: tuple[str, ...] = PLOT_METRICS) -> list[Path]:
    """One PNG per metric: a line per curve against the threshold, its best point starred and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = sweep_curves(rows)
    paths = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        sign = -1 if metric in LOWER_IS_BETTER else 1
        for key, curve in curves.items():
            points = sorted((r["conf"], r[metric]) for r in curve if r[metric] is not None)
            if not points:
                continue
            xs, ys = zip(*points)
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=key)
            bx, by = max(points, key=lambda p: (sign * p[1], -p[0]))
            ax.plot([bx], [by], marker="*", markersize=14, color=line.get_color(), markeredgecolor="black")
            ax.annotate(f"{bx:g}", (bx, by), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set_xlabel("detection confidence threshold")
        ax.set_ylabel(metric + ("" if metric in LOWER_IS_BETTER else " (%)"))
        ax.set_title(f"{metric} vs threshold (best: {'lowest' if sign < 0 else 'highest'}, starred)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"sweep_{metric}.png"
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths

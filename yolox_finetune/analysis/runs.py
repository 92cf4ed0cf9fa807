"""Reading training runs: a run dir is what ``tools/train.py`` leaves in ``<output_dir>/<exp_name>/``
(metrics.jsonl, plan.json, any sweep.csv below it).

Everything here tolerates partial runs (a crash mid-line, no validation yet, val mAP null, a missing field): the
analysis of a half-finished run is exactly when users want it.
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

import numpy as np
from loguru import logger

from yolox_finetune.core.errors import UserError
from yolox_finetune.core.groups import GROUPS
from yolox_finetune.core.run_files import METRICS_FILE, PLAN_FILE
from yolox_finetune.mot.clear import LOWER_IS_BETTER, METRIC_NAMES

#: sweep metrics where higher is better, in the order used to pick the "best" row when --best-by is absent.
SWEEP_METRICS: tuple[str, ...] = ("MOTA", "HOTA", "IDF1")
SWEEP_COLUMNS_SHOWN: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")
#: the metrics the report names a winning epoch and threshold for.
HEADLINE_METRICS: tuple[str, ...] = ("MOTA", "IDF1", "HOTA", "IDSW")
#: tracking-validation metrics (metrics.jsonl epoch records, ``tracking``) the report plots per epoch.
TRACKING_EPOCH_METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "IDSW")
#: folder names that say which split a sweep was run on.
_SPLIT_NAMES = ("train", "val", "test", "mini_train", "mini_val", "trainval")



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
        return np.array([as_number(r.get(key)) for r in self.iters], dtype=float)

    @property
    def iters_per_epoch(self) -> int | None:
        for record in self.iters:
            if isinstance(record.get("iters_per_epoch"), int) and record["iters_per_epoch"] > 0:
                return record["iters_per_epoch"]
        if self.plan and isinstance(self.plan.get("iters_per_epoch"), int):
            return self.plan["iters_per_epoch"]
        return None

    @property
    def batch_size(self) -> int | None:
        """Images per iteration: plan.json's batch_size (what the trainer writes), else an iteration record's."""
        if self.plan and _positive_int(self.plan.get("batch_size")):
            return int(self.plan["batch_size"])
        return next((int(r["batch_size"]) for r in self.iters if _positive_int(r.get("batch_size"))), None)

    @property
    def images_per_epoch(self) -> int | None:
        """Images seen per epoch (iters_per_epoch x batch size); None when either is unknown."""
        ipe, batch = self.iters_per_epoch, self.batch_size
        return ipe * batch if ipe and batch else None

    def _axis_ipe(self) -> float:
        """Iterations per epoch for the epoch axis; without any record of it, the last iteration / last epoch."""
        if self.iters_per_epoch:
            return float(self.iters_per_epoch)
        if self.iters:
            return max(1.0, float(self.iters[-1]["global_iter"]) / max(1, int(self.iters[-1]["epoch"])))
        return 1.0

    def to_epochs(self, global_iter: float | np.ndarray) -> float | np.ndarray:
        """Position on the common axis: epochs done (= images seen / images per epoch) after ``global_iter``."""
        return global_iter / self._axis_ipe()

    @property
    def epoch_axis(self) -> np.ndarray:
        """Each iteration record's position in epochs (global_iter / iters_per_epoch): the axis runs share."""
        return self.to_epochs(self.global_iters)

    @property
    def last_epoch_position(self) -> float:
        return float(self.epoch_axis[-1]) if self.iters else float(self.epochs[-1]["epoch"]) if self.epochs else 0.0

    def events(self) -> list[tuple[float, str]]:
        """Schedule events on the epoch axis: ``(epoch, label)`` for each phase start and the no-aug start."""
        events = [(float(self.to_epochs(g)), f"P{phase}") for g, phase in self.phase_starts()]
        no_aug = self.no_aug_start()
        if no_aug is not None:
            events.append((float(self.to_epochs(no_aug)), "no-aug"))
        return sorted(events)

    def lr_groups(self) -> list[str]:
        seen = {g for r in self.iters if isinstance(r.get("lr"), dict) for g in r["lr"]}
        return [g for g in GROUPS if g in seen] + sorted(seen - set(GROUPS))

    def lr_series(self, group: str) -> np.ndarray:
        """LR of ``group`` per iteration record; NaN while the group is frozen (absent from the record)."""
        return np.array([as_number(r["lr"].get(group)) if isinstance(r.get("lr"), dict) else math.nan
                         for r in self.iters], dtype=float)

    def epoch_value(self, epoch: int, key: str) -> float:
        for record in self.epochs:
            if record.get("epoch") == epoch:
                return as_number(record.get(key))
        return math.nan

    def epoch_numbers(self) -> list[int]:
        return [r["epoch"] for r in self.epochs]

    def trackers(self) -> list[str]:
        """Trackers of the tracking validation (epoch records' ``tracking``), in the order first logged."""
        names: dict[str, None] = {}
        for record in self.epochs:
            if isinstance(record.get("tracking"), dict):
                names.update(dict.fromkeys(str(k) for k in record["tracking"]))
        return list(names)

    def tracking_value(self, record: dict, tracker: str, metric: str) -> float:
        """``metric`` of ``tracker`` in one epoch record's tracking validation; NaN when absent or undefined."""
        tracking = record.get("tracking")
        entry = tracking.get(tracker) if isinstance(tracking, dict) else None
        return as_number(entry.get(metric)) if isinstance(entry, dict) else math.nan

    def best_checkpoint(self) -> dict | None:
        """``{"epoch", "metric", "value"}`` of best_ckpt.pth as the trainer chose it (the last epoch record that
        names it); None for runs written before the trainer recorded it."""
        for record in reversed(self.epochs):
            if isinstance(record.get("best_epoch"), int) and record.get("best_metric"):
                return {"epoch": record["best_epoch"], "metric": str(record["best_metric"]),
                        "value": as_number(record.get("best_value"))}
        return None

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


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def as_number(value: Any) -> float:
    """A finite-or-not float of a JSON value; NaN for anything that is not a number (None, strings, bools)."""
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
    if run_dir.is_file():
        raise UserError(f"{run_dir} is a file, not a run dir; pass the folder that holds metrics.jsonl "
                        f"({run_dir.parent})")
    if not run_dir.is_dir():
        raise UserError(f"run dir {run_dir} does not exist; pass a training output dir such as "
                        f"YOLOX_outputs/<exp_name>")
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        raise UserError(f"no metrics.jsonl in {run_dir}; pass the dir tools/train.py wrote (<output_dir>/<exp_name>)")
    records, skipped = _read_jsonl(metrics)
    iters = _normalise_iter_records(r for r in records if r.get("type") == "iter")
    epochs = _normalise_epoch_records(r for r in records if r.get("type") == "epoch")
    if not iters and not epochs:
        raise UserError(f"{metrics} holds no iteration or epoch records; has training logged its first "
                        f"print_interval yet?")
    plan = None
    plan_path = run_dir / PLAN_FILE
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
def _sweep_split(path: Path, run_dir: Path, table: list[dict]) -> str:
    """Which split a sweep file is about: its ``split`` column, else a folder named like a split, else the folder
    it lies in (relative to the run dir), so that val and test sweeps are never pooled."""
    splits = {str(row.get("split")) for row in table if row.get("split")}
    if len(splits) == 1:
        return splits.pop()
    relative = path.parent.relative_to(run_dir)
    named = [part for part in relative.parts if part in _SPLIT_NAMES]
    return named[-1] if named else relative.as_posix()


def load_sweep_rows(run_dir: Path) -> list[dict]:
    """Rows of every ``sweep.csv`` under ``run_dir`` (numbers parsed), each with its ``source`` file and
    ``split`` (see :func:`_sweep_split`)."""
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
        split = _sweep_split(path, run_dir, table)
        for row in table:
            parsed: dict[str, Any] = {"source": str(path)}
            for key, value in row.items():
                if key is None:
                    continue
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    parsed[key] = value
            parsed["split"] = split if not row.get("split") else str(row["split"])
            rows.append(parsed)
    return rows


def check_metric(name: str | None) -> str | None:
    """``name`` if it is a tracking metric (exact spelling, as in the sweep.csv header); else one clear error."""
    if name is not None and name not in METRIC_NAMES:
        raise UserError(f"unknown tracking metric {name!r} for --best-by; use one of {', '.join(METRIC_NAMES)}")
    return name


def better(metric: str, value: float, other: float) -> bool:
    """Is ``value`` better than ``other`` for ``metric`` (lower for IDSW, FP, FN, ..., higher otherwise)?"""
    return value < other if metric in LOWER_IS_BETTER else value > other


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
    chosen = run.best_checkpoint()
    if stem == "best" and chosen is not None:  # the trainer says which epoch it chose, and by which metric
        return chosen["epoch"]
    with_ap = [r for r in run.epochs if math.isfinite(as_number(r.get("ap50_95")))]
    if stem == "best" and with_ap:
        best = max(as_number(r.get("ap50_95")) for r in with_ap)
        return next(r["epoch"] for r in with_ap if as_number(r.get("ap50_95")) == best)
    if stem == "latest" and run.epochs:
        return run.epochs[-1]["epoch"]
    if stem == "last_mosaic_epoch":
        return run.last_mosaic_epoch()
    return None


def _grid_setting(row: dict) -> str:
    """Tracker-grid values of a sweep row (columns neither identity nor metrics), e.g. 'track_buffer=60'."""
    skip = {"checkpoint", "tracker", "conf", "source", "split", *METRIC_NAMES}
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in row.items() if k not in skip and v not in ("", None))


def best_sweep_rows(run: Run, best_by: str | None = None) -> list[dict]:
    """Per (split, checkpoint, tracker): the sweep row that is best by ``best_by`` (default: first of MOTA, HOTA,
    IDF1 present; the minimum for lower-is-better metrics such as IDSW), with the checkpoint's epoch and its val
    mAP attached."""
    check_metric(best_by)
    if not run.sweep_rows:
        return []
    metric = best_by or next((m for m in SWEEP_METRICS if any(m in r for r in run.sweep_rows)), None)
    if metric is None:
        logger.warning(f"{run.name}: sweep.csv has none of {', '.join(SWEEP_METRICS)}; no tracking table")
        return []
    groups: dict[tuple[str, str, str], dict] = {}
    for row in run.sweep_rows:
        value = as_number(row.get(metric))
        if not math.isfinite(value):
            continue
        key = (str(row.get("split", "")), str(row.get("checkpoint")), str(row.get("tracker", "")))
        if key not in groups or better(metric, value, as_number(groups[key].get(metric))):
            groups[key] = row
    if not groups:
        logger.warning(f"{run.name}: no sweep row has a {metric} value; no tracking table")
    result = [_tracking_row(run, row, metric) for row in groups.values()]
    result.sort(key=lambda r: (r["split"], r["epoch"] if r["epoch"] is not None else 10**9, r["checkpoint"],
                               r["tracker"]))
    return result


def _tracking_row(run: Run, row: dict, metric: str) -> dict:
    checkpoint = str(row.get("checkpoint"))
    epoch = checkpoint_epoch(run, checkpoint)
    return {
        "run": run.name, "split": str(row.get("split", "")), "checkpoint": Path(checkpoint).name, "epoch": epoch,
        "tracker": str(row.get("tracker", "")), "best_by": metric, "conf": as_number(row.get("conf")),
        "setting": _grid_setting(row),
        "ap50_95": run.epoch_value(epoch, "ap50_95") if epoch else math.nan,
        "ap50": run.epoch_value(epoch, "ap50") if epoch else math.nan,
        **{m: as_number(row.get(m)) for m in SWEEP_COLUMNS_SHOWN},
    }


def sweep_winners(run: Run, metrics: Sequence[str] = HEADLINE_METRICS) -> list[dict]:
    """Per split and headline metric: the (epoch, tracker, threshold, setting) that wins over the whole sweep,
    by the metric's own direction."""
    winners = []
    for split in sorted({str(r.get("split", "")) for r in run.sweep_rows}):
        rows = [r for r in run.sweep_rows if str(r.get("split", "")) == split]
        for metric in metrics:
            scored = [r for r in rows if math.isfinite(as_number(r.get(metric)))]
            if not scored:
                continue
            best = scored[0]
            for row in scored[1:]:
                if better(metric, as_number(row.get(metric)), as_number(best.get(metric))):
                    best = row
            winners.append({**_tracking_row(run, best, metric), "metric": metric,
                            "value": as_number(best.get(metric)),
                            "direction": "lowest" if metric in LOWER_IS_BETTER else "highest"})
    return winners


def epoch_bests(run: Run) -> list[dict]:
    """The best epoch of each validation metric in the metric's own direction (the earliest on ties): AP50-95 and
    AP50, then each tracker's HOTA, MOTA, IDF1 and IDSW where the run has tracking validation. Each entry:
    ``{"run", "metric", "tracker", "direction", "epoch", "value", "chosen"}``, ``chosen`` marking the metric that
    picked best_ckpt.pth."""
    chosen = run.best_checkpoint()
    series: list[tuple[str, str | None, Any]] = [("AP50_95", None, lambda r: as_number(r.get("ap50_95"))),
                                                ("AP50", None, lambda r: as_number(r.get("ap50")))]
    for tracker in run.trackers():
        for metric in TRACKING_EPOCH_METRICS:
            series.append((metric, tracker, lambda r, t=tracker, m=metric: run.tracking_value(r, t, m)))
    bests = []
    for metric, tracker, getter in series:
        best_epoch, best_value = None, math.nan
        for record in run.epochs:
            value = getter(record)
            if math.isfinite(value) and (best_epoch is None or better(metric, value, best_value)):
                best_epoch, best_value = record["epoch"], value
        if best_epoch is None:
            continue
        name = metric if tracker is None else f"{'-' if metric in LOWER_IS_BETTER else ''}{metric}:{tracker}"
        bests.append({"run": run.name, "metric": metric, "tracker": tracker,
                      "direction": "lowest" if metric in LOWER_IS_BETTER else "highest", "epoch": best_epoch,
                      "value": best_value, "chosen": chosen is not None and chosen["metric"] == name})
    return bests


def plan_no_aug_start(plan: dict) -> float | None:
    ipe = plan["iters_per_epoch"]
    had_mosaic = False
    for entry in plan["epochs"]:
        if entry.get("mosaic"):
            had_mosaic = True
        elif had_mosaic:
            return float((entry["epoch"] - 1) * ipe)
    return None

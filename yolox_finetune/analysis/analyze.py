"""One analysis of one or more runs: plots, oscillation statistics, the report and analysis.json."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from yolox_finetune.analysis.oscillation import (
    DEFAULT_JUMP_FRACTION,
    OscillationStats,
    comparison_line,
    oscillation_by_epoch,
    oscillation_stats,
)
from yolox_finetune.analysis.plots import plot_epoch_oscillation, plot_losses, plot_lr, plot_plan, plot_validation
from yolox_finetune.analysis.report import write_report
from yolox_finetune.analysis.runs import Run, as_number, best_sweep_rows, load_runs
from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import claim_output_dir, write_marker

#: the name the analysis marks its report folder with.
TOOL = "analyze_runs"


def plan_from_exp_file(exp_file: str | Path, iters_per_epoch: int | None = None) -> tuple[dict, Any]:
    """The plan of an exp file before any training, and the exp (for :func:`plot_plan`)."""
    from yolox_finetune.training.exp import load_exp
    from yolox_finetune.training.schedule import build_plan

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
    if not 0 < jump_fraction:
        raise UserError(f"jump fraction must be positive, got {jump_fraction}")
    if window is not None and window < 1:
        raise UserError(f"trend window must be at least 1 logged point, got {window}")
    runs = load_runs(run_dirs)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_dirs)
    claim_output_dir(out_dir, TOOL, run_dirs)

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
    write_marker(out_dir, TOOL)
    result["analysis_json"] = str(out_dir / "analysis.json")
    return result


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def run_headline(run: Run, stats: OscillationStats) -> dict:
    """The numbers a user looks at first: progress, best/last val mAP and the oscillation summary."""
    ap = [(r["epoch"], as_number(r.get("ap50_95")), as_number(r.get("ap50"))) for r in run.epochs]
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

"""One analysis of one or more runs: plots, oscillation on a common axis, convergence verdicts, sweep winners, the
report and analysis.json."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loguru import logger

from yolox_finetune.analysis.convergence import (
    DEFAULT_LAST_EPOCHS,
    Convergence,
    epoch_series_convergence,
    training_loss_convergence,
)
from yolox_finetune.analysis.oscillation import (
    DEFAULT_WINDOW_EPOCHS,
    METHOD,
    OscillationStats,
    comparison_line,
    oscillation_by_epoch,
    oscillation_stats,
    relative_residual,
)
from yolox_finetune.analysis.plots import (
    plot_epoch_oscillation,
    plot_losses,
    plot_lr,
    plot_plan,
    plot_sweep,
    plot_tracking,
    plot_validation,
)
from yolox_finetune.analysis.report import write_report
from yolox_finetune.analysis.runs import (
    Run,
    as_number,
    best_sweep_rows,
    check_metric,
    epoch_bests,
    load_runs,
    sweep_winners,
)
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


def common_axis(runs: Sequence[Run], window_epochs: float) -> dict:
    """The measuring frame every run shares: the trend window in images seen (the reference run's window of
    ``window_epochs`` epochs; in epochs when a batch size is unknown) and the overlap of the runs' epochs."""
    notes = []
    reference = runs[0]
    unknown = [r.name for r in runs if not r.images_per_epoch]
    if unknown:
        windows = {r.name: float(window_epochs) for r in runs}
        window_images = None
        notes.append(f"batch size unknown for {', '.join(unknown)} (no batch_size in plan.json or the iteration "
                     f"records): the common axis is the epoch, the window {window_epochs:g} epochs for every run")
    else:
        window_images = window_epochs * reference.images_per_epoch
        windows = {r.name: window_images / r.images_per_epoch for r in runs}
    ends = [r.last_epoch_position for r in runs if r.iters]
    span_end = min(ends) if ends else 0.0
    span = (0.0, span_end) if len(runs) > 1 else None
    if len(runs) > 1 and len(set(ends)) > 1:
        notes.append(f"runs end at different epochs ({', '.join(f'{e:.2f}' for e in ends)}): the oscillation is "
                     f"compared over their overlap, epochs 0 to {span_end:.2f}")
    shortest = span_end if span else (ends[0] if ends else 0.0)
    longest_window = max(windows.values()) if windows else 0.0
    if shortest > 0 and longest_window > shortest / 3:
        scale = shortest / 3 / longest_window
        windows = {k: v * scale for k, v in windows.items()}
        window_images = window_images * scale if window_images else None
        notes.append(f"the runs are short: the trend window is cut to a third of the compared span "
                     f"({windows[reference.name]:.3g} epochs of {reference.name})")
    return {"windows": windows, "window_images": window_images, "span": span, "notes": notes,
            "reference": reference.name,
            "axis": "images seen" if not unknown else "epochs (batch size unknown)"}


def analyze_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None,
                 window_epochs: float = DEFAULT_WINDOW_EPOCHS, best_by: str | None = None,
                 last_epochs: int = DEFAULT_LAST_EPOCHS, media: Sequence[str | Path] = ()) -> dict:
    """Analyse one or more runs: plots, oscillation on the common axis, convergence verdicts, tracking winners,
    report.md/report.html and analysis.json in ``out_dir``. Returns what analysis.json holds plus its path."""
    if not (isinstance(window_epochs, (int, float)) and math.isfinite(window_epochs) and window_epochs > 0):
        raise UserError(f"trend window must be a positive number of epochs, got {window_epochs}")
    if last_epochs < 1:
        raise UserError(f"--last-epochs must be at least 1, got {last_epochs}")
    check_metric(best_by)
    missing = [str(m) for m in media if not Path(m).is_file()]
    if missing:
        raise UserError(f"--media {missing[0]} is not a file; pass pictures or videos written by tools/visualize.py")
    runs = load_runs(run_dirs)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(run_dirs)
    claim_output_dir(out_dir, TOOL, run_dirs)

    frame = common_axis(runs, window_epochs)
    windows, span = frame["windows"], frame["span"]
    overall, whole, per_epoch, convergence = {}, {}, {}, {}
    for run in runs:
        x, loss, breaks = run.epoch_axis, run.series("total_loss"), [e for e, _ in run.events()]
        window = windows[run.name]
        overall[run.name] = oscillation_stats(x, loss, window, span, run.images_per_epoch, breaks)
        whole[run.name] = oscillation_stats(x, loss, window, None, run.images_per_epoch, breaks)
        per_epoch[run.name] = oscillation_by_epoch(x, loss, window, breaks)
        convergence[run.name] = run_convergence(run, window, breaks, last_epochs)
    reference = runs[0].name
    comparisons = [comparison_line(r.name, overall[r.name], reference, overall[reference]) for r in runs[1:]]
    plots = {
        "losses": plot_losses(runs, out_dir / "losses.png", windows),
        "lr": plot_lr(runs, out_dir / "lr.png"),
        "validation": plot_validation(runs, out_dir / "validation.png"),
        "oscillation": plot_epoch_oscillation(runs, per_epoch, out_dir / "oscillation_per_epoch.png"),
    }
    bests = {run.name: epoch_bests(run) for run in runs}
    if any(run.trackers() for run in runs):  # tracking validation per epoch, beside mAP
        plots["tracking"] = plot_tracking(runs, [b for run in runs for b in bests[run.name]],
                                          out_dir / "tracking_validation.png")
    tracking = [row for run in runs for row in best_sweep_rows(run, best_by)]
    winners = [w for run in runs for w in sweep_winners(run)]
    for run in runs:
        for split in sorted({str(r.get("split", "")) for r in run.sweep_rows}):
            plots[f"sweep {run.name} [{split}]"] = plot_sweep(
                run, split, [w for w in winners if w["run"] == run.name],
                out_dir / f"sweep_{_file_safe(run.name)}_{_file_safe(split)}.png")
    for run in runs:  # the schedule each run was planned with (its plan.json), as tools/train.py --plan showed it
        if run.plan and run.plan.get("epochs"):
            try:
                plots[f"plan {run.name}"] = plot_plan(run.plan, None, out_dir / f"plan_{_file_safe(run.name)}.png")
            except (UserError, KeyError, TypeError, ValueError) as exc:
                logger.warning(f"{run.run_dir / 'plan.json'}: cannot draw the plan ({exc}); skipped")
    method = {
        "method": METHOD, "axis": frame["axis"], "reference": reference,
        "window_epochs": {name: overall[name].window_epochs for name in overall},
        "window_images": frame["window_images"], "span_epochs": list(span) if span else None,
        "last_epochs": last_epochs, "notes": frame["notes"],
    }
    headline = {r.name: run_headline(r, overall[r.name], whole[r.name], convergence[r.name], bests[r.name])
                for r in runs}
    report_md, report_html = write_report(out_dir, runs, overall, whole, per_epoch, convergence, comparisons, plots,
                                          tracking, winners, method, [b for run in runs for b in bests[run.name]],
                                          [Path(m) for m in media])
    result = {
        "out_dir": str(out_dir), "report_md": str(report_md), "report_html": str(report_html),
        "plots": {k: str(v) for k, v in plots.items()}, "oscillation_method": method, "runs": headline,
        "comparison": comparisons, "tracking": tracking, "tracking_winners": winners,
    }
    atomic_write_json(out_dir / "analysis.json", _json_safe(result))
    write_marker(out_dir, TOOL)
    result["analysis_json"] = str(out_dir / "analysis.json")
    return result


def run_convergence(run: Run, window: float, breaks: Sequence[float], last_epochs: int) -> list[Convergence]:
    """Verdicts for the training total loss, and for val loss, AP50-95 and AP50 where the run has them."""
    x, values, trend, _ = relative_residual(run.epoch_axis, run.series("total_loss"), window, breaks)
    result = [training_loss_convergence(x, values, trend, last_epochs)] if len(x) else []
    epochs = [r["epoch"] for r in run.epochs]
    for label, getter, higher in (
            ("val total loss", lambda r: as_number((r.get("val_loss") or {}).get("total_loss")), False),
            ("val AP50-95", lambda r: as_number(r.get("ap50_95")), True),
            ("val AP50", lambda r: as_number(r.get("ap50")), True)):
        values = [getter(r) for r in run.epochs]
        if any(math.isfinite(v) for v in values):
            result.append(epoch_series_convergence(epochs, values, label, higher, last_epochs))
    return result


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def run_headline(run: Run, stats: OscillationStats, whole: OscillationStats,
                 convergence: Sequence[Convergence], bests: Sequence[dict] = ()) -> dict:
    """The numbers a user looks at first: progress, best/last val mAP, oscillation, the convergence verdicts and,
    with tracking validation, each tracking metric's best epoch and the metric that chose best_ckpt.pth."""
    ap = [(r["epoch"], as_number(r.get("ap50_95")), as_number(r.get("ap50"))) for r in run.epochs]
    ap = [a for a in ap if math.isfinite(a[1])]
    best = max(ap, key=lambda a: a[1]) if ap else None
    return {
        "run_dir": str(run.run_dir), "epochs_logged": len(run.epochs),
        "last_global_iter": int(run.iters[-1]["global_iter"]) if run.iters else None,
        "last_epoch_position": run.last_epoch_position, "batch_size": run.batch_size,
        "iters_per_epoch": run.iters_per_epoch, "images_per_epoch": run.images_per_epoch,
        "skipped_lines": run.skipped_lines,
        "best_epoch": best[0] if best else None,
        "best_ap50_95": best[1] if best else None, "best_ap50": best[2] if best else None,
        "last_ap50_95": ap[-1][1] if ap else None, "last_ap50": ap[-1][2] if ap else None,
        "oscillation": stats.as_dict(), "oscillation_whole_run": whole.as_dict(),
        "convergence": [c.as_dict() for c in convergence],
        "best_checkpoint": run.best_checkpoint(),
        "tracking_bests": [b for b in bests if b["tracker"] is not None],
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

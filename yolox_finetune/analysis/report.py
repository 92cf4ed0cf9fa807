"""The analysis report: the same content as markdown (plots linked) and as one self-contained HTML page.

The report is built once as a list of blocks and rendered twice, so the two files cannot drift apart. The HTML
page embeds every plot as a base64 ``data:`` URI and carries its own CSS: it can be mailed or attached to an
issue as a single file, with no reference to anything on disk or on the network.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from yolox_finetune.analysis.convergence import Convergence
from yolox_finetune.analysis.oscillation import OscillationStats
from yolox_finetune.analysis.runs import TRACKING_EPOCH_METRICS, Run
from yolox_finetune.core.atomic_io import atomic_write_text
from yolox_finetune.core.formatting import format_number

MISSING = "–"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    path: Path
    caption: str


@dataclass(frozen=True)
class Link:
    """A file the report points to instead of embedding (a video)."""

    path: Path
    text: str


Block = Heading | Paragraph | Bullets | Table | Image | Link


def fmt(value: Any, spec: str = ".4g") -> str:
    """A table cell: numbers formatted in plain notation (never 1e-05), None/NaN shown as a dash."""
    text = format_number(value, spec, missing=MISSING)
    if "e" in text and isinstance(value, (int, float)) and not isinstance(value, bool):
        digits = int(spec.strip("+.g") or 4) if spec.endswith("g") else 4
        plain = np.format_float_positional(float(value), precision=digits, unique=False, fractional=False,
                                           trim="-")
        return ("+" + plain if spec.startswith("+") and value >= 0 else plain)
    return text


# ---------------------------------------------------------------------------------------------------- rendering
def render_markdown(title: str, blocks: Sequence[Block], base_dir: Path) -> str:
    """Markdown with images linked relative to ``base_dir`` (where report.md lives)."""
    lines = [f"# {title}", ""]
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * block.level} {block.text}", ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            cells = [[c.replace("|", "\\|") for c in row] for row in (block.headers, *block.rows)]
            lines.append("| " + " | ".join(cells[0]) + " |")
            lines.append("|" + "|".join("---" for _ in block.headers) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"![{block.caption}]({_relative(block.path, base_dir)})", "", f"*{block.caption}*", ""]
        elif isinstance(block, Link):
            lines += [f"[{block.text}]({_link_target(block.path, base_dir)})", ""]
    return "\n".join(lines)


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(base_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def _link_target(path: Path, base_dir: Path) -> str:
    """A link that survives moving the demo folder: relative to the report, ``..`` included."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base_dir).resolve())).as_posix()


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-style: italic; color: #555; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def render_html(title: str, blocks: Sequence[Block], base_dir: Path | None = None) -> str:
    """One self-contained HTML page: inline CSS, plots as base64 data URIs; only videos are links (relative to
    ``base_dir``, where report.html lives)."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{esc(block.caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{esc(block.caption)}</figcaption></figure>")
        elif isinstance(block, Link):
            target = _link_target(block.path, base_dir) if base_dir is not None else Path(block.path).as_posix()
            parts.append(f'<p><a href="{esc(target)}">{esc(block.text)}</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------- content
def oscillation_rows(overall: dict[str, OscillationStats],
                     whole: dict[str, OscillationStats]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (name, fmt(s.residual_rsd_pct, ".2f"), fmt(whole[name].residual_rsd_pct, ".2f"), fmt(s.period_epochs, ".3g"),
         fmt(s.period_images, ",.0f"), fmt(s.amplitude_pct, ".2f"), fmt(s.peak_share_pct, ".0f"),
         fmt(s.window_epochs, ".3g"), f"{fmt(s.span_start, '.2f')} to {fmt(s.span_end, '.2f')}",
         fmt(s.mean_loss, ".4g"), str(s.points), str(s.dropped))
        for name, s in overall.items()
    )


def per_epoch_rows(per_epoch: dict[str, dict[int, float]]) -> tuple[tuple[str, ...], ...]:
    epochs = sorted({e for stats in per_epoch.values() for e in stats})
    return tuple((str(epoch), *(fmt(stats.get(epoch), ".2f") for stats in per_epoch.values())) for epoch in epochs)


def convergence_rows(convergence: dict[str, Sequence[Convergence]]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (name, c.series, f"{fmt(c.from_epoch)} -> {fmt(c.to_epoch)}", fmt(c.start), fmt(c.end), fmt(c.change, "+.3g"),
         f"[{fmt(c.ci_low, '+.3g')}, {fmt(c.ci_high, '+.3g')}]", fmt(c.relative_change_pct, "+.2f"), c.verdict)
        for name, items in convergence.items() for c in items
    )


def val_map_rows(runs: Sequence[Run]) -> tuple[tuple[str, ...], ...]:
    epochs = sorted({r["epoch"] for run in runs for r in run.epochs})
    rows = []
    for epoch in epochs:
        row = [str(epoch)]
        for run in runs:
            row.append(f"{fmt(run.epoch_value(epoch, 'ap50_95'))} / {fmt(run.epoch_value(epoch, 'ap50'))}"
                       if epoch in run.epoch_numbers() else MISSING)
        rows.append(tuple(row))
    return tuple(rows)


def tracking_epoch_rows(runs: Sequence[Run]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(headers, rows) of the tracking validation per epoch: one column per run and tracker holding
    HOTA / MOTA / IDF1 / IDSW; the epoch best_ckpt.pth holds is starred."""
    columns = [(run, tracker) for run in runs for tracker in run.trackers()]
    headers = ("epoch", *(f"{run.name} {tracker}" for run, tracker in columns))
    epochs = sorted({r["epoch"] for run, _ in columns for r in run.epochs})
    rows = []
    for epoch in epochs:
        row = [str(epoch)]
        for run, tracker in columns:
            record = next((r for r in run.epochs if r["epoch"] == epoch), None)
            values = [run.tracking_value(record, tracker, m) for m in TRACKING_EPOCH_METRICS] if record else []
            if not values or all(np.isnan(values)):
                row.append(MISSING)
                continue
            chosen = run.best_checkpoint()
            star = " *" if chosen and chosen["epoch"] == epoch else ""
            row.append(" / ".join(fmt(v, ".4g") for v in values) + star)
        rows.append(tuple(row))
    return headers, tuple(rows)


def best_epoch_rows(bests: Sequence[dict]) -> tuple[tuple[str, ...], ...]:
    return tuple((b["run"], b["metric"], b["tracker"] or MISSING, b["direction"], fmt(b["epoch"]), fmt(b["value"]),
                  "yes" if b["chosen"] else "") for b in bests)


def tracking_rows(tracking: Sequence[dict]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (t["run"], t["split"] or MISSING, t["checkpoint"], fmt(t["epoch"]), fmt(t["ap50_95"]), fmt(t["ap50"]),
         t["tracker"] or MISSING, fmt(t["conf"], ".3g"), t.get("setting") or MISSING,
         *(fmt(t[m]) for m in ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")))
        for t in tracking
    )


def winner_rows(winners: Sequence[dict]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (w["run"], w["split"] or MISSING, f"{w['metric']} ({w['direction']})", fmt(w["value"]), fmt(w["epoch"]),
         w["checkpoint"], w["tracker"] or MISSING, fmt(w["conf"], ".3g"), w.get("setting") or MISSING)
        for w in winners
    )


def build_blocks(runs: Sequence[Run], overall: dict[str, OscillationStats], whole: dict[str, OscillationStats],
                 per_epoch: dict[str, dict[int, float]], convergence: dict[str, Sequence[Convergence]],
                 comparisons: Sequence[str], plots: dict[str, Path], tracking: Sequence[dict],
                 winners: Sequence[dict], method: dict, bests: Sequence[dict] = ()) -> list[Block]:
    """The report's content, in reading order; ``bests`` (``runs.epoch_bests``) adds the tracking validation
    sections for runs that have it."""
    reference = runs[0]
    window_text = (f"{fmt(overall[reference.name].window_epochs, '.3g')} epochs of {reference.name}"
                   + (f" = {fmt(method['window_images'], ',.0f')} images seen, the same number of images for every "
                      f"run" if method.get("window_images") else ""))
    span = method.get("span_epochs")
    blocks: list[Block] = [
        Paragraph(f"Generated {datetime.now():%Y-%m-%d %H:%M} by tools/analyze_runs.py. Reference run (the one the "
                  f"others are compared with): {reference.name}. Common axis: {method['axis']} (plots show it as "
                  f"epochs = images seen / images per epoch), never the global iteration."),
        Heading("Runs"),
        Table(("run", "dir", "iteration records", "last epoch reached", "batch", "iters / epoch", "images / epoch",
               "epochs logged", "plan.json", "sweep rows", "unreadable lines skipped"),
              tuple((r.name, str(r.run_dir), str(len(r.iters)), fmt(r.last_epoch_position, ".2f"),
                     fmt(r.batch_size), fmt(r.iters_per_epoch), fmt(r.images_per_epoch, ",.0f"), str(len(r.epochs)),
                     "yes" if r.plan else "no", str(len(r.sweep_rows)), str(r.skipped_lines)) for r in runs)),
        Heading("Convergence: change over the last epochs, 95 % interval, verdict"),
        Paragraph(f"Change between epoch E-N and the last epoch E (N = {method['last_epochs']}, fewer when the run "
                  f"is shorter). Training loss: epoch means, interval from the within-epoch scatter of the logged "
                  f"points around the trend (corrected for autocorrelation). Validation loss and AP: one value per "
                  f"epoch, interval from the epoch-to-epoch scatter (median absolute second difference). Verdict: "
                  f"falling / rising when the interval excludes 0, else flat within noise; 'still' marks the "
                  f"improving direction."),
        Table(("run", "series", "epochs", "start", "end", "change", "95 % interval", "change %", "verdict"),
              convergence_rows(convergence)),
        Heading("Oscillation of the total training loss"),
        Paragraph(f"Method: {method['method']}. Window W = {window_text}. "
                  + (f"Compared over the same span of epochs, {fmt(span[0], '.2f')} to {fmt(span[1], '.2f')} (the "
                     f"runs' overlap), with the same window in images seen. " if span else "")
                  + "Lower RSD means smoother training; the peak share says how much of the residual is one "
                    "periodic wave (white noise spreads evenly over the spectrum)."),
    ]
    if method.get("notes"):
        blocks.append(Bullets(tuple(method["notes"])))
    blocks.append(Table(("run", "residual RSD %", "whole run RSD %", "dominant period (epochs)",
                         "period (images)", "amplitude %", "peak share %", "window (epochs)", "span (epochs)",
                         "mean loss", "points", "dropped (non-finite)"), oscillation_rows(overall, whole)))
    if comparisons:
        blocks.append(Bullets(tuple(comparisons)))
    blocks += [
        Heading("Residual RSD % per epoch", 3),
        Table(("epoch", *per_epoch), per_epoch_rows(per_epoch)),
        Heading("Validation mAP per epoch (AP50-95 / AP50)"),
        Table(("epoch", *(r.name for r in runs)), val_map_rows(runs))
        if any(r.epochs for r in runs) else Paragraph("No epoch records yet."),
    ]
    if any(r.trackers() for r in runs):
        headers, rows = tracking_epoch_rows(runs)
        chosen = [f"{r.name}: epoch {c['epoch']}, chosen by {c['metric']} ({fmt(c['value'])})"
                  for r in runs if (c := r.best_checkpoint()) is not None]
        blocks += [
            Heading("Tracking validation per epoch (HOTA / MOTA / IDF1 / IDSW)"),
            Paragraph("At each evaluation the trackers ran over the val MOT sequences on the boxes of the same "
                      "validation pass that gave mAP (tools/track_eval.py's defaults: score >= tracking_val_conf, "
                      "IoU 0.5). * marks the epoch best_ckpt.pth holds."),
            Table(headers, rows),
            Heading("Best epoch by each validation metric", 3),
            Paragraph("Each metric in its own direction (IDSW: lowest), the earliest epoch on ties. best_ckpt.pth: "
                      + ("; ".join(chosen) if chosen else "not recorded by the trainer") + "."),
            Table(("run", "metric", "tracker", "best is", "epoch", "value", "chose best_ckpt.pth"),
                  best_epoch_rows(bests)),
        ]
    if winners:
        blocks += [
            Heading("Which epoch and threshold win, by each headline metric"),
            Paragraph("Over every row of each sweep (checkpoints x trackers x thresholds x settings), kept apart per "
                      "split; IDSW picks the lowest value, the others the highest."),
            Table(("run", "split", "metric", "value", "epoch", "checkpoint", "tracker", "conf", "tracker setting"),
                  winner_rows(winners)),
        ]
    if tracking:
        blocks += [
            Heading("Tracking quality per checkpoint (best conf-sweep row) next to val mAP"),
            Paragraph(f"For each split, checkpoint and tracker, the sweep row that is best by {tracking[0]['best_by']} "
                      f"(over confidence thresholds and tracker-grid settings). "
                      f"The epoch is read from the checkpoint name (epoch_N, best, latest, last_mosaic_epoch)."),
            Table(("run", "split", "checkpoint", "epoch", "AP50-95", "AP50", "tracker", "conf", "tracker setting",
                   "MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN"), tracking_rows(tracking)),
        ]
    captions = {
        "losses": "Loss components per epoch: raw (faint) and trend (solid), one colour per run; last panel: "
                  "relative residual of the total loss around its trend. Dashed: phase starts, dotted: no-aug start, "
                  "in each run's colour ('planned' when the run has not reached it).",
        "lr": "Learning rate per parameter group (log axis); dashed: phase starts, dotted: no-aug start.",
        "validation": "Validation loss and mAP per epoch; a missing epoch is a break in the line.",
        "oscillation": "Residual RSD of the total loss per epoch.",
        "tracking": "Tracking validation per epoch beside val AP50-95: colour per run, line style per tracker; "
                    "stars: each line's best epoch (IDSW: lowest), ring: the epoch best_ckpt.pth holds, in the panel "
                    "of the metric that chose it.",
    }
    blocks.append(Heading("Plots"))
    for key, path in plots.items():
        caption = captions.get(key, key)
        if key.startswith("plan "):
            caption = (f"Planned schedule of {key[5:]} (plan.json): LR per group, phase starts, warmup end, no-aug "
                       f"start, and which groups train when.")
        elif key.startswith("sweep "):
            caption = f"MOTA and IDSW against the confidence threshold, {key[6:]}; stars: the winning thresholds."
        blocks.append(Image(Path(path), caption))
    return blocks


def write_report(out_dir: Path, runs: Sequence[Run], overall: dict[str, OscillationStats],
                 whole: dict[str, OscillationStats], per_epoch: dict[str, dict[int, float]],
                 convergence: dict[str, Sequence[Convergence]], comparisons: Sequence[str], plots: dict[str, Path],
                 tracking: Sequence[dict], winners: Sequence[dict], method: dict,
                 bests: Sequence[dict] = (), media: Sequence[Path] = ()) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (atomically) and return their paths; ``media``
    (pictures and videos of tracks, e.g. from tools/visualize.py) go in a section of their own."""
    out_dir = Path(out_dir)
    title = "Training analysis: " + " vs ".join(r.name for r in runs)
    blocks = build_blocks(runs, overall, whole, per_epoch, convergence, comparisons, plots, tracking, winners,
                          method, bests)
    if media:
        blocks.append(Heading("Tracks on a sequence"))
        for path in media:
            if Path(path).suffix.lower() == ".png":
                blocks.append(Image(Path(path), f"{Path(path).name}: track ids in their colours, FP and IDSW tagged "
                                                f"from the evaluator's events (tools/visualize.py)"))
            else:
                blocks.append(Link(Path(path), f"video: {Path(path).name} (tools/visualize.py)"))
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md_path, render_markdown(title, blocks, out_dir))
    atomic_write_text(html_path, render_html(title, blocks, out_dir))
    return md_path, html_path

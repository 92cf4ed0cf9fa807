"""The analysis report: the same content as markdown (plots linked) and as one self-contained HTML page.

The report is built once as a list of blocks and rendered twice, so the two files cannot drift apart. The HTML
page embeds every plot as a base64 ``data:`` URI and carries its own CSS: it can be mailed or attached to an
issue as a single file, with no reference to anything on disk or on the network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from yolox_finetune.analysis.oscillation import OscillationStats
from yolox_finetune.analysis.runs import Run
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


Block = Heading | Paragraph | Bullets | Table | Image


def fmt(value: Any, spec: str = ".4g") -> str:
    """A table cell: numbers formatted, None/NaN shown as a dash."""
    return format_number(value, spec, missing=MISSING)


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
    return "\n".join(lines)


def _relative(path: Path, base_dir: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(base_dir).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


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


def render_html(title: str, blocks: Sequence[Block]) -> str:
    """One self-contained HTML page: inline CSS, plots as base64 data URIs, no links to files."""
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
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------- content
def oscillation_rows(overall: dict[str, OscillationStats]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (name, fmt(s.residual_rsd_pct, ".2f"), fmt(s.jump_share_pct, ".2f"), fmt(s.slope_per_1k, "+.4g"),
         fmt(s.mean_loss, ".4g"), str(s.points), str(s.dropped))
        for name, s in overall.items()
    )


def per_epoch_rows(per_epoch: dict[str, dict[int, OscillationStats]]) -> tuple[tuple[str, ...], ...]:
    epochs = sorted({e for stats in per_epoch.values() for e in stats})
    rows = []
    for epoch in epochs:
        row = [str(epoch)]
        for stats in per_epoch.values():
            s = stats.get(epoch)
            row.append(MISSING if s is None else
                       f"{fmt(s.residual_rsd_pct, '.1f')} / {fmt(s.jump_share_pct, '.1f')} / "
                       f"{fmt(s.slope_per_1k, '+.3g')}")
        rows.append(tuple(row))
    return tuple(rows)


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


def tracking_rows(tracking: Sequence[dict]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (t["run"], t["checkpoint"], fmt(t["epoch"]), fmt(t["ap50_95"]), fmt(t["ap50"]), t["tracker"] or MISSING,
         fmt(t["conf"], ".3g"), t.get("setting") or MISSING,
         *(fmt(t[m]) for m in ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")))
        for t in tracking
    )


def build_blocks(runs: Sequence[Run], overall: dict[str, OscillationStats],
                 per_epoch: dict[str, dict[int, OscillationStats]], comparisons: Sequence[str],
                 plots: dict[str, Path], tracking: Sequence[dict]) -> list[Block]:
    """The report's content, in reading order."""
    jump_pct = f"{next(iter(overall.values())).jump_fraction * 100:g}" if overall else "20"
    blocks: list[Block] = [
        Paragraph(f"Generated {datetime.now():%Y-%m-%d %H:%M} by tools/analyze_runs.py. Reference run (the one the "
                  f"others are compared with): {runs[0].name}."),
        Heading("Runs"),
        Table(("run", "dir", "iteration records", "last global iter", "epochs logged", "plan.json", "sweep rows"),
              tuple((r.name, str(r.run_dir), str(len(r.iters)),
                     fmt(r.iters[-1]["global_iter"] if r.iters else None), str(len(r.epochs)),
                     "yes" if r.plan else "no", str(len(r.sweep_rows))) for r in runs)),
        Heading("Oscillation of the total training loss"),
        Paragraph(f"Trend: centred rolling median of the logged total loss. Residual RSD: root mean square of "
                  f"(loss - trend) / trend (relative deviation around the trend). Jumps: share of logged steps "
                  f"whose loss moved by more than {jump_pct}% of the previous logged value. Slope: least-squares "
                  f"fit of the raw loss, per 1000 iterations (negative = still improving). Lower RSD and fewer jumps "
                  f"mean smoother training."),
        Table(("run", "residual RSD %", f"jumps >{jump_pct}% (%)", "slope / 1k iters", "mean loss", "points",
               "dropped (non-finite)"), oscillation_rows(overall)),
    ]
    if comparisons:
        blocks.append(Bullets(tuple(comparisons)))
    blocks += [
        Heading("Per epoch: residual RSD % / jumps % / slope per 1k iters", 3),
        Table(("epoch", *overall), per_epoch_rows(per_epoch)),
        Heading("Validation mAP per epoch (AP50-95 / AP50)"),
        Table(("epoch", *(r.name for r in runs)), val_map_rows(runs))
        if any(r.epochs for r in runs) else Paragraph("No epoch records yet."),
    ]
    if tracking:
        blocks += [
            Heading("Tracking quality per checkpoint (best conf-sweep row) next to val mAP"),
            Paragraph(f"For each checkpoint and tracker, the sweep row with the highest {tracking[0]['best_by']} "
                      f"(over confidence thresholds and tracker-grid settings). "
                      f"The epoch is read from the checkpoint name (epoch_N, best, latest, last_mosaic_epoch)."),
            Table(("run", "checkpoint", "epoch", "AP50-95", "AP50", "tracker", "conf", "tracker setting", "MOTA",
                   "IDF1", "HOTA", "IDSW", "FP", "FN"), tracking_rows(tracking)),
        ]
    captions = {
        "losses": "Loss components per logged iteration: raw (faint) and centred rolling median (solid); last panel: "
                  "residual of the total loss around its trend, in percent.",
        "lr": "Learning rate per parameter group; dashed: phase starts (P<n>), red dotted: no-aug start.",
        "validation": "Validation loss and mAP per epoch.",
        "oscillation": "Oscillation of the total loss per epoch.",
    }
    blocks.append(Heading("Plots"))
    for key, path in plots.items():
        caption = captions.get(key, key)
        if key.startswith("plan "):
            caption = (f"Planned schedule of {key[5:]} (plan.json): LR per group, phase starts, warmup end, no-aug "
                       f"start, and which groups train when.")
        blocks.append(Image(Path(path), caption))
    return blocks


def write_report(out_dir: Path, runs: Sequence[Run], overall: dict[str, OscillationStats],
                 per_epoch: dict[str, dict[int, OscillationStats]], comparisons: Sequence[str],
                 plots: dict[str, Path], tracking: Sequence[dict]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (atomically) and return their paths."""
    out_dir = Path(out_dir)
    title = "Training analysis: " + " vs ".join(r.name for r in runs)
    blocks = build_blocks(runs, overall, per_epoch, comparisons, plots, tracking)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md_path, render_markdown(title, blocks, out_dir))
    atomic_write_text(html_path, render_html(title, blocks))
    return md_path, html_path

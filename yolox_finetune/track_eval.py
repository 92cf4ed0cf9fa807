"""Tracking evaluation flows behind ``tools/track_eval.py``: detections -> trackers -> metrics, or results -> metrics.

Output of a run (``out``): ``<tracker>/<seq>.txt`` results, ``metrics.json``
(``{"trackers": {name: {"overall", "per_sequence", "per_class"}}, "settings": {...}}``) and a summary table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from loguru import logger
from tabulate import tabulate

from trackers import TRACKER_CONFIGS
from trackers.config import CMC_METHODS, TrackerConfig, build_config
from yolox_finetune.errors import UserError
from yolox_finetune.evaluation import METRIC_NAMES, TrackerCounts, evaluate_sequence
from yolox_finetune.io_utils import atomic_write_json
from yolox_finetune.mot_io import GT_FORMATS, read_results, write_results
from yolox_finetune.tracking import Sequence, effective_config, run_tracker

#: command-line flag -> tracker config field (``--class-aware/--no-class-aware`` is handled by argparse).
TRACKER_FLAGS: dict[str, tuple[str, type]] = {
    "--track-thresh": ("track_thresh", float),
    "--low-thresh": ("low_thresh", float),
    "--new-track-thresh": ("new_track_thresh", float),
    "--match-thresh": ("match_thresh", float),
    "--track-buffer": ("track_buffer", int),
    "--min-box-area": ("min_box_area", float),
    "--aspect-ratio-thresh": ("aspect_ratio_thresh", float),
}
#: metrics shown in the stdout summary.
SUMMARY_METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "DetA", "AssA", "MOTP", "IDSW", "FP", "FN", "MT", "ML",
                                    "Recall", "Precision")


def tracker_names(choice: str | list[str]) -> list[str]:
    """``all`` -> every tracker; otherwise the named ones, checked."""
    names = [choice] if isinstance(choice, str) else list(choice)
    if "all" in names:
        return list(TRACKER_CONFIGS)
    unknown = [n for n in names if n not in TRACKER_CONFIGS]
    if unknown:
        raise UserError(f"unknown tracker {unknown[0]!r}; choose from {', '.join(TRACKER_CONFIGS)} or all")
    return names


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where sequences, ground truth and the detector come from: shared by track_eval and conf_sweep."""
    parser.add_argument("-f", "--exp-file", help="exp file (needed with --ckpt)")
    parser.add_argument("--data", help="MOT root holding <split>/<seq>/ (default: the exp's data_dir/mot)")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--gt", help="ground-truth root <seq>/gt/gt.txt (with --dets/--results)")
    parser.add_argument("--gt-format", choices=GT_FORMATS, default="auto")
    parser.add_argument("--fps", type=float, default=None, help="frame rate when a sequence has no seqinfo.ini")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for a match in CLEAR/identity metrics (0.5)")
    parser.add_argument("--device", default="auto", help="detector device: auto, cpu, cuda, cuda:1")
    parser.add_argument("--batch-size", type=int, default=8, help="detector frames per batch")


def add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    """The tracker options every tracking tool accepts (unset = each tracker's own default)."""
    group = parser.add_argument_group("tracker options (default: each tracker's own, see trackers/config.py)")
    for flag, (name, kind) in TRACKER_FLAGS.items():
        group.add_argument(flag, dest=name, type=kind, default=None, metavar=kind.__name__.upper())
    group.add_argument("--cmc", choices=CMC_METHODS, default=None, help="BoT-SORT camera-motion compensation")
    group.add_argument("--class-aware", action=argparse.BooleanOptionalAction, default=None,
                       help="a track only takes detections of its class (default on)")


def tracker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Options given on the command line, as config-field overrides."""
    names = [name for name, _ in TRACKER_FLAGS.values()] + ["cmc", "class_aware"]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def build_tracker_config(name: str, overrides: dict[str, Any]) -> TrackerConfig:
    """Defaults of ``name`` with the overrides that apply to it (``cmc`` only exists for BoT-SORT)."""
    valid = set(TRACKER_CONFIGS[name].option_names())
    return build_config(name, {k: v for k, v in overrides.items() if k in valid})


def check_out_dir(out: Path, *inputs: str | os.PathLike | None) -> None:
    """Refuse an output folder that is one of the inputs (results would be written over the user's files)."""
    for given in inputs:
        if given is not None and Path(given).resolve() == out.resolve():
            raise UserError(f"--out {out} is also an input folder; choose a separate output folder")


def track_and_evaluate(sequences: list[Sequence], names: list[str], overrides: dict[str, Any], conf: float,
                       out: Path | None, iou_threshold: float = 0.5) -> dict[str, TrackerCounts]:
    """Run each tracker over each sequence's detections (score >= conf), write results, count metrics."""
    have_images = all(s.images for s in sequences)
    report: dict[str, TrackerCounts] = {}
    for name in names:
        config, note = effective_config(name, build_tracker_config(name, overrides), have_images)
        if note:
            logger.warning(note)
        counts = TrackerCounts()
        for seq in sequences:
            if seq.detections is None:
                raise UserError(f"sequence {seq.name} has no detections; pass --dets or --ckpt")
            results = run_tracker(name, config, seq.detections, seq.num_frames, seq.frame_rate, conf, seq.images,
                                  seq.image_size)
            if out is not None:
                write_results(out / name / f"{seq.name}.txt", results)
            counts.add_sequence(seq.name, evaluate_sequence(seq.gt, results, iou_threshold))
        report[name] = counts
    return report


def evaluate_result_dir(sequences: list[Sequence], results_dir: str | os.PathLike,
                        iou_threshold: float = 0.5) -> TrackerCounts:
    """Evaluate existing tracker output ``results_dir/<seq>.txt`` (every gt sequence needs a file)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder {results_dir} does not exist; pass the folder holding <seq>.txt files")
    missing = [s.name for s in sequences if not (results_dir / f"{s.name}.txt").is_file()]
    if missing:
        raise UserError(f"{results_dir} has no results for {len(missing)} sequence(s) (e.g. {missing[0]}.txt); "
                        "write an (empty) <seq>.txt for every ground-truth sequence")
    counts = TrackerCounts()
    for seq in sequences:
        counts.add_sequence(seq.name, evaluate_sequence(seq.gt, read_results(results_dir / f"{seq.name}.txt"),
                                                        iou_threshold))
    return counts


def metrics_document(report: dict[str, TrackerCounts], settings: dict[str, Any]) -> dict[str, Any]:
    """The metrics.json content."""
    return {"trackers": {name: counts.report() for name, counts in report.items()}, "settings": settings}


def write_metrics(document: dict[str, Any], out: Path | None, json_path: str | os.PathLike | None) -> list[Path]:
    """Write metrics.json to ``out`` and/or ``json_path`` (atomically); returns the paths written."""
    paths = [p for p in ((out / "metrics.json") if out is not None else None,
                         Path(json_path) if json_path else None) if p is not None]
    for path in paths:
        atomic_write_json(path, document)
    return paths


def _cell(value: Any) -> Any:
    return "-" if value is None else (round(value, 1) if isinstance(value, float) else value)


def summary_table(document: dict[str, Any], per_class: bool = True) -> str:
    """Readable table: one row per tracker (overall), then one per tracker and class."""
    rows = []
    for name, entry in document["trackers"].items():
        rows.append([name, "ALL"] + [_cell(entry["overall"][m]) for m in SUMMARY_METRICS])
        if per_class and len(entry["per_class"]) > 1:
            for cls, metrics in entry["per_class"].items():
                rows.append(["", cls] + [_cell(metrics[m]) for m in SUMMARY_METRICS])
    return tabulate(rows, headers=["tracker", "class", *SUMMARY_METRICS], tablefmt="github")


def settings_of(names: list[str], overrides: dict[str, Any], conf: float | None, iou_threshold: float,
                have_images: bool = True, **extra: Any) -> dict[str, Any]:
    """What produced the numbers: each tracker's effective config, the conf filter, the IoU threshold."""
    configs = {n: dataclasses.asdict(effective_config(n, build_tracker_config(n, overrides), have_images)[0])
               for n in names}
    for config in configs.values():
        config["aspect_ratio_class_ids"] = sorted(config["aspect_ratio_class_ids"])
    return {"conf": conf, "iou_threshold": iou_threshold, "trackers": configs, "metrics": list(METRIC_NAMES), **extra}


def checkpoint_detections(exp_file: str | None, ckpt: str, data: str | None, split: str, device: str = "auto",
                          batch_size: int = 8) -> tuple[Any, Path, Path, Path]:
    """``--ckpt`` mode's inputs: (exp, checkpoint path, gt root ``<data>/<split>``, det cache folder).

    ``data`` defaults to the Exp's ``data_dir + "/mot"``; the cache lives in ``<run_dir>/tracking/det_cache``.
    """
    from yolox_finetune.checkpoint import resolve_checkpoint
    from yolox_finetune.detect import cached_detections
    from yolox_finetune.exp import load_exp

    if not exp_file:
        raise UserError("--ckpt needs the exp file that trained it: pass -f exps/<name>.py")
    exp = load_exp(exp_file)
    ckpt_path = resolve_checkpoint(ckpt, exp.run_dir)
    gt_root = (Path(data) if data else Path(exp.data_dir) / "mot") / split
    if not gt_root.is_dir():
        raise UserError(f"MOT sequences folder {gt_root} does not exist; convert nuScenes with "
                        "tools/convert_nuscenes.py --mot or pass --data <folder holding val/ and test/>")
    det_dir = cached_detections(exp, ckpt_path, gt_root, exp.run_dir / "tracking" / "det_cache", device, batch_size)
    return exp, ckpt_path, gt_root, det_dir

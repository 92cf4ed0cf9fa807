"""Tracking evaluation flows behind ``tools/track_eval.py`` and ``tools/conf_sweep.py``: where the detections come
from (a checkpoint through the detector cache, or det files), detections -> trackers -> metrics, or results ->
metrics.

Output of a track_eval run (``out``): ``<tracker>/<seq>.txt`` results (MOTChallenge standard, the class in
``<seq>.classes.csv``; or ``--results-format mot+class``), ``<tracker>/tracker_config.yaml`` (the options it ran
with, conf mode applied; ``--tracker-config`` reruns them), ``metrics.json`` (``{"trackers": {name: {"overall",
"class_mean", "per_sequence", "per_class"}}, "settings": {...}}``) and a summary table.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from tabulate import tabulate

from trackers.config import TrackerConfig, save_config
from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import claim_output_dir
from yolox_finetune.mot.clear import METRIC_NAMES
from yolox_finetune.mot.evaluate import HEADLINE_CLASS_MEANS, TrackerCounts, evaluate_sequence
from yolox_finetune.mot.formats import read_results, write_results
from yolox_finetune.mot.interpolation import interpolate_tracks
from yolox_finetune.mot.runner import Sequence, effective_config, run_tracker
from yolox_finetune.tracking.detector import cached_detections, detector_settings
from yolox_finetune.tracking.options import DEFAULT_CONF_MODE, MOT_FOLDER_OF_FRAMES, apply_conf
from yolox_finetune.training.checkpoint import resolve_checkpoint
from yolox_finetune.training.exp import load_exp

#: file name of the tracker options a run used, beside its results.
TRACKER_CONFIG_FILE = "tracker_config.yaml"
#: name suffix of a tracker's interpolated output (``--interpolate``), reported as a tracker of its own.
INTERPOLATED_SUFFIX = "+interp"

#: metrics shown in the stdout summary.
SUMMARY_METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", *HEADLINE_CLASS_MEANS, "DetA", "AssA", "MOTP", "IDSW",
                                    "FP", "FN", "MT", "ML", "Recall", "Precision")


def run_configs(configs: Mapping[str, TrackerConfig], conf: float | None, conf_mode: str = DEFAULT_CONF_MODE,
                new_track_fixed: bool = False,
                have_images: bool = True) -> dict[str, tuple[TrackerConfig, float, str | None]]:
    """Tracker name -> (config it runs with, detection pre-filter, note) for a confidence value under ``conf_mode``
    (``options.apply_conf``); the note says what changed for lack of frame images."""
    planned = {}
    for name, requested in configs.items():
        config, note = effective_config(name, requested, have_images)
        final, prefilter = apply_conf(name, config, conf, conf_mode, new_track_fixed)
        planned[name] = (final, prefilter, note)
    return planned


def track_and_evaluate(sequences: list[Sequence], configs: Mapping[str, TrackerConfig], conf: float | None,
                       out: Path | None, iou_threshold: float = 0.5, conf_mode: str = DEFAULT_CONF_MODE,
                       new_track_fixed: bool = False, results_format: str = "mot",
                       interpolate: int = 0) -> dict[str, TrackerCounts]:
    """Run each tracker (name -> config) over each sequence's detections with ``conf`` read by ``conf_mode``
    (tracker: the high threshold; filter: score >= conf only), count metrics; with ``out``, write
    ``<tracker>/<seq>.txt`` results in ``results_format`` and the ``<tracker>/tracker_config.yaml`` they came from.
    ``interpolate`` > 0 also scores each tracker's output with gaps up to that many frames filled, as
    ``<tracker>+interp`` (its results written beside)."""
    have_images = all(s.images for s in sequences)
    report: dict[str, TrackerCounts] = {}
    for name, (config, prefilter, note) in run_configs(configs, conf, conf_mode, new_track_fixed,
                                                       have_images).items():
        if note:
            logger.warning(note)
        if out is not None:
            save_config(config, out / name / TRACKER_CONFIG_FILE)
        counts, filled = TrackerCounts(), TrackerCounts()
        for seq in sequences:
            if seq.detections is None:
                raise UserError(f"sequence {seq.name} has no detections; pass --dets or --ckpt")
            results = run_tracker(name, config, seq.detections, seq.num_frames, seq.frame_rate, prefilter,
                                  seq.images, seq.image_size)
            if out is not None:
                write_results(out / name / f"{seq.name}.txt", results, results_format)
            counts.add_sequence(seq.name, evaluate_sequence(seq.gt, results, iou_threshold,
                                                             scored_frames=seq.scored_frames))
            if interpolate > 0:
                interpolated = interpolate_tracks(results, interpolate)
                if out is not None:
                    write_results(out / f"{name}{INTERPOLATED_SUFFIX}" / f"{seq.name}.txt", interpolated,
                                  results_format)
                filled.add_sequence(seq.name, evaluate_sequence(seq.gt, interpolated, iou_threshold,
                                                                scored_frames=seq.scored_frames))
        report[name] = counts
        if interpolate > 0:
            report[f"{name}{INTERPOLATED_SUFFIX}"] = filled
    return report


def scored_frames_note(sequences: list[Sequence]) -> dict[str, Any] | None:
    """What was scored when some sequences hold unannotated frames (all-frames sequences), for metrics.json and
    the table; None when every frame is scored."""
    partial = [s for s in sequences if s.scored_frames is not None]
    if not partial:
        return None
    scored = sum(len(s.scored_frames) for s in partial)
    total = sum(s.num_frames for s in partial)
    return {"annotated_only": True, "sequences": len(partial), "scored_frames": scored, "frames": total,
            "note": f"trackers ran on all {total} frames of {len(partial)} sequence(s); only the {scored} annotated "
                    f"frames (annotated_frames.txt) are scored: tracker boxes on other frames count neither as "
                    f"true nor as false positives"}


def evaluate_result_dir(sequences: list[Sequence], results_dir: str | os.PathLike, iou_threshold: float = 0.5,
                        results_format: str = "auto", class_agnostic: bool = False) -> TrackerCounts:
    """Evaluate existing tracker output ``results_dir/<seq>.txt`` (every gt sequence needs a file), each row's class
    read as ``read_results`` does for ``results_format``. ``class_agnostic`` pools every class into one (for
    standard files without classes against multi-class ground truth, which is otherwise an error)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder {results_dir} does not exist; pass the folder holding <seq>.txt files")
    missing = [s.name for s in sequences if not (results_dir / f"{s.name}.txt").is_file()]
    if missing:
        raise UserError(f"{results_dir} has no results for {len(missing)} sequence(s) (e.g. {missing[0]}.txt); "
                        "write an (empty) <seq>.txt for every ground-truth sequence")
    counts = TrackerCounts()
    for seq in sequences:
        results = read_results(results_dir / f"{seq.name}.txt", results_format)
        counts.add_sequence(seq.name, evaluate_sequence(seq.gt, results, iou_threshold, not class_agnostic,
                                                         seq.scored_frames))
    return counts


def metrics_document(report: dict[str, TrackerCounts], settings: dict[str, Any]) -> dict[str, Any]:
    """The metrics.json content."""
    return {"trackers": {name: counts.report() for name, counts in report.items()}, "settings": settings}


def write_metrics(document: dict[str, Any], out: Path | None, json_path: str | os.PathLike | None) -> list[Path]:
    """Write metrics.json to ``out`` and/or ``json_path`` (atomically); returns the paths written (none when
    neither is given: ``--results`` without ``--out`` or ``--json`` only prints)."""
    paths = [p for p in ((out / "metrics.json") if out is not None else None,
                         Path(json_path) if json_path else None) if p is not None]
    for path in paths:
        atomic_write_json(path, document)
    return paths


def _cell(value: Any) -> Any:
    return "-" if value is None else (round(value, 1) if isinstance(value, float) else value)


def summary_table(document: dict[str, Any], per_class: bool = True) -> str:
    """Readable table: one row per tracker (overall: detection-weighted, with the class means mHOTA, mMOTA,
    mIDF1), then one per tracker and class; the conf mode is said above it."""
    rows = []
    for name, entry in document["trackers"].items():
        rows.append([name, "ALL"] + [_cell(entry["overall"].get(m)) for m in SUMMARY_METRICS])
        if per_class and len(entry["per_class"]) > 1:
            for cls, metrics in entry["per_class"].items():
                rows.append(["", cls] + [_cell(metrics.get(m)) for m in SUMMARY_METRICS])
    table = tabulate(rows, headers=["tracker", "class", *SUMMARY_METRICS], tablefmt="github")
    settings = document.get("settings", {})
    if settings.get("scored_frames"):
        table = settings["scored_frames"]["note"] + "\n" + table
    if "conf_mode" not in settings:
        return table
    prefilters = ", ".join(f"{n} {v:g}" for n, v in settings.get("prefilter", {}).items())
    highs = ", ".join(f"{n} {o['track_thresh']:g}/{o['new_track_thresh']:g}"
                      for n, o in settings.get("trackers", {}).items() if o.get("new_track_thresh") is not None)
    head = (f"conf mode {settings['conf_mode']} (conf {settings.get('conf')}): pre-filter {prefilters}; "
            f"high/new-track thresholds {highs}")
    return head + "\n" + table


def settings_of(configs: Mapping[str, TrackerConfig], conf: float | None, iou_threshold: float,
                have_images: bool = True, det_dir: str | os.PathLike | None = None,
                conf_mode: str = DEFAULT_CONF_MODE, new_track_fixed: bool = False, **extra: Any) -> dict[str, Any]:
    """What produced the numbers: the conf value and what it meant (``conf_mode``), each tracker's effective config
    (conf mode applied) and pre-filter, the IoU threshold and, for detections from the detector cache, how the
    detector ran (precision, NMS, test size: its cache key)."""
    planned = run_configs(configs, conf, conf_mode, new_track_fixed, have_images)
    options = {name: config.to_dict() for name, (config, _, _) in planned.items()}
    for name, config in options.items():  # the new-track threshold as used (ByteTrack's none = high + 0.1)
        config["new_track_thresh"] = planned[name][0].effective_new_track_thresh
    settings = {"conf": conf, "conf_mode": conf_mode, "prefilter": {n: p for n, (_, p, _) in planned.items()},
                "iou_threshold": iou_threshold, "trackers": options,
                "metrics": list(METRIC_NAMES), "class_means": list(HEADLINE_CLASS_MEANS)}
    if det_dir is not None:
        settings.update(detections=str(det_dir), detector=detector_settings(det_dir))
    return {**settings, **extra}


@dataclass
class DetectionSources:
    """Where a tool's detections come from: one det folder per label (a checkpoint or a --dets folder)."""

    #: folder holding ``<seq>/gt/gt.txt``.
    gt_root: Path
    #: label (checkpoint file stem, or the --dets folder's name) -> folder of ``<seq>.txt`` det files.
    det_dirs: dict[str, Path]
    #: the exp's run folder in --ckpt mode, where outputs go by default; None with --dets.
    run_dir: Path | None = None


def require_gt(gt: str | None, mode: str) -> Path:
    """``--gt`` as a path; UserError when ``mode`` (``--dets``, ``--results``) came without it."""
    if not gt:
        raise UserError(f"{mode} needs --gt GTDIR (the folder holding <seq>/gt/gt.txt)")
    return Path(gt)


def detection_sources(args: argparse.Namespace) -> DetectionSources:
    """The detections of the options from ``add_source_arguments``: each ``--ckpt`` through the detector and its
    cache (the exp's MOT sequences as ground truth), or each ``--dets`` folder with ``--gt``."""
    if args.ckpt:
        det_dirs: dict[str, Path] = {}
        for spec in [args.ckpt] if isinstance(args.ckpt, str) else args.ckpt:
            exp, ckpt_path, gt_root, det_dir = checkpoint_detections(args.exp_file, spec, args.data, args.split,
                                                                     args.device, args.batch_size, args.fp16,
                                                                     args.nms_class_agnostic,
                                                                     getattr(args, "frames", "keyframes"))
            det_dirs[ckpt_path.stem] = det_dir
        return DetectionSources(gt_root, det_dirs, exp.run_dir)
    gt_root = require_gt(args.gt, "--dets")
    det_dirs = {}
    for folder in [args.dets] if isinstance(args.dets, str) else args.dets:
        label = Path(folder).resolve().name
        if label in det_dirs:
            raise UserError(f"two --dets folders are named {label!r}; rename one so their rows differ")
        det_dirs[label] = Path(folder)
    return DetectionSources(gt_root, det_dirs)


def output_folder(out: str | None, sources: DetectionSources, default_name: str, what: str, tool: str,
                  *other_inputs: str | os.PathLike | None) -> Path:
    """``--out``, else ``<run_dir>/tracking/<default_name>`` in --ckpt mode, claimed for ``tool``: refused when it
    is an input folder or holds anything ``tool`` did not write. ``what`` says what goes there, for the message
    when --out is missing. Mark it with ``write_marker(folder, tool)`` once written."""
    if out:
        folder = Path(out)
    elif sources.run_dir is not None:
        folder = sources.run_dir / "tracking" / default_name
    else:
        raise UserError(f"pass --out DIR for {what}")
    return claim_output_dir(folder, tool, [sources.gt_root, *sources.det_dirs.values(), *other_inputs])


def checkpoint_detections(exp_file: str | None, ckpt: str, data: str | None, split: str, device: str = "auto",
                          batch_size: int = 8, fp16: bool = False,
                          class_agnostic: bool = False, frames: str = "keyframes") -> tuple[Any, Path, Path, Path]:
    """``--ckpt`` mode's inputs: (exp, checkpoint path, gt root ``<data>/<split>``, det cache folder).

    ``data`` defaults to the Exp's ``data_dir + "/mot"`` (``"/mot_sweeps"`` for ``frames="all"``: every camera frame,
    keyframes scored); the cache lives in ``<run_dir>/tracking/det_cache``.
    ``fp16`` and ``class_agnostic`` are the detector's opt-outs from stock YOLOX evaluation (fp32, per-class NMS).
    """
    if not exp_file:
        raise UserError("--ckpt needs the exp file that trained it: pass -f exps/<name>.py")
    exp = load_exp(exp_file)
    ckpt_path = resolve_checkpoint(ckpt, exp.run_dir)
    gt_root = (Path(data) if data else Path(exp.data_dir) / MOT_FOLDER_OF_FRAMES[frames]) / split
    if not gt_root.is_dir():
        how = "--mot --sweeps" if frames == "all" and not data else "--mot"
        raise UserError(f"MOT sequences folder {gt_root} does not exist; convert nuScenes with "
                        f"tools/convert_nuscenes.py {how} or pass --data <folder holding val/ and test/>")
    det_dir = cached_detections(exp, ckpt_path, gt_root, exp.run_dir / "tracking" / "det_cache", device, batch_size,
                                fp16=fp16, class_agnostic=class_agnostic)
    return exp, ckpt_path, gt_root, det_dir

"""Tracking evaluation flows behind ``tools/track_eval.py`` and ``tools/conf_sweep.py``: where the detections come
from (a checkpoint through the detector cache, or det files), detections -> trackers -> metrics, or results ->
metrics.

Output of a track_eval run (``out``): ``<tracker>/<seq>.txt`` results (MOTChallenge standard, the class in
``<seq>.classes.csv``; or ``--results-format mot+class``), ``<tracker>/tracker_config.yaml`` (the options it ran
with, conf mode applied; ``--tracker-config`` reruns them), ``metrics.json`` (``{"trackers": {name: {"overall",
"class_mean", "per_sequence", "per_class"}}, "settings": {...}, "skipped": {...}}``: ``skipped`` names what the
inputs held that was not evaluated, see ``mot.runner.InputReport``) and a summary table.
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
from yolox_finetune.mot.evaluate import HEADLINE_CLASS_MEANS, TrackerCounts, evaluate_sequence, scored_pair
from yolox_finetune.mot.formats import MotRows, list_sequences, read_results, write_results
from yolox_finetune.mot.interpolation import interpolate_tracks
from yolox_finetune.mot.runner import (
    InputReport,
    Sequence,
    check_files_for,
    effective_config,
    input_report,
    run_tracker,
)
from yolox_finetune.tracking.detector import cached_detections, detector_settings
from yolox_finetune.tracking.options import DEFAULT_CONF_MODE, MOT_FOLDER_OF_FRAMES, apply_conf
from yolox_finetune.training.checkpoint import list_checkpoints, resolve_checkpoint
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


def read_result_dir(sequences: list[Sequence], results_dir: str | os.PathLike, results_format: str = "auto",
                    class_agnostic: bool = False) -> dict[str, MotRows]:
    """Every sequence's ``results_dir/<seq>.txt`` (each gt sequence needs one), read and checked before any is
    evaluated: a frame past a sequence's seqLength (results of another sequence), or class-less rows against
    multi-class ground truth without ``class_agnostic``, is an error."""
    check_files_for([s.name for s in sequences], results_dir, "results")
    results = {}
    for seq in sequences:
        rows = read_results(Path(results_dir) / f"{seq.name}.txt", results_format, seq.info.seq_length)
        scored_pair(seq.gt, rows, not class_agnostic, seq.scored_frames)  # the class check, up front
        results[seq.name] = rows
    return results


def evaluate_results(sequences: list[Sequence], results: Mapping[str, MotRows], iou_threshold: float = 0.5,
                     class_agnostic: bool = False) -> TrackerCounts:
    """Counts of existing tracker output (``read_result_dir``). ``class_agnostic`` pools every class into one (for
    standard files without classes against multi-class ground truth, which is otherwise an error)."""
    counts = TrackerCounts()
    for seq in sequences:
        counts.add_sequence(seq.name, evaluate_sequence(seq.gt, results[seq.name], iou_threshold, not class_agnostic,
                                                         seq.scored_frames))
    return counts


def report_inputs(gt_root: str | os.PathLike, sequences: list[Sequence], other_dir: str | os.PathLike | None = None,
                  fps: float | None = None, results: Mapping[str, MotRows] | None = None) -> InputReport:
    """What loading left out or assumed (``mot.runner.input_report``), each kind logged as one warning line;
    ``results`` (``--results`` mode) adds the rows left out of the results files."""
    report = input_report(gt_root, sequences, other_dir, fps, tracked=results is None)
    for rows in (results or {}).values():
        report.add_rows(rows)
    for line in report.messages(gt_root, other_dir):
        logger.warning(line)
    return report


def metrics_document(report: dict[str, TrackerCounts], settings: dict[str, Any],
                     inputs: InputReport | None = None) -> dict[str, Any]:
    """The metrics.json content; ``skipped`` lists what the inputs held that was not evaluated (``InputReport``)."""
    return {"trackers": {name: counts.report() for name, counts in report.items()}, "settings": settings,
            "skipped": (inputs or InputReport()).as_dict()}


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
        exp, ckpt_paths, gt_root = checkpoint_inputs(args)  # every checkpoint and the split, before any detection
        det_dirs = {path.stem: cached_detections(exp, path, gt_root, exp.run_dir / "tracking" / "det_cache",
                                                 args.device, args.batch_size, fp16=args.fp16,
                                                 class_agnostic=args.nms_class_agnostic)
                    for path in ckpt_paths}
        return DetectionSources(gt_root, det_dirs, exp.run_dir)
    gt_root = require_gt(args.gt, "--dets")
    det_dirs = {}
    for folder in [args.dets] if isinstance(args.dets, str) else args.dets:
        label = Path(folder).resolve().name
        if label in det_dirs:
            raise UserError(f"two --dets folders are named {label!r}; rename one so their rows differ")
        det_dirs[label] = Path(folder)
    return DetectionSources(gt_root, det_dirs)


def check_sources(args: argparse.Namespace) -> None:
    """The checks of ``detection_sources`` without running the detector, so that a tool with two sources (tuning
    and held-out sequences) refuses a bad second one before it detects on the first."""
    if args.ckpt:
        checkpoint_inputs(args)
        return
    names = list_sequences(require_gt(args.gt, "--dets"))
    for folder in [args.dets] if isinstance(args.dets, str) else args.dets:
        check_files_for(names, folder, "detections", args.gt)


def planned_output_folder(out: str | None, sources: DetectionSources, default_name: str, what: str) -> Path:
    """``--out``, else ``<run_dir>/tracking/<default_name>`` in --ckpt mode (not created); ``what`` says what goes
    there, for the message when --out is missing."""
    if out:
        return Path(out)
    if sources.run_dir is not None:
        return sources.run_dir / "tracking" / default_name
    raise UserError(f"pass --out DIR for {what}")


def output_folder(out: str | None, sources: DetectionSources, default_name: str, what: str, tool: str,
                  *other_inputs: str | os.PathLike | None) -> Path:
    """``planned_output_folder``, claimed for ``tool``: refused when it is an input folder or holds anything
    ``tool`` did not write. Mark it with ``write_marker(folder, tool)`` once written."""
    folder = planned_output_folder(out, sources, default_name, what)
    return claim_output_dir(folder, tool, [sources.gt_root, *sources.det_dirs.values(), *other_inputs])


def checkpoint_inputs(args: argparse.Namespace) -> tuple[Any, list[Path], Path]:
    """``--ckpt`` mode's inputs, each checked before the detector runs: (exp, checkpoint paths, gt root
    ``<data>/<split>``). ``--data`` defaults to the Exp's ``data_dir + "/mot"`` (``"/mot_sweeps"`` for ``--frames
    all``: every camera frame, keyframes scored)."""
    if not args.exp_file:
        raise UserError("--ckpt needs the exp file that trained it: pass -f exps/<name>.py")
    exp = load_exp(args.exp_file)
    paths = [find_checkpoint(spec, exp.run_dir) for spec in ([args.ckpt] if isinstance(args.ckpt, str) else args.ckpt)]
    stems = [path.stem for path in paths]
    twice = [stem for stem in dict.fromkeys(stems) if stems.count(stem) > 1]
    if twice:
        raise UserError(f"--ckpt names checkpoint {twice[0]} twice; give each checkpoint once")
    frames = getattr(args, "frames", "keyframes")
    gt_root = (Path(args.data) if args.data else Path(exp.data_dir) / MOT_FOLDER_OF_FRAMES[frames]) / args.split
    if not gt_root.is_dir():
        how = "--mot --sweeps" if frames == "all" and not args.data else "--mot"
        raise UserError(f"MOT sequences folder {gt_root} does not exist; convert nuScenes with "
                        f"tools/convert_nuscenes.py {how} or pass --data <folder holding val/ and test/>")
    list_sequences(gt_root)  # a --split without sequences is one line here, not after loading the model
    return exp, paths, gt_root


def find_checkpoint(spec: str, run_dir: Path) -> Path:
    """``training.checkpoint.resolve_checkpoint``, whose error for a missing file path also names the checkpoints
    the run dir has (for a missing name it lists them already)."""
    try:
        return resolve_checkpoint(spec, run_dir)
    except UserError:
        if not (Path(spec).suffix == ".pth" or os.sep in spec):
            raise
        available = ", ".join(list_checkpoints(run_dir)) or "none"
        raise UserError(f"checkpoint file {spec} not found (checkpoints in {run_dir}: {available}); pass one of "
                        "those names or an existing .pth path") from None


def checkpoint_detections(exp_file: str | None, ckpt: str, data: str | None, split: str, device: str = "auto",
                          batch_size: int = 8, fp16: bool = False,
                          class_agnostic: bool = False, frames: str = "keyframes") -> tuple[Any, Path, Path, Path]:
    """One checkpoint's ``--ckpt`` inputs (``checkpoint_inputs``) and its det cache folder
    (``<run_dir>/tracking/det_cache``): (exp, checkpoint path, gt root, det folder).
    ``fp16`` and ``class_agnostic`` are the detector's opt-outs from stock YOLOX evaluation (fp32, per-class NMS).
    """
    args = argparse.Namespace(exp_file=exp_file, ckpt=ckpt, data=data, split=split, frames=frames)
    exp, (ckpt_path,), gt_root = checkpoint_inputs(args)
    det_dir = cached_detections(exp, ckpt_path, gt_root, exp.run_dir / "tracking" / "det_cache", device, batch_size,
                                fp16=fp16, class_agnostic=class_agnostic)
    return exp, ckpt_path, gt_root, det_dir

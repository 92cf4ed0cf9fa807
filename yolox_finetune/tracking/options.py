"""The command line every tracking tool shares: where detections come from, which trackers, and their options.

Tracker flags are generated from the config dataclasses of ``trackers/config.py`` (field ``match_thresh`` ->
``--match-thresh``, its type from the annotation, its help from the field's comment), so a new config field is a new
flag in every tool. This module is light on purpose (no torch, pandas or matplotlib): a tool builds its parser and
checks the tracker options with it before loading the flows, so ``--help`` and a bad option answer at once.

What a confidence threshold means (``--conf-mode``):

- ``tracker``: the value is the tracker's high threshold (``track_thresh``: ByteTrack's track_thresh, BoT-SORT's
  track_high_thresh); the new-track threshold keeps its gap above it (the config's gap, 0.1 for both trackers'
  defaults; capped at 1) unless ``--new-track-thresh`` (or a sweep axis of it) fixes it, and detections are
  pre-filtered at the tracker's ``low_thresh``. Without a value the trackers run with their own thresholds.
- ``filter``: the value only drops detections below it before tracking; the tracker's thresholds stay.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from trackers.config import TRACKER_CONFIGS, OptionSpec, TrackerConfig, format_value, load_config, option_specs
from trackers.errors import TrackerError
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import GT_FORMATS

#: ``--tracker`` value that selects every tracker.
ALL_TRACKERS = "all"

#: the two meanings of a confidence threshold (see the module doc).
CONF_FILTER, CONF_TRACKER = "filter", "tracker"
CONF_MODES: tuple[str, ...] = (CONF_TRACKER, CONF_FILTER)
#: the default meaning: the one under which "MOTA vs conf" moves over the whole range (README, "What --conf means").
DEFAULT_CONF_MODE = CONF_TRACKER
#: the pre-filter of filter mode when no value is given (the trackers' default low threshold).
DEFAULT_FILTER_CONF = 0.1


def add_conf_mode_argument(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """``--conf-mode``: tracker (the value is the tracker's high threshold) or filter (a pre-filter only)."""
    both = f"; {CONF_FILTER},{CONF_TRACKER} sweeps both, one curve each" if several else ""
    parser.add_argument(
        "--conf-mode", default=DEFAULT_CONF_MODE, type=conf_modes if several else conf_mode,
        metavar="|".join(CONF_MODES),
        help=f"what --conf means: {CONF_TRACKER} = the trackers' high threshold (track_thresh; the new-track "
             "threshold follows at its gap unless --new-track-thresh is given; detections pre-filtered at low_thresh)"
             f", {CONF_FILTER} = only a detection pre-filter, the trackers' thresholds stay{both} "
             f"(default {DEFAULT_CONF_MODE})")


def conf_mode(text: str) -> str:
    """argparse type of one --conf-mode value."""
    if text not in CONF_MODES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a conf mode; choose {' or '.join(CONF_MODES)}")
    return text


def conf_modes(text: str) -> list[str]:
    """argparse type of a comma list of --conf-mode values (a sweep may run both)."""
    return list(dict.fromkeys(conf_mode(part.strip()) for part in text.split(",") if part.strip()))


def apply_conf(name: str, config: TrackerConfig, conf: float | None, mode: str,
               new_track_fixed: bool = False) -> tuple[TrackerConfig, float]:
    """(config to run, detection pre-filter) for a confidence value under ``mode`` (module doc). Raises UserError
    when the result contradicts itself (see ``check_thresholds``)."""
    if mode == CONF_FILTER:
        checked = check_thresholds(name, config)
        return checked, DEFAULT_FILTER_CONF if conf is None else float(conf)
    if mode != CONF_TRACKER:
        raise UserError(f"unknown conf mode {mode!r}; choose {' or '.join(CONF_MODES)}")
    if conf is None:
        return check_thresholds(name, config), config.low_thresh
    changes: dict[str, Any] = {"track_thresh": float(conf)}
    if not new_track_fixed:
        gap = config.effective_new_track_thresh - config.track_thresh
        changes["new_track_thresh"] = min(1.0, round(float(conf) + gap, 6))
    try:
        replaced = dataclasses.replace(config, **changes)
    except TrackerError as exc:
        raise UserError(f"--conf-mode {CONF_TRACKER} with conf {conf:g}: {exc}") from None
    return check_thresholds(name, replaced, conf), replaced.low_thresh


def check_thresholds(name: str, config: TrackerConfig, conf: float | None = None) -> TrackerConfig:
    """``config`` unless its high threshold lies above its new-track threshold: new tracks start only from
    detections at or above track_thresh, so such a new_track_thresh would do nothing (one UserError line)."""
    high, new = config.track_thresh, config.effective_new_track_thresh
    if high > new + 1e-12:
        where = f" (conf {conf:g} in --conf-mode {CONF_TRACKER})" if conf is not None else ""
        raise UserError(f"{name}: track_thresh={high:g} is above new_track_thresh={new:g}{where}, so the new-track "
                        f"threshold would have no effect; raise --new-track-thresh to at least {high:g} (or leave it "
                        f"unset in --conf-mode {CONF_TRACKER}, where it follows), or lower the high threshold")
    return config


#: values of ``--frames``: where ``--ckpt`` mode finds its sequences.
FRAME_MODES: tuple[str, ...] = ("keyframes", "all")
#: the folders of the two kinds of sequences below the exp's data_dir (convert_nuscenes --mot [--sweeps]).
MOT_FOLDER_OF_FRAMES: dict[str, str] = {"keyframes": "mot", "all": "mot_sweeps"}


def add_source_arguments(parser: argparse.ArgumentParser, many: bool) -> argparse._MutuallyExclusiveGroup:
    """``--ckpt`` / ``--dets`` (several of each with ``many``) and where sequences, ground truth and the detector come
    from. Returns the required mode group, so a tool can add a mode of its own."""
    several = " (several: one row of results each)" if many else ""
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ckpt", nargs="+" if many else None,
                      help=f"checkpoint path or name (epoch_10, best, latest) in the exp's run dir{several}")
    mode.add_argument("--dets", nargs="+" if many else None, help=f"folder of MOT det files <seq>.txt{several}")
    parser.add_argument("-f", "--exp-file", help="exp file (needed with --ckpt)")
    parser.add_argument("--data", help="MOT root holding <split>/<seq>/ (default: the exp's data_dir/mot)")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--frames", choices=FRAME_MODES, default="keyframes",
                        help="--ckpt: keyframes = <data>/<split> (2 Hz on nuScenes); all = every camera frame from "
                             "the all-frames sequences of convert_nuscenes --mot --sweeps (the exp's "
                             "data_dir/mot_sweeps/<split>): trackers run at the camera rate, only the annotated "
                             "keyframes are scored (a --gt folder with annotated_frames.txt is scored the same way)")
    parser.add_argument("--gt", help="ground-truth root <seq>/gt/gt.txt (with --dets/--results)")
    parser.add_argument("--gt-format", choices=GT_FORMATS, default="auto")
    parser.add_argument("--fps", type=float, default=None, help="frame rate when a sequence has no seqinfo.ini")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU for a match in CLEAR/identity metrics (0.5)")
    parser.add_argument("--device", default="auto", help="detector device: auto, cpu, cuda, cuda:1")
    parser.add_argument("--batch-size", type=int, default=8, help="detector frames per batch")
    parser.add_argument("--fp16", action="store_true",
                        help="detector in half precision (CUDA only; default fp32 as stock YOLOX's tools; recorded in "
                             "the det cache key and metrics.json)")
    parser.add_argument("--nms-class-agnostic", action="store_true",
                        help="detector NMS across classes, as stock tools/demo.py (default: per class, as stock "
                             "COCOEvaluator and training-time mAP)")
    return mode


def add_interpolate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interpolate", type=int, default=0, metavar="MAX_GAP",
                        help="also report each tracker with gaps of up to MAX_GAP frames inside its tracks filled "
                             "by linear interpolation (ByteTrack's post-processing), as '<tracker>+interp' (0: off)")


def add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracker``, ``--tracker-config`` and one flag per tracker option (unset = the file's value, else the
    tracker's default)."""
    parser.add_argument("--tracker", nargs="+", choices=(*TRACKER_CONFIGS, ALL_TRACKERS), metavar="NAME",
                        help=f"trackers to run: {', '.join(TRACKER_CONFIGS)} or {ALL_TRACKERS} "
                             "(default: those in --tracker-config, else all)")
    group = parser.add_argument_group(
        "tracker options",
        "An option left unset takes its value from --tracker-config, else the tracker's default (in brackets;\n"
        "documented in trackers/config.py). Options of one tracker apply to that tracker only.",
    )
    group.add_argument("--tracker-config", metavar="FILE.yaml",
                       help="YAML file of tracker options: 'tracker: NAME' and 'option: value' lines, or one entry "
                            "per tracker name. Every run writes one (tracker_config.yaml) that reruns it as it was; "
                            "python -m trackers NAME prints the defaults")
    for spec in option_specs().values():  # unset flags stay out of the namespace: None is a value (none)
        flag = "--" + spec.name.replace("_", "-")
        if spec.kind is bool:
            group.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=_flag_help(spec))
        else:
            metavar = None if spec.choices else spec.type_name.upper()
            group.add_argument(flag, dest=spec.name, type=_flag_type(spec), choices=spec.choices,
                               default=argparse.SUPPRESS, metavar=metavar, help=_flag_help(spec))


def _flag_help(spec: OptionSpec) -> str:
    values = {format_value(v) for v in spec.defaults.values()}
    if len(values) == 1:
        default = values.pop()
    else:
        default = ", ".join(f"{name} {format_value(v)}" for name, v in spec.defaults.items())
    only = f"{', '.join(spec.defaults)} only; " if len(spec.defaults) < len(TRACKER_CONFIGS) else ""
    return f"{spec.doc} [{only}{default}]".replace("%", "%%")


def _flag_type(spec: OptionSpec) -> Callable[[str], Any]:
    """argparse type of an option: the option's own parser, its message shown on a bad value."""

    def convert(text: str) -> Any:
        try:
            return spec.parse(text)
        except TrackerError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = spec.type_name
    return convert


def chosen_trackers(requested: list[str] | None, in_file: list[str]) -> list[str]:
    """``--tracker`` values -> tracker names: ``all`` is every tracker; none given means the trackers the
    ``--tracker-config`` file sets up, else every tracker. argparse has checked the names."""
    if not requested:
        return in_file or list(TRACKER_CONFIGS)
    if ALL_TRACKERS in requested:
        return list(TRACKER_CONFIGS)
    return list(dict.fromkeys(requested))


def given_tracker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The tracker options set by flags (a flag left out is absent from ``args``)."""
    return {name: getattr(args, name) for name in option_specs() if hasattr(args, name)}


def tracker_configs(args: argparse.Namespace) -> dict[str, TrackerConfig]:
    """The config of each chosen tracker: its defaults, overridden by the ``--tracker-config`` file, overridden by
    the flags given. Raises UserError for a flag no chosen tracker has, TrackerError for a bad value."""
    from_file = load_config(args.tracker_config) if args.tracker_config else {}
    names = chosen_trackers(args.tracker, list(from_file))
    flags = given_tracker_options(args)
    unused = [option for option in flags if option not in option_specs(names)]
    if unused:
        owners = ", ".join(option_specs()[unused[0]].defaults)
        raise UserError(f"--{unused[0].replace('_', '-')} is an option of {owners} only, and the trackers run here "
                        f"are {', '.join(names)}; drop the flag or add --tracker {owners}")
    configs = {}
    for name in names:
        base = from_file[name] if name in from_file else TRACKER_CONFIGS[name]()
        own = {option: value for option, value in flags.items() if option in base.option_names()}
        configs[name] = dataclasses.replace(base, **own)
    return configs

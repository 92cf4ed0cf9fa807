"""Sweeps: which checkpoint, which threshold, which tracker (and tracker settings).

    python tools/conf_sweep.py -f exps/x.py --ckpt epoch_10 epoch_30 [--tracker bytetrack botsort]
                               [--conf 0.1:0.9:0.1] [--conf-mode tracker|filter|filter,tracker]
                               [--grid match_thresh=0.7,0.8,0.85]
    python tools/conf_sweep.py --dets DETDIR [DETDIR2 ...] --gt GTDIR --out OUT --sweep match_thresh=0.6:0.95:0.05
                               [--conf 0.3] [--grid track_buffer=30,60] [--tracker-config my_tracker.yaml]

The x-axis is --conf (default) or any tracker option (--sweep NAME=START:END:STEP or NAME=v1,v2); --grid adds
curves. --conf-mode says what the threshold means: tracker (default) = the trackers' high threshold, the new-track
threshold following at its gap unless --new-track-thresh is given, detections pre-filtered at the low threshold;
filter = only a pre-filter before tracking. --conf-mode filter,tracker runs both: one plot, both modes' curves.
The run count is checked first: above 5,000 runs pass --yes; above 1,000,000 the sweep is refused.
The detector runs once per checkpoint (cached; stock YOLOX in fp32 with per-class NMS unless --fp16 /
--nms-class-agnostic, recorded in sweep.md); thresholds only filter the cached detections. The trackers' options
(before the sweep axes) are written to OUT/tracker_config.yaml; --tracker-config with the same axes reruns them.
"""

from __future__ import annotations

import argparse

from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.tracking.options import (
    CONF_TRACKER,
    add_conf_mode_argument,
    add_interpolate_argument,
    add_source_arguments,
    add_tracker_arguments,
    given_tracker_options,
    tracker_configs,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, many=True)
    parser.add_argument("--conf", default=None,
                        help="START:END:STEP (inclusive) or a comma list; the x-axis unless --sweep is given "
                             "(default 0.1:0.9:0.1; with --sweep: one curve per value, default the mode's own)")
    add_conf_mode_argument(parser, several=True)
    parser.add_argument("--sweep", metavar="NAME=START:END:STEP",
                        help="a tracker option on the x-axis instead of --conf, e.g. match_thresh=0.6:0.95:0.05 or "
                             "cmc=none,orb (conf=... is --conf)")
    parser.add_argument("--grid", nargs="*", default=[], metavar="NAME=V1,V2",
                        help="tracker option values as further axes (one curve each), e.g. match_thresh=0.7,0.8,0.85 "
                             "or track_buffer=10:60:10")
    parser.add_argument("--yes", action="store_true", help="run a sweep of more than 5,000 runs")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/sweep/)")
    add_interpolate_argument(parser)
    add_tracker_arguments(parser)
    return parser.parse_args(argv)


#: the name this tool marks its output folder with.
TOOL = "conf_sweep"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configs = tracker_configs(args)  # bad tracker options fail here, before any work
    given = given_tracker_options(args)
    if args.interpolate < 0:
        raise UserError(f"--interpolate {args.interpolate}: give the longest gap to fill in frames (0 = off)")
    if not args.conf_mode:
        raise UserError("--conf-mode needs tracker, filter or filter,tracker")
    if not 0.0 < args.iou <= 1.0:
        raise UserError(f"--iou {args.iou}: the IoU of a match lies in (0, 1]")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: give 1 or more worker processes (default: the CPU count)")
    # loaded only now, so that --help and bad options answer without importing torch, pandas and the detector
    from loguru import logger

    from yolox_finetune.core.output_dir import write_marker
    from yolox_finetune.mot.runner import effective_config, input_report, load_sequences
    from yolox_finetune.tracking import flows, sweep
    from yolox_finetune.tracking.detector import describe_detector, detector_settings

    plan = sweep.make_plan(args.conf, args.sweep, args.grid, args.conf_mode, configs, "new_track_thresh" in given)
    if CONF_TRACKER in plan.modes and "track_thresh" in given and any(c is not None for c in plan.confs):
        raise UserError("--conf and --track-thresh both set the high threshold in --conf-mode tracker; drop one, or "
                        "use --conf-mode filter to make --conf a pre-filter")
    checkpoints = len(args.ckpt or args.dets)
    total = plan.count(configs, checkpoints)
    sweep.check_size(total, args.yes)  # before the detector, before any run is built
    sweep.build_runs("check", configs, plan, True)  # contradicting thresholds: one line, before any work
    sources = flows.detection_sources(args)
    what = "sweep.csv, sweep.md and the plots"
    flows.planned_output_folder(args.out, sources, "sweep", what)  # a missing --out is said before anything is read
    # every input is read and checked before the output folder is made: bad input leaves nothing behind
    loaded = {label: load_sequences(sources.gt_root, d, args.fps, args.gt_format)
              for label, d in sources.det_dirs.items()}
    notes: list[str] = []

    def note(text: str) -> None:  # one warning per distinct note, all of them kept for sweep.md
        if text not in notes:
            logger.warning(text)
            notes.append(text)

    for label, det_dir in sources.det_dirs.items():  # the det cache is ours: its file list is not reported
        inputs = input_report(sources.gt_root, loaded[label], det_dir if sources.run_dir is None else None,
                                    args.fps)
        for text in inputs.messages(sources.gt_root, det_dir):
            note(text)
    out = flows.output_folder(args.out, sources, "sweep", what, TOOL)
    have_images = all(s.images for seqs in loaded.values() for s in seqs)
    runs = []
    for label in loaded:
        more, label_notes = sweep.build_runs(label, configs, plan, have_images)
        runs += more
        for text in label_notes:
            note(text)
    for label, det_dir in sources.det_dirs.items():  # how each checkpoint's detections were made, for sweep.md
        detector = detector_settings(det_dir)
        if detector:
            notes.append(f"{label}: {describe_detector(detector)}")
    logger.info(f"{len(runs)} runs x {len(next(iter(loaded.values())))} sequences")
    runs = sweep.with_interpolation(runs, args.interpolate)
    frames_note = flows.scored_frames_note(next(iter(loaded.values())))
    if frames_note:
        notes.append(frames_note["note"])
    counts = sweep.run_sweep(loaded, runs, args.jobs, args.iou)
    ran_with = {name: effective_config(name, config, have_images)[0] for name, config in configs.items()}
    paths = sweep.write_sweep(sweep.sweep_rows(runs, counts), out, notes, ran_with, plan.x_name,
                              sweep.class_means(counts))
    write_marker(out, TOOL)
    print((out / "sweep.md").read_text())
    logger.info(f"wrote {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()

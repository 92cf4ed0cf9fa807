"""Track and evaluate: a checkpoint (detector -> cache -> trackers), cached detections, or existing results.

    python tools/track_eval.py --ckpt epoch_10 -f exps/x.py [--split val] [--tracker all] [--conf 0.1]
    python tools/track_eval.py --dets DETDIR --gt GTDIR --out OUT [--tracker-config my_tracker.yaml]
    python tools/track_eval.py --results RESDIR --gt GTDIR [--out OUT] [--json metrics.json]

--conf is the trackers' high threshold (--conf-mode tracker, the default: the new-track threshold follows at its
gap, detections pre-filtered at the low threshold; without --conf the trackers' own thresholds) or only a detection
pre-filter (--conf-mode filter). Results are MOTChallenge files (frame,id,x,y,w,h,score,-1,-1,-1) with each row's
class in <seq>.classes.csv, or --results-format mot+class (class in column 8). --results without --out prints the
table and writes metrics only where --json says.
Each tracker's options are written to OUT/<tracker>/tracker_config.yaml; --tracker-config reruns them.
With --ckpt the detector is stock YOLOX (fp32, per-class NMS) unless --fp16 / --nms-class-agnostic; boxes are
clipped to the image and those without area dropped. metrics.json's settings.detector records how it ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.mot.formats import RESULT_READ_FORMATS
from yolox_finetune.tracking.options import (
    CONF_TRACKER,
    add_conf_mode_argument,
    add_interpolate_argument,
    add_source_arguments,
    add_tracker_arguments,
    apply_conf,
    given_tracker_options,
    tracker_configs,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = add_source_arguments(parser, many=False)
    mode.add_argument("--results", help="folder of tracker results <seq>.txt to evaluate as they are")
    parser.add_argument("--conf", type=float, default=None,
                        help="confidence threshold, read by --conf-mode (default: tracker mode, the trackers' own "
                             "thresholds; filter mode 0.1)")
    add_conf_mode_argument(parser)
    parser.add_argument("--results-format", choices=RESULT_READ_FORMATS, default="auto",
                        help="results files written (mot: MOTChallenge standard + <seq>.classes.csv sidecar; "
                             "mot+class: class in column 8) or read with --results (auto: the sidecar if present, "
                             "else column 8 if it holds classes). Default: write mot, read auto")
    parser.add_argument("--class-agnostic", action="store_true",
                        help="with --results: pool every class into one (for files without classes against "
                             "multi-class ground truth)")
    parser.add_argument("--name", help="tracker name in the report for --results (default: the folder's name)")
    parser.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/<ckpt>/; with --results "
                                      "none: print only)")
    parser.add_argument("--json", help="also write metrics.json here")
    add_interpolate_argument(parser)
    add_tracker_arguments(parser)
    return parser.parse_args(argv)


#: the name this tool marks its output folder with.
TOOL = "track_eval"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if (args.conf is not None and not 0.0 <= args.conf <= 1.0) or not 0.0 < args.iou <= 1.0:
        raise UserError("--conf must be in [0, 1] and --iou in (0, 1]")
    if args.interpolate < 0:
        raise UserError(f"--interpolate {args.interpolate}: give the longest gap to fill in frames (0 = off)")
    if args.class_agnostic and not args.results:
        raise UserError("--class-agnostic applies to --results only (trackers run here write their classes)")
    configs = {} if args.results else tracker_configs(args)  # bad tracker options fail here, before any work
    given = given_tracker_options(args)
    if args.conf_mode == CONF_TRACKER and args.conf is not None and "track_thresh" in given:
        raise UserError("--conf and --track-thresh both set the high threshold in --conf-mode tracker; drop one, or "
                        "use --conf-mode filter to make --conf a pre-filter")
    for name, config in configs.items():  # contradicting thresholds: one line, before the detector runs
        apply_conf(name, config, args.conf, args.conf_mode, "new_track_thresh" in given)
    # loaded only now, so that --help and bad options answer without importing torch, pandas and the detector
    from loguru import logger

    from yolox_finetune.core.output_dir import write_marker
    from yolox_finetune.mot.runner import load_sequences
    from yolox_finetune.tracking import flows

    if args.results:
        sources = flows.DetectionSources(flows.require_gt(args.gt, "--results"), {})
    else:
        sources = flows.detection_sources(args)
    labels = list(sources.det_dirs)
    det_dir = sources.det_dirs[labels[0]] if labels else None
    writes = bool(args.out or not args.results)
    what = "the results and metrics.json"
    if writes:  # a missing --out is said before anything is read
        flows.planned_output_folder(args.out, sources, labels[0] if labels else "results", what)
    # every input is read and checked before the output folder is made: bad input leaves nothing behind
    sequences = load_sequences(sources.gt_root, det_dir, args.fps, args.gt_format, with_images=not args.results)
    results = (flows.read_result_dir(sequences, args.results, args.results_format, args.class_agnostic)
               if args.results else None)
    other_dir = args.results or (det_dir if sources.run_dir is None else None)  # the det cache is ours: not listed
    inputs = flows.report_inputs(sources.gt_root, sequences, other_dir, args.fps, results)
    out = None
    if writes:
        out = flows.output_folder(args.out, sources, labels[0] if labels else "results", what, TOOL, args.results)
    if results is not None:
        name = args.name or Path(args.results).resolve().name
        report = {name: flows.evaluate_results(sequences, results, args.iou, args.class_agnostic)}
        settings = {"results": str(args.results), "results_format": args.results_format,
                    "class_agnostic": args.class_agnostic, "iou_threshold": args.iou}
    else:
        write_format = "mot" if args.results_format == "auto" else args.results_format
        new_fixed = "new_track_thresh" in given
        report = flows.track_and_evaluate(sequences, configs, args.conf, out, args.iou, args.conf_mode, new_fixed,
                                          write_format, args.interpolate)
        settings = flows.settings_of(configs, args.conf, args.iou, all(s.images for s in sequences), det_dir,
                                     args.conf_mode, new_fixed, results_format=write_format,
                                     checkpoint=str(args.ckpt) if args.ckpt else None,
                                     interpolate=args.interpolate, frames=args.frames)
    settings["scored_frames"] = flows.scored_frames_note(sequences)
    document = flows.metrics_document(report, settings, inputs)
    written = flows.write_metrics(document, out, args.json)
    if out is not None:
        write_marker(out, TOOL)
    print(flows.summary_table(document))
    where = f"metrics written to {', '.join(map(str, written))}" if written else "nothing written (--out, --json)"
    skipped = len(inputs.sequences_without_gt)
    logger.info(f"{len(sequences)} sequences{f' ({skipped} without ground truth skipped)' if skipped else ''}; "
                f"{where}")


if __name__ == "__main__":
    main()

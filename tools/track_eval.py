"""Track and evaluate: a checkpoint (detector -> cache -> trackers), cached detections, or existing results.

    python tools/track_eval.py --ckpt epoch_10 -f exps/x.py [--split val] [--tracker all] [--conf 0.1]
    python tools/track_eval.py --dets DETDIR --gt GTDIR --out OUT [--tracker-config my_tracker.yaml]
    python tools/track_eval.py --results RESDIR --gt GTDIR --out OUT

Each tracker's options are written to OUT/<tracker>/tracker_config.yaml; --tracker-config reruns them.
With --ckpt the detector is stock YOLOX (fp32, per-class NMS) unless --fp16 / --nms-class-agnostic; boxes are
clipped to the image and those without area dropped. metrics.json's settings.detector records how it ran.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.tracking.options import add_source_arguments, add_tracker_arguments, tracker_configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = add_source_arguments(parser, many=False)
    mode.add_argument("--results", help="folder of tracker results <seq>.txt to evaluate as they are")
    parser.add_argument("--conf", type=float, default=0.1, help="detection score filter before tracking (0.1)")
    parser.add_argument("--name", help="tracker name in the report for --results (default: the folder's name)")
    parser.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/<ckpt>/)")
    parser.add_argument("--json", help="also write metrics.json here")
    add_tracker_arguments(parser)
    return parser.parse_args(argv)


#: the name this tool marks its output folder with.
TOOL = "track_eval"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not 0.0 <= args.conf <= 1.0 or not 0.0 < args.iou <= 1.0:
        raise UserError("--conf must be in [0, 1] and --iou in (0, 1]")
    configs = {} if args.results else tracker_configs(args)  # bad tracker options fail here, before any work
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
    out = flows.output_folder(args.out, sources, labels[0] if labels else "results", "the results and metrics.json",
                              TOOL, args.results)
    det_dir = sources.det_dirs[labels[0]] if labels else None
    sequences = load_sequences(sources.gt_root, det_dir, args.fps, args.gt_format, with_images=not args.results)
    if args.results:
        name = args.name or Path(args.results).resolve().name
        report = {name: flows.evaluate_result_dir(sequences, args.results, args.iou)}
        settings = {"results": str(args.results), "iou_threshold": args.iou}
    else:
        report = flows.track_and_evaluate(sequences, configs, args.conf, out, args.iou)
        settings = flows.settings_of(configs, args.conf, args.iou, all(s.images for s in sequences), det_dir,
                                     checkpoint=str(args.ckpt) if args.ckpt else None)
    document = flows.metrics_document(report, settings)
    written = flows.write_metrics(document, out, args.json)
    write_marker(out, TOOL)
    print(flows.summary_table(document))
    logger.info(f"{len(sequences)} sequences; metrics written to {', '.join(map(str, written))}")


if __name__ == "__main__":
    main()

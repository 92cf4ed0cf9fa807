"""Track and evaluate: a checkpoint (detector -> cache -> trackers), cached detections, or existing results.

    python tools/track_eval.py --ckpt epoch_10 -f exps/x.py [--split val] [--tracker all] [--conf 0.1]
    python tools/track_eval.py --dets DETDIR --gt GTDIR --out OUT
    python tools/track_eval.py --results RESDIR --gt GTDIR --out OUT
"""

from __future__ import annotations

import argparse
from pathlib import Path

from loguru import logger

from yolox_finetune.errors import UserError, cli_entry
from yolox_finetune.track_eval import (
    add_source_arguments,
    add_tracker_arguments,
    check_out_dir,
    checkpoint_detections,
    evaluate_result_dir,
    metrics_document,
    settings_of,
    summary_table,
    track_and_evaluate,
    tracker_names,
    tracker_overrides,
    write_metrics,
)
from yolox_finetune.tracking import load_sequences


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ckpt", help="checkpoint path or name (epoch_10, best, latest) in the exp's run dir")
    mode.add_argument("--dets", help="folder of MOT det files <seq>.txt")
    mode.add_argument("--results", help="folder of tracker results <seq>.txt to evaluate as they are")
    add_source_arguments(parser)
    parser.add_argument("--tracker", default="all", help="bytetrack, botsort or all (default)")
    parser.add_argument("--conf", type=float, default=0.1, help="detection score filter before tracking (0.1)")
    parser.add_argument("--name", help="tracker name in the report for --results (default: the folder's name)")
    parser.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/<ckpt>/)")
    parser.add_argument("--json", help="also write metrics.json here")
    add_tracker_arguments(parser)
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not 0.0 <= args.conf <= 1.0 or not 0.0 < args.iou <= 1.0:
        raise UserError("--conf must be in [0, 1] and --iou in (0, 1]")
    det_dir, gt_root = args.dets, args.gt
    out = Path(args.out) if args.out else None
    if args.ckpt:
        exp, ckpt_path, gt_root, det_dir = checkpoint_detections(args.exp_file, args.ckpt, args.data, args.split,
                                                                 args.device, args.batch_size)
        out = out or exp.run_dir / "tracking" / ckpt_path.stem
    elif not gt_root:
        raise UserError("--dets/--results need --gt GTDIR (the folder holding <seq>/gt/gt.txt)")
    if out is None:
        raise UserError("pass --out DIR for the results and metrics.json")
    check_out_dir(out, det_dir, gt_root, args.results)
    sequences = load_sequences(gt_root, None if args.results else det_dir, args.fps, args.gt_format,
                               with_images=not args.results)
    overrides = tracker_overrides(args)
    if args.results:
        name = args.name or Path(args.results).resolve().name
        report = {name: evaluate_result_dir(sequences, args.results, args.iou)}
        settings = {"results": str(args.results), "iou_threshold": args.iou}
    else:
        names = tracker_names(args.tracker)
        report = track_and_evaluate(sequences, names, overrides, args.conf, out, args.iou)
        settings = settings_of(names, overrides, args.conf, args.iou, all(s.images for s in sequences),
                               detections=str(det_dir), checkpoint=str(args.ckpt) if args.ckpt else None)
    document = metrics_document(report, settings)
    written = write_metrics(document, out, args.json)
    print(summary_table(document))
    logger.info(f"{len(sequences)} sequences; metrics written to {', '.join(map(str, written))}")


if __name__ == "__main__":
    main()

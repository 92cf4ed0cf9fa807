"""Confidence-threshold sweep: which checkpoint, which threshold, which tracker (and tracker settings).

    python tools/conf_sweep.py -f exps/x.py --ckpt epoch_10 epoch_30 [--tracker bytetrack botsort]
                               [--conf 0.1:0.9:0.1] [--grid match_thresh=0.7,0.8,0.85]
    python tools/conf_sweep.py --dets DETDIR [DETDIR2 ...] --gt GTDIR --out OUT

The detector runs once per checkpoint (cached); thresholds only filter the cached detections.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from loguru import logger

from yolox_finetune.errors import UserError, cli_entry
from yolox_finetune.sweep import build_runs, parse_conf_values, parse_grid, run_sweep, sweep_rows, write_sweep
from yolox_finetune.track_eval import (
    add_source_arguments,
    add_tracker_arguments,
    check_out_dir,
    checkpoint_detections,
    tracker_names,
    tracker_overrides,
)
from yolox_finetune.tracking import load_sequences


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--ckpt", nargs="+", help="checkpoint paths or names (epoch_10, best, latest)")
    mode.add_argument("--dets", nargs="+", help="folders of MOT det files <seq>.txt (one per detector)")
    add_source_arguments(parser)
    parser.add_argument("--tracker", nargs="+", default=["all"], help="bytetrack, botsort or all (default)")
    parser.add_argument("--conf", default="0.1:0.9:0.1", help="START:END:STEP (inclusive) or a comma list")
    parser.add_argument("--grid", nargs="*", default=[], metavar="NAME=V1,V2",
                        help="tracker option values as a further axis, e.g. match_thresh=0.7,0.8,0.85")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/sweep/)")
    add_tracker_arguments(parser)
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    confs = parse_conf_values(args.conf)
    names = tracker_names(args.tracker)
    grid = parse_grid(args.grid, names)
    overrides = tracker_overrides(args)
    det_dirs: dict[str, Path] = {}
    out = Path(args.out) if args.out else None
    if args.ckpt:
        for spec in args.ckpt:
            exp, ckpt_path, gt_root, det_dir = checkpoint_detections(args.exp_file, spec, args.data, args.split,
                                                                     args.device, args.batch_size)
            det_dirs[ckpt_path.stem] = det_dir
        out = out or exp.run_dir / "tracking" / "sweep"
    else:
        if not args.gt:
            raise UserError("--dets needs --gt GTDIR (the folder holding <seq>/gt/gt.txt)")
        gt_root = Path(args.gt)
        for folder in args.dets:
            label = Path(folder).resolve().name
            if label in det_dirs:
                raise UserError(f"two --dets folders are named {label!r}; rename one so their rows differ")
            det_dirs[label] = Path(folder)
        if out is None:
            raise UserError("pass --out DIR for sweep.csv, sweep.md and the plots")
    check_out_dir(out, gt_root, *det_dirs.values())
    sources = {label: load_sequences(gt_root, d, args.fps, args.gt_format) for label, d in det_dirs.items()}
    have_images = all(s.images for seqs in sources.values() for s in seqs)
    runs, notes = [], []
    for label in sources:
        more, more_notes = build_runs(label, names, confs, grid, overrides, have_images)
        runs += more
        notes += [n for n in more_notes if n not in notes]
    for note in notes:
        logger.warning(note)
    logger.info(f"{len(runs)} runs x {len(next(iter(sources.values())))} sequences")
    counts = run_sweep(sources, runs, args.jobs, args.iou)
    paths = write_sweep(sweep_rows(runs, counts), out, notes)
    print((out / "sweep.md").read_text())
    logger.info(f"wrote {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()

"""Confidence-threshold sweep: which checkpoint, which threshold, which tracker (and tracker settings).

    python tools/conf_sweep.py -f exps/x.py --ckpt epoch_10 epoch_30 [--tracker bytetrack botsort]
                               [--conf 0.1:0.9:0.1] [--grid match_thresh=0.7,0.8,0.85]
    python tools/conf_sweep.py --dets DETDIR [DETDIR2 ...] --gt GTDIR --out OUT [--tracker-config my_tracker.yaml]

The detector runs once per checkpoint (cached; stock YOLOX in fp32 with per-class NMS unless --fp16 /
--nms-class-agnostic, recorded in sweep.md); thresholds only filter the cached detections. The trackers' options
(before the --grid axes) are written to OUT/tracker_config.yaml; --tracker-config with the same --grid reruns them.
"""

from __future__ import annotations

import argparse

from yolox_finetune.core.errors import cli_entry
from yolox_finetune.tracking.options import add_source_arguments, add_tracker_arguments, tracker_configs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, many=True)
    parser.add_argument("--conf", default="0.1:0.9:0.1", help="START:END:STEP (inclusive) or a comma list")
    parser.add_argument("--grid", nargs="*", default=[], metavar="NAME=V1,V2",
                        help="tracker option values as a further axis, e.g. match_thresh=0.7,0.8,0.85")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    parser.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/sweep/)")
    add_tracker_arguments(parser)
    return parser.parse_args(argv)


#: the name this tool marks its output folder with.
TOOL = "conf_sweep"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configs = tracker_configs(args)  # bad tracker options fail here, before any work
    # loaded only now, so that --help and bad options answer without importing torch, pandas and the detector
    from loguru import logger

    from yolox_finetune.core.output_dir import write_marker
    from yolox_finetune.mot.runner import effective_config, load_sequences
    from yolox_finetune.tracking import flows, sweep
    from yolox_finetune.tracking.detector import describe_detector, detector_settings

    confs = sweep.parse_conf_values(args.conf)
    grid = sweep.parse_grid(args.grid, list(configs))
    sources = flows.detection_sources(args)
    out = flows.output_folder(args.out, sources, "sweep", "sweep.csv, sweep.md and the plots", TOOL)
    loaded = {label: load_sequences(sources.gt_root, d, args.fps, args.gt_format)
              for label, d in sources.det_dirs.items()}
    have_images = all(s.images for seqs in loaded.values() for s in seqs)
    runs, notes = [], []
    for label in loaded:
        more, more_notes = sweep.build_runs(label, configs, confs, grid, have_images)
        runs += more
        notes += [n for n in more_notes if n not in notes]
    for note in notes:
        logger.warning(note)
    for label, det_dir in sources.det_dirs.items():  # how each checkpoint's detections were made, for sweep.md
        detector = detector_settings(det_dir)
        if detector:
            notes.append(f"{label}: {describe_detector(detector)}")
    logger.info(f"{len(runs)} runs x {len(next(iter(loaded.values())))} sequences")
    counts = sweep.run_sweep(loaded, runs, args.jobs, args.iou)
    ran_with = {name: effective_config(name, config, have_images)[0] for name, config in configs.items()}
    paths = sweep.write_sweep(sweep.sweep_rows(runs, counts), out, notes, ran_with)
    write_marker(out, TOOL)
    print((out / "sweep.md").read_text())
    logger.info(f"wrote {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()

"""Tune a tracker's options with Optuna on cached detections (TPE for one objective, NSGA-II for several).

    python tools/tune_trackers.py -f exps/x.py --ckpt best [--split val] [--eval-split test] --tracker bytetrack \
        [--objective HOTA] [--trials 50]
    python tools/tune_trackers.py --dets DETDIR --gt GTDIR --out OUT --objective MOTA -IDSW \
        [--eval-dets DIR --eval-gt DIR] [--param match_thresh=0.6:0.95 fuse_score=true,false] [--workers 2]

Each trial runs the tracker over every tuning sequence and scores it as track_eval does. Objectives are metric
names (HOTA, MOTA, IDF1, IDSW, ...): a leading - minimises, + maximises, a bare name takes the metric's own
direction. The study lives in OUT/study.db (or --storage URL): run again to add trials. OUT gets best_config.yaml
(track_eval --tracker-config reruns it), trials.csv, summary.md, tune.json and plots; the best and the starting
config are scored again on a held-out split (--eval-split with --ckpt, --eval-dets/--eval-gt with --dets).
Tuning on the test split is refused unless --tune-on-test: its numbers would no longer be a fair test.
"""

from __future__ import annotations

import argparse
import re
import sys

from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.tracking.options import (
    add_source_arguments,
    add_tracker_arguments,
    given_tracker_options,
    tracker_configs,
)

#: the name this tool marks its output folder with.
TOOL = "tune_trackers"
#: the tracker tuned when neither --tracker nor --tracker-config names one.
DEFAULT_TRACKER = "bytetrack"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, many=False)
    tune = parser.add_argument_group("tuning")
    tune.add_argument("--objective", action="append", metavar="METRIC",
                      help="metric(s) to optimise, e.g. HOTA or MOTA -IDSW (several: NSGA-II, a Pareto front; "
                           "default HOTA)")
    tune.add_argument("--trials", type=int, default=50, help="trials this run adds to the study (50; 0 = only "
                                                             "rewrite the outputs)")
    tune.add_argument("--search", nargs="+", metavar="OPTION",
                      help="tracker options to search, each with its default range (default: the thresholds, "
                           "track_buffer and fuse_score; ranges in yolox_finetune/tracking/tune.py)")
    tune.add_argument("--param", nargs="+", default=[], metavar="NAME=RANGE",
                      help="set a range: NAME=LOW:HIGH[:STEP], choices NAME=A,B (true,false for switches), or fix "
                           "an option: NAME=VALUE; an option given a range is searched")
    tune.add_argument("--conf", type=float, default=0.1,
                      help="detection score pre-filter before tracking (track_eval's --conf-mode filter --conf; "
                           "the trackers' own thresholds are what is tuned)")
    tune.add_argument("--eval-split", choices=("auto", "val", "test", "none"), default="auto",
                      help="with --ckpt: split the tuned config is scored on afterwards (auto: test when it exists "
                           "and differs from --split)")
    tune.add_argument("--eval-dets", help="with --dets: det files of the held-out sequences")
    tune.add_argument("--eval-gt", help="with --dets: ground-truth root of the held-out sequences")
    tune.add_argument("--tune-on-test", action="store_true",
                      help="allow tuning on a split named test (its numbers then stop being a held-out result)")
    tune.add_argument("--workers", type=int, default=1,
                      help="processes running trials at once against the same storage (1)")
    tune.add_argument("--storage", metavar="URL",
                      help="Optuna RDB URL, e.g. postgresql://user@host/db for several machines (default: "
                           "sqlite:///OUT/study.db)")
    tune.add_argument("--study-name", help="study in the storage (default: <tracker>-<objectives>)")
    tune.add_argument("--seed", type=int, default=0, help="sampler seed (0; worker k uses seed + k)")
    tune.add_argument("--population", type=int, default=None,
                      help="NSGA-II generation size (default: trials / 5 between 4 and 50, fixed at the first run)")
    tune.add_argument("--out", help="output folder (default with --ckpt: <run_dir>/tracking/tune_<tracker>/)")
    add_tracker_arguments(parser)
    return parser.parse_args(objective_argv(sys.argv[1:] if argv is None else argv))


_OBJECTIVE_TOKEN = re.compile(r"^[+-]?[A-Za-z][A-Za-z0-9_]*$")


def objective_argv(argv: list[str]) -> list[str]:
    """Rewrite ``--objective MOTA -IDSW`` into ``--objective=MOTA --objective=-IDSW``: argparse takes ``-IDSW`` for
    a flag otherwise. Tokens after ``--objective`` are taken while they look like (signed) metric names; ``-f``
    and ``-h`` stay flags."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        token = str(argv[index])
        index += 1
        if token != "--objective":
            out.append(token)
            continue
        taken = 0
        while index < len(argv) and _OBJECTIVE_TOKEN.match(str(argv[index])) and argv[index] not in ("-f", "-h"):
            out.append(f"--objective={argv[index]}")
            index += 1
            taken += 1
        if not taken:
            out.append(token)  # argparse says that a value is missing
    return out


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not 0.0 <= args.conf <= 1.0 or not 0.0 < args.iou <= 1.0:
        raise UserError("--conf must be in [0, 1] and --iou in (0, 1]")
    if args.trials < 0:
        raise UserError(f"--trials {args.trials}: give how many trials to add (0 only rewrites the outputs of an "
                        "existing study)")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: give 1 or more processes")
    if args.population is not None and args.population < 2:
        raise UserError(f"--population {args.population}: an NSGA-II generation needs at least 2 trials")
    if not args.tracker and not args.tracker_config:
        args.tracker = [DEFAULT_TRACKER]
    configs = tracker_configs(args)  # bad tracker options fail here, before any work
    if len(configs) != 1:
        raise UserError(f"tune one tracker at a time (got {', '.join(configs)}); pass --tracker NAME")
    (tracker, requested), = configs.items()
    # loaded only now, so that --help and bad options answer without importing pandas, matplotlib and the detector
    import dataclasses
    from pathlib import Path

    from loguru import logger

    from yolox_finetune.core.output_dir import read_marker, write_marker
    from yolox_finetune.mot.runner import effective_config, input_report, load_sequences
    from yolox_finetune.tracking import flows, tune

    objectives = tune.parse_objectives(args.objective)
    space, fixed, notes = tune.search_space(tracker, args.search, args.param, list(given_tracker_options(args)))
    base = dataclasses.replace(requested, **fixed)
    on_test = args.split == "test" if args.ckpt else "test" in Path(args.gt or "").resolve().parts[-2:]
    if on_test and not args.tune_on_test:
        raise UserError("refusing to tune on the test split: its numbers would stop being a held-out result; tune "
                        "on val (--split val, or --gt of the val sequences) and report test with --eval-split, or "
                        "pass --tune-on-test")
    eval_args = _held_out(args)
    if eval_args is not None:
        flows.check_sources(eval_args)  # a bad held-out split is refused before detecting on the tuning one
    sources = flows.detection_sources(args)
    (label, det_dir), = sources.det_dirs.items()
    held = None
    if eval_args is not None:
        held = flows.detection_sources(eval_args)
        if held.gt_root.resolve() == sources.gt_root.resolve():
            raise UserError(f"the held-out sequences {held.gt_root} are the tuning sequences; pass another split")
    what = "the study, best_config.yaml and the plots"
    folder = flows.planned_output_folder(args.out, sources, f"tune_{tracker}", what)
    if args.trials == 0 and not args.storage and not (folder / tune.STUDY_DB).is_file():
        raise UserError(f"--trials 0 rewrites the outputs of an existing study, but {folder / tune.STUDY_DB} does "
                        "not exist yet; pass --trials N (e.g. 50)")
    # every input is read and checked before the output folder is made: bad input leaves nothing behind
    sequences = load_sequences(sources.gt_root, det_dir, args.fps, args.gt_format)
    own_dets = sources.run_dir is None  # files of a --dets folder are listed; the det cache is ours
    notes += input_report(sources.gt_root, sequences, det_dir if own_dets else None,
                          args.fps).messages(sources.gt_root, det_dir)
    eval_sequences = None
    if held is not None:
        (held_label, held_dets), = held.det_dirs.items()
        eval_sequences = load_sequences(held.gt_root, held_dets, args.fps, args.gt_format)
        notes += input_report(held.gt_root, eval_sequences, held_dets if own_dets else None,
                              args.fps).messages(held.gt_root, held_dets)
    inputs = [] if held is None else [held.gt_root, *held.det_dirs.values()]
    out = flows.output_folder(args.out, sources, f"tune_{tracker}", what, TOOL, *inputs)
    previous = set((read_marker(out) or {}).get("entries") or ())
    owned = previous | {p.name for p in out.iterdir()} | {tune.STUDY_DB, *tune.SQLITE_SIDE_FILES}
    write_marker(out, TOOL, sorted(owned - {".yolox_finetune.json"}))  # an interrupted first run stays resumable

    have_images = all(s.images for s in sequences)
    base, note = effective_config(tracker, base, have_images)
    if note:
        notes.append(note)
        for name in [n for n in space if getattr(base, n) != getattr(requested, n)]:
            del space[name]
            notes.append(f"{name} is not searched: the sequences have no frame images")
    storage = args.storage or tune.sqlite_url(out / tune.STUDY_DB)
    study_name = args.study_name or f"{tracker}-{'_'.join(o.token for o in objectives)}"
    settings = {"tracker": tracker, "objectives": [o.token for o in objectives], "conf": args.conf,
                "iou_threshold": args.iou, "detections": str(det_dir.resolve()),
                "gt": str(sources.gt_root.resolve()), "fps": args.fps}
    setup = tune.TuneSetup(tracker, base, space, objectives, args.conf, args.iou, storage, study_name, settings,
                           args.seed, args.population)
    for text in notes:
        logger.warning(text)
    logger.info(f"study {study_name!r} in {tune.shown_url(storage)}: {args.trials} trials on {len(sequences)} "
                f"sequences, searching {', '.join(f'{n}={p.describe()}' for n, p in space.items())}")
    study, added = tune.run_study(setup, sequences, args.trials, args.workers)
    info = {"added": added, "tune": {"label": label, "gt": str(sources.gt_root), "detections": str(det_dir),
                     "sequences": len(sequences)},
            "notes": notes, "reproduce": _reproduce(args, det_dir, sources.gt_root, out / tune.BEST_CONFIG)}
    if held is not None:
        info["eval"] = {"label": held_label, "gt": str(held.gt_root), "detections": str(held_dets),
                        "sequences": len(eval_sequences)}
    document, written = tune.write_outputs(study, setup, out, sequences, eval_sequences, info)
    present = {p.name for p in out.iterdir()}
    write_marker(out, TOOL, sorted((present | owned) - {".yolox_finetune.json"}))
    print(tune.summary_markdown(document))
    logger.info(f"wrote {', '.join(str(p) for p in written)}")


def _held_out(args: argparse.Namespace) -> argparse.Namespace | None:
    """The options that select the held-out sequences, as a namespace ``flows.detection_sources`` reads; None
    when there are none."""
    from pathlib import Path

    if args.dets:
        if args.eval_split not in ("auto", "none"):
            raise UserError("--eval-split picks a split of --ckpt's data; with --dets pass --eval-dets DIR and "
                            "--eval-gt DIR")
        if bool(args.eval_dets) != bool(args.eval_gt):
            raise UserError("--eval-dets and --eval-gt go together: the held-out det files and their ground truth")
        if not args.eval_dets:
            return None
        return argparse.Namespace(**{**vars(args), "dets": args.eval_dets, "gt": args.eval_gt})
    if args.eval_dets or args.eval_gt:
        raise UserError("--eval-dets/--eval-gt go with --dets; with --ckpt pass --eval-split test")
    split = args.eval_split
    if split == "none":
        return None
    if split == "auto":
        split = "test" if args.split != "test" else "val"
        if args.data and not (Path(args.data) / split).is_dir():
            return None
    if split == args.split:
        raise UserError(f"--eval-split {split} is the tuning split; pass the other one (or none)")
    namespace = argparse.Namespace(**{**vars(args), "split": split})
    if args.eval_split == "auto" and not args.data:
        from yolox_finetune.training.exp import load_exp

        if not args.exp_file or not (Path(load_exp(args.exp_file).data_dir) / "mot" / split).is_dir():
            return None
    return namespace


def _reproduce(args: argparse.Namespace, det_dir, gt_root, config_path) -> str:
    """The track_eval command that reruns the best config on the tuning split."""
    import shlex

    if args.ckpt:
        command = ["python", "tools/track_eval.py", "-f", args.exp_file, "--ckpt", args.ckpt, "--split", args.split]
        command += ["--data", args.data] if args.data else []
        command += ["--fp16"] if args.fp16 else []
        command += ["--nms-class-agnostic"] if args.nms_class_agnostic else []
    else:
        command = ["python", "tools/track_eval.py", "--dets", str(det_dir), "--gt", str(gt_root)]
    command += ["--tracker-config", str(config_path), "--conf-mode", "filter", "--conf", f"{args.conf:g}",
                "--iou", f"{args.iou:g}", "--out", "CHECK_DIR"]
    return shlex.join(command)


if __name__ == "__main__":
    main()

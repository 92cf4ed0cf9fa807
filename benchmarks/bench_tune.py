"""Tracker tuning: 50 Optuna trials (TPE, HOTA) on a split the size of the demo's val split, from cached
detections, with the study in an SQLite file as tools/tune_trackers.py keeps it. Target: under 60 s on 2 cores.

The demo converts 6 synthetic scenes x 6 cameras x 16 keyframes; its val split holds one or two scenes, so the
default here is 12 sequences of 16 frames (seeded synthetic scenes, mot/synthetic.py). Also prints the time of
the outputs (re-scoring the best and the starting config, CSV, plots, summary).

    python benchmarks/bench_tune.py [--trials 50] [--sequences 12] [--frames 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from trackers.config import build_config
from yolox_finetune.mot.runner import load_sequences
from yolox_finetune.mot.synthetic import make_scene, write_dataset
from yolox_finetune.tracking import tune

TARGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--sequences", type=int, default=12)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tracker", default="bytetrack", choices=("bytetrack", "botsort"))
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    scenes = [make_scene(rng, name=f"scene-{i // 6:04d}_CAM_{i % 6}", num_frames=args.frames, num_objects=9,
                         image_size=(225, 400)) for i in range(args.sequences)]
    boxes = sum(len(s.detections) for s in scenes)
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "gt", Path(tmp) / "dets", scenes)
        sequences = load_sequences(Path(tmp) / "gt", Path(tmp) / "dets")
        space, _, _ = tune.search_space(args.tracker, None, [])
        base = build_config(args.tracker)
        if args.tracker == "botsort":
            base = base.without_images()
        setup = tune.TuneSetup(args.tracker, base, space, tune.parse_objectives(["HOTA"]), 0.1, 0.5,
                               tune.sqlite_url(Path(tmp) / tune.STUDY_DB), "bench", {"bench": True})
        start = time.perf_counter()
        study, added = tune.run_study(setup, sequences, args.trials, args.workers)
        elapsed = time.perf_counter() - start
        start = time.perf_counter()
        document, _ = tune.write_outputs(study, setup, Path(tmp), sequences, None,
                                         {"tune": {"gt": "synthetic", "sequences": len(sequences)}})
        outputs = time.perf_counter() - start
    per_trial = elapsed / max(1, added)
    print(f"tuning: {added} trials of {args.tracker} x {args.sequences} sequences x {args.frames} frames "
          f"({boxes} cached boxes), {args.workers} process(es): {elapsed:.1f} s ({per_trial * 1e3:.0f} ms per trial); "
          f"target {TARGET_S:.0f} s -> ratio {elapsed / TARGET_S:.2f} "
          f"({'OK' if elapsed <= TARGET_S else 'SLOWER than target'})")
    baseline, best = document["baseline"]["metrics"]["tune"]["HOTA"], document["best"]["metrics"]["tune"]["HOTA"]
    print(f"outputs (re-scoring, CSV, plots, summary): {outputs:.1f} s; HOTA {baseline:.1f} with the defaults -> "
          f"{best:.1f} tuned (trial {document['best']['trial']})")


if __name__ == "__main__":
    main()

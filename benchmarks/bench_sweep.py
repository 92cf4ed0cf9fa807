"""Full confidence sweep from cached detections: 9 thresholds x 2 trackers over a nuScenes-val-sized set
(150 sequences x 40 frames, ~35,000 boxes, seeded). Target: under 60 s on 2 cores.

Also times the evaluator alone against motmetrics' own accumulator + metrics on the same sequences (the numbers
are equal, tests/mot/test_evaluate.py proves it; this shows why the evaluator replays motmetrics' logic on arrays).

    python benchmarks/bench_sweep.py [--sequences 150] [--jobs 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import motmetrics as mm
import numpy as np

from trackers.config import build_config
from yolox_finetune.mot.evaluate import evaluate_sequence
from yolox_finetune.mot.runner import load_sequences
from yolox_finetune.mot.synthetic import corrupt_tracks, make_scene, write_dataset
from yolox_finetune.tracking.sweep import build_runs, make_plan, run_sweep, sweep_rows

TARGET_S = 60.0
MM_METRICS = ["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses", "mostly_tracked",
              "mostly_lost", "num_fragmentations", "recall", "precision"]


def bench_evaluator(scenes, count: int = 30) -> None:
    rng = np.random.default_rng(1)
    pairs = [(s.gt, corrupt_tracks(rng, s.gt)) for s in scenes[:count]]
    start = time.perf_counter()
    for gt, res in pairs:
        evaluate_sequence(gt, res)
    ours = (time.perf_counter() - start) / count
    host = mm.metrics.create()
    start = time.perf_counter()
    for gt, res in pairs:
        for cls in np.unique(gt.class_id):  # class-aware, as ours
            acc = mm.MOTAccumulator()
            g, r = gt.select(gt.class_id == cls), res.select(res.class_id == cls)
            gs, rs = g.frame_slices(), r.frame_slices()
            for f in sorted(set(gs) | set(rs)):
                gi, ri = gs.get(f, np.zeros(0, int)), rs.get(f, np.zeros(0, int))
                acc.update(g.track_id[gi], r.track_id[ri], mm.distances.iou_matrix(g.box[gi], r.box[ri], 0.5), f)
            host.compute(acc, metrics=MM_METRICS)
    reference = (time.perf_counter() - start) / count
    print(f"evaluator per sequence: ours {ours * 1e3:.1f} ms (CLEAR + identity + HOTA) vs motmetrics "
          f"{reference * 1e3:.1f} ms (CLEAR + identity only); speed-up x{reference / ours:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=150)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    scenes = [make_scene(rng, name=f"scene-{i:04d}_CAM_FRONT", num_frames=args.frames, num_objects=9)
              for i in range(args.sequences)]
    boxes = sum(len(s.detections) for s in scenes)
    bench_evaluator(scenes)
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "gt", Path(tmp) / "dets", scenes)
        start = time.perf_counter()
        sequences = load_sequences(Path(tmp) / "gt", Path(tmp) / "dets")
        configs = {name: build_config(name) for name in ("bytetrack", "botsort")}
        runs, _ = build_runs("cached", configs, make_plan("0.1:0.9:0.1", None, [], ["tracker"], configs), False)
        rows = sweep_rows(runs, run_sweep({"cached": sequences}, runs, jobs=args.jobs))
        elapsed = time.perf_counter() - start
    best = max(rows, key=lambda r: r["MOTA"])
    print(f"sweep: {len(runs)} runs x {args.sequences} sequences x {args.frames} frames ({boxes} cached boxes), "
          f"{args.jobs} processes: {elapsed:.1f} s; target {TARGET_S:.0f} s -> ratio {elapsed / TARGET_S:.2f} "
          f"({'OK' if elapsed <= TARGET_S else 'SLOWER than target'})")
    print(f"best MOTA {best['MOTA']:.1f} with {best['tracker']} at conf {best['conf']}")


if __name__ == "__main__":
    main()

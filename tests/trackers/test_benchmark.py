"""The tracker-speed benchmark stays runnable: a tiny run prints every tracker's rate and names its reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_trackers.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_trackers", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detection_set_is_seeded_with_5_to_10_boxes_per_frame():
    bench = load_bench()
    first, second = bench.make_detections(50, seed=1), bench.make_detections(50, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert all(5 <= len(d) <= 10 and d.shape[1] == 6 for d in first)
    assert not np.array_equal(bench.make_detections(5, seed=2)[0], first[0])


def test_benchmark_prints_rates_and_the_reference_used(capsys):
    assert load_bench().main(["--frames", "30", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "reference: " in out and "frames/s" in out
    for label in ("bytetrack", "botsort"):
        assert label in out
    assert out.count("x\n") >= 3  # one ratio per tracker row

"""Confidence sweeps: threshold parsing, grid axes, parallel equals serial, CSV/markdown/plots, and the tracker
config file a sweep writes, which reruns it."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from trackers.config import build_config, load_config
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.runner import load_sequences
from yolox_finetune.mot.synthetic import make_scene, write_dataset
from yolox_finetune.tracking.flows import track_and_evaluate
from yolox_finetune.tracking.sweep import SweepPlan, build_runs, parse_conf_values, parse_grid, run_sweep, sweep_rows

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import conf_sweep as tool  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(21)
    scenes = [make_scene(rng, name=f"s{i}", num_frames=20, num_objects=6, false_alarms=2.0) for i in range(4)]
    write_dataset(root / "gt", root / "dets", scenes)
    return root


def test_conf_values_and_grid_parsing():
    assert parse_conf_values("0.1:0.9:0.1") == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert parse_conf_values("0.3") == [0.3] and parse_conf_values("0.2,0.45") == [0.2, 0.45]
    for bad in ("0.9:0.1:0.1", "a:b:c", "0.1:0.5:0", "1.5"):
        with pytest.raises(UserError):
            parse_conf_values(bad)
    grid = parse_grid(["match-thresh=0.7,0.8", "track_buffer=10", "cmc=none,orb"], ["bytetrack", "botsort"])
    assert grid == {"match_thresh": [0.7, 0.8], "track_buffer": [10], "cmc": ["none", "orb"]}
    with pytest.raises(UserError, match="not an option"):
        parse_grid(["cmc=orb"], ["bytetrack"])
    with pytest.raises(UserError, match="valid int"):
        parse_grid(["track_buffer=ten"], ["bytetrack"])
    # the values take the option's type from trackers/config.py: none for an optional option, words for switches
    grid = parse_grid(["new_track_thresh=none,0.7", "class-aware=on,off"], ["bytetrack"])
    assert grid == {"new_track_thresh": [None, 0.7], "class_aware": [True, False]}
    with pytest.raises(UserError, match="cmc: 'optflow' is unknown"):
        parse_grid(["cmc=optflow"], ["botsort"])
    with pytest.raises(UserError, match="not an option"):  # a set of class ids is not a sweep axis
        parse_grid(["aspect_ratio_class_ids=5"], ["bytetrack"])


def defaults(*names: str) -> dict:
    return {name: build_config(name) for name in names}


def conf_plan(confs: list[float], grid: dict | None = None, mode: str = "filter") -> SweepPlan:
    return SweepPlan("conf", list(confs), list(confs), [mode], grid or {})


def test_grid_axes_apply_only_to_trackers_that_have_them():
    plan = conf_plan([0.2, 0.4], {"cmc": ["none", "orb"]})
    runs, notes = build_runs("ck", defaults("bytetrack", "botsort"), plan, True)
    assert len([r for r in runs if r.tracker == "bytetrack"]) == 2 == plan.count(defaults("bytetrack"))
    assert sorted({r.config.cmc for r in runs if r.tracker == "botsort"}) == ["none", "orb"]
    assert len(runs) == plan.count(defaults("bytetrack", "botsort")) == 6
    _, notes = build_runs("ck", defaults("botsort"), conf_plan([0.2]), have_images=False)
    assert notes and "cmc none" in notes[0]


def test_sweep_rows_equal_single_runs_and_parallel_equals_serial(dataset):
    sequences = load_sequences(dataset / "gt", dataset / "dets")
    runs, _ = build_runs("dets", defaults("bytetrack", "botsort"), conf_plan([0.1, 0.5], {"match_thresh": [0.7, 0.9]}),
                         False)
    serial = sweep_rows(runs, run_sweep({"dets": sequences}, runs, jobs=1))
    parallel = sweep_rows(runs, run_sweep({"dets": sequences}, runs, jobs=2))
    assert serial == parallel
    # a sweep row is exactly what a standalone tracking run with that setting gives
    row = next(r for r in serial if r["tracker"] == "botsort" and r["conf"] == 0.5 and r["match_thresh"] == 0.9)
    single = track_and_evaluate(sequences, {"botsort": build_config("botsort", {"match_thresh": 0.9})}, 0.5,
                                None, conf_mode="filter")["botsort"]
    overall = single.overall().metrics()
    assert {k: row[k] for k in ("MOTA", "IDF1", "HOTA", "FP", "FN")} == {k: overall[k] for k in
                                                                           ("MOTA", "IDF1", "HOTA", "FP", "FN")}
    low = next(r for r in serial if r["tracker"] == "bytetrack" and r["conf"] == 0.1 and r["match_thresh"] == 0.7)
    high = next(r for r in serial if r["tracker"] == "bytetrack" and r["conf"] == 0.5 and r["match_thresh"] == 0.7)
    assert low["FN"] != high["FN"]


def test_tool_writes_csv_markdown_and_plots(dataset, tmp_path):
    out = tmp_path / "sweep"
    tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(out),
               "--conf", "0.1:0.3:0.1", "--tracker", "bytetrack", "--grid", "track_buffer=5,30", "--jobs", "1"])
    with open(out / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    for column in ("checkpoint", "tracker", "conf", "track_buffer", "MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN",
                   "MOTP", "Recall", "Precision"):
        assert column in rows[0]
    assert sorted({r["conf"] for r in rows}) == ["0.1", "0.2", "0.3"]
    best_mota = max(rows, key=lambda r: float(r["MOTA"]))
    markdown = (out / "sweep.md").read_text()
    assert f"{float(best_mota['MOTA']):.4g} @ {float(best_mota['conf']):g}" in markdown
    for metric in ("MOTA", "IDF1", "IDSW", "FP", "FN"):
        assert (out / f"sweep_{metric}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_written_tracker_config_reruns_the_sweep(dataset, tmp_path):
    common = ["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--conf", "0.2,0.4", "--jobs", "1",
              "--grid", "track_buffer=5,30"]
    tool.main([*common, "--out", str(tmp_path / "first"), "--tracker", "bytetrack", "botsort", "--match-thresh",
               "0.7", "--cmc", "orb", "--no-fuse-score"])
    written = tmp_path / "first" / "tracker_config.yaml"
    configs = load_config(written)
    assert list(configs) == ["bytetrack", "botsort"]
    assert configs["bytetrack"].match_thresh == configs["botsort"].match_thresh == 0.7
    assert not configs["bytetrack"].fuse_score and configs["botsort"].cmc == "none"  # as run: no frames on disk
    tool.main([*common, "--out", str(tmp_path / "again"), "--tracker-config", str(written)])
    assert (tmp_path / "again" / "sweep.csv").read_text() == (tmp_path / "first" / "sweep.csv").read_text()
    assert (tmp_path / "again" / "tracker_config.yaml").read_text() == written.read_text()

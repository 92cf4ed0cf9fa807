"""What --conf means (--conf-mode tracker|filter), sweeps of any tracker option, contradicting options, the run
count checked before any work, and --results evaluated without --out."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from trackers.config import build_config
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import class_sidecar, read_results
from yolox_finetune.mot.synthetic import make_scene, write_dataset
from yolox_finetune.tracking.options import apply_conf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import conf_sweep  # noqa: E402
import track_eval  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("confmode")
    rng = np.random.default_rng(33)
    scenes = [make_scene(rng, name=f"s{i}", num_frames=20, num_objects=6, false_alarms=2.0) for i in range(3)]
    write_dataset(root / "gt", root / "dets", scenes)
    return root


def source(dataset) -> list[str]:
    return ["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--jobs", "1"]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_tracker_mode_moves_the_thresholds_and_filter_mode_only_filters():
    botsort = build_config("botsort")
    config, prefilter = apply_conf("botsort", botsort, 0.3, "tracker")
    assert (config.track_thresh, config.new_track_thresh, prefilter) == (0.3, 0.4, 0.1)  # BoT-SORT's gap 0.1
    config, prefilter = apply_conf("bytetrack", build_config("bytetrack"), 0.95, "tracker")
    assert (config.track_thresh, config.effective_new_track_thresh) == (0.95, 1.0)  # capped at 1
    config, prefilter = apply_conf("botsort", botsort, 0.3, "filter")
    assert config == botsort and prefilter == 0.3
    assert apply_conf("botsort", botsort, None, "tracker") == (botsort, 0.1)  # no value: the tracker's own
    # an explicit new-track threshold stays where it was put
    fixed = build_config("botsort", {"new_track_thresh": 0.65})
    assert apply_conf("botsort", fixed, 0.5, "tracker", new_track_fixed=True)[0].new_track_thresh == 0.65
    with pytest.raises(UserError, match=r"track_thresh=0.7 is above new_track_thresh=0.65 \(conf 0.7") as info:
        apply_conf("botsort", fixed, 0.7, "tracker", new_track_fixed=True)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="low_thresh=0.1 is above track_thresh=0.05"):
        apply_conf("bytetrack", build_config("bytetrack"), 0.05, "tracker")  # the pre-filter stays at low
    with pytest.raises(UserError, match="track_thresh=0.8 is above new_track_thresh=0.7"):
        apply_conf("botsort", build_config("botsort", {"track_thresh": 0.8}), None, "filter")


def test_tracker_mode_curve_moves_below_the_default_thresholds(dataset, tmp_path):
    """The point of tracker mode: below the trackers' high threshold (0.5) filter mode is flat, tracker mode
    is not; both modes go into one CSV and one plot (the README's conf-mode figure)."""
    out = tmp_path / "both"
    conf_sweep.main([*source(dataset), "--out", str(out), "--tracker", "bytetrack", "--conf", "0.15,0.25,0.35",
                     "--conf-mode", "filter,tracker"])
    rows = read_csv(out / "sweep.csv")
    assert list(rows[0])[:4] == ["checkpoint", "tracker", "conf_mode", "conf"]
    by_mode = {mode: [r for r in rows if r["conf_mode"] == mode] for mode in ("filter", "tracker")}
    assert [len(v) for v in by_mode.values()] == [3, 3]
    filter_counts = [(r["FP"], r["FN"], r["IDSW"]) for r in by_mode["filter"]]
    tracker_counts = [(r["FP"], r["FN"], r["IDSW"]) for r in by_mode["tracker"]]
    assert filter_counts[0] == filter_counts[1], "a pre-filter far below the high threshold changes little"
    assert tracker_counts[0] != tracker_counts[1], "the high threshold itself moves"
    markdown = (out / "sweep.md").read_text()
    assert "conf mode: filter, tracker" in markdown and "mMOTA" in markdown
    assert (out / "sweep_MOTA.png").read_bytes()[:4] == b"\x89PNG"


def test_track_eval_states_the_mode_and_the_thresholds_it_ran_with(dataset, tmp_path, capsys):
    out = tmp_path / "te"
    track_eval.main([*source(dataset)[:4], "--out", str(out), "--tracker", "botsort", "--conf", "0.3"])
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["conf_mode"] == "tracker" and settings["conf"] == 0.3
    assert settings["prefilter"] == {"botsort": 0.1}
    assert (settings["trackers"]["botsort"]["track_thresh"], settings["trackers"]["botsort"]["new_track_thresh"]) \
        == (0.3, 0.4)
    written = (out / "botsort" / "tracker_config.yaml").read_text()
    assert "track_thresh: 0.3" in written and "new_track_thresh: 0.4" in written
    assert "conf mode tracker" in capsys.readouterr().out
    # without --conf, tracker mode runs the trackers' own thresholds: today's default numbers (pre-filter 0.1)
    track_eval.main([*source(dataset)[:4], "--out", str(tmp_path / "own"), "--tracker", "bytetrack"])
    track_eval.main([*source(dataset)[:4], "--out", str(tmp_path / "old"), "--tracker", "bytetrack",
                     "--conf-mode", "filter", "--conf", "0.1"])
    own, old = (json.loads((tmp_path / d / "metrics.json").read_text())["trackers"] for d in ("own", "old"))
    assert own == old


def test_sweep_any_option_on_the_x_axis(dataset, tmp_path):
    out = tmp_path / "match"
    conf_sweep.main([*source(dataset), "--out", str(out), "--tracker", "bytetrack", "--sweep",
                     "match_thresh=0.5:0.9:0.2", "--grid", "track_buffer=2,30", "--conf", "0.4"])
    rows = read_csv(out / "sweep.csv")
    assert len(rows) == 6 and {r["match_thresh"] for r in rows} == {"0.5", "0.7", "0.9"}
    assert {r["conf"] for r in rows} == {"0.4"} and {r["track_buffer"] for r in rows} == {"2", "30"}
    assert len({(r["MOTA"], r["IDSW"], r["FP"]) for r in rows}) > 1, "every run really applies its setting"
    markdown = (out / "sweep.md").read_text()
    assert "x-axis: match_thresh" in markdown and any(f"@ {x}" in markdown for x in ("0.5", "0.7", "0.9"))
    # integer ranges, and conf itself as --sweep
    conf_sweep.main([*source(dataset), "--out", str(tmp_path / "buf"), "--tracker", "bytetrack", "--sweep",
                     "track_buffer=10:30:10"])
    assert [r["track_buffer"] for r in read_csv(tmp_path / "buf" / "sweep.csv")] == ["10", "20", "30"]
    # a word-valued axis (none is a value of new_track_thresh) is plotted one tick per value
    conf_sweep.main([*source(dataset), "--out", str(tmp_path / "new"), "--tracker", "bytetrack", "--sweep",
                     "new_track_thresh=none,0.9"])
    rows = read_csv(tmp_path / "new" / "sweep.csv")
    assert [r["new_track_thresh"] for r in rows] == ["", "0.9"] and rows[0]["FN"] != rows[1]["FN"]
    assert (tmp_path / "new" / "sweep_MOTA.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--conf", "0.1:0.9:0.1", "--new-track-thresh", "0.5", "--tracker", "bytetrack"],
     "bytetrack: track_thresh=0.6 is above new_track_thresh=0.5 (conf 0.6 in --conf-mode tracker)"),
    (["--track-thresh", "0.8", "--conf-mode", "filter", "--tracker", "botsort"],
     "botsort: track_thresh=0.8 is above new_track_thresh=0.7"),
    (["--conf", "0.3", "--track-thresh", "0.4"], "--conf and --track-thresh both set the high threshold"),
    (["--sweep", "track_thresh=0.3,0.4", "--conf", "0.3"], "track_thresh is also a sweep axis"),
    (["--grid", "track_buffer=1:10000:1"], "this sweep has 180,000 runs (more than 5,000); pass --yes"),
    (["--sweep", "track_buffer=1:900000000:1"], "has 900,000,000 values, more than the 1,000,000"),
    (["--grid", "track_buffer=1:1000:1", "min_box_area=1:2000:1", "--yes"], "this sweep has 36,000,000 runs"),
    (["--sweep", "cmc=1:3:1", "--tracker", "botsort"], "START:END:STEP needs a number option"),
])
def test_contradictions_and_huge_sweeps_are_one_line_before_any_work(tmp_path, run_tool, run_tool_inprocess, args,
                                                                      message):
    """The --dets folder does not exist: these errors come before anything is read. The first case starts the tool
    as a separate process, the others run its ``__main__`` in this one (quick: the imports are done)."""
    runner = run_tool if args[:2] == ["--conf", "0.1:0.9:0.1"] else run_tool_inprocess
    proc = runner("conf_sweep.py", "--dets", str(tmp_path / "nowhere"), "--gt", str(tmp_path / "nogt"), "--out",
                  str(tmp_path / "o"), *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_results_without_out_print_and_write_only_what_is_asked(dataset, tmp_path, run_tool, run_tool_inprocess):
    out = tmp_path / "run"
    track_eval.main([*source(dataset)[:4], "--out", str(out), "--tracker", "bytetrack"])
    results = out / "bytetrack"
    assert class_sidecar(results / "s0.txt").is_file()
    assert {line.split(",")[7] for line in (results / "s0.txt").read_text().splitlines()} == {"-1"}
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = run_tool("track_eval.py", "--results", str(results), "--gt", str(dataset / "gt"), timeout=120)  # apart
    assert proc.returncode == 0, proc.stderr
    assert "| bytetrack " in proc.stdout and "nothing written" in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    # per class from the sidecar: the same numbers the tracking run reported
    proc = run_tool_inprocess("track_eval.py", "--results", str(results), "--gt", str(dataset / "gt"), "--json",
                              str(tmp_path / "m.json"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    again = json.loads((tmp_path / "m.json").read_text())["trackers"]["bytetrack"]
    first = json.loads((out / "metrics.json").read_text())["trackers"]["bytetrack"]
    assert set(again["per_class"]) == set(first["per_class"]) == {"car", "pedestrian"}
    for cls, metrics in first["per_class"].items():  # boxes are written with 2 decimals: MOTP moves a hair
        assert {m: again["per_class"][cls][m] for m in ("MOTA", "IDF1", "FP", "FN", "IDSW")} == {
            m: metrics[m] for m in ("MOTA", "IDF1", "FP", "FN", "IDSW")}
    # a standard file without classes: an error naming the fix, or class-agnostic when asked
    for seq in ("s0", "s1", "s2"):
        class_sidecar(results / f"{seq}.txt").unlink()
    proc = run_tool_inprocess("track_eval.py", "--results", str(results), "--gt", str(dataset / "gt"), timeout=120)
    assert proc.returncode == 2 and "--class-agnostic" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_tool_inprocess("track_eval.py", "--results", str(results), "--gt", str(dataset / "gt"),
                              "--class-agnostic", timeout=120)
    assert proc.returncode == 0 and "| bytetrack " in proc.stdout
    assert len(read_results(results / "s0.txt")) > 0

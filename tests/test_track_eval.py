"""tools/track_eval.py end to end: --results on motmetrics' TUD files, --dets through the real trackers, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest

from yolox_finetune.evaluation import evaluate_sequence
from yolox_finetune.mot_io import read_results
from yolox_finetune.mot_synthetic import make_scene, write_dataset

ROOT = Path(__file__).resolve().parents[1]
TUD = Path(mm.__file__).parent / "data"
sys.path.insert(0, str(ROOT / "tools"))
import track_eval as tool  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("mot")
    rng = np.random.default_rng(11)
    scenes = [make_scene(rng, name=f"scene-{i}_CAM_FRONT", num_frames=20, num_objects=6) for i in range(3)]
    write_dataset(root / "gt", root / "dets", scenes)
    return root


def test_results_mode_reproduces_motmetrics_on_tud(tmp_path):
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        (tmp_path / "gt" / seq / "gt").mkdir(parents=True)
        shutil.copy(TUD / seq / "gt.txt", tmp_path / "gt" / seq / "gt" / "gt.txt")
        (tmp_path / "mytracker").mkdir(exist_ok=True)
        shutil.copy(TUD / seq / "test.txt", tmp_path / "mytracker" / f"{seq}.txt")
    tool.main(["--results", str(tmp_path / "mytracker"), "--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "out"),
               "--json", str(tmp_path / "copy.json")])
    document = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert json.loads((tmp_path / "copy.json").read_text()) == document
    entry = document["trackers"]["mytracker"]
    assert set(entry) == {"overall", "per_sequence", "per_class"} and set(entry["per_class"]) == {"all"}
    host = mm.metrics.create()
    accs = []
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        gt = mm.io.loadtxt(str(TUD / seq / "gt.txt"), fmt="mot15-2D", min_confidence=1)
        res = mm.io.loadtxt(str(TUD / seq / "test.txt"), fmt="mot15-2D")
        accs.append(mm.utils.compare_to_groundtruth(gt, res, "iou", distth=0.5))
    ref = host.compute_many(accs, metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"],
                            names=["TUD-Campus", "TUD-Stadtmitte"], generate_overall=True)
    for name, row in (("TUD-Campus", "TUD-Campus"), ("OVERALL", None)):
        got = entry["overall"] if row is None else entry["per_sequence"][row]
        assert got["MOTA"] == pytest.approx(100 * ref.loc[name, "mota"])
        assert got["IDF1"] == pytest.approx(100 * ref.loc[name, "idf1"])
        assert (got["IDSW"], got["FP"], got["FN"]) == tuple(int(ref.loc[name, k]) for k in (
            "num_switches", "num_false_positives", "num_misses"))


def test_dets_mode_tracks_writes_results_and_metrics(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(out), "--tracker", "all",
               "--conf", "0.2", "--match-thresh", "0.7", "--no-class-aware"])
    document = json.loads((out / "metrics.json").read_text())
    assert set(document["trackers"]) == {"bytetrack", "botsort"}
    assert document["settings"]["trackers"]["botsort"]["cmc"] == "none"  # no frames on disk
    assert document["settings"]["trackers"]["bytetrack"]["match_thresh"] == 0.7
    assert document["settings"]["trackers"]["bytetrack"]["class_aware"] is False
    for name in ("bytetrack", "botsort"):
        entry = document["trackers"][name]
        assert set(entry["per_sequence"]) == {f"scene-{i}_CAM_FRONT" for i in range(3)}
        assert set(entry["per_class"]) <= {"car", "pedestrian"}
        assert 0 < entry["overall"]["MOTA"] <= 100 and entry["overall"]["HOTA"] > 0
        # the metrics are those of the result files written beside them
        seq = "scene-0_CAM_FRONT"
        from yolox_finetune.mot_io import read_gt
        gt = read_gt(dataset / "gt" / seq / "gt" / "gt.txt")
        counts = evaluate_sequence(gt, read_results(out / name / f"{seq}.txt"))
        assert sum(c.misses for c in counts.values()) == entry["per_sequence"][seq]["FN"]
    assert "bytetrack" in capsys.readouterr().out


def test_conf_filter_changes_what_the_tracker_sees(dataset, tmp_path):
    overall = {}
    for conf in ("0.1", "0.95"):
        tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(tmp_path / conf),
                   "--tracker", "bytetrack", "--conf", conf])
        overall[conf] = json.loads((tmp_path / conf / "metrics.json").read_text())["trackers"]["bytetrack"]["overall"]
    assert overall["0.95"]["FN"] > overall["0.1"]["FN"]


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "track_eval.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_bad_input_is_one_line_and_exit_2(dataset, tmp_path):
    bad = tmp_path / "dets"
    shutil.copytree(dataset / "dets", bad)
    target = bad / "scene-1_CAM_FRONT.txt"
    target.write_text(target.read_text() + "3,-1,1,2,oops,4,0.5,1\n")
    lines = len(target.read_text().splitlines())
    proc = run_tool("--dets", str(bad), "--gt", str(dataset / "gt"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert f"{target}:{lines}:" in proc.stderr and proc.stderr.count("error:") == 1
    assert not (tmp_path / "o" / "metrics.json").exists()
    proc = run_tool("--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(dataset / "dets"))
    assert proc.returncode == 2 and "also an input folder" in proc.stderr
    proc = run_tool("--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"))
    assert proc.returncode == 2 and "--out" in proc.stderr

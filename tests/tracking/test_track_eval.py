"""tools/track_eval.py end to end: --results on motmetrics' TUD files, --dets through the real trackers, errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import motmetrics as mm
import numpy as np
import pytest

from trackers.config import ByteTrackConfig
from yolox_finetune.core.output_dir import MARKER
from yolox_finetune.mot.evaluate import evaluate_sequence
from yolox_finetune.mot.formats import read_results
from yolox_finetune.mot.synthetic import make_scene, write_dataset

ROOT = Path(__file__).resolve().parents[2]
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
    assert set(entry) == {"overall", "class_mean", "per_sequence", "per_class"} and set(entry["per_class"]) == {"all"}
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
        from yolox_finetune.mot.formats import read_gt
        gt = read_gt(dataset / "gt" / seq / "gt" / "gt.txt")
        counts = evaluate_sequence(gt, read_results(out / name / f"{seq}.txt"))
        assert sum(c.misses for c in counts.values()) == entry["per_sequence"][seq]["FN"]
    assert "bytetrack" in capsys.readouterr().out


def test_conf_filter_changes_what_the_tracker_sees(dataset, tmp_path):
    overall = {}
    for conf in ("0.1", "0.95"):
        tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(tmp_path / conf),
                   "--tracker", "bytetrack", "--conf", conf, "--conf-mode", "filter"])
        overall[conf] = json.loads((tmp_path / conf / "metrics.json").read_text())["trackers"]["bytetrack"]["overall"]
    assert overall["0.95"]["FN"] > overall["0.1"]["FN"]


def test_bad_input_is_one_line_and_exit_2(dataset, tmp_path, run_tool, run_tool_inprocess):
    bad = tmp_path / "dets"
    shutil.copytree(dataset / "dets", bad)
    target = bad / "scene-1_CAM_FRONT.txt"
    target.write_text(target.read_text() + "3,-1,1,2,oops,4,0.5,1\n")
    lines = len(target.read_text().splitlines())
    proc = run_tool("track_eval.py", "--dets", str(bad), "--gt", str(dataset / "gt"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert f"{target}:{lines}:" in proc.stderr and proc.stderr.count("error:") == 1
    assert not (tmp_path / "o" / "metrics.json").exists()
    # the next two run the tool's __main__ in this process (quick); the first one above is a separate process
    proc = run_tool_inprocess("track_eval.py", "--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out",
                              str(dataset / "dets"))
    assert proc.returncode == 2 and "also an input folder" in proc.stderr
    proc = run_tool_inprocess("track_eval.py", "--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"))
    assert proc.returncode == 2 and "--out" in proc.stderr


def test_a_bad_tracker_option_is_one_line_and_exit_2(dataset, tmp_path, run_tool_inprocess):
    """TrackerError comes from the standalone trackers package; the CLI reports it like any bad input."""
    proc = run_tool_inprocess("track_eval.py", "--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out",
                              str(tmp_path / "o"), "--track-thresh", "1.5", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: bytetrack option track_thresh=1.5 is outside [0, 1]; pass a value between 0 and 1"]
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


def test_tracker_config_file_errors_name_the_file_and_key(dataset, tmp_path, capsys):
    bad = tmp_path / "mine.yaml"
    bad.write_text("tracker: bytetrack\nmatch_tresh: 0.7\n")
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(tmp_path / "o"),
                   "--tracker-config", str(bad)])
    assert exit_info.value.code == 2
    valid = ", ".join(ByteTrackConfig.option_names())
    expected = f"error: {bad}: unknown bytetrack option 'match_tresh'; valid options: {valid}"
    assert capsys.readouterr().err.strip() == expected


def test_the_written_tracker_config_reruns_the_run(dataset, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(first), "--tracker",
               "bytetrack", "--match-thresh", "0.7", "--no-class-aware", "--track-buffer", "12"])
    written = first / "bytetrack" / "tracker_config.yaml"
    assert "match_thresh: 0.7" in written.read_text() and "class_aware: false" in written.read_text()
    # no --tracker: the trackers of the file run, with the file's options
    tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(again),
               "--tracker-config", str(written)])
    assert sorted(p.name for p in again.iterdir()) == [MARKER, "bytetrack", "metrics.json"]
    for path in sorted((first / "bytetrack").iterdir()):
        assert (again / "bytetrack" / path.name).read_text() == path.read_text(), path.name
    documents = [json.loads((folder / "metrics.json").read_text()) for folder in (first, again)]
    assert documents[0]["trackers"] == documents[1]["trackers"]
    assert documents[0]["settings"]["trackers"] == documents[1]["settings"]["trackers"]
    # flags override the file
    tool.main(["--dets", str(dataset / "dets"), "--gt", str(dataset / "gt"), "--out", str(tmp_path / "flag"),
               "--tracker-config", str(written), "--track-buffer", "3"])
    settings = json.loads((tmp_path / "flag" / "metrics.json").read_text())["settings"]["trackers"]["bytetrack"]
    assert (settings["track_buffer"], settings["match_thresh"], settings["class_aware"]) == (3, 0.7, False)

"""The demo pipeline end to end, shortened (tiny synthetic set, 2 epochs): every step's real command runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]


def test_fp16_on_the_cpu_is_refused_before_anything_is_written(tmp_path, run_tool_inprocess, one_error_line):
    out = tmp_path / "demo"
    one_error_line(run_tool_inprocess("demo.py", "--quick", "--fp16", "--out", str(out)), "--fp16", "--device cuda")
    assert not out.exists()


def test_quick_demo_runs_every_step_and_writes_the_report(tmp_path, run_tool):
    out = tmp_path / "demo"
    proc = run_tool("demo.py", "--quick", "--out", str(out), timeout=900)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    summary = json.loads((out / "demo_summary.json").read_text())
    assert len(summary["commands"]) == 10 and all("python tools/" in c for c in summary["commands"])
    assert set(summary["tracking_test"]["keyframes"]) == {"bytetrack", "botsort"}
    assert set(summary["tracking_test"]["all_frames"]) == {"bytetrack", "botsort", "bytetrack+interp",
                                                           "botsort+interp"}
    assert len(summary["timings_s"]) == 10 and summary["total_s"] >= sum(summary["timings_s"].values()) - 1
    assert "mAP@0.5" in proc.stdout and "report:" in proc.stdout and "keyframes only" in proc.stdout
    assert "step times" in proc.stdout
    assert summary["device"] == "cpu" and summary["fp16"] is False  # the default: the README's numbers are the CPU's
    assert all("--device cpu" in c for c in summary["commands"] if "train.py" in c or "track_eval.py" in c)

    # all-frames sequences: more frames than the keyframe ones, ground truth on the annotated frames only
    keyframe_seq = next((out / "coco" / "mot" / "test").iterdir())
    all_seq = out / "coco" / "mot_sweeps" / "test" / keyframe_seq.name
    assert len(list((all_seq / "img1").iterdir())) > len(list((keyframe_seq / "img1").iterdir()))
    assert (all_seq / "annotated_frames.txt").is_file()
    all_metrics = json.loads((out / "runs" / "demo" / "tracking" / "best" / "metrics.json").read_text())
    assert all_metrics["settings"]["scored_frames"]["annotated_only"] is True
    video = cv2.VideoCapture(str(out / "runs" / "demo" / "tracking" / "tracks.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == min(8, len(list((all_seq / "img1").iterdir())))

    runs = out / "runs"
    pre = read_jsonl(runs / "demo_pretrain" / "metrics.jsonl")
    fine = read_jsonl(runs / "demo" / "metrics.jsonl")
    assert {r["epoch"] for r in pre if r["type"] == "epoch"} == {1, 2}
    assert all(set(r["lr"]) == set(("stem", "dark2", "dark3", "dark4", "dark5", "pafpn", "head"))
               for r in pre if r["type"] == "iter")
    trained = {(r["epoch"], frozenset(r["lr"])) for r in fine if r["type"] == "iter"}  # the demo exp's phases 1, 2
    assert trained == {(1, frozenset({"head"})), (2, frozenset({"pafpn", "head"}))}
    log = (runs / "demo" / "train_log.txt").read_text()
    assert "skipped head.cls_preds.0.weight: checkpoint shape [80," in log  # the 80-class "COCO" head

    with open(runs / "demo" / "tracking" / "sweep" / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["checkpoint"], r["tracker"], r["conf_mode"]) for r in rows} == {
        (c, t, "tracker") for c in ("epoch_1", "best_ckpt") for t in ("bytetrack", "botsort")}
    assert sorted({float(r["conf"]) for r in rows}) == [0.2, 0.4, 0.6]

    report = out / "report"
    html = (report / "report.html").read_text()
    assert "src=\"data:image/png;base64," in html and "demo_pretrain" in html
    assert 'href="../runs/demo/tracking/tracks.mp4"' in html  # the report links the video
    analysis = json.loads((report / "analysis.json").read_text())
    markdown = (report / "report.md").read_text()
    assert "## Convergence" in markdown and "verdict" in markdown  # the verdicts are in the demo's report
    assert all(analysis["runs"][name]["convergence"] for name in ("demo_pretrain", "demo"))
    assert "oscillation_method" in analysis and "Which epoch and threshold win" in markdown
    pngs = list(report.rglob("*.png"))
    assert pngs
    for png in pngs:
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] > 50 and image.std() > 0  # a real, non-blank picture


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

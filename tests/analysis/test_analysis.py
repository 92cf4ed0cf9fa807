"""Training analysis on generated run dirs: plots, oscillation numbers, comparison, report, sweeps, plan plot."""

from __future__ import annotations

import base64
import csv
import json
import math
import runpy
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from yolox_finetune.analysis.analyze import analyze_runs
from yolox_finetune.analysis.plots import mark_events, plan_lr_curve, plot_plan
from yolox_finetune.analysis.runs import best_sweep_rows, checkpoint_epoch, load_run, load_runs
from yolox_finetune.core.errors import UserError

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PHASES = ({"head": 1.0}, {"head": 1.0, "pafpn": 0.1})  # phase 1 starts at epoch 3


def plan_dict(epochs: int, ipe: int, no_aug_epochs: int, base_lr: float = 0.01, batch_size: int = 8) -> dict:
    """A plan in the documented format; phase 1 unfreezes the neck at epoch 3, the last epochs have no mosaic."""
    entries = []
    for epoch in range(1, epochs + 1):
        phase = 0 if epoch < 3 else 1
        mosaic = epoch <= epochs - no_aug_epochs
        entries.append({"epoch": epoch, "lr_start": base_lr, "lr_end": base_lr * 0.9, "mosaic": mosaic,
                        "mixup": mosaic, "l1": not mosaic, "trainable": list(PHASES[phase]),
                        "trainable_params": 1000 * (phase + 1), "lr_mult": dict(PHASES[phase]), "phase": phase})
    return {"exp": "synthetic", "batch_size": batch_size, "base_lr": base_lr, "total_params": 5000,
            "groups": {"head": 1000, "pafpn": 1000}, "iters_per_epoch": ipe, "warmup_epochs": 1,
            "no_aug_epochs": no_aug_epochs, "max_epoch": epochs, "epochs": entries}


def write_run(run_dir: Path, *, noise: float = 0.05, seed: int = 0, epochs: int = 6, ipe: int = 60,
              print_interval: int = 1, no_aug_epochs: int = 2, with_plan: bool = True, null_ap_epochs=(),
              drop_fields=(), batch_size: int = 8, wave: tuple[float, float] | None = None,
              plateau_epoch: int | None = None, planned_epochs: int | None = None) -> Path:
    """A run dir as tools/train.py writes it: metrics.jsonl (iteration + epoch records) and plan.json.

    The total loss is ``trend * (1 + noise * N(0, 1))`` so its residual RSD is known to be ``noise``; ``wave``
    ``(a, period in images seen)`` multiplies it by ``1 + a sin(...)`` (RSD ``a / sqrt(2)``); ``plateau_epoch``
    holds the trend flat from that epoch on. ``planned_epochs`` (default ``epochs``) is what plan.json plans: a run
    stopped early. AP50-95 is 0.05 * epoch (AP50 twice that), val loss falls with the epoch.
    """
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for epoch in range(1, epochs + 1):
        phase = 0 if epoch < 3 else 1
        mosaic = epoch <= (planned_epochs or epochs) - no_aug_epochs
        for it in range(print_interval, ipe + 1, print_interval):
            g = (epoch - 1) * ipe + it
            flat_g = min(g, (plateau_epoch - 1) * ipe) if plateau_epoch else g
            trend = 3.0 * math.exp(-flat_g / (epochs * ipe)) + 1.0
            if wave:
                trend *= 1 + wave[0] * math.sin(2 * math.pi * g * batch_size / wave[1] + 0.4)
            record = {"type": "iter", "epoch": epoch, "iter": it, "iters_per_epoch": ipe, "global_iter": g,
                      "total_loss": trend * (1 + noise * rng.standard_normal()),
                      "iou_loss": 0.4 * trend * (1 + noise * rng.standard_normal()),
                      "l1_loss": 0.0 if mosaic else 0.2 * trend,
                      "conf_loss": 0.3 * trend * (1 + noise * rng.standard_normal()),
                      "cls_loss": 0.3 * trend * (1 + noise * rng.standard_normal()), "num_fg": 5.0,
                      "lr": {group: 0.01 * mult for group, mult in PHASES[phase].items()}, "phase": phase,
                      "mosaic": mosaic, "l1": not mosaic, "iter_time": 0.1, "eta_s": 10.0, "time": 1e9 + g}
            for name in drop_fields:
                record.pop(name, None)
            lines.append(json.dumps(record))
        null_ap = epoch in null_ap_epochs
        lines.append(json.dumps({
            "type": "epoch", "epoch": epoch,
            "val_loss": None if null_ap else {"total_loss": 3.0 / epoch, "iou_loss": 1.0, "l1_loss": 0.0,
                                              "conf_loss": 1.0, "cls_loss": 1.0},
            "ap50_95": None if null_ap else 0.05 * epoch, "ap50": None if null_ap else 0.1 * epoch,
            "best_ap": 0.05 * epoch, "phase": phase, "trainable": list(PHASES[phase]),
            "lr_end": {group: 0.009 * mult for group, mult in PHASES[phase].items()},
            "checkpoint": f"epoch_{epoch}.pth", "time": 1e9 + epoch * ipe}))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if with_plan:
        planned = planned_epochs or epochs
        plan = plan_dict(planned, ipe, no_aug_epochs, batch_size=batch_size)
        (run_dir / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    return run_dir


def assert_real_png(path: Path) -> None:
    """A non-empty image with something drawn on it (not a blank canvas)."""
    path = Path(path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = plt.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert float(np.ptp(image[..., :3])) > 0.3


class _References(HTMLParser):
    """Collect every attribute of the page that could point at another resource."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.images = 0

    def handle_starttag(self, tag, attrs):
        self.images += tag == "img"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "background") or tag == "link":
                self.refs.append((tag, name, value or ""))


def test_one_run_gives_plots_report_and_the_known_noise(tmp_path):
    run = write_run(tmp_path / "base_v1", noise=0.06, seed=1)
    result = analyze_runs([run])
    out = run / "analysis"
    assert Path(result["out_dir"]) == out
    for png in result["plots"].values():
        assert Path(png).parent == out
        assert_real_png(png)
    assert set(result["plots"]) == {"losses", "lr", "validation", "oscillation", "plan base_v1"}
    head = result["runs"]["base_v1"]
    assert head["oscillation"]["residual_rsd_pct"] == pytest.approx(6.0, rel=0.15)
    # 6 epochs: the window is cut to 2 epochs, the first and last epoch (half a window each) are not measured
    assert head["oscillation"]["window_epochs"] == pytest.approx(2.0, rel=0.01)
    assert head["oscillation"]["points"] == pytest.approx(4 * 60, abs=2)
    assert head["best_epoch"] == 6 and head["best_ap50_95"] == pytest.approx(0.30)
    assert head["last_global_iter"] == 360
    md = (out / "report.md").read_text()
    assert "![" in md and "(losses.png)" in md and "(lr.png)" in md
    assert "| base_v1 |" in md
    assert json.loads((out / "analysis.json").read_text())["runs"]["base_v1"]["best_epoch"] == 6


def test_html_report_is_self_contained_and_carries_every_plot(tmp_path):
    run = write_run(tmp_path / "run")
    result = analyze_runs([run], tmp_path / "out")
    page = Path(result["report_html"]).read_text()
    parser = _References()
    parser.feed(page)
    assert parser.images == len(result["plots"])
    assert parser.refs and all(tag == "img" and name == "src" for tag, name, _ in parser.refs)
    for _, _, value in parser.refs:
        assert value.startswith("data:image/png;base64,")
        assert base64.b64decode(value.split(",", 1)[1])[:8] == PNG_SIGNATURE
    assert "url(" not in page and "@import" not in page and "<script" not in page
    md = Path(result["report_md"]).read_text()
    for table_header in ("residual RSD %", "Validation mAP per epoch"):
        assert table_header in md and table_header in page


def test_two_runs_are_compared_against_the_first(tmp_path, monkeypatch):
    noisy = write_run(tmp_path / "runs" / "v1_baseline", noise=0.10, seed=2)
    smooth = write_run(tmp_path / "runs" / "smooth_v2", noise=0.04, seed=3)
    monkeypatch.chdir(tmp_path)
    result = analyze_runs([noisy, smooth])
    assert Path(result["out_dir"]) == Path("analysis")
    rsd = {name: head["oscillation"]["residual_rsd_pct"] for name, head in result["runs"].items()}
    assert rsd["v1_baseline"] == pytest.approx(10, rel=0.15) and rsd["smooth_v2"] == pytest.approx(4, rel=0.15)
    [line] = result["comparison"]
    assert line.startswith("smooth_v2 vs v1_baseline: residual RSD")
    change = int(line.split("(")[1].split("%")[0])
    assert change == pytest.approx((rsd["smooth_v2"] / rsd["v1_baseline"] - 1) * 100, abs=1)
    md = (tmp_path / "analysis" / "report.md").read_text()
    assert line in md
    assert "| epoch | v1_baseline | smooth_v2 |" in md
    for png in result["plots"].values():
        assert_real_png(tmp_path / png)


def test_cli_prints_headline_numbers_and_where_the_report_is(tmp_path, monkeypatch, capsys):
    first = write_run(tmp_path / "first", noise=0.08, seed=11)
    second = write_run(tmp_path / "second", noise=0.03, seed=12)
    monkeypatch.setattr(sys, "argv", ["analyze_runs.py", str(first), str(second), "--out", str(tmp_path / "cmp"),
                                      "--window-epochs", "1.5"])
    runpy.run_path(str(REPO / "tools" / "analyze_runs.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "first: best AP50-95 0.3 (epoch 6)" in out
    line = next(text for text in out.splitlines() if text.startswith("second vs first: residual RSD "))
    assert float(line.split("residual RSD ")[1].split("%")[0]) == pytest.approx(3.0, rel=0.2)
    assert "same trend window 1.5 epochs (720 images)" in line  # 1.5 epochs x 60 iterations x batch 8
    assert "train total loss: " in out
    assert f"report: {tmp_path / 'cmp' / 'report.md'}" in out
    assert (tmp_path / "cmp" / "report.html").is_file()


def test_same_named_runs_get_distinct_names(tmp_path):
    a = write_run(tmp_path / "a" / "yolox_s", seed=4)
    b = write_run(tmp_path / "b" / "yolox_s", seed=5)
    assert sorted(run.name for run in load_runs([a, b])) == ["a/yolox_s", "b/yolox_s"]


def test_partial_run_with_missing_fields_still_gets_a_report(tmp_path):
    run = write_run(tmp_path / "partial", with_plan=False, null_ap_epochs=(1, 2, 3, 4, 5, 6),
                    drop_fields=("lr", "l1_loss", "global_iter"))
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"type": "iter", "epoch": 7, "iter": 1, "total_lo')  # crashed mid-write
    result = analyze_runs([run], tmp_path / "out")
    assert "plan partial" not in result["plots"]  # no plan.json: phases come from the records instead
    head = result["runs"]["partial"]
    assert head["best_ap50_95"] is None and head["best_epoch"] is None
    assert head["last_global_iter"] == 360  # rebuilt from epoch, iter and iters_per_epoch
    for png in result["plots"].values():
        assert Path(png).stat().st_size > 1000
    md = Path(result["report_md"]).read_text()
    assert "| 1 | – / – |" in md
    assert f"| partial | {run} | 360 | 6.00 | – | 60 | – | 6 | no | 0 | 1 |" in md  # the crashed line is counted
    assert result["runs"]["partial"]["skipped_lines"] == 1
    assert json.loads(Path(result["analysis_json"]).read_text())["runs"]["partial"]["best_ap50"] is None


def test_phases_and_no_aug_start_come_from_the_plan_or_the_records(tmp_path):
    with_plan = load_run(write_run(tmp_path / "p", epochs=8, ipe=50, no_aug_epochs=3))
    without = load_run(write_run(tmp_path / "r", epochs=8, ipe=50, no_aug_epochs=3, with_plan=False))
    for run in (with_plan, without):
        assert run.phase_starts() == [(100.0, 1)]  # epoch 3 starts after 2 * 50 iterations
        assert run.no_aug_start() == 250.0  # epochs 6..8 have no mosaic
        assert run.last_mosaic_epoch() == 5
    assert without.lr_groups() == ["pafpn", "head"]
    assert np.isnan(without.lr_series("pafpn")[0]) and without.lr_series("pafpn")[-1] == pytest.approx(0.001)


def test_a_resumed_run_keeps_the_later_records(tmp_path):
    run_dir = write_run(tmp_path / "resumed", epochs=2, ipe=10)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    replay = json.loads(lines[12])  # epoch 2 restarted after a crash: its records appear twice
    replay["total_loss"] = 123.0
    (run_dir / "metrics.jsonl").write_text("\n".join(lines + [json.dumps(replay)]) + "\n")
    run = load_run(run_dir)
    assert len(run.iters) == 20
    assert run.series("total_loss")[replay["global_iter"] - 1] == 123.0
    assert list(run.global_iters) == sorted(run.global_iters)


def write_sweep(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_sweep_results_sit_next_to_the_checkpoints_val_map(tmp_path):
    run_dir = write_run(tmp_path / "run", epochs=6)
    rows = []
    for checkpoint, base in (("epoch_2", 40.0), (str(run_dir / "epoch_6.pth"), 55.0), ("best_ckpt", 50.0)):
        for tracker in ("bytetrack", "botsort"):
            for conf, bump in ((0.1, 0.0), (0.3, 4.0), (0.5, 1.0)):
                rows.append({"checkpoint": checkpoint, "tracker": tracker, "conf": conf, "track_buffer": 30,
                             "MOTA": base + bump,
                             "IDF1": 60.0 - bump, "HOTA": 45.0, "MOTP": 0.8, "IDSW": 3, "FP": 10, "FN": 20})
    write_sweep(run_dir / "tracking" / "sweep" / "sweep.csv", rows)  # where tools/conf_sweep.py --ckpt puts it
    run = load_run(run_dir)
    assert checkpoint_epoch(run, "best") == 6 and checkpoint_epoch(run, "latest_ckpt.pth") == 6
    assert checkpoint_epoch(run, "last_mosaic_epoch") == 4 and checkpoint_epoch(run, "mystery.pth") is None
    best = best_sweep_rows(run)
    assert len(best) == 6
    first = best[0]
    assert (first["checkpoint"], first["epoch"], first["conf"], first["MOTA"]) == ("epoch_2", 2, 0.3, 44.0)
    assert first["ap50_95"] == pytest.approx(0.10) and first["ap50"] == pytest.approx(0.20)
    by_idf1 = best_sweep_rows(run, "IDF1")
    assert {row["conf"] for row in by_idf1} == {0.1}
    md = Path(analyze_runs([run_dir], tmp_path / "out")["report_md"]).read_text()
    assert "| run | tracking/sweep | epoch_2 | 2 | 0.1 | 0.2 | bytetrack | 0.3 | track_buffer=30 | 44 |" in md
    assert "| run | tracking/sweep | epoch_6.pth | 6 | 0.3 | 0.6 |" in md


def test_not_a_run_dir_is_one_clear_error(tmp_path, run_tool):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no metrics.jsonl"):
        load_run(tmp_path / "empty")
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "metrics.jsonl").write_text("\n")
    with pytest.raises(UserError, match="no iteration or epoch records"):
        load_run(tmp_path / "blank")
    proc = run_tool("analyze_runs.py", str(tmp_path / "empty"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no metrics.jsonl in") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "empty" / "analysis").exists()


def test_plan_curve_follows_the_yolox_schedule_of_a_real_exp(tmp_path):
    from yolox_finetune.training.exp import load_exp
    from yolox_finetune.training.schedule import build_plan

    exp = load_exp(REPO / "exps" / "progressive_unfreeze.py")
    ipe = 7
    plan = build_plan(exp, ipe)
    iters, curves = plan_lr_curve(plan, exp)
    assert len(iters) == ipe * exp.max_epoch
    for entry in plan["epochs"]:
        first, last = (entry["epoch"] - 1) * ipe, entry["epoch"] * ipe - 1
        for group, curve in curves.items():
            mult = entry["lr_mult"].get(group)
            if mult is None:
                assert np.isnan(curve[first]) and np.isnan(curve[last])
            else:
                assert curve[first] == pytest.approx(entry["lr_start"] * mult)
                assert curve[last] == pytest.approx(entry["lr_end"] * mult)
    head = curves["head"]
    # the no-aug tail sits at the last phase's minimum (progressive_unfreeze gives each phase its own LR)
    assert head[-1] == pytest.approx(plan["phases"][-1]["base_lr"] * exp.min_lr_ratio)
    assert head.max() == pytest.approx(plan["base_lr"])  # warmup reaches the base LR
    assert_real_png(plot_plan(plan, exp, tmp_path / "plan.png"))


def test_plan_without_exp_interpolates_each_epoch(tmp_path):
    plan = plan_dict(epochs=4, ipe=5, no_aug_epochs=1)
    iters, curves = plan_lr_curve(plan)
    assert curves["head"][0] == pytest.approx(0.01) and curves["head"][4] == pytest.approx(0.009)
    assert np.isnan(curves["pafpn"][:10]).all() and curves["pafpn"][10] == pytest.approx(0.001)
    assert_real_png(plot_plan(plan, None, tmp_path / "plan.png"))
    with pytest.raises(UserError, match="plan is missing"):
        plot_plan({"epochs": []}, None, tmp_path / "bad.png")


def test_plan_cli_draws_an_exp_before_training(tmp_path, monkeypatch, capsys):
    out = tmp_path / "plan.png"
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, "argv", ["analyze_runs.py", "--plan", "-f", "exps/smooth_v2.py", "--iters-per-epoch",
                                      "20", "--out", str(out)])
    runpy.run_path(str(REPO / "tools" / "analyze_runs.py"), run_name="__main__")
    assert f"plan plot: {out}" in capsys.readouterr().out
    assert_real_png(out)
    monkeypatch.setattr(sys, "argv", ["analyze_runs.py", "--plan"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(REPO / "tools" / "analyze_runs.py"), run_name="__main__")
    assert stop.value.code == 2 and "--plan needs the exp" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- common axis
def test_v2_at_batch_16_reads_half_the_oscillation_of_v1_at_batch_32(tmp_path):
    # same data set (1,600 images per epoch), the same wave in images seen; V2 has half V1's amplitude
    v1 = write_run(tmp_path / "v1", noise=0.0, epochs=12, ipe=50, batch_size=32, wave=(0.06, 400))
    v2 = write_run(tmp_path / "v2", noise=0.0, epochs=12, ipe=100, batch_size=16, wave=(0.03, 400))
    result = analyze_runs([v1, v2], tmp_path / "out")
    osc = {name: head["oscillation"] for name, head in result["runs"].items()}
    assert osc["v1"]["residual_rsd_pct"] == pytest.approx(6 / math.sqrt(2), rel=0.1)
    assert osc["v2"]["residual_rsd_pct"] / osc["v1"]["residual_rsd_pct"] == pytest.approx(0.5, rel=0.1)
    assert osc["v1"]["window_images"] == pytest.approx(osc["v2"]["window_images"])  # same window in images
    assert osc["v1"]["window_epochs"] == pytest.approx(3.0)
    assert osc["v1"]["period_images"] == pytest.approx(400, rel=0.05)
    method = json.loads(Path(result["analysis_json"]).read_text())["oscillation_method"]
    assert method["axis"] == "images seen" and method["window_images"] == pytest.approx(3 * 1600)
    assert "Welch" in method["method"]
    md = Path(result["report_md"]).read_text()
    assert "4,800 images seen, the same number of images for every run" in md


def test_runs_of_12_and_30_epochs_are_compared_over_their_overlap(tmp_path):
    short = write_run(tmp_path / "short", noise=0.05, epochs=12, ipe=80, seed=21, planned_epochs=30)
    long = write_run(tmp_path / "long", noise=0.05, epochs=30, ipe=80, seed=22)
    result = analyze_runs([long, short], tmp_path / "out")
    runs = result["runs"]
    for name in ("short", "long"):
        assert runs[name]["oscillation"]["span_end"] == pytest.approx(12.0)
        assert runs[name]["oscillation"]["residual_rsd_pct"] == pytest.approx(5.0, rel=0.1)
    assert runs["long"]["oscillation_whole_run"]["span_end"] == pytest.approx(30.0)
    assert runs["long"]["oscillation_whole_run"]["residual_rsd_pct"] == pytest.approx(5.0, rel=0.1)
    assert any("overlap, epochs 0 to 12.00" in note for note in result["oscillation_method"]["notes"])
    assert "same span: epochs 0.01 to 12.00" in result["comparison"][0]


def test_missing_batch_size_falls_back_to_epochs_and_says_so(tmp_path):
    run = write_run(tmp_path / "nobatch", with_plan=False, epochs=6)
    result = analyze_runs([run], tmp_path / "out")
    assert result["oscillation_method"]["axis"] == "epochs (batch size unknown)"
    assert "batch size unknown for nobatch" in Path(result["report_md"]).read_text()


# ---------------------------------------------------------------------------------------------------- convergence
def test_a_plateaued_run_is_flat_and_a_falling_one_still_falling(tmp_path):
    falling = write_run(tmp_path / "falling", noise=0.05, epochs=30, ipe=60, seed=31)
    plateau = write_run(tmp_path / "plateau", noise=0.05, epochs=30, ipe=60, seed=32, plateau_epoch=10)
    result = analyze_runs([falling, plateau], tmp_path / "out", last_epochs=5)
    verdicts = {name: {c["series"]: c for c in head["convergence"]} for name, head in result["runs"].items()}
    assert verdicts["falling"]["train total loss"]["verdict"] == "still falling"
    plateaued = verdicts["plateau"]["train total loss"]
    assert plateaued["verdict"] == "flat within noise"
    assert (plateaued["from_epoch"], plateaued["to_epoch"]) == (25, 30)
    assert plateaued["ci_low"] < 0 < plateaued["ci_high"]
    assert verdicts["falling"]["val AP50-95"]["verdict"] == "still rising"
    md = Path(result["report_md"]).read_text()
    assert "| plateau | train total loss | 25 -> 30 |" in md and "flat within noise" in md


# ---------------------------------------------------------------------------------------------------- sweeps
def _sweep(checkpoints=("epoch_2", "epoch_6"), idsw_base=10) -> list[dict]:
    rows = []
    for c_index, checkpoint in enumerate(checkpoints):
        for conf in (0.2, 0.4, 0.6):
            rows.append({"checkpoint": checkpoint, "tracker": "bytetrack", "conf": conf,
                         "MOTA": 50 + 10 * conf + c_index, "IDF1": 60 - 10 * conf, "HOTA": 40 + c_index,
                         "IDSW": idsw_base + 100 * conf - 5 * c_index, "FP": 10, "FN": 20})
    return rows


def test_best_by_idsw_picks_the_minimum(tmp_path):
    run_dir = write_run(tmp_path / "run", epochs=6)
    write_sweep(run_dir / "tracking" / "sweep" / "sweep.csv", _sweep())
    rows = best_sweep_rows(load_run(run_dir), "IDSW")
    assert [(r["checkpoint"], r["conf"], r["IDSW"]) for r in rows] == [("epoch_2", 0.2, 30.0),
                                                                       ("epoch_6", 0.2, 25.0)]
    assert {r["conf"] for r in best_sweep_rows(load_run(run_dir), "MOTA")} == {0.6}


def test_an_unknown_best_by_metric_is_one_clear_error(tmp_path, monkeypatch, capsys):
    run_dir = write_run(tmp_path / "run", epochs=3)
    write_sweep(run_dir / "tracking" / "sweep" / "sweep.csv", _sweep())
    with pytest.raises(UserError, match="unknown tracking metric 'idsw'.*MOTA, MOTP, IDF1"):
        analyze_runs([run_dir], tmp_path / "out", best_by="idsw")
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(sys, "argv", ["analyze_runs.py", str(run_dir), "--best-by", "NOPE"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(REPO / "tools" / "analyze_runs.py"), run_name="__main__")
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "IDSW" in err


def test_val_and_test_sweeps_are_kept_apart_and_the_report_names_the_winners(tmp_path):
    run_dir = write_run(tmp_path / "run", epochs=6)
    write_sweep(run_dir / "tracking" / "val" / "sweep" / "sweep.csv", _sweep(idsw_base=10))
    write_sweep(run_dir / "tracking" / "test" / "sweep" / "sweep.csv", _sweep(idsw_base=500))
    result = analyze_runs([run_dir], tmp_path / "out", best_by="IDSW")
    assert {(r["split"], r["IDSW"]) for r in result["tracking"]} == {
        ("val", 30.0), ("val", 25.0), ("test", 520.0), ("test", 515.0)}
    winners = {(w["split"], w["metric"]): w for w in result["tracking_winners"]}
    assert set(winners) == {(split, m) for split in ("val", "test") for m in ("MOTA", "IDF1", "HOTA", "IDSW")}
    assert (winners["val", "IDSW"]["epoch"], winners["val", "IDSW"]["conf"], winners["val", "IDSW"]["value"]) == (
        6, 0.2, 25.0)
    assert (winners["test", "MOTA"]["epoch"], winners["test", "MOTA"]["conf"]) == (6, 0.6)
    md = Path(result["report_md"]).read_text()
    assert "| run | val | IDSW (lowest) | 25 | 6 | epoch_6 | bytetrack | 0.2 |" in md
    assert "| run | test | MOTA (highest) | 57 | 6 | epoch_6 | bytetrack | 0.6 |" in md
    for split in ("val", "test"):
        png = result["plots"][f"sweep run [{split}]"]
        assert_real_png(png)
        assert f"({Path(png).name})" in md


def test_each_runs_events_are_marked_and_unreached_ones_are_planned(tmp_path):
    stopped = load_run(write_run(tmp_path / "stopped", epochs=4, ipe=20, planned_epochs=10, no_aug_epochs=2))
    done = load_run(write_run(tmp_path / "done", epochs=6, ipe=20))
    fig, ax = plt.subplots()
    assert mark_events(ax, stopped, "tab:blue", label_runs=True) == 2
    assert mark_events(ax, done, "tab:orange", label_runs=True) == 2
    texts = [t.get_text() for t in ax.texts]
    plt.close(fig)
    assert texts == ["stopped: P1", "stopped: no-aug (planned)", "done: P1", "done: no-aug"]


# ------------------------------------------------------------------------------------------------ tracking validation
#: per epoch 1..6: (bytetrack HOTA, MOTA, IDF1, IDSW), (botsort HOTA, MOTA, IDF1, IDSW); AP50-95 rises to epoch 6.
TRACKING_BY_EPOCH = {
    1: ((30.0, 20.0, 35.0, 40), (31.0, 21.0, 36.0, 38)),
    2: ((35.0, 28.0, 40.0, 30), (39.0, 27.0, 41.0, 31)),
    3: ((38.0, 30.0, 44.0, 12), (36.0, 29.0, 42.0, 25)),
    4: ((41.0, 33.0, 45.0, 20), (37.0, 31.0, 44.0, 20)),
    5: ((40.0, 35.0, 44.0, 22), (38.0, 33.0, 43.0, 22)),
    6: ((39.0, 34.0, 46.0, 25), (38.0, 32.0, 45.0, 24)),
}


def add_tracking(run_dir: Path, best_metric: str = "HOTA:bytetrack", best_epoch: int = 4) -> Path:
    """Give a written run's epoch records the trainer's tracking validation fields (and its best-checkpoint fields:
    ``best_epoch`` is the epoch the trainer had chosen by each epoch's end)."""
    lines = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "epoch":
            epoch = record["epoch"]
            record["tracking"] = {name: dict(zip(("HOTA", "MOTA", "IDF1", "IDSW"), values))
                                  for name, values in zip(("bytetrack", "botsort"), TRACKING_BY_EPOCH[epoch])}
            chosen = min(epoch, best_epoch)
            record.update(best_metric=best_metric, best_epoch=chosen, is_best=epoch <= best_epoch,
                          best_value=TRACKING_BY_EPOCH[chosen][0][0])
        lines.append(json.dumps(record))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_dir


def test_tracking_validation_is_plotted_beside_map_with_each_metrics_best_epoch(tmp_path, monkeypatch, capsys):
    run_dir = add_tracking(write_run(tmp_path / "tracked"))
    result = analyze_runs([run_dir], tmp_path / "out")
    assert_real_png(result["plots"]["tracking"])
    bests = {(b["metric"], b["tracker"]): b["epoch"] for b in result["runs"]["tracked"]["tracking_bests"]}
    assert bests == {("HOTA", "bytetrack"): 4, ("MOTA", "bytetrack"): 5, ("IDF1", "bytetrack"): 6,
                     ("IDSW", "bytetrack"): 3, ("HOTA", "botsort"): 2, ("MOTA", "botsort"): 5,
                     ("IDF1", "botsort"): 6, ("IDSW", "botsort"): 4}  # IDSW: the lowest; ties: the earliest
    assert result["runs"]["tracked"]["best_epoch"] == 6  # the best-mAP epoch is another one
    assert result["runs"]["tracked"]["best_checkpoint"] == {"epoch": 4, "metric": "HOTA:bytetrack", "value": 41.0}
    chosen = [b for b in result["runs"]["tracked"]["tracking_bests"] if b["chosen"]]
    assert [(b["metric"], b["tracker"]) for b in chosen] == [("HOTA", "bytetrack")]
    assert checkpoint_epoch(load_run(run_dir), "best_ckpt.pth") == 4  # what the trainer chose, not the AP argmax

    md = Path(result["report_md"]).read_text()
    assert "## Tracking validation per epoch (HOTA / MOTA / IDF1 / IDSW)" in md
    assert "| epoch | tracked bytetrack | tracked botsort |" in md
    assert "| 4 | 41 / 33 / 45 / 20 * | 37 / 31 / 44 / 20 * |" in md  # * : the epoch best_ckpt.pth holds
    assert "best_ckpt.pth: tracked: epoch 4, chosen by HOTA:bytetrack (41)." in md
    assert "| tracked | IDSW | bytetrack | lowest | 3 | 12 |  |" in md
    assert "| tracked | HOTA | bytetrack | highest | 4 | 41 | yes |" in md
    assert "Tracking validation per epoch" in Path(result["report_html"]).read_text()

    monkeypatch.setattr(sys, "argv", ["analyze_runs.py", str(run_dir), "--out", str(tmp_path / "cli")])
    runpy.run_path(str(REPO / "tools" / "analyze_runs.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "  best_ckpt.pth: epoch 4, chosen by HOTA:bytetrack (41)" in out
    assert "  bytetrack (tracking validation): HOTA best 41 at epoch 4, MOTA best 35 at epoch 5" in out


def test_runs_without_tracking_validation_keep_their_report(tmp_path):
    plain = write_run(tmp_path / "plain")
    result = analyze_runs([plain], tmp_path / "alone")
    assert "tracking" not in result["plots"]
    assert result["runs"]["plain"]["tracking_bests"] == [] and result["runs"]["plain"]["best_checkpoint"] is None
    assert "Tracking validation per epoch" not in Path(result["report_md"]).read_text()
    assert checkpoint_epoch(load_run(plain), "best_ckpt.pth") == 6  # old runs: best by AP50-95, as before

    tracked = add_tracking(write_run(tmp_path / "tracked", seed=1))
    both = analyze_runs([plain, tracked], tmp_path / "both")
    assert_real_png(both["plots"]["tracking"])
    md = Path(both["report_md"]).read_text()
    assert "| epoch | tracked bytetrack | tracked botsort |" in md  # only the run that has it gets columns

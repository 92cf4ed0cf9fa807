"""tools/tune_trackers.py and yolox_finetune/tracking/tune.py: Optuna studies on cached detections whose trials
really run their configs, that resume, whose best config track_eval reproduces, and whose bad input is one line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from trackers.config import ByteTrackConfig, load_config
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import read_marker
from yolox_finetune.mot.runner import load_sequences
from yolox_finetune.mot.synthetic import make_scene, write_dataset
from yolox_finetune.tracking import tune

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import tune_trackers as tool  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Seeded synthetic MOT scenes: a val split to tune on and a test split held out."""
    root = tmp_path_factory.mktemp("tune_data")
    rng = np.random.default_rng(21)
    for split in ("val", "test"):
        scenes = [make_scene(rng, name=f"{split}-{i}_CAM_FRONT", num_frames=20, num_objects=7) for i in range(3)]
        write_dataset(root / split / "gt", root / split / "dets", scenes)
    return root


def source(data: Path, split: str = "val") -> list[str]:
    return ["--dets", str(data / split / "dets"), "--gt", str(data / split / "gt")]


def read_trials(out: Path) -> list[dict[str, str]]:
    with open(out / tune.TRIALS_CSV, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def tuned(data, tmp_path_factory) -> Path:
    """One single-objective study of 8 trials with a held-out split (shared by the tests that only read it)."""
    out = tmp_path_factory.mktemp("tuned") / "out"
    tool.main([*source(data), "--eval-dets", str(data / "test" / "dets"), "--eval-gt", str(data / "test" / "gt"),
               "--out", str(out), "--trials", "8", "--seed", "3"])
    return out


def test_trials_really_apply_their_configs(tuned, data):
    rows = [r for r in read_trials(tuned) if r["state"] == "complete"]
    assert len(rows) == 8
    outcomes = {(r["MOTA"], r["HOTA"], r["FP"], r["FN"]) for r in rows}
    assert len(outcomes) >= 4, outcomes  # a tuner that ignores its samples gives one row eight times
    study = optuna.load_study(study_name="bytetrack-HOTA", storage=tune.sqlite_url(tuned / tune.STUDY_DB))
    sequences = load_sequences(data / "val" / "gt", data / "val" / "dets")
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))[:3]:
        config = tune.config_of("bytetrack", trial)
        assert {name: getattr(config, name) for name in trial.params} == trial.params
        rerun = tune.evaluate_config(sequences, "bytetrack", config, 0.1)
        assert rerun == trial.user_attrs["result"]["metrics"]
        assert trial.values[0] == rerun["HOTA"]
    assert study.trials[0].user_attrs.get("baseline") is True  # trial 0 runs the starting config
    assert study.trials[0].params["track_thresh"] == ByteTrackConfig().track_thresh


def test_held_out_numbers_are_reported_beside_the_tuning_numbers(tuned, data):
    document = json.loads((tuned / tune.SUMMARY_JSON).read_text())
    held = load_sequences(data / "test" / "gt", data / "test" / "dets")
    best = load_config(tuned / tune.BEST_CONFIG)["bytetrack"]
    assert document["best"]["metrics"]["eval"] == tune.evaluate_config(held, "bytetrack", best, 0.1)
    assert document["baseline"]["metrics"]["eval"] == tune.evaluate_config(held, "bytetrack", ByteTrackConfig(), 0.1)
    # the tuned config is the best of the trials on the tuning split, so at least the baseline's HOTA there
    assert document["best"]["metrics"]["tune"]["HOTA"] >= document["baseline"]["metrics"]["tune"]["HOTA"]
    summary = (tuned / tune.SUMMARY_MD).read_text()
    assert "held-out" in summary and "tuning split" in summary and "track_eval.py" in summary
    assert (tuned / "params_HOTA.png").read_bytes()[:4] == b"\x89PNG"
    assert read_marker(tuned)["tool"] == "tune_trackers"


def test_best_config_reproduces_its_metrics_through_track_eval(tuned, data, tmp_path, run_tool_inprocess):
    check = tmp_path / "check"
    proc = run_tool_inprocess("track_eval.py", *source(data), "--tracker-config", tuned / tune.BEST_CONFIG,
                              "--conf-mode", "filter", "--conf", "0.1", "--out", check)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads((check / "metrics.json").read_text())["trackers"]["bytetrack"]["overall"]
    document = json.loads((tuned / tune.SUMMARY_JSON).read_text())
    assert got == document["best"]["metrics"]["tune"]
    best_row = next(r for r in read_trials(tuned) if int(r["trial"]) == document["best"]["trial"])
    assert float(best_row["HOTA"]) == pytest.approx(got["HOTA"], abs=1e-9)


def test_a_second_run_adds_trials_to_the_same_study(data, tmp_path):
    out = tmp_path / "out"
    tool.main([*source(data), "--out", str(out), "--trials", "3", "--eval-split", "none"])
    first = read_trials(out)
    assert len(first) == 3
    tool.main([*source(data), "--out", str(out), "--trials", "2", "--search", "match_thresh", "track_thresh"])
    second = read_trials(out)
    assert len(second) == 5  # resumed without --overwrite: the study grows
    assert second[:3] == [{**row, "pareto": second[i]["pareto"]} for i, row in enumerate(first)]
    document = json.loads((out / tune.SUMMARY_JSON).read_text())
    assert document["trials"]["added"] == 2 and document["trials"]["complete"] == 5
    assert sorted(p.name for p in out.glob("*.db")) == [tune.STUDY_DB]


def test_resuming_with_other_detections_or_settings_is_refused(data, tmp_path, capsys):
    out = tmp_path / "out"
    tool.main([*source(data), "--out", str(out), "--trials", "1"])
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*source(data), "--out", str(out), "--trials", "1", "--conf", "0.3"])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error:") and "conf" in line and "--study-name" in line


def test_several_objectives_give_a_pareto_front(data, tmp_path):
    out = tmp_path / "out"
    tool.main([*source(data), "--out", str(out), "--trials", "8", "--objective", "MOTA", "-IDSW", "FP"])
    document = json.loads((out / tune.SUMMARY_JSON).read_text())
    assert document["sampler"] == "NSGA-II" and document["objectives"] == ["MOTA", "-IDSW", "-FP"]
    assert (out / tune.PARETO_PNG).read_bytes()[:4] == b"\x89PNG"
    rows = [r for r in read_trials(out) if r["state"] == "complete"]
    points = {int(r["trial"]): (float(r["MOTA"]), -float(r["IDSW"]), -float(r["FP"])) for r in rows}
    front = {p["trial"] for p in document["pareto"]}
    for number, point in points.items():  # the front is exactly the non-dominated trials
        dominated = any(all(o >= p for o, p in zip(other, point)) and other != point for other in points.values())
        assert (number in front) == (not dominated), number
    assert {p.name for p in (out / tune.PARETO_DIR).iterdir()} == {f"trial_{n}.yaml" for n in front}
    assert document["best"]["trial"] in front


def test_a_bad_objective_name_is_one_error_line(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main([*source(data), "--out", str(tmp_path / "out"), "--objective", "MOTA", "-IDSWX"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "IDSWX" in err[0] and "HOTA" in err[0], err
    assert not (tmp_path / "out").exists()


def test_tuning_on_test_is_refused(data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tool.main([*source(data, "test"), "--out", str(tmp_path / "out"), "--trials", "1"])
    assert "refusing to tune on the test split" in capsys.readouterr().err


# -- library pieces ------------------------------------------------------------------------------------------------

def test_objectives_take_a_direction():
    objectives = tune.parse_objectives(["hota", "-IDSW", "+FP", "FN", "MOTA,IDF1"])
    assert [(o.metric, o.direction) for o in objectives] == [
        ("HOTA", "maximize"), ("IDSW", "minimize"), ("FP", "maximize"), ("FN", "minimize"), ("MOTA", "maximize"),
        ("IDF1", "maximize")]
    assert tool.objective_argv(["--objective", "MOTA", "-IDSW", "-f", "x.py", "--trials", "3"]) == [
        "--objective=MOTA", "--objective=-IDSW", "-f", "x.py", "--trials", "3"]
    with pytest.raises(UserError, match="twice"):
        tune.parse_objectives(["MOTA", "-MOTA"])


def test_params_set_ranges_choices_or_fixed_values():
    space, fixed, notes = tune.search_space("botsort", ["track_thresh"], [
        "match_thresh=0.6:0.9:0.05", "cmc=none,orb", "fuse-score=true,false", "track_buffer=20:40",
        "second_match_thresh=0.4"], fixed_by_flags=["track_thresh"])
    assert list(space) == ["match_thresh", "track_buffer", "fuse_score", "cmc"]  # field order
    assert space["match_thresh"] == tune.SearchParam("match_thresh", "float", 0.6, 0.9, 0.05)
    assert space["track_buffer"].kind == "int" and space["cmc"].choices == ("none", "orb")
    assert space["fuse_score"].choices == (True, False)
    assert fixed == {"second_match_thresh": 0.4} and "track_thresh" in notes[0]
    for bad, match in (("fuse_score=0:1", "numeric"), ("cmc=none", "not an option of bytetrack"),
                       ("match_thresh=0.9:0.1", "LOW <= HIGH"),
                       ("aspect_ratio_class_ids=1,2", "cannot be searched"), ("min_box_area", "NAME=LOW:HIGH")):
        with pytest.raises(UserError, match=match):
            tune.search_space("bytetrack", None, [bad])
    with pytest.raises(UserError, match="no default range"):
        tune.search_space("bytetrack", ["aspect_ratio_class_ids"], [])
    for name in ("bytetrack", "botsort"):  # the defaults name real options with a range
        space, _, _ = tune.search_space(name, None, [])
        assert set(space) == set(tune.DEFAULT_SEARCH[name])


def test_sampling_keeps_the_threshold_order_and_prunes_what_cannot_run():
    space, _, _ = tune.search_space("bytetrack", None, [])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):
        trial = study.ask()
        config = tune.sample_config(trial, ByteTrackConfig(), space)
        assert config.low_thresh <= config.track_thresh <= config.new_track_thresh
        study.tell(trial, 0.0)
    narrow, _, _ = tune.search_space("bytetrack", ["new_track_thresh"], ["new_track_thresh=0.3:0.4"])
    with pytest.raises(tune.RejectedConfig, match="new_track_thresh"):
        tune.sample_config(study.ask(), ByteTrackConfig(track_thresh=0.6), narrow)


TINY_EXP = '''
from yolox_finetune.training.exp import NuScenesExp


class Exp(NuScenesExp):
    def __init__(self):
        super().__init__()
        self.depth, self.width = 0.33, 0.125
        self.input_size = self.test_size = (128, 128)
        self.test_conf = 1e-5
        self.output_dir = {out!r}
        self.exp_name = "tiny"
        self.data_dir = {data!r}
'''


def test_ckpt_mode_tunes_on_val_and_reports_test_from_the_detector_cache(tmp_path, capsys):
    """--ckpt: detections through the cache of a real (tiny, untrained) YOLOX, the output in the run dir, the test
    split found and scored as the held-out split, the track_eval command to reproduce naming the checkpoint."""
    import cv2
    import torch

    from yolox_finetune.mot.formats import SeqInfo, write_gt, write_seqinfo
    from yolox_finetune.training.exp import load_exp

    exp_file = tmp_path / "tiny_exp.py"
    exp_file.write_text(TINY_EXP.format(out=str(tmp_path / "runs"), data=str(tmp_path / "data")))
    exp = load_exp(exp_file)
    torch.manual_seed(0)
    exp.run_dir.mkdir(parents=True)
    torch.save({"model": exp.get_model().state_dict(), "start_epoch": 1}, exp.run_dir / "epoch_1.pth")
    rng = np.random.default_rng(0)
    for split in ("val", "test"):
        seq = tmp_path / "data" / "mot" / split / f"scene-{split}_CAM_FRONT"
        scene = make_scene(rng, num_frames=3, num_objects=2, image_size=(90, 160))
        write_gt(seq / "gt" / "gt.txt", scene.gt)
        write_seqinfo(seq, SeqInfo(name=seq.name, frame_rate=12, seq_length=3, im_width=160, im_height=90))
        (seq / "img1").mkdir()
        for f in range(1, 4):
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    with pytest.raises(SystemExit):
        tool.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--split", "test", "--device", "cpu"])
    assert "refusing to tune on the test split" in capsys.readouterr().err
    tool.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--device", "cpu", "--trials", "2", "--conf", "0.00001",
               "--search", "track_thresh", "--param", "low_thresh=0.00001"])
    out = exp.run_dir / "tracking" / "tune_bytetrack"
    document = json.loads((out / tune.SUMMARY_JSON).read_text())
    assert Path(document["tune"]["gt"]).name == "val" and Path(document["eval"]["gt"]).name == "test"
    assert document["eval"]["label"] == "epoch_1" and document["best"]["metrics"]["eval"] is not None
    assert "--ckpt epoch_1" in document["reproduce"] and "--split val" in document["reproduce"]
    assert document["best"]["config"]["low_thresh"] == 0.00001
    assert sorted(p.name for p in (exp.run_dir / "tracking" / "det_cache").iterdir())  # the cache was used


def test_worker_processes_share_one_study(data, tmp_path):
    sequences = load_sequences(data / "val" / "gt", data / "val" / "dets")
    space, _, _ = tune.search_space("bytetrack", ["match_thresh"], [])
    setup = tune.TuneSetup("bytetrack", ByteTrackConfig(), space, tune.parse_objectives(["MOTA"]), 0.1, 0.5,
                           tune.sqlite_url(tmp_path / tune.STUDY_DB), "shared", {"data": "val"}, seed=1)
    study, added = tune.run_study(setup, sequences, trials=5, workers=2)
    assert added == 5
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(5))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.params["match_thresh"] for t in trials}) == 5  # each worker sampled its own values

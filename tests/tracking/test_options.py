"""The tracking tools' shared command line: flags generated from the tracker config dataclasses, a --tracker-config
file under the flags, and a parser light enough that --help answers without loading torch or pandas."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from trackers.config import BoTSORTConfig, ByteTrackConfig, option_specs, save_config
from trackers.errors import TrackerError
from yolox_finetune.core.errors import UserError
from yolox_finetune.tracking.options import add_source_arguments, add_tracker_arguments, tracker_configs

REPO = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_source_arguments(parser, many=True)
    add_tracker_arguments(parser)
    return parser.parse_args(["--dets", "d", "--gt", "g", *argv])


def test_every_tracker_option_has_a_flag():
    parser = argparse.ArgumentParser()
    add_tracker_arguments(parser)
    flags = {option for action in parser._actions for option in action.option_strings}
    for name in option_specs():
        assert "--" + name.replace("_", "-") in flags
    assert "--no-class-aware" in flags and "--no-fuse-score" in flags


def test_flags_take_their_types_from_the_config_fields():
    configs = tracker_configs(parse("--track-buffer", "12", "--new-track-thresh", "none", "--no-class-aware",
                                    "--aspect-ratio-class-ids", "5,7", "--cmc", "orb", "--min-box-area", "4"))
    assert list(configs) == ["bytetrack", "botsort"]  # no --tracker and no file: every tracker
    for config in configs.values():
        assert (config.track_buffer, config.new_track_thresh, config.class_aware) == (12, None, False)
        assert config.aspect_ratio_class_ids == frozenset({5, 7}) and config.min_box_area == 4.0
    assert configs["botsort"].cmc == "orb"
    assert configs["bytetrack"] == ByteTrackConfig(track_buffer=12, class_aware=False, min_box_area=4,
                                                   aspect_ratio_class_ids=frozenset({5, 7}))
    # options left unset keep each tracker's own default
    assert configs["botsort"].track_thresh == 0.6 and configs["bytetrack"].track_thresh == 0.5


def test_bad_flag_values_stop_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("--track-buffer", "ten")
    assert exit_info.value.code == 2
    assert "argument --track-buffer: track_buffer: 'ten' is not a valid int" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--cmc", "optflow")
    with pytest.raises(SystemExit):
        parse("--tracker", "sort")
    with pytest.raises(TrackerError, match=r"bytetrack option low_thresh=0.7 is above track_thresh=0.5"):
        tracker_configs(parse("--tracker", "bytetrack", "--low-thresh", "0.7"))


def test_a_flag_of_a_tracker_that_does_not_run_is_refused():
    with pytest.raises(UserError, match="--cmc is an option of botsort only.*add --tracker botsort"):
        tracker_configs(parse("--tracker", "bytetrack", "--cmc", "orb"))


def test_config_file_then_flags(tmp_path):
    both = save_config({"bytetrack": ByteTrackConfig(match_thresh=0.6, track_buffer=7),
                        "botsort": BoTSORTConfig(cmc="ecc")}, tmp_path / "both.yaml")
    configs = tracker_configs(parse("--tracker-config", str(both), "--track-buffer", "9"))
    assert configs == {"bytetrack": ByteTrackConfig(match_thresh=0.6, track_buffer=9),
                       "botsort": BoTSORTConfig(cmc="ecc", track_buffer=9)}
    one = tmp_path / "one.yaml"
    one.write_text("tracker: botsort\ncmc: none\n")
    assert tracker_configs(parse("--tracker-config", str(one))) == {"botsort": BoTSORTConfig(cmc="none")}
    # --tracker picks trackers; those missing from the file start from their defaults
    configs = tracker_configs(parse("--tracker-config", str(one), "--tracker", "all"))
    assert configs == {"bytetrack": ByteTrackConfig(), "botsort": BoTSORTConfig(cmc="none")}


def test_help_and_parsing_load_no_heavy_package():
    """--help must answer at once: the tools parse and check options before importing the flows. scipy counts as
    heavy too (half a second): the trackers load it only when lap is missing."""
    code = """
import sys
sys.path.insert(0, "tools")
import conf_sweep, track_eval
from yolox_finetune.tracking.options import tracker_configs
tracker_configs(track_eval.parse_args(["--dets", "d", "--gt", "g", "--match-thresh", "0.7"]))
tracker_configs(conf_sweep.parse_args(["--dets", "d", "--gt", "g", "--grid", "track_buffer=5"]))
heavy = ("torch", "yolox", "pandas", "motmetrics", "matplotlib", "scipy", "loguru")
print(",".join(m for m in heavy if m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.strip() == ""
    for tool in ("track_eval.py", "conf_sweep.py"):
        proc = subprocess.run([sys.executable, f"tools/{tool}", "--help"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0 and "--cmc {sparseOptFlow,orb,ecc,none}" in proc.stdout
        assert "[bytetrack 0.5, botsort 0.6]" in proc.stdout  # defaults shown, read from the dataclasses

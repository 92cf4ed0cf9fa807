"""Tracker configs: frozen and self-checking, documented field by field, saved to and loaded from YAML, and the
trackers package standing alone (its own error type and class ids)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trackers import TRACKER_CLASSES, TRACKER_CONFIGS, make_tracker
from trackers.config import (
    PEDESTRIAN_CLASS_IDS,
    BoTSORTConfig,
    ByteTrackConfig,
    config_yaml,
    load_config,
    option_specs,
    save_config,
)
from trackers.errors import TrackerError
from trackers.gmc import identity_warp, is_identity_warp
from yolox_finetune.core import classes

REPO = Path(__file__).resolve().parents[2]


def test_pedestrian_ids_agree_with_the_project_class_list():
    assert PEDESTRIAN_CLASS_IDS == classes.PEDESTRIAN_CLASS_IDS == frozenset({classes.CLASS_IDS["pedestrian"]})
    assert ByteTrackConfig().aspect_ratio_class_ids == PEDESTRIAN_CLASS_IDS


def test_the_package_imports_without_the_project_torch_or_scipy():
    code = ("import sys, trackers; heavy = [m for m in ('torch', 'yolox', 'yolox_finetune', 'pandas', 'scipy') "
            "if m in sys.modules]; print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.strip() == ""


def test_tracker_error_is_a_value_error_marked_user_facing():
    assert issubclass(TrackerError, ValueError) and TrackerError.user_facing is True
    with pytest.raises(TrackerError, match="frame rate 0 must be positive"):
        make_tracker("bytetrack", frame_rate=0)


def test_configs_are_frozen_and_check_every_construction():
    config = ByteTrackConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.track_thresh = 0.9  # type: ignore[misc]
    assert dataclasses.replace(config, match_thresh=0.7).match_thresh == 0.7
    with pytest.raises(TrackerError, match=r"^bytetrack option match_thresh=1.5 is outside \[0, 1\]"):
        dataclasses.replace(config, match_thresh=1.5)
    with pytest.raises(TrackerError, match="track_buffer='ten' is not a whole number; pass e.g. 30"):
        ByteTrackConfig(track_buffer="ten")
    with pytest.raises(TrackerError, match="class_aware=1 is not true or false"):
        ByteTrackConfig(class_aware=1)
    with pytest.raises(TrackerError, match="track_thresh is empty"):
        ByteTrackConfig(track_thresh=None)
    with pytest.raises(TrackerError, match="min_box_area=nan is not a finite number"):
        ByteTrackConfig(min_box_area=float("nan"))
    with pytest.raises(TrackerError, match="botsort option cmc_downscale=0 must be 1 or more"):
        BoTSORTConfig(cmc_downscale=0)
    with pytest.raises(TrackerError, match="feature_momentum=2.0 is outside"):
        BoTSORTConfig(feature_momentum=2.0)
    # whole numbers are fine for float options, and lists of class ids become the frozen set the tracker uses
    converted = ByteTrackConfig(min_box_area=12, aspect_ratio_class_ids=[5, 6])
    assert converted.min_box_area == 12.0 and isinstance(converted.min_box_area, float)
    assert converted.aspect_ratio_class_ids == frozenset({5, 6})


def test_every_option_is_documented_typed_and_found_by_name():
    specs = option_specs()
    assert list(specs)[:3] == ["track_thresh", "low_thresh", "new_track_thresh"]
    for spec in specs.values():
        assert spec.doc, f"option {spec.name} has no #: comment in trackers/config.py"
    assert dict(specs["track_thresh"].defaults) == {"bytetrack": 0.5, "botsort": 0.6}
    assert dict(specs["cmc"].defaults) == {"botsort": "sparseOptFlow"}  # BoT-SORT only
    assert specs["cmc"].choices == ("sparseOptFlow", "orb", "ecc", "none")
    assert specs["new_track_thresh"].optional and specs["new_track_thresh"].kind is float
    assert specs["track_buffer"].parse("12") == 12 and specs["new_track_thresh"].parse("none") is None
    assert specs["class_aware"].parse("off") is False and specs["aspect_ratio_class_ids"].parse("5,6") == {5, 6}
    with pytest.raises(TrackerError, match="'ten' is not a valid int"):
        specs["track_buffer"].parse("ten")
    with pytest.raises(TrackerError, match="'optflow' is unknown; choose one of sparseOptFlow"):
        specs["cmc"].parse("optflow")
    assert set(TRACKER_CLASSES) == set(TRACKER_CONFIGS) == {"bytetrack", "botsort"}


def _changed_configs() -> dict:
    return {
        "bytetrack": ByteTrackConfig(track_thresh=0.45, new_track_thresh=0.5, class_aware=False,
                                     aspect_ratio_class_ids=frozenset({5, 7})),
        "botsort": BoTSORTConfig(cmc="orb", new_track_thresh=None, track_buffer=12, fuse_score=False),
    }


def test_yaml_files_round_trip_one_tracker_and_several(tmp_path):
    configs = _changed_configs()
    one = save_config(configs["botsort"], tmp_path / "botsort.yaml")
    assert load_config(one) == {"botsort": configs["botsort"]}
    assert "tracker: botsort" in one.read_text() and "# camera motion compensation" in one.read_text()
    both = save_config(configs, tmp_path / "sub" / "both.yaml")
    assert load_config(both) == configs
    assert "new_track_thresh: null" in both.read_text()  # BoT-SORT's "derive it", not its 0.7 default
    # a file may hold only some options: the rest keep their defaults
    (tmp_path / "short.yaml").write_text("tracker: bytetrack\nmatch_thresh: 0.7\n")
    assert load_config(tmp_path / "short.yaml") == {"bytetrack": ByteTrackConfig(match_thresh=0.7)}


@pytest.mark.parametrize(("text", "message"), [
    ("tracker: bytetrack\ntrackthresh: 0.4\n", r"bad.yaml: unknown bytetrack option 'trackthresh'; valid options"),
    ("bytetrack:\n  cmc: orb\n", r"bad.yaml: unknown bytetrack option 'cmc'"),
    ("sort:\n  track_thresh: 0.4\n", r"bad.yaml: unknown tracker 'sort'; choose one of bytetrack, botsort"),
    ("track_thresh: 0.4\n", r"bad.yaml: option 'track_thresh' needs a tracker: add a line 'tracker: bytetrack'"),
    ("tracker: botsort\ncmc: optflow\n", r"bad.yaml: botsort option cmc='optflow' is unknown"),
    ("tracker: bytetrack\ntrack_buffer: [1\n", r"bad.yaml:3: not valid YAML"),
    ("- 1\n- 2\n", r"bad.yaml: expected tracker options"),
    ("bytetrack: 0.5\n", r"bad.yaml: the entry of bytetrack must hold 'option: value' lines"),
])
def test_bad_files_name_the_file_and_the_key(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(TrackerError, match=message):
        load_config(tmp_path / "bad.yaml")


def test_missing_file_is_one_clear_line(tmp_path):
    with pytest.raises(TrackerError, match=r"tracker config .*nope.yaml cannot be read"):
        load_config(tmp_path / "nope.yaml")


def test_python_m_trackers_prints_loadable_defaults(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trackers", "bytetrack"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == config_yaml(ByteTrackConfig())
    (tmp_path / "defaults.yaml").write_text(proc.stdout)
    assert load_config(tmp_path / "defaults.yaml") == {"bytetrack": ByteTrackConfig()}
    proc = subprocess.run([sys.executable, "-m", "trackers", "sort"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown tracker 'sort'")
    proc = subprocess.run([sys.executable, "-m", "trackers", "botsort", "--reference"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "reference.yaml").write_text(proc.stdout)
    assert load_config(tmp_path / "reference.yaml") == {"botsort": BoTSORTConfig.reference()}
    assert "report_unconfirmed: true" in proc.stdout and "class_aware: false" in proc.stdout


def test_identity_warp_helper():
    assert is_identity_warp(identity_warp()) and is_identity_warp(np.eye(2, 3, dtype=np.float32))
    moved = identity_warp()
    moved[0, 2] = 3.0
    assert not is_identity_warp(moved)
    assert is_identity_warp(make_tracker("botsort").last_warp)

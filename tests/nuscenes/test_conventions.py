"""The converter keeps nuScenes' and MOTChallenge's conventions, on releases in the real table schema derived from
the synthetic one: official splits (mini, test), ignore entries, per-image visibility, class tables, images that
exist and frames that keep time."""

from __future__ import annotations

import configparser
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import trackeval
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.splits import create_splits_scenes

from yolox_finetune.core.classes import CLASS_IDS, CLASS_NAMES
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import MotRows, read_gt, write_results
from yolox_finetune.nuscenes.convert import convert_nuscenes
from yolox_finetune.nuscenes.mot_export import MOT17_CLASSES, MOT_CLASS_SCHEMES, frame_numbers
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = create_splits_scenes(verbose=False)
SPLITS = ("train", "val", "test")


def _coco(out: Path) -> dict[str, dict]:
    return {split: json.loads((out / "annotations" / f"{split}.json").read_text()) for split in SPLITS}


def _gt_of(out: Path) -> dict[str, MotRows]:
    return {seq.name: read_gt(seq / "gt" / "gt.txt") for seq in sorted((out / "mot").glob("*/*"))}


# --- 1. splits ---------------------------------------------------------------------------------------------------


def test_mini_release_uses_the_official_mini_lists(synthetic_root, derive_release, tmp_path):
    names = [OFFICIAL["mini_train"][0], OFFICIAL["mini_train"][1], OFFICIAL["mini_val"][0]]
    root = derive_release(synthetic_root, tmp_path / "mini", "v1.0-mini", names)
    summary = convert_nuscenes(root, "v1.0-mini", tmp_path / "out", cameras=["CAM_FRONT"], progress=False)
    assert summary["split_policy"] == "official"
    splits = summary["scene_splits"]
    assert splits[OFFICIAL["mini_val"][0]] == "test"
    assert {splits[n] for n in names[:2]} == {"train", "val"}  # mini_train: train plus the held-out val
    assert {im["scene_name"] for im in _coco(tmp_path / "out")["test"]["images"]} == {OFFICIAL["mini_val"][0]}
    forced = convert_nuscenes(root, "v1.0-mini", tmp_path / "hash", cameras=["CAM_FRONT"], split_policy_name="hash",
                              progress=False)
    assert forced["split_policy"] == "hash"


def test_release_without_annotations_goes_to_test_only_and_says_so(synthetic_root, derive_release, tmp_path,
                                                                    warnings_log):
    names = OFFICIAL["test"][:3]
    root = derive_release(synthetic_root, tmp_path / "test", "v1.0-test", names, annotated=False)
    summary = convert_nuscenes(root, "v1.0-test", tmp_path / "out", mot=True, progress=False)
    assert summary["annotated"] is False and summary["split_policy"] == "test-only"
    assert set(summary["scene_splits"].values()) == {"test"}
    assert summary["splits"]["test"]["images"] == 3 * 4 * 6 and summary["splits"]["test"]["boxes"] == 0
    assert summary["splits"]["train"]["images"] == summary["splits"]["val"]["images"] == 0
    assert any("no annotations" in m and "test split" in m for m in warnings_log)
    gts = _gt_of(tmp_path / "out")
    assert len(gts) == 3 * 6 and all(len(gt) == 0 for gt in gts.values())  # tracking still runs on it
    assert all(p.parent.name == "test" for p in (tmp_path / "out" / "mot").glob("*/*"))
    # an unannotated release outside the official lists too
    custom = derive_release(synthetic_root, tmp_path / "custom", "v1.0-custom", annotated=False)
    summary = convert_nuscenes(custom, "v1.0-custom", tmp_path / "out2", cameras=["CAM_FRONT"], progress=False)
    assert set(summary["scene_splits"].values()) == {"test"}


# --- 2. ground truth that scores trackers fairly -----------------------------------------------------------------


@pytest.fixture(scope="module")
def both_visibilities(synthetic_root, tmp_path_factory):
    """The synthetic release converted with every box and with --min-visibility 3 --ignore-dropped."""
    base = tmp_path_factory.mktemp("vis")
    convert_nuscenes(synthetic_root, VERSION, base / "all", mot=True, progress=False)
    summary = convert_nuscenes(synthetic_root, VERSION, base / "min3", mot=True, min_visibility=3,
                               ignore_dropped=True, progress=False)
    return base / "all", base / "min3", summary


def test_low_visibility_boxes_are_ignore_entries_in_gt_and_absent_from_coco(both_visibilities):
    everything, filtered, summary = both_visibilities
    level = {}  # (sequence, frame, track) -> nuScenes visibility level, from the unfiltered conversion
    for coco in _coco(everything).values():
        images = {im["id"]: im for im in coco["images"]}
        for ann in coco["annotations"]:
            im = images[ann["image_id"]]
            level[(im["sequence"], im["frame_index"], ann["track_id"])] = ann["visibility"]
    assert min(level.values()) < 3, "the synthetic set has occluded boxes"
    low = 0
    for seq, gt in _gt_of(filtered).items():
        for frame, track, consider, cls in zip(gt.frame, gt.track_id, gt.score, gt.class_id):
            key = (seq, int(frame), int(track))
            if key in level:  # a mapped class: ignore entry exactly when below the level
                assert consider == (0 if level[key] < 3 else 1), key
                low += level[key] < 3
            else:  # only dropped look-alikes are not in the unfiltered COCO
                assert consider == 0 and cls == CLASS_IDS["truck"], key
    assert low > 0
    for coco in _coco(filtered).values():
        assert all(ann["visibility"] >= 3 for ann in coco["annotations"])
    counts = {reason: sum(summary["splits"][s]["ignore_entries"].get(reason, 0) for s in SPLITS)
              for reason in ("low_visibility", "dropped_category")}
    assert counts["low_visibility"] == low


def test_ignore_dropped_writes_lookalike_categories_as_ignore_entries(both_visibilities, synthetic_root):
    _, filtered, summary = both_visibilities
    assert summary["ignore_dropped"] == sorted(["vehicle.emergency.police", "vehicle.emergency.ambulance",
                                                "vehicle.construction", "human.pedestrian.stroller",
                                                "human.pedestrian.wheelchair"])
    tables = {n: json.loads((synthetic_root / VERSION / f"{n}.json").read_text()) for n in ("category", "instance")}
    construction = {c["token"] for c in tables["category"] if c["name"] == "vehicle.construction"}
    n_construction = sum(i["category_token"] in construction for i in tables["instance"])
    assert n_construction > 0
    dropped = sum(summary["splits"][s]["ignore_entries"].get("dropped_category", 0) for s in SPLITS)
    assert dropped > 0
    for coco in _coco(filtered).values():
        assert not any(a["nusc_category"] == "vehicle.construction" for a in coco["annotations"])


def _in_image_fraction(points, clipped: list[float]) -> float:
    """Clipped box area over the area of the devkit's unclipped projection of the in-front corners."""
    full = (points[:, 0].max() - points[:, 0].min()) * (points[:, 1].max() - points[:, 1].min())
    x, y, w, h = clipped
    return w * h / full


def test_visibility_column_is_the_share_of_the_projection_inside_the_image(both_visibilities, synthetic_root,
                                                                           devkit_pixels):
    everything, _, _ = both_visibilities
    nusc = NuScenes(version=VERSION, dataroot=str(synthetic_root), verbose=False)
    gts = _gt_of(everything)
    checked = truncated = 0
    for coco in _coco(everything).values():
        images = {im["id"]: im for im in coco["images"]}
        for ann in coco["annotations"]:
            im = images[ann["image_id"]]
            gt = gts[im["sequence"]]
            row = np.flatnonzero((gt.frame == im["frame_index"]) & (gt.track_id == ann["track_id"]))
            assert len(row) == 1
            written = float(gt.visibility[row[0]])
            pixels = devkit_pixels(nusc, im["sample_data_token"], ann["sample_annotation_token"])
            expected = _in_image_fraction(pixels, ann["bbox"])
            assert written == pytest.approx(expected, abs=1e-3)
            x, y, w, h = ann["bbox"]
            inside = x > 0 and y > 0 and x + w < im["width"] and y + h < im["height"]
            if inside:
                assert written == pytest.approx(1.0, abs=1e-3)
            else:
                truncated += written < 0.9
            checked += 1
    assert checked > 100 and truncated > 0, "boxes cut by the image border read below 1"


def test_every_sequence_says_what_its_class_ids_mean(both_visibilities):
    everything, _, _ = both_visibilities
    for seq in sorted((everything / "mot").glob("*/*")):
        info = json.loads((seq / "classes.json").read_text())
        assert info["class_scheme"] == "ours"
        assert info["classes"] == {str(i + 1): name for i, name in enumerate(CLASS_NAMES)}
        assert info["columns"][6:] == ["consider", "class", "visibility"]


def test_mot17_classes_run_in_stock_trackeval_with_ignore_entries_as_distractors(synthetic_root, tmp_path):
    out = tmp_path / "out"
    convert_nuscenes(synthetic_root, VERSION, out, mot=True, min_visibility=3, mot_classes="mot17", progress=False)
    gt_root = out / "mot" / "test"
    sequences = sorted(p.name for p in gt_root.iterdir())
    info = json.loads((gt_root / sequences[0] / "classes.json").read_text())
    assert info["class_scheme"] == "mot17" and info["classes"]["1"] == "pedestrian"
    assert info["classes"] == {str(k): v for k, v in MOT17_CLASSES.items()}
    # a perfect pedestrian tracker that also follows every occluded pedestrian (the distractor rows)
    trackers = tmp_path / "trackers" / "perfect" / "data"
    pedestrians = distractors = 0
    for name in sequences:
        gt = read_gt(gt_root / name / "gt" / "gt.txt")
        assert set(np.unique(gt.score[gt.class_id != 1]).tolist()) <= {0.0}, "only pedestrians are scored"
        followed = gt.select(np.isin(gt.class_id, [1, 8]))
        pedestrians += int(np.sum(gt.class_id == 1))
        distractors += int(np.sum(gt.class_id == 8))
        write_results(trackers / f"{name}.txt",
                      MotRows(followed.frame, followed.track_id, followed.box, np.ones(len(followed)),
                              np.ones(len(followed), np.int64), np.ones(len(followed))))
    assert pedestrians > 0 and distractors > 0
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(tmp_path / "trackers"), "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": {name: None for name in sequences}, "BENCHMARK": "MOT17", "PRINT_CONFIG": False})
    clear = trackeval.metrics.CLEAR({"PRINT_CONFIG": False})
    totals = {"CLR_TP": 0, "CLR_FP": 0, "CLR_FN": 0, "IDSW": 0}
    for name in sequences:
        data = dataset.get_preprocessed_seq_data(dataset.get_raw_seq_data("perfect", name), "pedestrian")
        result = clear.eval_sequence(data)
        for key in totals:
            totals[key] += int(result[key])
    assert totals == {"CLR_TP": pedestrians, "CLR_FP": 0, "CLR_FN": 0, "IDSW": 0}


# --- 3. files that exist, frames that keep time ------------------------------------------------------------------


def _first_keyframe_image(root: Path, version: str) -> str:
    return next(sd["filename"] for sd in json.loads((root / version / "sample_data.json").read_text())
                if sd["is_key_frame"] and sd["fileformat"] == "jpg")


def test_a_missing_image_stops_the_conversion_with_one_line(synthetic_root, derive_release, tmp_path):
    root = derive_release(synthetic_root, tmp_path / "partial", VERSION, copy_images=True)
    missing = _first_keyframe_image(root, VERSION)
    (root / missing).unlink()
    with pytest.raises(UserError) as error:
        convert_nuscenes(root, VERSION, tmp_path / "out", mot=True, progress=False)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"1 of {3 * 4 * 6} camera keyframe images")
    assert missing in message and "--allow-missing" in message
    assert not (tmp_path / "out").exists()

    summary = convert_nuscenes(root, VERSION, tmp_path / "out", mot=True, allow_missing=True, progress=False)
    assert summary["missing_images"] == 1
    files = [im["file_name"] for coco in _coco(tmp_path / "out").values() for im in coco["images"]]
    assert len(files) == 3 * 4 * 6 - 1 and missing not in files
    links = list((tmp_path / "out" / "mot").glob("*/*/img1/*"))
    assert len(links) == len(files) and all(link.resolve().is_file() for link in links), "no broken symlinks"


def test_cli_names_the_missing_image_in_one_line(synthetic_root, derive_release, tmp_path, run_tool):
    root = derive_release(synthetic_root, tmp_path / "partial", VERSION, copy_images=True)
    missing = _first_keyframe_image(root, VERSION)
    (root / missing).unlink()
    done = run_tool("convert_nuscenes.py", "--dataroot", str(root), "--version", VERSION, "--out",
                    str(tmp_path / "o"), "--workers", "2", timeout=300)
    assert done.returncode == 2
    last = done.stderr.rstrip("\n").split("\n")[-1]  # after the progress bar of the check
    assert last.startswith("error: 1 of") and missing in last and "--allow-missing" in last
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr


def _drop_keyframes(tables: dict) -> None:
    """CAM_FRONT loses its second keyframe in synth-0000, CAM_BACK is absent from synth-0001, and an empty scene
    (no samples) is added."""
    scene_token = {s["name"]: s["token"] for s in tables["scene"]}
    samples = {s["token"]: s for s in tables["sample"]}
    channel = {c["token"]: next(s["channel"] for s in tables["sensor"] if s["token"] == c["sensor_token"])
               for c in tables["calibrated_sensor"]}

    def where(sd):
        return samples[sd["sample_token"]]["scene_token"], channel[sd["calibrated_sensor_token"]]

    front = sorted((sd for sd in tables["sample_data"]
                    if sd["is_key_frame"] and where(sd) == (scene_token["synth-0000"], "CAM_FRONT")),
                   key=lambda sd: sd["timestamp"])
    gone = {front[1]["token"]}
    gone |= {sd["token"] for sd in tables["sample_data"] if where(sd) == (scene_token["synth-0001"], "CAM_BACK")}
    tables["sample_data"] = [sd for sd in tables["sample_data"] if sd["token"] not in gone]
    empty = dict(tables["scene"][0], token="empty-scene-token", name="synth-0099", nbr_samples=0)
    tables["scene"].append(empty)


def test_a_missing_keyframe_keeps_time_and_gaps_are_reported(synthetic_root, derive_release, tmp_path,
                                                             warnings_log):
    root = derive_release(synthetic_root, tmp_path / "gaps", VERSION, edit=_drop_keyframes)
    summary = convert_nuscenes(root, VERSION, tmp_path / "out", mot=True, progress=False)
    assert summary["missing_keyframes"] == 1
    assert summary["absent_cameras"] == {"synth-0001": ["CAM_BACK"]}
    assert summary["empty_scenes"] == ["synth-0099"]
    for words in ("missing inside 1 scene", "absent from a scene", "no keyframe of the chosen cameras"):
        assert any(words in m for m in warnings_log), words

    seq = next((tmp_path / "out" / "mot").glob("*/synth-0000_CAM_FRONT"))
    info = configparser.ConfigParser()
    info.read(seq / "seqinfo.ini")
    assert info["Sequence"]["frameRate"] == "2" and info["Sequence"]["seqLength"] == "4"
    assert sorted(p.name for p in (seq / "img1").iterdir()) == ["000001.jpg", "000003.jpg", "000004.jpg"]
    assert set(read_gt(seq / "gt" / "gt.txt").frame.tolist()) <= {1, 3, 4}
    images = [im for coco in _coco(tmp_path / "out").values() for im in coco["images"]
              if im["sequence"] == "synth-0000_CAM_FRONT"]
    assert sorted(im["frame_index"] for im in images) == [1, 3, 4]
    assert not list((tmp_path / "out" / "mot").glob("*/synth-0001_CAM_BACK"))
    other = next((tmp_path / "out" / "mot").glob("*/synth-0000_CAM_BACK"))
    assert sorted(p.name for p in (other / "img1").iterdir()) == [f"{i:06d}.jpg" for i in range(1, 5)]


def test_frame_numbers_follow_time_and_never_repeat():
    second = 1_000_000
    assert frame_numbers([0, second // 2, 3 * second // 2, 2 * second], 2) == [1, 2, 4, 5]
    assert frame_numbers([0, 450_000, 520_000, 1_000_000], 2) == [1, 2, 3, 4]  # 0.52 s rounds to 2, moves on to 3
    assert frame_numbers([], 2) == []


# --- class maps and the CLI ----------------------------------------------------------------------------------------


def test_class_map_update_edits_the_default_map(synthetic_root, tmp_path):
    update = tmp_path / "update.json"
    update.write_text(json.dumps({"vehicle.construction": "truck", "vehicle.trailer": None}))
    convert_nuscenes(synthetic_root, VERSION, tmp_path / "out", cameras=["CAM_FRONT"], class_map_update=update,
                     progress=False)
    anns = [a for coco in _coco(tmp_path / "out").values() for a in coco["annotations"]]
    categories = {a["nusc_category"] for a in anns}
    assert {"vehicle.construction", "vehicle.car"} <= categories and "vehicle.trailer" not in categories
    assert {a["category_id"] for a in anns if a["nusc_category"] == "vehicle.construction"} == {CLASS_IDS["truck"]}
    with pytest.raises(UserError, match="pass only one"):
        convert_nuscenes(synthetic_root, VERSION, tmp_path / "o2", class_map=update, class_map_update=update,
                         progress=False)


def test_cli_choices_match_the_library():
    spec = importlib.util.spec_from_file_location("convert_tool", REPO / "tools" / "convert_nuscenes.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.MOT_CLASS_SCHEMES == MOT_CLASS_SCHEMES
    args = tool.parse_args(["--dataroot", "d", "--version", "v", "--out", "o"])
    assert (args.split_policy, args.mot_classes, args.allow_missing, args.ignore_dropped) == ("auto", "ours",
                                                                                             False, False)

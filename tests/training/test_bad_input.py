"""Bad input to tools/train.py is found before any work starts: one ``error:`` line naming the file, the record and
the fix, exit status 2, no traceback, no run dir left behind and nothing of an earlier run touched.

Each case runs the CLI's own ``main`` on a copy of the tiny COCO fixture spoilt in one way (its images linked, not
copied); a few cases of each kind start it as a separate process, exactly as a user does.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from yolox_finetune.core.errors import UserError
from yolox_finetune.training.exp import apply_overrides, load_exp
from yolox_finetune.training.inputs import box_is_usable

CPU = ("--device", "cpu")
TRAIN = Path(__file__).resolve().parents[2] / "tools" / "train.py"


@pytest.fixture()
def train_cli(run_tool, run_tool_inprocess):
    """``train_cli(*args, process=False)``: tools/train.py with these arguments, run in this process (quick: the
    imports are done) or, with ``process=True``, started as a user starts it; returns returncode, stdout, stderr."""

    def run(*args, process: bool = False):
        return (run_tool if process else run_tool_inprocess)("train.py", *args)

    return run


@pytest.fixture()
def one_error(one_error_line):
    """``one_error(proc, *expected)``: the single ``error:`` line of a failed start (exit 2, no traceback), and no
    sign of torch.distributed (torchrun was never started)."""

    def check(proc, *expected: str) -> str:
        line = one_error_line(proc, *expected)
        assert "torch.distributed" not in proc.stderr, proc.stderr[-2000:]
        return line

    return check


@pytest.fixture()
def spoilt(tmp_path, tiny_coco):
    """``spoilt(train=change, val=change)``: a data_dir like the tiny COCO set whose split files went through
    ``change(coco_dict)``, or hold ``change`` when it is text; returns the data_dir."""

    def make(**changes) -> Path:
        root = tmp_path / f"data{len(list(tmp_path.glob('data*')))}"
        (root / "annotations").mkdir(parents=True)
        os.symlink(tiny_coco / "images", root / "images")
        for split in ("train", "val"):
            path = root / "annotations" / f"{split}.json"
            change = changes.get(split)
            if isinstance(change, str):
                path.write_text(change, encoding="utf-8")
                continue
            coco = json.loads((tiny_coco / "annotations" / f"{split}.json").read_text(encoding="utf-8"))
            if change is not None:
                change(coco)
            path.write_text(json.dumps(coco), encoding="utf-8")  # NaN is written as the bare token NaN
        return root

    return make


def set_annotation(index: int, **fields):
    return lambda coco: coco["annotations"][index].update(fields)


def drop_key(key: str):
    return lambda coco: coco.pop(key)


def swap_category_names(coco):
    coco["categories"][0]["name"], coco["categories"][1]["name"] = "truck", "car"


def add_category(coco):
    coco["categories"].append({"id": 8, "name": "tram"})


def remove_area(coco):
    del coco["annotations"][5]["area"]


# ---------------------------------------------------------------------- 1. the annotation files
ANNOTATION_CASES = {
    "truncated": (None, "train", "TRUNCATE",
                  ["train.json is not valid JSON", "line 1 column", "convert the data again"]),
    "not_an_object": (None, "train", "[1, 2, 3]", ["train.json holds a JSON list, not a COCO object"]),
    "no_annotations": (drop_key("annotations"), "train", None, ["not a COCO detection file: no annotations list"]),
    "no_categories": (drop_key("categories"), "val", None, ["val.json is not a COCO detection file: no categories"]),
    "unknown_image": (set_annotation(3, image_id=999), "train", None,
                      ["train.json: annotation #3 (id 4) has image_id 999, which no image", "fix or remove"]),
    "unknown_category": (set_annotation(2, category_id=9), "train", None,
                         ["annotation #2 (id 3) has category_id 9, which is none of the file's categories"]),
    "category_past_head": (add_category, "train", None,
                           ["category id 8 ('tram') is class index 7, beyond the exp's num_classes 7",
                            "set num_classes and class_names"]),
    "category_renamed": (swap_category_names, "val", None,
                         ["val.json: category id 1 ('truck') becomes class index 0, which the exp names 'car'"]),
    "bbox_three_numbers": (set_annotation(1, bbox=[1, 2, 3]), "train", None,
                           ["annotation #1 (id 2) has bbox [1, 2, 3]; a COCO bbox is 4 finite numbers"]),
    "bbox_nan": (set_annotation(4, bbox=[1, 2, math.nan, 4]), "train", None,
                 ["annotation #4 (id 5) has bbox [1, 2, nan, 4]"]),
    "bbox_text": (set_annotation(0, bbox="10 10 5 5"), "val", None, ["val.json: annotation #0"]),
    "no_area": (remove_area, "train", None, ["annotation #5 (id 6) lacks 'area'"]),
}


#: the cases started as separate processes (the others run the same main in the test's process)
ANNOTATION_PROCESS_CASES = {"truncated"}


@pytest.mark.parametrize("case", list(ANNOTATION_CASES))
def test_a_bad_annotation_file_is_one_line_naming_file_and_record(case, spoilt, make_tiny_exp, train_cli, tmp_path,
                                                                  tiny_coco, one_error):
    change, split, raw, expected = ANNOTATION_CASES[case]
    if raw == "TRUNCATE":
        raw = (tiny_coco / "annotations" / f"{split}.json").read_text(encoding="utf-8")[:700]
    data_dir = spoilt(**{split: raw if raw is not None else change})
    proc = train_cli("-f", make_tiny_exp(), *CPU, "data_dir", data_dir, process=case in ANNOTATION_PROCESS_CASES)
    line = one_error(proc, *expected)
    assert str(data_dir / "annotations" / f"{split}.json") in line  # the file, by its full path
    assert not (tmp_path / "out").exists()


def test_several_bad_records_are_counted_in_the_one_line(spoilt, make_tiny_exp, train_cli, one_error):
    def three_bad(coco):
        for index in (2, 5, 7):
            coco["annotations"][index]["image_id"] = 500 + index

    proc = train_cli("-f", make_tiny_exp(), *CPU, "data_dir", spoilt(train=three_bad))
    one_error(proc, "annotation #2 (id 3) has image_id 502", "2 more annotations have problems")


# ---------------------------------------------------------------------- 2. images missing on disk
@pytest.mark.parametrize(("split", "lost"), [("train", [2, 5]), ("val", [0]), ("train", [0, 1, 3, 4, 6])])
def test_missing_images_are_found_before_training(split, lost, spoilt, make_tiny_exp, train_cli, tmp_path, one_error):
    """In this process; the case after this one starts the tool as a separate process."""
    def rename(coco):
        for index in lost:
            coco["images"][index]["file_name"] = f"images/gone_{index}.jpg"

    data_dir = spoilt(**{split: rename})
    proc = train_cli("-f", make_tiny_exp(), *CPU, "data_dir", data_dir)
    total = 12 if split == "train" else 4
    line = one_error(proc, f"{len(lost)} of {total} images listed in {data_dir / 'annotations' / split}.json are "
                           f"missing under {data_dir}", f"first: images/gone_{lost[0]}.jpg")
    shown = [index for index in lost if f"gone_{index}.jpg" in line]
    assert shown == lost[:3] and ("..." in line) == (len(lost) > 3)
    assert not (tmp_path / "out").exists()


def test_missing_images_with_two_processes_are_reported_once_before_launch(spoilt, make_tiny_exp, run_tool, one_error):
    def rename(coco):
        coco["images"][1]["file_name"] = "images/gone.jpg"

    proc = run_tool("train.py", "-f", make_tiny_exp(), *CPU, "-d", "2", "data_dir", spoilt(train=rename))
    one_error(proc, "1 of 12 images listed in", "images/gone.jpg")


# ---------------------------------------------------------------------- 3. boxes without area
def test_box_is_usable_follows_yolox_clipping():
    assert box_is_usable([10, 10, 5, 5], 25, 100, 100)
    assert not box_is_usable([10, 10, 0, 5], 25, 100, 100)  # zero width
    assert not box_is_usable([10, 10, 5, -3], 25, 100, 100)  # negative height
    assert not box_is_usable([120, 10, 5, 5], 25, 100, 100)  # wholly right of the image
    assert not box_is_usable([10, 10, 5, 5], 0, 100, 100)  # no area: YOLOX drops it too
    assert box_is_usable([-3, 10, 5, 5], 25, 100, 100)  # partly outside: clipped, kept


def flatten_boxes(*indices: int):
    """Give the annotations at ``indices`` a zero width (even positions) or a negative height (odd ones)."""
    def change(coco):
        for position, index in enumerate(indices):
            coco["annotations"][index]["bbox"][2 + position % 2] = 0 if position % 2 == 0 else -4
    return change


def test_boxes_without_area_are_skipped_and_counted_per_split(spoilt, make_tiny_exp, run_tool_inprocess, tmp_path):
    data_dir = spoilt(train=flatten_boxes(0, 4, 9), val=flatten_boxes(1))
    exp_file = make_tiny_exp("""
        self.max_epoch = 1
        self.warmup_epochs = 0
        self.no_aug_epochs = 0
    """)
    proc = run_tool_inprocess("train.py", "-f", exp_file, *CPU, "data_dir", data_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (tmp_path / "out" / "tiny" / "train_log.txt").read_text(encoding="utf-8")
    train_total = len(json.loads((data_dir / "annotations" / "train.json").read_text())["annotations"])
    assert f"train ({data_dir}/annotations/train.json): skipped 3 of {train_total} boxes with zero or negative" in log
    assert f"val ({data_dir}/annotations/val.json): skipped 1 of" in log

    exp = load_exp(exp_file)
    exp.data_dir = str(data_dir)
    train_set, val_set = exp.get_train_dataset()._dataset, exp.get_val_dataset()
    for dataset in (train_set, val_set):
        for targets, *_ in dataset.annotations:
            assert (targets[:, 2] > targets[:, 0]).all() and (targets[:, 3] > targets[:, 1]).all()
    assert sum(len(t) for t, *_ in train_set.annotations) == train_total - 3
    assert len(val_set.coco.anns) == len(val_set.coco.dataset["annotations"])  # COCO mAP scores the kept boxes only
    assert all(annotation["bbox"][2] > 0 and annotation["bbox"][3] > 0 for annotation in val_set.coco.anns.values())


def flatten_all(coco):
    for annotation in coco["annotations"]:
        annotation["bbox"][3] = 0


def empty(coco):
    coco["images"], coco["annotations"] = [], []


@pytest.mark.parametrize(("split", "change", "expected", "process"), [
    ("train", flatten_all, "train.json has no usable box among its", True),
    ("val", flatten_all, "have no width, height or area inside their image): a val split without objects", False),
    ("train", empty, "train.json lists no images: a train split of nothing is meaningless", False),
    ("val", empty, "val.json lists no images", False),
])
def test_a_split_left_with_nothing_is_an_error(split, change, expected, process, spoilt, make_tiny_exp, train_cli,
                                               tmp_path, one_error):
    proc = train_cli("-f", make_tiny_exp(), *CPU, "data_dir", spoilt(**{split: change}), process=process)
    one_error(proc, expected)
    assert not (tmp_path / "out").exists()


def test_no_val_split_is_read_when_the_exp_does_not_evaluate(spoilt, make_tiny_exp, train_cli, one_error):
    proc = train_cli("-f", make_tiny_exp(), *CPU, "--resume", "data_dir", spoilt(val="not json"),
                     "eval_interval", "0")
    one_error(proc, "--resume: no checkpoint at")  # checked after the data: the broken val file was not read


# ---------------------------------------------------------------------- 4. overrides
OVERRIDE_PROCESS_CASES = {"max_epoch abc"}


@pytest.mark.parametrize(("overrides", "expected"), [
    (["max_epoch", "abc"], "override max_epoch 'abc': expected an integer (the exp has max_epoch 2)"),
    (["batch_size", "2.5"], "override batch_size '2.5': expected an integer"),
    (["input_size", "640"], "override input_size '640': expected a tuple (the exp has input_size (96, 160))"),
    (["basic_lr_per_img", "fast"], "override basic_lr_per_img 'fast': expected a number"),
    (["ema", "maybe"], "override ema 'maybe': expected True or False"),
    (["seed", "0.5"], "override seed '0.5': expected None or an integer"),
    (["max_epochs", "3"], "unknown exp attribute 'max_epochs' in overrides; did you mean max_epoch"),
    (["max_epoch", "3", "seed"], "overrides come in KEY VALUE pairs; got an odd list: max_epoch 3 seed"),
    (["max_epoch", "1", "--plan"], "'--plan' came after the KEY VALUE overrides"),
    (["max_epoch", "0"], "max_epoch must be a whole number of at least 1, not 0"),
])
def test_an_override_of_the_wrong_type_names_key_value_and_type(overrides, expected, make_tiny_exp, train_cli,
                                                                 tmp_path, one_error):
    proc = train_cli("-f", make_tiny_exp(), *CPU, *overrides, process=" ".join(overrides) in OVERRIDE_PROCESS_CASES)
    one_error(proc, expected)
    assert not (tmp_path / "out").exists()


def test_overrides_take_the_types_their_attributes_accept(tiny_exp_file):
    exp = load_exp(tiny_exp_file)
    applied = apply_overrides(exp, ["tracking_val", "True", "seed", "None", "exp_name", "2024", "warmup_lr", "1e-5",
                                    "mosaic_prob", "1", "grad_clip_norm", "10", "best_metric", "-IDSW:bytetrack",
                                    "ckpt_epochs", "(1, 2)"])
    assert applied == {"tracking_val": True, "seed": None, "exp_name": "2024", "warmup_lr": 1e-5, "mosaic_prob": 1.0,
                       "grad_clip_norm": 10, "best_metric": "-IDSW:bytetrack", "ckpt_epochs": (1, 2)}
    assert isinstance(exp.mosaic_prob, float)
    with pytest.raises(UserError, match=r"override ckpt_epochs '3': expected None or a tuple"):
        apply_overrides(exp, ["ckpt_epochs", "3"])


# ---------------------------------------------------------------------- 5. batch size and devices
BATCH_PROCESS_CASES = {"-b 3 -d 2"}  # the real launcher path: torchrun is never started


@pytest.mark.parametrize(("args", "expected"), [
    (["-b", "0"], "-b 0: the batch size must be a whole number of images, at least 1"),
    (["-b", "-4"], "-b -4: the batch size must be"),
    (["-b", "0", "--plan"], "-b 0: the batch size must be"),
    (["-b", "3", "-d", "2"], "batch size 3 (-b) is not divisible by the 2 processes of -d 2"),
    (["-d", "2", "batch_size", "5"], "batch size 5 (the exp's batch_size) is not divisible by the 2 processes"),
    (["-d", "0"], "-d 0: need at least one device"),
])
def test_a_bad_batch_or_device_count_is_one_line_before_any_launch(args, expected, make_tiny_exp, train_cli,
                                                                   tmp_path, one_error):
    proc = train_cli("-f", make_tiny_exp(), *CPU, *args, process=" ".join(args) in BATCH_PROCESS_CASES)
    one_error(proc, expected)
    assert proc.stderr.count(expected) == 1 and "OMP_NUM_THREADS" not in proc.stderr  # torchrun never started
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- 6. a checkpoint of another model size
@pytest.fixture()
def earlier_run(tmp_path, make_tiny_exp):
    """A tiny exp whose run dir holds a training state of its own size (depth 0.33, width 0.125), as if one epoch
    had run; returns (exp file, run dir)."""
    exp_file = make_tiny_exp()
    exp = load_exp(exp_file)
    exp.run_dir.mkdir(parents=True)
    model = exp.get_model()
    state = {"model": model.state_dict(), "optimizer": {"state": {}, "param_groups": []}, "start_epoch": 1,
             "exp_name": exp.exp_name}
    for name in ("latest_ckpt.pth", "epoch_1.pth"):
        torch.save(state, exp.run_dir / name)
    (exp.run_dir / "train_log.txt").write_text("epoch 1 done\n", encoding="utf-8")
    return exp_file, exp.run_dir


@pytest.mark.parametrize(("args", "expected"), [
    (["--resume", "width", "0.25"], "--resume: checkpoint {run}/latest_ckpt.pth is of another model size: it looks "
                                    "like depth 0.33, width 0.125, the exp has depth 0.33, width 0.25; resume with "
                                    "the exp that trained it"),
    (["--resume", "depth", "0.67"], "it looks like depth 0.33, width 0.125, the exp has depth 0.67, width 0.125"),
    (["--resume", "-c", "{run}/epoch_1.pth", "width", "0.5"],
     "checkpoint {run}/epoch_1.pth is of another model size: it looks like depth 0.33, width 0.125, the exp has "
     "depth 0.33, width 0.5 (YOLOX-S)"),
    (["--overwrite", "-c", "{run}/epoch_1.pth", "width", "0.25"],
     "-c: checkpoint {run}/epoch_1.pth is of another model size: it looks like depth 0.33, width 0.125, the exp "
     "has depth 0.33, width 0.25; set depth and width in the exp to the checkpoint's"),
])
def test_a_checkpoint_of_another_size_is_refused_and_the_run_untouched(args, expected, earlier_run, train_cli,
                                                                        snapshot, one_error):
    exp_file, run_dir = earlier_run
    before = snapshot(run_dir)
    started_apart = args[:2] == ["--resume", "width"]  # one case as a separate process
    proc = train_cli("-f", exp_file, *CPU, *[a.format(run=run_dir) for a in args], process=started_apart)
    one_error(proc, expected.format(run=run_dir))
    assert snapshot(run_dir) == before  # not even the log grew; --overwrite deleted nothing


def test_a_new_run_from_a_checkpoint_of_another_size_leaves_no_run_dir(earlier_run, train_cli, tmp_path, one_error):
    exp_file, run_dir = earlier_run
    proc = train_cli("-f", exp_file, *CPU, "-c", run_dir / "epoch_1.pth", "exp_name", "wider", "width", "0.25")
    one_error(proc, "-c: checkpoint", "the exp has depth 0.33, width 0.25")
    assert not (tmp_path / "out" / "wider").exists()


def test_resume_without_a_checkpoint_leaves_no_run_dir(make_tiny_exp, train_cli, tmp_path, one_error):
    proc = train_cli("-f", make_tiny_exp(), *CPU, "--resume")
    one_error(proc, f"--resume: no checkpoint at {tmp_path}/out/tiny/latest_ckpt.pth")
    assert not (tmp_path / "out").exists()

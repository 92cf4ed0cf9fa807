"""Checkpoints users already have: stock YOLOX files (numpy ``best_ap``), DDP ``module.`` names and plain state
dicts load under ``weights_only``; a checkpoint of another model size is refused with one line; 80-class COCO heads
start our 7 classes' rows. Stock YOLOX entry points (eval loader, evaluator, random_resize) on our exps.

Every model here is a real YOLOX network of a tiny size (depth 0.33, width 0.125), built by stock YOLOX's Exp for
the "stock" checkpoints and by our exp for the fine-tuned ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from yolox.data.datasets import COCO_CLASSES
from yolox.exp import Exp as StockExp
from yolox.utils import save_checkpoint as stock_save_checkpoint

from yolox_finetune.core.classes import CLASS_NAMES
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.run_files import TRAIN_LOG
from yolox_finetune.training.checkpoint import (
    apparent_size,
    load_model_weights,
    load_state_checked,
    read_checkpoint,
)
from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.trainer import TrainOptions, train

TINY = {"depth": 0.33, "width": 0.125}


def stock_model(num_classes: int = 80, depth: float = 0.33, width: float = 0.125) -> torch.nn.Module:
    """A model as stock YOLOX builds it (COCO's 80 classes unless told)."""
    exp = StockExp()
    exp.num_classes, exp.depth, exp.width = num_classes, depth, width
    torch.manual_seed(1)
    return exp.get_model()


def save_stock_style(model: torch.nn.Module, folder: Path, prefix: str = "") -> Path:
    """What stock YOLOX's Trainer.save_ckpt writes, through stock ``yolox.utils.save_checkpoint``: start_epoch,
    model, optimizer, and best_ap as the numpy float that COCOeval's stats give."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    state = {"start_epoch": 300, "model": {prefix + k: v for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict(), "best_ap": max(0, np.float64(0.4312)), "curr_ap": np.float64(0.4)}
    stock_save_checkpoint(state, True, str(folder), "latest")
    return folder / "best_ckpt.pth"


def tiny_exp(make_tiny_exp, folder: Path, extra: str = ""):
    return load_exp(make_tiny_exp(extra, "exp.py", folder))


def backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("backbone.")}


# ---------------------------------------------------------------------- reading
def test_stock_checkpoint_with_numpy_best_ap_reads_safely(tmp_path):
    path = save_stock_style(stock_model(), tmp_path)
    with pytest.raises(Exception, match="numpy"):  # what users hit before: plain weights_only refuses it
        torch.load(path, map_location="cpu", weights_only=True)
    ckpt = read_checkpoint(path)
    assert ckpt["best_ap"] == pytest.approx(0.4312) and type(ckpt["best_ap"]) is float
    assert ckpt["start_epoch"] == 300 and "optimizer" in ckpt
    name = "head.cls_preds.0.weight"
    assert torch.equal(ckpt["model"][name], stock_model().state_dict()[name])


def test_ddp_prefixes_and_plain_state_dicts_read_as_model_weights(tmp_path):
    model = stock_model()
    ddp = read_checkpoint(save_stock_style(model, tmp_path / "ddp", prefix="module."))
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    plain = read_checkpoint(tmp_path / "plain.pth")
    assert set(ddp["model"]) == set(plain["model"]) == set(model.state_dict())
    assert plain.keys() == {"model"}


def test_python_objects_and_object_arrays_are_still_refused(tmp_path):
    torch.save({"model": stock_model().state_dict(), "args": argparse.Namespace(lr=1)}, tmp_path / "args.pth")
    with pytest.raises(UserError, match="Python objects beyond tensors"):
        read_checkpoint(tmp_path / "args.pth")
    torch.save({"model": {"w": torch.zeros(1)}, "names": np.array(["a", None], dtype=object)}, tmp_path / "obj.pth")
    with pytest.raises(UserError, match="not a loadable YOLOX checkpoint"):
        read_checkpoint(tmp_path / "obj.pth")


# ---------------------------------------------------------------------- -c for training
@pytest.mark.parametrize("form", ["stock", "ddp", "plain"])
def test_train_c_starts_from_stock_checkpoints(tmp_path, make_tiny_exp, form):
    source = stock_model()
    if form == "plain":
        path = tmp_path / "plain.pth"
        torch.save(source.state_dict(), path)
    else:
        path = save_stock_style(source, tmp_path / form, prefix="module." if form == "ddp" else "")
    exp = tiny_exp(make_tiny_exp, tmp_path, """
        self.max_epoch = 1
        self.warmup_epochs = 0
        self.no_aug_epochs = 0
        self.eval_interval = 0
        self.ema = False
    """)
    train(exp, TrainOptions(device="cpu", ckpt=str(path)))
    trained = read_checkpoint(exp.run_dir / "epoch_1.pth")["model"]
    # head-only training with frozen BN: the backbone is exactly the checkpoint's (it would be random if not loaded)
    expected = backbone_state(source.state_dict())
    assert expected and all(torch.equal(trained[k], v) for k, v in expected.items())
    log = (exp.run_dir / TRAIN_LOG).read_text()
    assert ("skipped head.cls_preds.0.weight: checkpoint shape [80, 32, 1, 1] != model shape [7, 32, 1, 1]: "
            "class-dependent head tensor (80 classes in the checkpoint, 7 in the exp)") in log
    assert "car <- car" in log and "pedestrian <- person" in log and "kept at YOLOX's initialisation" in log


def test_resume_refuses_a_stock_training_state(tmp_path, make_tiny_exp):
    path = save_stock_style(stock_model(num_classes=len(CLASS_NAMES)), tmp_path / "stock")
    exp = tiny_exp(make_tiny_exp, tmp_path, "self.eval_interval = 0")
    with pytest.raises(UserError, match="not written by this trainer .* with -c instead"):
        train(exp, TrainOptions(device="cpu", ckpt=str(path), resume=True))


# ---------------------------------------------------------------------- size check
def test_apparent_size_reads_depth_and_width_from_tensors():
    assert apparent_size(stock_model(depth=0.33, width=0.125).state_dict()) == (0.33, 0.125)
    assert apparent_size(stock_model(depth=0.67, width=0.25).state_dict()) == (0.67, 0.25)
    assert apparent_size({"x": torch.zeros(1)}) == (None, None)


@pytest.mark.parametrize(("depth", "width", "says"), [
    (0.33, 0.25, "tensors of another shape (first: backbone.backbone.stem"),
    (0.67, 0.125, "tensors the model does not have (first: backbone.backbone.dark2.1.m.1."),
])
def test_another_model_size_is_refused_naming_both_sizes(tmp_path, depth, width, says):
    ours = stock_model(num_classes=len(CLASS_NAMES))
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    other = stock_model(depth=depth, width=width).state_dict()
    with pytest.raises(UserError) as caught:
        load_state_checked(ours, other, "other.pth", exp_size=(0.33, 0.125))
    message = str(caught.value)
    assert "\n" not in message
    assert f"it looks like depth {depth}, width {width}, the exp has depth 0.33, width 0.125" in message
    assert says in message and "set depth and width in the exp" in message
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())  # nothing half-loaded


def test_only_class_dependent_head_tensors_may_be_skipped():
    ours = stock_model(num_classes=len(CLASS_NAMES))
    state = stock_model().state_dict()
    report = load_state_checked(ours, state, "coco.pth", exp_size=(0.33, 0.125))
    assert sorted(name for name, _ in report.skipped) == sorted(
        f"head.cls_preds.{level}.{kind}" for level in range(3) for kind in ("weight", "bias"))
    state.pop("backbone.backbone.dark3.0.bn.num_batches_tracked")  # a tensor that always "fits" is still required
    with pytest.raises(UserError, match="1 model tensors missing from it .*dark3.0.bn.num_batches_tracked"):
        load_state_checked(ours, state, "coco.pth")


def test_80_to_7_head_takes_the_coco_rows_of_matching_classes():
    ours = stock_model(num_classes=len(CLASS_NAMES))
    initial = {k: v.clone() for k, v in ours.state_dict().items()}
    coco = stock_model().state_dict()
    report = load_state_checked(ours, coco, "coco.pth", init_head_from_coco=True, class_names=CLASS_NAMES)
    head = ours.state_dict()
    pairs = {"car": "car", "truck": "truck", "bus": "bus", "pedestrian": "person", "motorcycle": "motorcycle",
             "bicycle": "bicycle"}
    for ours_name, coco_name in pairs.items():
        row, coco_row = CLASS_NAMES.index(ours_name), COCO_CLASSES.index(coco_name)
        for level in range(3):
            for kind in ("weight", "bias"):
                name = f"head.cls_preds.{level}.{kind}"
                assert torch.equal(head[name][row], coco[name][coco_row]), (ours_name, name)
    trailer = CLASS_NAMES.index("trailer")
    for level in range(3):
        name = f"head.cls_preds.{level}.weight"
        assert torch.equal(head[name][trailer], initial[name][trailer])
    assert report.coco_rows == [(n, pairs[n]) for n in CLASS_NAMES if n in pairs] and report.random_rows == ["trailer"]
    # switched off: every row keeps YOLOX's initialisation
    fresh = stock_model(num_classes=len(CLASS_NAMES))
    load_state_checked(fresh, coco, "coco.pth", init_head_from_coco=False, class_names=CLASS_NAMES)
    assert torch.equal(fresh.state_dict()["head.cls_preds.0.weight"], initial["head.cls_preds.0.weight"])


# ---------------------------------------------------------------------- inference (track_eval / conf_sweep --ckpt)
def test_detector_loads_stock_checkpoints_and_refuses_other_heads_or_sizes(tmp_path, make_tiny_exp):
    from yolox_finetune.tracking.detector import Detector

    exp = tiny_exp(make_tiny_exp, tmp_path)
    seven = stock_model(num_classes=len(CLASS_NAMES))
    detector = Detector(exp, save_stock_style(seven, tmp_path / "ours", prefix="module."), device="cpu")
    assert all(torch.equal(detector.model.state_dict()[k], v) for k, v in seven.state_dict().items())
    with pytest.raises(UserError, match="has a 80-class head but the exp has num_classes 7; a detector needs"):
        Detector(exp, save_stock_style(stock_model(), tmp_path / "coco"), device="cpu")
    torch.save({"model": stock_model(num_classes=7, width=0.25).state_dict()}, tmp_path / "wide.pth")
    with pytest.raises(UserError, match="looks like depth 0.33, width 0.25, the exp has depth 0.33, width 0.125"):
        load_model_weights(stock_model(num_classes=7), tmp_path / "wide.pth", exp)


# ---------------------------------------------------------------------- the real CLI
def test_train_cli_refuses_a_wrong_width_checkpoint_in_one_line(tmp_path, make_tiny_exp, run_tool):
    exp_file = make_tiny_exp("self.eval_interval = 0", "exp.py", tmp_path)
    torch.save({"model": stock_model(width=0.25).state_dict(), "best_ap": np.float64(0.3)}, tmp_path / "wide.pth")
    result = run_tool("train.py", "-f", exp_file, "-c", tmp_path / "wide.pth", "--device", "cpu", timeout=300)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert ("it looks like depth 0.33, width 0.25, the exp has depth 0.33, width 0.125" in errors[0]
            and "wide.pth" in errors[0])
    assert not list((tmp_path / "out").rglob("*.pth"))


# ---------------------------------------------------------------------- stock YOLOX entry points on our exps
def test_stock_eval_loader_and_evaluator_work_on_our_layout(tmp_path, make_tiny_exp, tiny_coco):
    exp = tiny_exp(make_tiny_exp, tmp_path)
    loader = exp.get_eval_loader(batch_size=2, is_distributed=False)
    images, _, info, ids = next(iter(loader))
    assert tuple(images.shape) == (2, 3, *exp.test_size) and len(ids) == 2
    evaluator = exp.get_evaluator(batch_size=2, is_distributed=False)
    val = json.loads((tiny_coco / "annotations" / "val.json").read_text())
    assert len(evaluator.dataloader.dataset) == len(val["images"])
    # stock COCOEvaluator.evaluate builds torch.cuda tensors; its own CPU parts score a CPU forward pass
    from yolox.utils import postprocess

    model = exp.get_model().eval()
    data = []
    with torch.no_grad():
        for images, _, info, ids in evaluator.dataloader:
            outputs = postprocess(model(images.float()), exp.num_classes, exp.test_conf, exp.nmsthre)
            data += evaluator.convert_to_coco_format(outputs, info, ids)
    ap50_95, ap50, summary = evaluator.evaluate_prediction(data, torch.tensor([1.0, 1.0, len(loader)]))
    assert 0.0 <= ap50_95 <= ap50 <= 1.0 and "Average forward time" in summary
    with pytest.raises(UserError, match="test annotation file"):
        exp.get_eval_loader(batch_size=2, is_distributed=False, testdev=True)  # tiny_coco has no test split


def stock_tool(module: str, *args: str, timeout: float = 300):
    """``python -m yolox.tools.<module>`` (stock YOLOX's tool) with this repo importable, as a user would run it."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]  # conftest put it first on PYTHONPATH, which subprocesses inherit
    return subprocess.run([sys.executable, "-m", f"yolox.tools.{module}", *map(str, args)], cwd=repo,
                          capture_output=True, text=True, timeout=timeout)


def our_checkpoint(exp, path: Path) -> Path:
    """A checkpoint as our trainer writes it (model, optimizer state, class names, RNG state...)."""
    from yolox_finetune.training.checkpoint import save_checkpoint
    from yolox_finetune.training.trainer import rng_state

    model = exp.get_model()
    save_checkpoint({"model": model.state_dict(), "optimizer": torch.optim.SGD(model.parameters(), 0.1).state_dict(),
                     "start_epoch": 1, "best_ap": 0.0, "rng": rng_state(), "exp_name": exp.exp_name,
                     "class_names": list(exp.class_names), "num_classes": exp.num_classes}, path)
    return path


def test_stock_demo_predictor_runs_our_exp_and_checkpoint_on_cpu(tmp_path, make_tiny_exp, tiny_coco):
    """Stock tools/demo.py's steps (its CLI ends in cv2.waitKey, which a headless OpenCV lacks): torch.load with
    torch's default (weights_only) and a strict load_state_dict of our checkpoint, then its Predictor."""
    from yolox.tools.demo import Predictor

    exp = load_exp(make_tiny_exp("", "exp.py", tmp_path))
    ckpt = torch.load(our_checkpoint(exp, tmp_path / "ours.pth"), map_location="cpu", weights_only=True)  # the default
    model = exp.get_model().eval()
    model.load_state_dict(ckpt["model"])
    exp.test_conf = 0.0
    predictor = Predictor(model, exp, CLASS_NAMES, device="cpu")
    outputs, info = predictor.inference(str(sorted((tiny_coco / "images").glob("val_*.jpg"))[0]))
    assert outputs[0] is not None and outputs[0].shape[1] == 7 and info["height"] == 96


@pytest.mark.skipif(not torch.cuda.is_available(), reason="stock COCOEvaluator.evaluate is CUDA-only")
def test_stock_evaluate_and_eval_tool_run_on_a_gpu(tmp_path, make_tiny_exp):
    exp_file = make_tiny_exp("", "exp.py", tmp_path)
    exp = load_exp(exp_file)
    evaluator = exp.get_evaluator(batch_size=2, is_distributed=False)
    ap50_95, ap50, summary = exp.eval(exp.get_model().cuda(), evaluator, False)
    assert 0.0 <= ap50_95 <= ap50 <= 1.0 and "Average forward time" in summary
    ckpt = our_checkpoint(exp, tmp_path / "ours.pth")
    result = stock_tool("eval", "-f", exp_file, "-c", ckpt, "-b", "2", "-d", "1")
    assert result.returncode == 0 and "Average forward time" in result.stdout + result.stderr, result.stderr[-2000:]


def test_random_resize_does_not_need_cuda(tmp_path, make_tiny_exp):
    exp = tiny_exp(make_tiny_exp, tmp_path, "self.input_size = (320, 640)\nself.multiscale_range = 2")
    sizes = {exp.random_resize(None, 1, 0, False) for _ in range(200)}
    assert sizes == {(32 * s, 64 * s) for s in range(8, 13)}
    exp.multiscale_range = 0
    assert exp.random_resize(None, 1, 0, False) == (320, 640)


def test_an_80_row_head_that_names_other_classes_is_not_taken_for_coco():
    """The demo's stand-in for COCO weights is an 80-row head trained on our 7 classes (rows 0-6 are ours): COCO's
    row 2 there is 'bus', not 'car', so no row is copied."""
    ours = stock_model(num_classes=len(CLASS_NAMES))
    initial = ours.state_dict()["head.cls_preds.1.weight"].clone()
    report = load_state_checked(ours, stock_model().state_dict(), "demo_pretrain.pth", init_head_from_coco=True,
                                class_names=CLASS_NAMES, source_class_names=list(CLASS_NAMES))
    assert torch.equal(ours.state_dict()["head.cls_preds.1.weight"], initial)
    assert not report.coco_rows and "not COCO's (it names classes car, truck" in report.lines()[-1]
    coco_named = load_state_checked(stock_model(num_classes=len(CLASS_NAMES)), stock_model().state_dict(), "c.pth",
                                    init_head_from_coco=True, class_names=CLASS_NAMES,
                                    source_class_names=list(COCO_CLASSES))
    assert ("car", "car") in coco_named.coco_rows

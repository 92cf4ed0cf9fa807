"""Tracking validation in training: trackers on the val MOT sequences from the validation pass's boxes, logged per
epoch, and best_ckpt.pth chosen by the metric the exp names (a real tiny YOLOX on a converted synthetic release)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from loguru import logger

from trackers.config import TRACKER_CONFIGS
from yolox_finetune.analysis.analyze import analyze_runs
from yolox_finetune.analysis.runs import checkpoint_epoch, load_run
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.runner import load_sequences
from yolox_finetune.nuscenes.convert import convert_nuscenes
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION, make_synthetic_nuscenes
from yolox_finetune.tracking.detector import cached_detections
from yolox_finetune.tracking.flows import track_and_evaluate
from yolox_finetune.training.checkpoint import read_checkpoint
from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.tracking_validation import parse_best_metric
from yolox_finetune.training.trainer import Trainer, TrainOptions, train

LOGGED = ("MOTA", "IDF1", "IDSW", "HOTA")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """A synthetic release converted as the demo does (with --mot): 2 cameras x 4 keyframes per scene, one val
    scene, so val holds two MOT sequences of four frames."""
    root = tmp_path_factory.mktemp("tracking_val")
    make_synthetic_nuscenes(root / "nusc", scenes=3, samples=4, seed=7, image_size=(320, 180), sweeps=0,
                            progress=False)
    convert_nuscenes(root / "nusc", SYNTHETIC_VERSION, root / "coco", cameras=["CAM_FRONT", "CAM_BACK"], mot=True,
                     progress=False)
    assert len(list((root / "coco" / "mot" / "val").iterdir())) == 2
    return root / "coco"


def lively_weights(exp, path: Path, seed: int = 0) -> Path:
    """A checkpoint whose untrained model already gives confident boxes (YOLOX's init scores every box ~1e-4, so no
    tracker would start a track): He-normal convolutions, BatchNorm statistics measured on the training images (so
    that training, which updates the head's, does not shift them), prediction layers scaled to a spread with scores
    around 0.5. Its tracks are poor (MOTA far below 0), which is fine: the test is about choosing and logging."""
    generator = torch.Generator().manual_seed(seed)
    dataset = exp.get_val_dataset("train")  # the training images, letterboxed as validation does
    images = torch.stack([torch.from_numpy(dataset[i][0]) for i in range(len(dataset))]).float()
    model = exp.get_model()
    head = model.head
    preds = {id(c) for c in (*head.reg_preds, *head.obj_preds, *head.cls_preds)}
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and id(module) not in preds:
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                    * (2.0 / module.weight[0].numel()) ** 0.5)
        model.eval()
        for norm in norms:  # cumulative statistics of the images, as training would settle them
            norm.reset_running_stats()
            norm.momentum = None
            norm.train()
        model(images)
        for norm in norms:
            norm.momentum = 0.03  # YOLOX's
        model.eval()
        features: dict[int, torch.Tensor] = {}
        hooks = [conv.register_forward_hook(lambda _m, _i, out, k=k: features.__setitem__(k, out))
                 for k, conv in enumerate((*head.reg_convs, *head.cls_convs))]
        model(images)
        for hook in hooks:
            hook.remove()
        levels = len(head.reg_convs)
        for level in range(levels):
            for conv, source, spread, bias in ((head.reg_preds[level], features[level], 0.4, 0.0),
                                               (head.obj_preds[level], features[level], 1.5, 1.0),
                                               (head.cls_preds[level], features[levels + level], 1.5, 0.5)):
                scale = spread / (float(source.std()) * conv.weight[0].numel() ** 0.5)
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * scale)
                conv.bias.fill_(bias)
            head.reg_preds[level].bias[2:].fill_(1.5)  # boxes a few strides wide, as the synthetic objects
    torch.save({"model": model.state_dict()}, path)
    return path


def epoch_records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == "epoch"]


def first_best(values: list[float], lower: bool = False) -> int:
    """0-based index of the best value, the earliest on ties (the trainer keeps the earlier epoch)."""
    best = 0
    for i, v in enumerate(values):
        if (v < values[best]) if lower else (v > values[best]):
            best = i
    return best


def test_tracking_metrics_per_epoch_choose_best_ckpt_and_match_track_eval(tmp_path, make_tiny_exp, converted):
    exp = load_exp(make_tiny_exp(f"""
        self.data_dir = {str(converted)!r}
        self.max_epoch = 4
        self.no_aug_epochs = 1
        self.mosaic_prob = 0.0
        self.basic_lr_per_img = 0.002 / 64  # small steps: the scores move, but stay where trackers start tracks
        self.best_metric = "MOTA:bytetrack"
    """))
    ckpt = lively_weights(exp, tmp_path / "lively.pth")
    result = train(exp, TrainOptions(device="cpu", ckpt=str(ckpt)))
    run_dir = exp.run_dir
    epochs = epoch_records(run_dir)
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    for record in epochs:  # every tracker, every metric, every epoch
        assert set(record["tracking"]) == set(TRACKER_CONFIGS)
        for metrics in record["tracking"].values():
            assert all(isinstance(metrics[m], (int, float)) for m in LOGGED), metrics
        assert record["best_metric"] == "MOTA:bytetrack"

    mota = [r["tracking"]["bytetrack"]["MOTA"] for r in epochs]
    assert len(set(mota)) > 1, mota  # the choice below means something only if the metric moves
    expected = epochs[first_best(mota)]["epoch"]
    best_state = read_checkpoint(run_dir / "best_ckpt.pth")
    assert best_state["start_epoch"] == best_state["best_epoch"] == expected == result["best_epoch"]
    assert best_state["best_metric"] == "MOTA:bytetrack" and best_state["best_value"] == max(mota)
    assert epochs[-1]["best_epoch"] == expected and epochs[expected - 1]["is_best"]
    assert sum(r["is_best"] for r in epochs) == len({first_best(mota[:k + 1]) for k in range(len(mota))})
    ap = [r["ap50_95"] for r in epochs]
    if epochs[first_best(ap)]["epoch"] != expected:  # AP would have chosen another epoch: tracking chose this one
        assert best_state["start_epoch"] != epochs[first_best(ap)]["epoch"]

    # the same numbers as track_eval --ckpt best --split val (the tracking detector, det files, default trackers)
    gt_root = converted / "mot" / "val"
    det_dir = cached_detections(exp, run_dir / "best_ckpt.pth", gt_root, tmp_path / "det_cache", "cpu")
    sequences = load_sequences(gt_root, det_dir)
    configs = {name: TRACKER_CONFIGS[name]() for name in exp.tracking_val_trackers}
    # track_eval's default (no --conf): the trackers' own thresholds, detections pre-filtered at the low threshold,
    # which is tracking_val_conf (0.1)
    assert exp.tracking_val_conf == 0.1
    offline = track_and_evaluate(sequences, configs, None, None)
    logged = epochs[expected - 1]["tracking"]
    for name, counts in offline.items():
        metrics = counts.overall().metrics()
        for metric in LOGGED:
            assert logged[name][metric] == pytest.approx(metrics[metric], abs=1e-9), (name, metric)

    # TensorBoard holds them too
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    for name in TRACKER_CONFIGS:
        for metric in LOGGED:
            assert f"tracking/{name}/{metric}" in scalars
    assert [e.value for e in events.Scalars("tracking/bytetrack/MOTA")] == pytest.approx(mota, rel=1e-6)

    # the analysis report plots them per epoch beside mAP and names best_ckpt's epoch and metric
    analysis = analyze_runs([run_dir], tmp_path / "analysis")
    assert "tracking" in analysis["plots"] and Path(analysis["plots"]["tracking"]).is_file()
    markdown = Path(analysis["report_md"]).read_text()
    assert "Tracking validation per epoch" in markdown and "tracking_validation.png" in markdown
    assert f"epoch {expected}, chosen by MOTA:bytetrack" in markdown
    head = analysis["runs"][run_dir.name]
    assert head["best_checkpoint"]["epoch"] == expected
    chosen = [b for b in head["tracking_bests"] if b["chosen"]]
    assert [(b["metric"], b["tracker"], b["epoch"]) for b in chosen] == [("MOTA", "bytetrack", expected)]
    assert checkpoint_epoch(load_run(run_dir), "best_ckpt.pth") == expected


def setup_log(exp) -> tuple[str, Trainer]:
    trainer = Trainer(exp, TrainOptions(device="cpu"))
    try:
        trainer.setup()
    finally:
        logger.remove()
    return (exp.run_dir / "train_log.txt").read_text(), trainer


def test_auto_is_off_without_mot_sequences_and_says_so_in_one_line(make_tiny_exp):
    exp = load_exp(make_tiny_exp())  # tiny_coco: COCO files only
    log, trainer = setup_log(exp)
    assert trainer.tracking is None
    lines = [line for line in log.splitlines() if "tracking validation" in line]
    assert len(lines) == 1 and "tracking validation off: no val MOT sequences in" in lines[0]
    assert "--mot" in lines[0]


@pytest.mark.parametrize(("extra", "message"), [
    ('self.tracking_val = True', "tracking_val is True but no val MOT sequences in"),
    ('self.best_metric = "HOTA:botsort"', "best_metric 'HOTA:botsort' is a tracking metric but no val MOT sequences"),
])
def test_tracking_required_without_mot_sequences_stops_at_startup(make_tiny_exp, extra, message):
    exp = load_exp(make_tiny_exp(extra))
    with pytest.raises(UserError, match=message):
        setup_log(exp)
    assert not list(exp.run_dir.glob("*.pth"))


def test_val_images_that_do_not_match_the_sequences_are_refused(make_tiny_exp, converted, tmp_path):
    """COCO val from one conversion, MOT val from another: refused when required, not guessed."""
    other = tmp_path / "other_mot" / "val"
    other.mkdir(parents=True)
    (other / "elsewhere_CAM_FRONT").symlink_to(next((converted / "mot" / "test").iterdir()), target_is_directory=True)
    exp = load_exp(make_tiny_exp(f"""
        self.data_dir = {str(converted)!r}
        self.mot_dir = {str(tmp_path / "other_mot")!r}
        self.tracking_val = True
    """))
    with pytest.raises(UserError, match="belongs to sequence synth-0002_CAM_(BACK|FRONT), which .* does not hold"):
        setup_log(exp)


@pytest.mark.parametrize(("text", "message"), [
    ("hota:botsort", "unknown tracking metric 'hota'"),
    ("HOTA:sort", "unknown tracker 'sort'"),
    ("IDSW:bytetrack", "IDSW is better when lower; write '-IDSW:bytetrack'"),
    ("-HOTA:botsort", "HOTA is better when higher; write 'HOTA:botsort'"),
    ("ap50", "did you mean 'AP50'"),
    ("mAP", "unknown best_metric 'mAP'"),
    (None, "best_metric must be"),
])
def test_bad_best_metric_is_one_clear_error_at_load(make_tiny_exp, text, message):
    with pytest.raises(UserError, match=message):
        load_exp(make_tiny_exp(f"self.best_metric = {text!r}"))


def test_exp_settings_are_checked_at_load(make_tiny_exp):
    with pytest.raises(UserError, match="is a tracking metric but tracking_val is False"):
        load_exp(make_tiny_exp('self.best_metric = "HOTA:botsort"\nself.tracking_val = False'))
    with pytest.raises(UserError, match="needs tracker 'botsort', which tracking_val_trackers"):
        load_exp(make_tiny_exp('self.best_metric = "HOTA:botsort"\nself.tracking_val_trackers = ("bytetrack",)'))
    with pytest.raises(UserError, match="unknown tracker"):
        load_exp(make_tiny_exp('self.tracking_val_trackers = ("deepsort",)'))
    with pytest.raises(UserError, match="tracking_val must be 'auto', True or False"):
        load_exp(make_tiny_exp('self.tracking_val = "yes"'))


def test_best_metric_directions_and_ties():
    idsw = parse_best_metric("-IDSW:bytetrack")
    assert idsw.lower_is_better and idsw.tracker == "bytetrack" and idsw.needs_tracking
    assert idsw.better(3, 5) and not idsw.better(5, 3) and not idsw.better(3, 3) and idsw.better(7, None)
    hota = parse_best_metric("HOTA:botsort")
    tracking = {"botsort": {"HOTA": 41.5, "MOTA": None}}
    assert hota.value(None, tracking) == 41.5 and hota.better(41.5, 40.0) and not hota.better(None, 1.0)
    assert parse_best_metric("MOTA:botsort").value(None, tracking) is None  # undefined never wins
    ap = parse_best_metric("AP50")
    assert not ap.needs_tracking and ap.value({"ap50": 0.3, "ap50_95": 0.1}, None) == 0.3


def test_resume_continues_the_choice_and_a_changed_metric_starts_it_anew(tmp_path, make_tiny_exp):
    """The best so far survives --resume (by the metric that chose it); another best_metric starts over, saying so."""
    extra = """
        self.max_epoch = 3
        self.no_aug_epochs = 0
        self.best_metric = "AP50"
    """
    exp = load_exp(make_tiny_exp(extra))
    exp.max_epoch = 2
    train(exp, TrainOptions(device="cpu"))
    first = read_checkpoint(exp.run_dir / "latest_ckpt.pth")
    assert first["best_metric"] == "AP50" and first["best_epoch"] in (1, 2)

    exp = load_exp(make_tiny_exp(extra))
    trainer = Trainer(exp, TrainOptions(device="cpu", resume=True))
    trainer.setup()
    assert (trainer.best_metric.name, trainer.best_epoch, trainer.best_value) == (
        "AP50", first["best_epoch"], first["best_value"])
    logger.remove()

    exp = load_exp(make_tiny_exp(extra.replace('"AP50"', '"AP50_95"')))
    trainer = Trainer(exp, TrainOptions(device="cpu", resume=True))
    trainer.setup()
    logger.remove()
    assert trainer.best_epoch is None and trainer.best_value == 0.0
    assert "best_ckpt.pth so far was chosen by AP50, this exp chooses by AP50_95" in (
        exp.run_dir / "train_log.txt").read_text()

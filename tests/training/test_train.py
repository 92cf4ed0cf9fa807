"""The trainer on a tiny real YOLOX and a tiny generated dataset: phases, no-aug switch, resume, DDP, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from yolox_finetune.training.checkpoint import read_checkpoint
from yolox_finetune.training.data import build_train_loader, seed_everything
from yolox_finetune.training.exp import apply_overrides, load_exp
from yolox_finetune.training.freeze import group_of
from yolox_finetune.training.trainer import TrainOptions, multiscale_size, train


def records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def make_exp(make_tiny_exp, folder: Path, extra: str = "", name: str = "exp.py"):
    return load_exp(make_tiny_exp(extra, name, folder))


def changed(a: dict, b: dict) -> set[str]:
    return {group_of(k) for k in a if a[k].is_floating_point() and not torch.equal(a[k], b[k])}


def test_phase_switches_no_aug_switch_and_checkpoints(tmp_path, make_tiny_exp):
    exp = make_exp(make_tiny_exp, tmp_path, """
        self.max_epoch = 3
        self.no_aug_epochs = 1
        self.ema = False
        self.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(2, {"pafpn": 0.1, "head": 1.0}))
    """)
    seed_everything(exp.seed)
    initial = {k: v.clone() for k, v in exp.get_model().state_dict().items()}
    exp.model = None
    train(exp, TrainOptions(device="cpu"))
    run = exp.run_dir
    assert {p.name for p in run.glob("*.pth")} == {"epoch_1.pth", "epoch_2.pth", "epoch_3.pth", "latest_ckpt.pth",
                                                   "best_ckpt.pth", "last_mosaic_epoch_ckpt.pth"}
    it = records(run, "iter")
    by_epoch = {e: [r for r in it if r["epoch"] == e] for e in (1, 2, 3)}
    assert all(set(r["lr"]) == {"head"} for r in by_epoch[1])
    for r in by_epoch[2] + by_epoch[3]:
        assert set(r["lr"]) == {"pafpn", "head"} and r["lr"]["pafpn"] == pytest.approx(0.1 * r["lr"]["head"])
    # no-aug: mosaic (and with it mixup) off and L1 on exactly in the last epoch
    assert [r["mosaic"] for r in it] == [r["epoch"] < 3 for r in it]
    assert [r["l1"] for r in it] == [r["epoch"] == 3 for r in it]
    assert all(r["l1_loss"] == 0 for r in by_epoch[1] + by_epoch[2]) and all(r["l1_loss"] > 0 for r in by_epoch[3])
    # weights: pafpn frozen in epoch 1, trained from epoch 2; the backbone never moves (BN statistics included)
    e1 = read_checkpoint(run / "epoch_1.pth")["model"]
    e2 = read_checkpoint(run / "epoch_2.pth")["model"]
    assert changed(initial, e1) == {"head"}
    assert changed(e1, e2) == {"pafpn", "head"}
    mosaic_ckpt = read_checkpoint(run / "last_mosaic_epoch_ckpt.pth")
    assert mosaic_ckpt["start_epoch"] == 2
    epochs = records(run, "epoch")
    assert [e["trainable"] for e in epochs] == [["head"], ["pafpn", "head"], ["pafpn", "head"]]
    assert all(e["ap50_95"] is not None and e["val_loss"]["total_loss"] > 0 for e in epochs)
    assert all(e["val_precision"] == "fp32" for e in epochs)  # stock COCOEvaluator's precision unless --val-fp16
    plan = json.loads((run / "plan.json").read_text())
    assert [e["l1"] for e in plan["epochs"]] == [False, False, True]


def test_no_aug_loader_really_closes_mosaic_and_mixup(tmp_path, make_tiny_exp):
    exp = make_exp(make_tiny_exp, tmp_path, """
        self.mosaic_prob = 1.0
        self.mixup_prob = 1.0
        self.flip_prob = 0.0
        self.hsv_prob = 0.0
    """)
    dataset = exp.get_train_dataset()
    plain = [dataset._dataset.pull_item(i) for i in range(len(dataset))]
    expected = {}
    for img, label, _, img_id in plain:
        expected[int(np.asarray(img_id).reshape(-1)[0])] = dataset.preproc(img, label, exp.input_size)[0]
    loader = build_train_loader(exp, dataset, 4, epoch=5, rank=0, world_size=1, seed=0, mosaic=False)
    assert loader.batch_sampler.mosaic is False
    for images, _, _, ids in loader:
        for image, img_id in zip(images.numpy(), np.asarray(ids).reshape(-1)):
            np.testing.assert_array_equal(image, expected[int(img_id)])  # untouched by mosaic or mixup
    mosaic_loader = build_train_loader(exp, dataset, 4, epoch=5, rank=0, world_size=1, seed=0, mosaic=True)
    images, _, _, ids = next(iter(mosaic_loader))
    assert not np.array_equal(images.numpy()[0], expected[int(np.asarray(ids).reshape(-1)[0])])


def test_resume_gives_identical_weights(tmp_path, make_tiny_exp):
    extra = """
        self.max_epoch = 2
        self.no_aug_epochs = 1
        self.eval_interval = 0  # weights are compared: no validation pass per epoch
        self.mosaic_prob = 1.0
        self.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(2, {"dark5": 0.5, "head": 1.0}))
    """
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight = make_exp(make_tiny_exp, tmp_path / "a", extra)
    train(straight, TrainOptions(device="cpu"))
    # an interrupted run: what it leaves after epoch 1 is its latest checkpoint, identical to epoch_1.pth
    resumed = make_exp(make_tiny_exp, tmp_path / "b", extra)
    resumed.run_dir.mkdir(parents=True)
    (resumed.run_dir / "latest_ckpt.pth").write_bytes((straight.run_dir / "epoch_1.pth").read_bytes())
    train(resumed, TrainOptions(device="cpu", resume=True))
    a = read_checkpoint(straight.run_dir / "latest_ckpt.pth")
    b = read_checkpoint(resumed.run_dir / "latest_ckpt.pth")
    for key in ("model", "train_model"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    assert a["ema"] == b["ema"] and a["start_epoch"] == b["start_epoch"] == 2
    assert len(records(resumed.run_dir, "iter")) == len([r for r in records(straight.run_dir, "iter")
                                                         if r["epoch"] == 2])


def test_tiny_training_run_loss_decreases(tmp_path, make_tiny_exp):
    exp = make_exp(make_tiny_exp, tmp_path, """
        self.max_epoch = 6
        self.no_aug_epochs = 0
        self.mosaic_prob = 0.0
        self.basic_lr_per_img = 0.04 / 64
        self.unfreeze_schedule = (Phase(1, {g: 1.0 for g in GROUPS}),)
        self.eval_interval = 0  # the training loss is what is checked: no validation pass per epoch
        self.ckpt_epochs = ()
    """)
    train(exp, TrainOptions(device="cpu"))
    losses = {}
    for r in records(exp.run_dir, "iter"):
        losses.setdefault(r["epoch"], []).append(r["total_loss"])
    first, last = np.mean(losses[1]), np.mean(losses[6])
    assert last < 0.9 * first, (first, last)


def test_pretrained_80_class_checkpoint_loads_into_7_class_model(tmp_path, make_tiny_exp):
    coco = make_exp(make_tiny_exp, tmp_path)
    coco.num_classes = 80
    coco_model = coco.get_model()
    torch.save({"model": coco_model.state_dict(), "start_epoch": 300}, tmp_path / "coco80.pth")
    exp = make_exp(make_tiny_exp, tmp_path, "        self.max_epoch = 1\n        self.no_aug_epochs = 0", name="e7.py")
    train(exp, TrainOptions(device="cpu", ckpt=str(tmp_path / "coco80.pth")))
    log = (exp.run_dir / "train_log.txt").read_text()
    assert "skipped head.cls_preds.0.weight: checkpoint shape [80, 32, 1, 1] != model shape [7, 32, 1, 1]" in log
    trained = read_checkpoint(exp.run_dir / "latest_ckpt.pth")["train_model"]
    source = coco_model.state_dict()
    dark3 = [k for k in trained if group_of(k) == "dark3"]
    assert dark3 and all(torch.equal(trained[k], source[k]) for k in dark3)  # frozen and loaded
    assert trained["head.cls_preds.0.weight"].shape[0] == 7


def test_early_stopping_kept_epochs_and_overwrite(tmp_path, make_tiny_exp):
    exp = make_exp(make_tiny_exp, tmp_path, """
        self.max_epoch = 4
        self.no_aug_epochs = 0
        self.basic_lr_per_img = 1e-9
        self.early_stop_patience = 2
        self.ckpt_epochs = (2,)
    """)
    exp.run_dir.mkdir(parents=True)
    (exp.run_dir / "epoch_9.pth").write_bytes(b"a stale checkpoint of an earlier run")
    result = train(exp, TrainOptions(device="cpu", overwrite=True))
    assert "early stop after epoch 2" in result["stop_reason"]
    assert {p.name for p in exp.run_dir.glob("epoch_*.pth")} == {"epoch_2.pth"}  # the stale one went with --overwrite


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path, make_tiny_exp, run_tool,
                                                                     run_tool_inprocess):
    exp_file = make_tiny_exp("""
        self.max_epoch = 3
        self.no_aug_epochs = 0
    """)
    ok = run_tool_inprocess("train.py", "-f", str(exp_file), "--device", "cpu", "max_epoch", "1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    latest = tmp_path / "out" / "tiny" / "latest_ckpt.pth"
    before = latest.read_bytes()
    bad = run_tool("train.py", "-f", str(exp_file), "--device", "cpu", "--resume",
                          "basic_lr_per_img", "1e30")
    assert bad.returncode == 2
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and any(w in last for w in ("no longer finite", "loss is", "norm is"))
    assert "epoch 2 iteration" in last and "latest_ckpt.pth (epoch 1) is untouched" in last
    assert latest.read_bytes() == before


@pytest.mark.parametrize("case", ["no_data", "no_exp_class", "bad_ckpt", "unknown_key", "odd_pairs", "run_exists"])
def test_bad_input_is_one_error_line(tmp_path, make_tiny_exp, case, run_tool, run_tool_inprocess, one_error_line):
    exp_file = make_tiny_exp()
    args = ["-f", str(exp_file), "--device", "cpu"]
    if case == "no_data":
        args += ["data_dir", str(tmp_path / "missing")]
        expect = "does not exist"
    elif case == "no_exp_class":
        (tmp_path / "plain.py").write_text("class NotExp:\n    pass\n")
        args = ["-f", str(tmp_path / "plain.py")]
        expect = "does not define a class Exp"
    elif case == "bad_ckpt":
        (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
        args += ["-c", str(tmp_path / "junk.pth")]
        expect = "not a loadable YOLOX checkpoint"
    elif case == "unknown_key":
        args += ["max_epochs", "3"]
        expect = "unknown exp attribute 'max_epochs'"
    elif case == "odd_pairs":
        args += ["max_epoch"]
        expect = "KEY VALUE pairs"
    else:
        (tmp_path / "out" / "tiny").mkdir(parents=True)
        (tmp_path / "out" / "tiny" / "epoch_1.pth").write_bytes(b"an earlier run")
        expect = "already holds checkpoints (epoch_1.pth); pass --resume"
    runner = run_tool if case == "no_exp_class" else run_tool_inprocess  # one as a separate process
    one_error_line(runner("train.py", *args), expect)


def test_overrides_parse_literals_not_characters(tiny_exp_file):
    exp = load_exp(tiny_exp_file)
    applied = apply_overrides(exp, ["input_size", "(128,128)", "mosaic_prob", "0", "seed", "None",
                                    "exp_name", "renamed"])
    assert exp.input_size == (128, 128) and exp.mosaic_prob == 0.0 and isinstance(exp.mosaic_prob, float)
    assert exp.seed is None and exp.exp_name == "renamed" and applied["input_size"] == (128, 128)


def test_two_process_ddp_run_on_cpu(tmp_path, make_tiny_exp, run_tool):
    exp_file = make_tiny_exp("""
        self.max_epoch = 2
        self.no_aug_epochs = 1
        self.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(2, {"pafpn": 0.1, "head": 1.0}))
    """)
    proc = run_tool("train.py", "-f", str(exp_file), "--device", "cpu", "-d", "2", env={"OMP_NUM_THREADS": "1"},
                    timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "out" / "tiny"
    log = (run / "train_log.txt").read_text()
    assert "batch 4 (2 x 2)" in log and "phase 2/2 from epoch 2" in log
    it = records(run, "iter")
    assert len(it) == 2 * 3 and {r["epoch"] for r in it} == {1, 2}  # 12 images: 6 per rank in batches of 2
    ckpt = read_checkpoint(run / "latest_ckpt.pth")
    assert ckpt["start_epoch"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])


def test_grad_clipping_bounds_every_update(tmp_path, make_tiny_exp):
    extra = """
        self.max_epoch = 1
        self.no_aug_epochs = 0
        self.warmup_epochs = 0
        self.ema = False
        self.eval_interval = 0
        self.basic_lr_per_img = 0.5 / 64
        self.grad_clip_norm = {clip}
    """
    deltas = {}
    for clip in (None, 1e-6):
        seed_everything(0)
        (tmp_path / str(clip)).mkdir()
        exp = make_exp(make_tiny_exp, tmp_path / str(clip), extra.format(clip=clip))
        initial = {k: v.clone() for k, v in exp.get_model().state_dict().items()}
        exp.model = None
        train(exp, TrainOptions(device="cpu"))
        final = read_checkpoint(exp.run_dir / "latest_ckpt.pth")["model"]
        # biases: no weight decay, which SGD adds after clipping
        deltas[clip] = torch.sqrt(sum(((final[k] - initial[k]) ** 2).sum() for k in initial
                                      if group_of(k) == "head" and k.endswith(".bias")))
    lr, steps, momentum = 0.5 / 64 * 4, 3, 0.9
    # each step moves the weights by at most lr * (1 + momentum terms) * clip norm
    assert deltas[1e-6] <= lr * steps * (1 + momentum) ** steps * 1e-6 * 1.01
    assert deltas[None] > 1000 * deltas[1e-6]


def test_multiscale_sizes_follow_yolox_and_agree_across_ranks(tiny_exp_file):
    exp = load_exp(tiny_exp_file)
    exp.input_size, exp.multiscale_range = (256, 448), 2
    sizes = [multiscale_size(exp, seed=3, global_iter=k) for k in range(1, 201)]
    assert set(sizes[:10]) == {(256, 448)}  # the first block trains at the exp's own size
    assert all(sizes[k] == sizes[k - k % 10] for k in range(200))  # a new size every 10 iterations
    heights = {h for h, _ in sizes}
    assert len(heights) > 1 and heights <= {32 * s for s in range(6, 11)}  # (256 / 32) +- 2 strides
    assert all(w % 32 == 0 and abs(w / h - 448 / 256) < 0.2 for h, w in sizes)  # aspect kept
    # every rank computes the same size from the shared seed: no broadcast needed
    assert sizes == [multiscale_size(exp, seed=3, global_iter=k) for k in range(1, 201)]
    exp.multiscale_range = 0
    assert {multiscale_size(exp, seed=3, global_iter=k) for k in range(1, 201)} == {(256, 448)}

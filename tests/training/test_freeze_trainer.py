"""The trainer follows the per-phase schedule and BatchNorm policies (issue 9) on a tiny real YOLOX run."""

from __future__ import annotations

import json

import pytest
import torch

from yolox_finetune.core.run_files import TRAIN_LOG
from yolox_finetune.training.checkpoint import read_checkpoint
from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.freeze import group_of

ALL = {"stem", "dark2", "dark3", "dark4", "dark5", "pafpn", "head"}


def changed(a: dict, b: dict, running: bool) -> set[str]:
    return {group_of(k) for k in a if a[k].is_floating_point()
            and k.endswith(("running_mean", "running_var")) == running and not torch.equal(a[k], b[k])}


def test_trainer_uses_each_phases_lr_and_bn_policy(tmp_path, make_tiny_exp, trained_per_schedule):
    exp = load_exp(make_tiny_exp("""
        self.max_epoch = 3
        self.no_aug_epochs = 1
        self.ema = False
        self.unfreeze_schedule = (
            Phase(1, {"head": 1.0}, bn_policy="requires_grad_only"),
            Phase(2, {"pafpn": 0.5, "head": 1.0}, lr_per_img=0.02 / 64, warmup_epochs=1, bn_policy="backbone"),
        )
    """, folder=tmp_path))
    initial, iters = trained_per_schedule(exp)
    run = exp.run_dir
    assert len(iters) == 3 * iters[0]["iters_per_epoch"]
    # epoch 2 restarts with its own warmup from ~0 to 0.02/64 x batch; pafpn at half the head's LR
    epoch2 = [r["lr"] for r in iters if r["epoch"] == 2]
    assert epoch2[0]["head"] < 0.2 * epoch2[-1]["head"]
    assert epoch2[-1]["head"] == pytest.approx(0.02 / 64 * exp.batch_size)
    assert all(lr["pafpn"] == pytest.approx(0.5 * lr["head"]) for lr in epoch2)
    # requires_grad_only (epoch 1): frozen weights, every group's BN statistics move
    e1 = read_checkpoint(run / "epoch_1.pth")["model"]
    e3 = read_checkpoint(run / "epoch_3.pth")["model"]
    assert changed(initial, e1, running=False) == {"head"}
    assert changed(initial, e1, running=True) == ALL
    # backbone (epochs 2-3): the PAFPN's weights train while its BN statistics stay as they were
    assert changed(e1, e3, running=False) == {"pafpn", "head"}
    assert changed(e1, e3, running=True) == {"head"}
    log = (run / TRAIN_LOG).read_text()
    plan = json.loads((run / "plan.json").read_text())
    assert [p["bn_policy"] for p in plan["phases"]] == ["requires_grad_only", "backbone"]
    assert plan["epochs"][0]["bn_frozen"] == [] and plan["epochs"][1]["bn_frozen"] == [
        "stem", "dark2", "dark3", "dark4", "dark5", "pafpn"]
    assert "(bn_policy requires_grad_only)" in log and "(bn_policy backbone, own LR 0.00125 with 1-epoch warmup)" in log

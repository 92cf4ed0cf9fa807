"""The exp's optimizer choice (``optimizer_name``): YOLOX's SGD or AdamW over the same groups, schedule and phases."""

from __future__ import annotations

import json

import pytest
import torch

from yolox_finetune.core.errors import UserError
from yolox_finetune.training.checkpoint import read_checkpoint
from yolox_finetune.training.exp import load_exp, validate_exp
from yolox_finetune.training.freeze import group_of
from yolox_finetune.training.inputs import check_start_checkpoint
from yolox_finetune.training.trainer import build_optimizer


def _groups(optimizer: torch.optim.Optimizer) -> list[tuple]:
    return [(g["group"], g["kind"], g["weight_decay"], tuple(id(p) for p in g["params"]))
            for g in optimizer.param_groups]


def test_adamw_gets_the_same_groups_and_weight_decay_as_sgd(make_tiny_exp):
    exp = load_exp(make_tiny_exp())
    model = exp.get_model()
    sgd = build_optimizer(model, exp)
    exp.optimizer_name = "adamw"
    adamw = build_optimizer(model, exp)
    assert isinstance(sgd, torch.optim.SGD) and isinstance(adamw, torch.optim.AdamW)
    assert _groups(adamw) == _groups(sgd)
    assert {g["weight_decay"] for g in adamw.param_groups if g["kind"] != "weight"} == {0.0}
    assert all(g["betas"] == (exp.momentum, 0.999) for g in adamw.param_groups)


def test_unknown_optimizer_is_one_line_with_the_close_name(make_tiny_exp):
    exp = load_exp(make_tiny_exp())
    exp.optimizer_name = "adam"
    with pytest.raises(UserError) as info:
        validate_exp(exp, where="exps/x.py")
    text = str(info.value)
    assert text.startswith("exps/x.py: optimizer_name must be one of") and "'adamw'" in text and "\n" not in text


def test_adamw_run_follows_the_schedule_and_leaves_frozen_groups_alone(tmp_path, make_tiny_exp,
                                                                       trained_per_schedule):
    exp = load_exp(make_tiny_exp("""
        self.optimizer_name = "adamw"
        self.max_epoch = 2
        self.no_aug_epochs = 1
        self.ema = False
        self.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(2, {"pafpn": 0.5, "head": 1.0}))
    """, folder=tmp_path))
    initial, _ = trained_per_schedule(exp)
    run = exp.run_dir
    state = read_checkpoint(run / "latest_ckpt.pth")
    assert state["optimizer_name"] == "adamw"
    assert {"exp_avg", "exp_avg_sq"} <= set(next(iter(state["optimizer"]["state"].values())))
    weights = {k for k, v in state["model"].items() if v.is_floating_point() and "running" not in k
               and not torch.equal(initial[k], v)}
    assert {group_of(k) for k in weights} == {"pafpn", "head"}  # the frozen backbone's weights never moved
    assert json.loads((run / "plan.json").read_text())["optimizer"] == "adamw"

    exp.optimizer_name = "sgd"  # resuming the AdamW state with SGD cannot continue it: refused before any work
    with pytest.raises(UserError) as info:
        check_start_checkpoint(exp, None, resume=True)
    assert "trained with optimizer_name 'adamw', the exp now says 'sgd'" in str(info.value)

"""What ``--plan`` tells before a long run (issue 9): each phase's own LR and BatchNorm policy, and how much of the
final EMA each epoch, phase and the no-aug tail hold, checked against YOLOX's real ModelEMA."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from yolox.utils import ModelEMA

from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.schedule import build_plan, ema_update_weights

REPO = Path(__file__).resolve().parents[2]
BACKBONE = ["stem", "dark2", "dark3", "dark4", "dark5", "pafpn"]


def test_progressive_plan_json_shows_each_phases_own_lr_and_frozen_bn(run_tool_inprocess):
    ipe = 40
    out = run_tool_inprocess("train.py", "-f", "exps/progressive_unfreeze.py", "--plan", "--json", "--iters-per-epoch",
                             str(ipe))
    assert out.returncode == 0, out.stderr[-2000:]
    plan = json.loads(out.stdout)
    batch, ratio = plan["batch_size"], plan["min_lr_ratio"]
    phases = plan["phases"]
    assert [(p["first_epoch"], p["last_epoch"]) for p in phases] == [(1, 10), (11, 20), (21, 30)]
    assert all(p["own_lr"] for p in phases)
    assert [p["base_lr"] for p in phases] == pytest.approx([0.0008 / 64 * batch, 0.0004 / 64 * batch,
                                                           0.0004 / 64 * batch])
    assert [p["warmup_epochs"] for p in phases] == [2, 1, 1]
    # the backbone's BN statistics stay frozen in every phase, also where dark5 and the PAFPN train
    assert all(p["bn_policy"] == "backbone" and p["bn_frozen"] == BACKBONE for p in phases)
    epochs = {e["epoch"]: e for e in plan["epochs"]}
    assert all(epochs[n]["bn_frozen"] == BACKBONE for n in epochs)
    assert epochs[21]["trainable"] == ["dark5", "pafpn", "head"]
    # each phase warms up from ~0 to its own base LR and decays to min_lr_ratio x that base by its end
    for phase in phases:
        first, last, base = phase["first_epoch"], phase["last_epoch"], phase["base_lr"]
        warm_end = first + phase["warmup_epochs"] - 1
        for group, mult in phase["lr_mult"].items():
            assert epochs[first]["group_lr"][group][0] < 1e-3 * base * mult
            assert epochs[warm_end]["group_lr"][group][1] == pytest.approx(base * mult)
            assert epochs[last]["group_lr"][group][1] == pytest.approx(base * ratio * mult)
    # differential LR in the last stage, dark5 far above the 3e-6 -> 1e-6 of the old decayed global cosine
    start, end = epochs[21]["group_lr"]["dark5"][1], epochs[21]["group_lr"]["pafpn"][1]
    assert start == pytest.approx(0.25 * phases[2]["base_lr"]) and end == pytest.approx(0.5 * phases[2]["base_lr"])
    assert epochs[21]["group_lr"]["dark5"][1] > 10 * 3e-6
    # the no-aug tail holds its minimum and dominates the final EMA; the last stage holds nearly all of it
    for n in range(26, 31):
        assert epochs[n]["group_lr"]["head"] == pytest.approx([phases[2]["base_lr"] * ratio] * 2)
    assert plan["ema"]["half_life_epochs"] == 2 and plan["ema"]["no_aug_share"] > 0.5
    assert phases[2]["ema_share"] > 0.95 and phases[0]["ema_share"] < 0.01


class Indicator(nn.Module):
    """One float64 slot per update: the EMA of one-hot vectors is the weight each update keeps."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(size, dtype=torch.float64))


@pytest.mark.parametrize("decay, updates", [(0.9998, 2500), (0.99, 300)])
def test_ema_weights_match_yolox_model_ema_with_its_ramp(decay, updates):
    model = Indicator(updates + 1)
    with torch.no_grad():
        model.w[0] = 1.0  # the initial model
    ema = ModelEMA(model, decay)
    for t in range(1, updates + 1):
        with torch.no_grad():
            model.w.zero_()
            model.w[t] = 1.0
        ema.update(model)
    weights, initial = ema_update_weights(decay, updates)
    got = ema.ema.w.detach().numpy()
    assert got[0] == pytest.approx(initial, abs=1e-15)
    assert got[1:] == pytest.approx(weights, rel=1e-9, abs=1e-15)
    assert weights.sum() + initial == pytest.approx(1.0, abs=1e-12)


def test_half_life_converts_with_the_runs_iterations_per_epoch():
    exp = load_exp(REPO / "exps" / "smooth_v2.py")
    for ipe in (13, 666):
        decay = exp.ema_decay_per_iter(ipe)
        assert decay ** (exp.ema_half_life_epochs * ipe) == pytest.approx(0.5, rel=1e-12)
    exp.ema_half_life_epochs = None
    assert exp.ema_decay_per_iter(666) == exp.ema_decay == 0.9998


def test_shares_sum_to_one_and_the_tail_share_rises_with_a_shorter_half_life():
    exp = load_exp(REPO / "exps" / "v1_baseline.py")
    tail_shares = []
    for half_life in (8.0, 4.0, 2.0, 1.0, 0.5):
        exp.ema_half_life_epochs = half_life
        plan = build_plan(exp, iters_per_epoch=600)  # past the 2000-update ramp, which would swamp the decay
        ema = plan["ema"]
        total = sum(e["ema_share"] for e in plan["epochs"]) + ema["init_share"]
        assert total == pytest.approx(1.0, abs=1e-12)
        assert sum(ema["phase_shares"]) + ema["init_share"] == pytest.approx(1.0, abs=1e-12)
        assert ema["half_life_iters"] == pytest.approx(half_life * 600)
        tail_shares.append(ema["no_aug_share"])
    assert tail_shares == sorted(tail_shares) and len(set(tail_shares)) == len(tail_shares)
    assert tail_shares[0] < 0.35 and tail_shares[-1] > 0.9


def test_issue_numbers_for_yolox_decay_and_the_shipped_exps_tail_dominates():
    """At 666 iterations per epoch, YOLOX's 0.9998 leaves V1's 2 no-aug epochs ~30% and V2's 5 ~65% (issue 9)."""
    images = 666 * 32
    shares = {}
    for name in ("v1_as_run", "v1_baseline", "smooth_v2", "stable_v3", "progressive_unfreeze", "baseline_10ep"):
        exp = load_exp(REPO / "exps" / f"{name}.py")
        shares[name] = build_plan(exp, iters_per_epoch=math.ceil(images / exp.batch_size))["ema"]["no_aug_share"]
    assert 0.25 < shares["v1_as_run"] < 0.35
    exp = load_exp(REPO / "exps" / "smooth_v2.py")
    exp.ema_half_life_epochs = None
    assert 0.6 < build_plan(exp, iters_per_epoch=666)["ema"]["no_aug_share"] < 0.7
    assert all(shares[n] > 0.7 for n in shares if n != "v1_as_run"), shares


def test_plan_without_ema_says_so():
    exp = load_exp(REPO / "exps" / "v1_baseline.py")
    exp.ema = False
    plan = build_plan(exp, iters_per_epoch=10)
    assert plan["ema"] == {"enabled": False}
    assert all(e["ema_share"] is None for e in plan["epochs"])


def test_trainer_builds_its_ema_from_the_half_life(tmp_path, make_tiny_exp):
    from yolox_finetune.training.trainer import Trainer, TrainOptions

    exp = load_exp(make_tiny_exp("self.ema_half_life_epochs = 0.5\n", folder=tmp_path))
    trainer = Trainer(exp, TrainOptions(device="cpu"))
    trainer.setup()
    trainer.tb.close()
    assert trainer.iters_per_epoch == 3
    # ModelEMA's ramp tends to the decay it was given
    assert trainer.ema.decay(10**9) == pytest.approx(0.5 ** (1 / 1.5), rel=1e-12)
    assert json.loads((exp.run_dir / "plan.json").read_text())["ema"]["decay"] == pytest.approx(0.5 ** (1 / 1.5))


def test_analysis_lr_curve_of_a_plan_follows_each_phases_own_lr():
    """The analysis redraws LRs from plan.json: it must draw the phases' own curves, not the exp's global one."""
    from yolox_finetune.analysis.plots import plan_lr_curve
    from yolox_finetune.training.schedule import GroupLRSchedule

    exp = load_exp(REPO / "exps" / "progressive_unfreeze.py")
    ipe = 9
    plan = json.loads(json.dumps(build_plan(exp, iters_per_epoch=ipe)))  # as read back from plan.json
    iters, curves = plan_lr_curve(plan)
    schedule = GroupLRSchedule(exp, exp.batch_size, ipe)
    for i, k in enumerate(iters.astype(int)):
        want = schedule.for_groups(int(k), (int(k) - 1) // ipe + 1)
        for group, curve in curves.items():
            if want[group] == 0.0:
                assert math.isnan(curve[i])
            else:
                assert curve[i] == pytest.approx(want[group], rel=1e-12)

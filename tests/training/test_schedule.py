"""LR schedule values and the training plan of the shipped exps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from yolox_finetune.training.data import iters_per_epoch_for
from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.schedule import GroupLRSchedule, build_plan

REPO = Path(__file__).resolve().parents[2]

YOLOX_L_GROUPS = {"stem": 7_040, "dark2": 230_912, "dark3": 1_906_688, "dark4": 7_614_464, "dark5": 17_316_864,
                  "pafpn": 19_523_072, "head": 7_553_572}


def reference_lr(k: int, base: float, ipe: int, max_epoch: int, warmup: int, no_aug: int, min_ratio: float,
                 warmup_start: float = 0.0) -> float:
    """YOLOX's yoloxwarmcos written out from its definition, for the k-th (1-based) iteration."""
    total = ipe * max_epoch
    warm = ipe * warmup
    no_aug_iters = ipe * no_aug
    min_lr = base * min_ratio
    if k <= warm:
        return (base - warmup_start) * (k / warm) ** 2 + warmup_start
    if k >= total - no_aug_iters:
        return min_lr
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * (k - warm) / (total - warm - no_aug_iters)))


@pytest.mark.parametrize("exp_name", ["v1_baseline", "smooth_v2", "stable_v3", "baseline_10ep", "progressive_unfreeze"])
def test_schedule_matches_warmup_cosine_and_no_aug_floor(exp_name):
    exp = load_exp(REPO / "exps" / f"{exp_name}.py")
    ipe = 37
    schedule = GroupLRSchedule(exp, exp.batch_size, ipe)
    base = exp.basic_lr_per_img * exp.batch_size
    for k in range(1, ipe * exp.max_epoch + 1):
        want = reference_lr(k, base, ipe, exp.max_epoch, exp.warmup_epochs, exp.no_aug_epochs, exp.min_lr_ratio)
        assert schedule.base(k) == pytest.approx(want, rel=1e-9, abs=1e-15)
    # warmup rises monotonically to the base LR; the no-aug tail sits on the floor
    warm = [schedule.base(k) for k in range(1, ipe * exp.warmup_epochs + 1)]
    assert warm == sorted(warm) and warm[-1] == pytest.approx(base)
    tail_start = ipe * (exp.max_epoch - exp.no_aug_epochs) + 1
    assert {round(schedule.base(k) / base, 12) for k in range(tail_start, ipe * exp.max_epoch + 1)} == {
        round(exp.min_lr_ratio, 12)}


def test_group_lrs_follow_phase_multipliers():
    exp = load_exp(REPO / "exps" / "progressive_unfreeze.py")
    schedule = GroupLRSchedule(exp, exp.batch_size, 10)
    k = 10 * 20 + 5  # epoch 21, dark5 unfrozen
    lrs = schedule.for_groups(k, 21)
    assert lrs["head"] == pytest.approx(schedule.base(k))
    assert lrs["pafpn"] == pytest.approx(0.1 * schedule.base(k))
    assert lrs["dark5"] == pytest.approx(0.05 * schedule.base(k))
    assert lrs["dark4"] == lrs["stem"] == 0.0
    assert schedule.for_groups(5, 1)["pafpn"] == 0.0


def run_plan(run_tool, exp_name: str, *extra: str) -> dict:
    out = run_tool("train.py", "-f", f"exps/{exp_name}.py", "--plan", "--json",
                   "--iters-per-epoch", "50", *extra)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)  # stdout is exactly one JSON object


EXPECTED = {
    # name: (max_epoch, batch, warmup, no_aug, lr_per_img, min_lr_ratio, mosaic_prob>0)
    "v1_baseline": (30, 32, 1, 2, 0.001 / 64, 0.01),
    "smooth_v2": (30, 32, 2, 5, 0.0008 / 64, 0.05),
    "stable_v3": (30, 32, 3, 8, 0.0006 / 64, 0.10),
    "baseline_10ep": (10, 8, 1, 2, 0.001 / 64, 0.05),
    "progressive_unfreeze": (30, 32, 2, 5, 0.0008 / 64, 0.05),
}


@pytest.mark.parametrize("exp_name", sorted(EXPECTED))
def test_plan_json_of_shipped_exps(exp_name, run_tool):
    max_epoch, batch, warmup, no_aug, lr_per_img, min_ratio = EXPECTED[exp_name]
    plan = run_plan(run_tool, exp_name)
    assert plan["exp"] == exp_name and plan["batch_size"] == batch
    assert plan["base_lr"] == pytest.approx(lr_per_img * batch)
    assert plan["groups"] == YOLOX_L_GROUPS and plan["total_params"] == sum(YOLOX_L_GROUPS.values())
    epochs = plan["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, max_epoch + 1))
    for e in epochs:
        tail = e["epoch"] > max_epoch - no_aug
        assert e["mosaic"] is (not tail) and e["l1"] is tail and (e["mixup"] is (not tail))
        assert e["trainable_params"] == sum(YOLOX_L_GROUPS[g] for g in e["trainable"])
        assert set(e["lr_mult"]) == set(e["trainable"])
    assert epochs[warmup - 1]["lr_end"] == pytest.approx(plan["base_lr"])
    assert epochs[-1]["lr_end"] == pytest.approx(plan["base_lr"] * min_ratio)
    if exp_name == "progressive_unfreeze":
        phases = {e["epoch"]: e["trainable"] for e in epochs}
        assert phases[1] == phases[10] == ["head"]
        assert phases[11] == phases[20] == ["pafpn", "head"]
        assert phases[21] == phases[30] == ["dark5", "pafpn", "head"]
        assert epochs[20]["lr_mult"]["dark5"] < epochs[20]["lr_mult"]["pafpn"] < epochs[20]["lr_mult"]["head"]
    else:
        assert all(e["trainable"] == ["head"] for e in epochs)


def test_plan_respects_overrides_and_batch_flag(run_tool):
    plan = run_plan(run_tool, "smooth_v2", "-b", "16", "max_epoch", "12", "no_aug_epochs", "3")
    assert plan["batch_size"] == 16 and len(plan["epochs"]) == 12
    assert [e["l1"] for e in plan["epochs"]].index(True) == 9


def test_plan_without_json_is_a_table(run_tool):
    proc = run_tool("train.py", "-f", "exps/progressive_unfreeze.py", "--plan", "--iters-per-epoch", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "phase switch" in out and "no-aug starts" in out and "dark5 x0.05" in out


def test_iters_per_epoch_like_yolox_loader():
    assert iters_per_epoch_for(100, 8) == 13
    assert iters_per_epoch_for(100, 8, world_size=2) == 13  # 50 images per rank, batches of 4
    assert iters_per_epoch_for(3, 8) == 1


def test_build_plan_counts_images_from_annotations(tiny_exp_file):
    exp = load_exp(tiny_exp_file)
    plan = build_plan(exp)
    assert plan["iters_per_epoch"] == 3  # 12 tiny train images, batch 4

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


@pytest.mark.parametrize("exp_name", ["v1_baseline", "v1_as_run", "smooth_v2", "stable_v3", "baseline_10ep"])
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
    assert lrs["pafpn"] == pytest.approx(0.5 * schedule.base(k))
    assert lrs["dark5"] == pytest.approx(0.25 * schedule.base(k))
    assert lrs["dark4"] == lrs["stem"] == 0.0
    assert schedule.for_groups(5, 1)["pafpn"] == 0.0


def run_plan(runner, exp_name: str, *extra: str) -> dict:
    out = runner("train.py", "-f", f"exps/{exp_name}.py", "--plan", "--json",
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
    "v1_as_run": (30, 32, 1, 2, 0.001 / 64, 0.01),
}


@pytest.mark.parametrize("exp_name", sorted(EXPECTED))
def test_plan_json_of_shipped_exps(exp_name, run_tool_inprocess):
    max_epoch, batch, warmup, no_aug, lr_per_img, min_ratio = EXPECTED[exp_name]
    plan = run_plan(run_tool_inprocess, exp_name)
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
    assert epochs[-1]["lr_end"] == pytest.approx(plan["phases"][-1]["base_lr"] * min_ratio)
    for e in epochs:  # the per-group LRs are the base curve x the phase's multipliers
        assert set(e["group_lr"]) == set(e["trainable"])
        for g, (start, end) in e["group_lr"].items():
            assert start == pytest.approx(e["lr_start"] * e["lr_mult"][g])
            assert end == pytest.approx(e["lr_end"] * e["lr_mult"][g])
        assert set(e["trainable"]) | set(e["bn_frozen"]) == set(YOLOX_L_GROUPS) or exp_name == "v1_as_run"
    # EMA: epoch shares plus the initial weights' make the whole final EMA; the shipped exps' no-aug tail dominates
    ema = plan["ema"]
    assert sum(e["ema_share"] for e in epochs) + ema["init_share"] == pytest.approx(1.0, abs=1e-9)
    assert sum(p["ema_share"] for p in plan["phases"]) + ema["init_share"] == pytest.approx(1.0, abs=1e-9)
    assert ema["no_aug_share"] == pytest.approx(sum(e["ema_share"] for e in epochs[max_epoch - no_aug:]))
    if exp_name == "progressive_unfreeze":
        phases = {e["epoch"]: e["trainable"] for e in epochs}
        assert phases[1] == phases[10] == ["head"]
        assert phases[11] == phases[20] == ["pafpn", "head"]
        assert phases[21] == phases[30] == ["dark5", "pafpn", "head"]
        assert epochs[20]["lr_mult"]["dark5"] < epochs[20]["lr_mult"]["pafpn"] < epochs[20]["lr_mult"]["head"]
    else:
        assert all(e["trainable"] == ["head"] for e in epochs)


def test_plan_respects_overrides_and_batch_flag(run_tool_inprocess):
    plan = run_plan(run_tool_inprocess, "smooth_v2", "-b", "16", "max_epoch", "12", "no_aug_epochs", "3")
    assert plan["batch_size"] == 16 and len(plan["epochs"]) == 12
    assert [e["l1"] for e in plan["epochs"]].index(True) == 9


def test_plan_without_json_is_a_table(run_tool):
    proc = run_tool("train.py", "-f", "exps/progressive_unfreeze.py", "--plan", "--iters-per-epoch", "20")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "phase switch" in out and "no-aug starts" in out and "dark5 x0.25" in out
    assert out.count("BN statistics frozen: stem, dark2, dark3, dark4, dark5, pafpn;") == 3
    assert "own LR 0.0004, 2-epoch warmup" in out and "own LR 0.0002, 1-epoch warmup" in out
    assert "EMA: half-life 2 epochs" in out and "no-aug tail" in out


def test_iters_per_epoch_like_yolox_loader():
    assert iters_per_epoch_for(100, 8) == 13
    assert iters_per_epoch_for(100, 8, world_size=2) == 13  # 50 images per rank, batches of 4
    assert iters_per_epoch_for(3, 8) == 1


def test_build_plan_counts_images_from_annotations(tiny_exp_file):
    exp = load_exp(tiny_exp_file)
    plan = build_plan(exp)
    assert plan["iters_per_epoch"] == 3  # 12 tiny train images, batch 4


# ---------------------------------------------------------------------- per-phase LR (issue 9)
def legacy_group_lrs(exp, batch_size: int, ipe: int, k: int, epoch: int) -> dict[str, float]:
    """The schedule before phases had their own LR: one yoloxwarmcos over the run x the phase multipliers."""
    from yolox.utils import LRScheduler

    from yolox_finetune.core.groups import GROUPS

    curve = LRScheduler(exp.scheduler, exp.basic_lr_per_img * batch_size, ipe, exp.max_epoch,
                        warmup_epochs=exp.warmup_epochs, warmup_lr_start=exp.warmup_lr,
                        no_aug_epochs=exp.no_aug_epochs, min_lr_ratio=exp.min_lr_ratio)
    lr = float(curve.update_lr(k))
    phase = exp.phase_for_epoch(epoch)
    return {g: lr * float(phase.lr_mult.get(g, 0.0)) for g in GROUPS}


def progressive_without_phase_lr():
    """The progressive exp as shipped before issue 9: multipliers on the global curve, no per-phase settings."""
    from yolox_finetune.training.exp import Phase

    exp = load_exp(REPO / "exps" / "progressive_unfreeze.py")
    exp.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(11, {"pafpn": 0.1, "head": 1.0}),
                             Phase(21, {"dark5": 0.05, "pafpn": 0.1, "head": 1.0}))
    return exp


@pytest.mark.parametrize("exp_name", ["v1_baseline", "v1_as_run", "smooth_v2", "stable_v3", "baseline_10ep",
                                      "demo_pretrain", "progressive_without_phase_lr"])
def test_exps_without_phase_lr_give_bit_identical_lrs(exp_name):
    exp = progressive_without_phase_lr() if exp_name == "progressive_without_phase_lr" else load_exp(
        REPO / "exps" / f"{exp_name}.py")
    assert not any(p.has_own_lr for p in exp.unfreeze_schedule)
    ipe = 23
    schedule = GroupLRSchedule(exp, exp.batch_size, ipe)
    for k in range(1, ipe * exp.max_epoch + 1):
        epoch = (k - 1) // ipe + 1
        assert schedule.for_groups(k, epoch) == legacy_group_lrs(exp, exp.batch_size, ipe, k, epoch)  # bit-equal


def test_each_progressive_phase_runs_its_own_warmup_cosine():
    exp = load_exp(REPO / "exps" / "progressive_unfreeze.py")
    ipe, batch = 11, exp.batch_size
    schedule = GroupLRSchedule(exp, batch, ipe)
    tail_first = exp.max_epoch - exp.no_aug_epochs + 1
    for index, phase in enumerate(exp.unfreeze_schedule):
        first, last = exp.phase_epochs(index)
        base = phase.lr_per_img * batch
        tail = max(0, last - max(first, tail_first) + 1)
        for local in range(1, (last - first + 1) * ipe + 1):
            k = (first - 1) * ipe + local
            want = reference_lr(local, base, ipe, last - first + 1, phase.warmup_epochs, tail, exp.min_lr_ratio)
            lrs = schedule.for_groups(k, first + (local - 1) // ipe)
            for group, mult in phase.lr_mult.items():
                assert lrs[group] == pytest.approx(want * mult, rel=1e-12)
        # the phase's warmup reaches its own base; it ends at min_lr_ratio x that base
        assert schedule.base(int((first - 1 + phase.warmup_epochs) * ipe)) == pytest.approx(base)
        assert schedule.base(last * ipe) == pytest.approx(base * exp.min_lr_ratio)
    # dark5 learns at its own rate in the last stage: far above the old 1e-6..3e-6 of a decayed global cosine
    assert max(schedule.for_groups(k, 21 + (k - 201) // ipe)["dark5"] for k in range(20 * ipe + 1, 25 * ipe)) > 4e-5


def test_a_phase_without_own_lr_keeps_the_global_curve_beside_one_with_it():
    from yolox_finetune.training.exp import Phase

    exp = load_exp(REPO / "exps" / "smooth_v2.py")
    ipe = 7
    legacy = GroupLRSchedule(exp, exp.batch_size, ipe)
    exp.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(16, {"pafpn": 0.5, "head": 1.0}, lr_per_img=1e-5))
    mixed = GroupLRSchedule(exp, exp.batch_size, ipe)
    for k in range(1, 15 * ipe + 1):
        assert mixed.base(k) == legacy.base(k)
    assert mixed.base(15 * ipe + 1) == pytest.approx(1e-5 * exp.batch_size, rel=1e-3)  # no warmup: near its base
    assert mixed.base(30 * ipe) == pytest.approx(1e-5 * exp.batch_size * exp.min_lr_ratio)


@pytest.mark.parametrize("phase_kwargs, message", [
    ({"lr_per_img": -1e-5}, "lr_per_img must be a positive number"),
    ({"lr_per_img": float("nan")}, "lr_per_img must be a positive number"),
    ({"warmup_epochs": -1}, "warmup_epochs must be a number of epochs >= 0"),
    ({"warmup_epochs": 16}, "warmup_epochs 16 is longer than the phase (epochs 16-30, 15 epochs)"),
    ({"bn_policy": "freeze_all"}, "bn_policy must be one of"),
])
def test_bad_phase_settings_are_one_clear_line(phase_kwargs, message):
    from yolox_finetune.core.errors import UserError
    from yolox_finetune.training.exp import Phase, validate_exp

    exp = load_exp(REPO / "exps" / "smooth_v2.py")
    exp.unfreeze_schedule = (Phase(1, {"head": 1.0}), Phase(16, {"pafpn": 0.5, "head": 1.0}, **phase_kwargs))
    with pytest.raises(UserError) as info:
        validate_exp(exp, where="exps/x.py")
    text = str(info.value)
    assert message in text and text.startswith("exps/x.py: phase 2 (from epoch 16)") and "\n" not in text


def test_bad_ema_settings_are_refused(run_tool_inprocess):
    out = run_tool_inprocess("train.py", "-f", "exps/smooth_v2.py", "--plan", "ema_half_life_epochs", "-2")
    assert out.returncode != 0 and "ema_half_life_epochs must be a positive number" in out.stderr
    assert "Traceback" not in out.stderr

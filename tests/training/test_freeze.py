"""Freezing: grads, BatchNorm statistics and train/eval modes follow the phase, whoever calls model.train()."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from yolox.exp import Exp as YoloxExp

from yolox_finetune.training.exp import GROUPS, Phase
from yolox_finetune.training.freeze import (
    EvalModeBatchNorm2d,
    apply_phase,
    bn_modes,
    group_of,
    group_param_counts,
    parameter_report,
)


def tiny_model(num_classes: int = 7) -> nn.Module:
    exp = YoloxExp()
    exp.num_classes, exp.depth, exp.width = num_classes, 0.33, 0.125
    torch.manual_seed(0)
    return exp.get_model()


def train_steps(model: nn.Module, steps: int = 3) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(1)
    targets = torch.zeros(2, 10, 5)
    targets[:, 0] = torch.tensor([1.0, 40.0, 30.0, 20.0, 16.0])
    targets[:, 1] = torch.tensor([3.0, 20.0, 50.0, 12.0, 24.0])
    for _ in range(steps):
        model.train()
        images = torch.rand(2, 3, 64, 96, generator=generator) * 255
        loss = model(images, targets)["total_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed_groups(before: dict, after: dict, kind: str) -> set[str]:
    """Groups with a changed tensor of a kind: 'running' (BN statistics) or 'param'."""
    out = set()
    for name, old in before.items():
        is_running = name.endswith(("running_mean", "running_var"))
        if (kind == "running") != is_running or name.endswith("num_batches_tracked"):
            continue
        if not torch.equal(old, after[name]):
            out.add(group_of(name))
    return out


def test_group_names_cover_every_parameter_and_match_yolox_l_counts():
    exp = YoloxExp()
    exp.num_classes = 7  # YOLOX-L: depth 1, width 1
    with torch.device("meta"):
        model = exp.get_model()
    counts = group_param_counts(model)
    assert list(counts) == list(GROUPS)
    assert counts == {"stem": 7_040, "dark2": 230_912, "dark3": 1_906_688, "dark4": 7_614_464,
                      "dark5": 17_316_864, "pafpn": 19_523_072, "head": 7_553_572}
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters()) == 54_152_612


def test_head_only_keeps_frozen_grads_none_and_bn_statistics_bit_identical():
    model = tiny_model()
    apply_phase(model, Phase(1, {"head": 1.0}))
    before = snapshot(model)
    train_steps(model)
    after = snapshot(model)
    for name, param in model.named_parameters():
        if group_of(name) == "head":
            assert param.grad is not None
        else:
            assert param.grad is None, name
    assert changed_groups(before, after, "param") == {"head"}
    assert changed_groups(before, after, "running") == {"head"}


def test_model_train_keeps_frozen_bn_in_eval_and_trainable_bn_in_train():
    model = tiny_model()
    apply_phase(model, Phase(1, {"pafpn": 0.1, "head": 1.0}))
    for _ in range(2):  # every call to train(), not just the first
        model.train()
        modes = bn_modes(model)
        assert all(not training for name, training in modes.items() if group_of(name) not in ("pafpn", "head"))
        assert all(training for name, training in modes.items() if group_of(name) in ("pafpn", "head"))
    model.eval()
    assert not any(bn_modes(model).values())


def test_unfreezing_restores_plain_batchnorm_that_trains():
    model = tiny_model()
    apply_phase(model, Phase(1, {"head": 1.0}))
    model.train()
    assert isinstance(model.backbone.backbone.dark5[0].bn, EvalModeBatchNorm2d)
    apply_phase(model, Phase(2, {"dark5": 0.05, "pafpn": 0.1, "head": 1.0}))
    bn = model.backbone.backbone.dark5[0].bn
    assert type(bn) is nn.BatchNorm2d and bn.training
    before = snapshot(model)
    train_steps(model, steps=2)
    assert changed_groups(before, snapshot(model), "running") == {"dark5", "pafpn", "head"}
    assert changed_groups(before, snapshot(model), "param") == {"dark5", "pafpn", "head"}


def test_backbone_bn_policy_freezes_statistics_of_trainable_backbone_groups_only():
    model = tiny_model()
    apply_phase(model, Phase(1, {"dark5": 1.0, "pafpn": 1.0, "head": 1.0}), bn_policy="backbone")
    before = snapshot(model)
    train_steps(model, steps=2)
    after = snapshot(model)
    assert changed_groups(before, after, "running") == {"head"}
    assert changed_groups(before, after, "param") == {"dark5", "pafpn", "head"}


def test_parameter_report_counts_and_flags():
    model = tiny_model()
    rows = parameter_report(model, Phase(1, {"pafpn": 0.1, "head": 1.0}))
    by_group = {r.group: r for r in rows}
    assert [r.group for r in rows] == list(GROUPS)
    assert by_group["pafpn"].trainable and by_group["pafpn"].lr_mult == pytest.approx(0.1)
    assert not by_group["dark5"].trainable and by_group["dark5"].bn_frozen
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())


def test_requires_grad_only_moves_frozen_bn_statistics_and_frozen_groups_does_not():
    """The user's old script (requires_grad only) vs ours: same frozen weights, different BatchNorm statistics."""
    moved = {}
    for policy in ("requires_grad_only", "frozen_groups"):
        model = tiny_model()
        apply_phase(model, Phase(1, {"head": 1.0}), bn_policy=policy)
        before = snapshot(model)
        train_steps(model, steps=2)
        after = snapshot(model)
        assert changed_groups(before, after, "param") == {"head"}, policy
        for name, param in model.named_parameters():
            assert (param.grad is not None) == (group_of(name) == "head"), (policy, name)
        moved[policy] = changed_groups(before, after, "running")
    assert moved["requires_grad_only"] == set(GROUPS)
    assert moved["frozen_groups"] == {"head"}


def test_a_phase_bn_policy_overrides_the_exps():
    model = tiny_model()
    # the exp says frozen_groups; the phase keeps the backbone's statistics while dark5 and the PAFPN train
    apply_phase(model, Phase(1, {"dark5": 0.25, "pafpn": 0.5, "head": 1.0}, bn_policy="backbone"), "frozen_groups")
    before = snapshot(model)
    train_steps(model, steps=2)
    after = snapshot(model)
    assert changed_groups(before, after, "running") == {"head"}
    assert changed_groups(before, after, "param") == {"dark5", "pafpn", "head"}
    rows = {r.group: r for r in parameter_report(model, Phase(1, {"dark5": 1.0, "head": 1.0}, bn_policy="backbone"))}
    assert rows["dark5"].trainable and rows["dark5"].bn_frozen and not rows["head"].bn_frozen
    # a later phase without its own policy falls back to the exp's and unlocks the trainable groups again
    apply_phase(model, Phase(2, {"dark5": 0.25, "pafpn": 0.5, "head": 1.0}), "frozen_groups")
    model.train()
    assert type(model.backbone.backbone.dark5[0].bn) is nn.BatchNorm2d and model.backbone.backbone.dark5[0].bn.training
    # and requires_grad_only switches every locked layer back to a plain, training BatchNorm
    apply_phase(model, Phase(3, {"head": 1.0}), "requires_grad_only")
    model.train()
    assert all(bn_modes(model).values())
    assert not any(isinstance(m, EvalModeBatchNorm2d) for m in model.modules())

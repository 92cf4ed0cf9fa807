"""Fixtures of the training tests: a tiny real run whose per-iteration LRs are checked against the schedule."""

from __future__ import annotations

import json

import pytest

from yolox_finetune.training.data import seed_everything
from yolox_finetune.training.schedule import GroupLRSchedule
from yolox_finetune.training.trainer import TrainOptions, train


def train_following_schedule(exp) -> tuple[dict, list[dict]]:
    """Train ``exp`` on the CPU from its seed; assert every logged iteration ran at the LR per group that
    ``GroupLRSchedule`` gives; return the model's initial state and the iteration records of metrics.jsonl."""
    seed_everything(exp.seed)
    initial = {k: v.clone() for k, v in exp.get_model().state_dict().items()}
    exp.model = None
    train(exp, TrainOptions(device="cpu"))
    records = [json.loads(line) for line in (exp.run_dir / "metrics.jsonl").read_text().splitlines()]
    iters = [r for r in records if r["type"] == "iter"]
    schedule = GroupLRSchedule(exp, exp.batch_size, iters[0]["iters_per_epoch"])
    for r in iters:
        want = schedule.for_groups(r["global_iter"], r["epoch"])
        assert r["lr"] == {g: want[g] for g in r["lr"]}
    return initial, iters


@pytest.fixture()
def trained_per_schedule():
    """``trained_per_schedule(exp) -> (initial state, iteration records)``: see ``train_following_schedule``."""
    return train_following_schedule

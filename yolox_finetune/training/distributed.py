"""Distributed-training helpers: process-group start under torchrun, rank queries, and reaching the model inside
a DistributedDataParallel wrapper. One place, so trainer, validation, freezing and checkpoints agree."""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist
from torch import nn

#: what DistributedDataParallel puts in front of every parameter name of the model it wraps.
DDP_PREFIX = "module."


def init_distributed(device_kind: str) -> tuple[int, int, int]:
    """(rank, world_size, local_rank); starts the process group when launched by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return dist.get_rank(), dist.get_world_size(), local_rank


def is_distributed() -> bool:
    """True inside a started process group (several ranks train together)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, whether or not DistributedDataParallel wraps it."""
    return model.module if hasattr(model, "module") else model


def strip_ddp_prefix(name: str) -> str:
    """A parameter name as the bare model names it (checkpoints of wrapped models carry ``module.``)."""
    return name.removeprefix(DDP_PREFIX)

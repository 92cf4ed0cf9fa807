"""Which torch device a command runs on: one rule for training and for the detector."""

from __future__ import annotations

import torch

from yolox_finetune.core.errors import UserError


def resolve_device(spec: str = "auto", local_rank: int | None = None) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; under torchrun ``local_rank`` picks the process's GPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec} asked for, but no CUDA device is visible; use --device cpu")
        if spec == "cuda" and local_rank is not None:
            return torch.device("cuda", local_rank)
        return torch.device(spec)
    raise UserError(f"unknown device '{spec}'; use auto, cpu, cuda or cuda:N")

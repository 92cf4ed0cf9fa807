"""Checkpoints: atomic saves, loading across class counts, and names (``epoch_10``, ``best``, ``latest``).

Layout of a checkpoint dict (YOLOX's keys plus ours):
``model`` the inference weights (the EMA when EMA is on, as YOLOX saves them), ``optimizer``, ``start_epoch``
(epochs completed), ``best_ap``, ``ema`` ({"updates": n}), ``train_model`` (raw weights, when EMA is on, for
an exact resume), ``phase``, ``rng``, plus ``exp_name``, ``num_classes``, ``class_names``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolox_finetune.core.atomic_io import atomic_save
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.run_files import BEST_CKPT, LAST_MOSAIC_CKPT, LATEST_CKPT
from yolox_finetune.training.distributed import strip_ddp_prefix, unwrap

NAMED_CHECKPOINTS = {
    "best": BEST_CKPT,
    "latest": LATEST_CKPT,
    "last": LATEST_CKPT,
    "last_mosaic_epoch": LAST_MOSAIC_CKPT,
}
_EPOCH_RE = re.compile(r"^epoch_(\d+)$")


@dataclass
class LoadReport:
    """What a weight load did: loaded tensors, and what was skipped and why."""

    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"loaded {len(self.loaded)} tensors"]
        for name, have, want in self.shape_mismatch:
            out.append(f"skipped {name}: checkpoint shape {list(have)} != model shape {list(want)}")
        if self.missing:
            out.append(f"{len(self.missing)} model tensors not in checkpoint (kept initialised): "
                       + ", ".join(self.missing[:8]) + (" ..." if len(self.missing) > 8 else ""))
        if self.unexpected:
            out.append(f"{len(self.unexpected)} checkpoint tensors not in model (ignored): "
                       + ", ".join(self.unexpected[:8]) + (" ..." if len(self.unexpected) > 8 else ""))
        return out


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    atomic_save(path, lambda handle: torch.save(state, handle))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only``); a file that is not one is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{path} is not a loadable YOLOX checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj}  # a bare state dict
    raise UserError(f"{path} is not a YOLOX checkpoint: expected a dict with a 'model' state dict")


def load_state_tolerant(model: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Load what fits (e.g. COCO's 80-class weights into a 7-class head): mismatched shapes are skipped."""
    model = unwrap(model)
    own = model.state_dict()
    report = LoadReport()
    usable = {}
    for name, tensor in state.items():
        name = strip_ddp_prefix(name)
        if name not in own:
            report.unexpected.append(name)
        elif tuple(own[name].shape) != tuple(tensor.shape):
            report.shape_mismatch.append((name, tuple(tensor.shape), tuple(own[name].shape)))
        else:
            usable[name] = tensor
            report.loaded.append(name)
    report.missing = [n for n in own if n not in usable]
    model.load_state_dict(usable, strict=False)
    return report


def load_model_weights(model: nn.Module, path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint's inference weights into ``model``; returns the checkpoint dict."""
    ckpt = read_checkpoint(path)
    report = load_state_tolerant(model, ckpt["model"])
    if report.shape_mismatch or not report.loaded:
        raise UserError(f"checkpoint {path} does not fit this model: " + "; ".join(report.lines()[1:3] or ["no tensor"])
                        + " (check num_classes, depth and width of the exp)")
    return ckpt


def list_checkpoints(run_dir: str | os.PathLike) -> list[str]:
    """Names the run dir can resolve, epochs in numeric order first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    epochs = sorted(int(m.group(1)) for p in run_dir.glob("epoch_*.pth")
                     if (m := _EPOCH_RE.match(p.stem)))
    names = [f"epoch_{e}" for e in epochs]
    names += [n for n, f in NAMED_CHECKPOINTS.items() if n != "last" and (run_dir / f).is_file()]
    return names


def resolve_checkpoint(spec: str, run_dir: str | os.PathLike) -> Path:
    """A path, or a name (``epoch_10``, ``best``, ``latest``, ``last_mosaic_epoch``) in ``run_dir``."""
    run_dir = Path(run_dir)
    as_path = Path(spec)
    if as_path.suffix == ".pth" or os.sep in spec or as_path.is_file():
        if as_path.is_file():
            return as_path
        if (run_dir / spec).is_file():
            return run_dir / spec
        raise UserError(f"checkpoint file {spec} not found")
    if _EPOCH_RE.match(spec):
        candidate = run_dir / f"{spec}.pth"
    elif spec in NAMED_CHECKPOINTS:
        candidate = run_dir / NAMED_CHECKPOINTS[spec]
    else:
        candidate = None
    if candidate is not None and candidate.is_file():
        return candidate
    available = list_checkpoints(run_dir)
    listing = ", ".join(available) if available else "none"
    raise UserError(f"no checkpoint '{spec}' in {run_dir} (available: {listing}); pass a name or a .pth path")

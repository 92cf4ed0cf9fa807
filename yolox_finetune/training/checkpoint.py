"""Checkpoints: atomic saves, loading across class counts, and names (``epoch_10``, ``best``, ``latest``).

Layout of a checkpoint dict (YOLOX's keys plus ours):
``model`` the inference weights (the EMA when EMA is on, as YOLOX saves them), ``optimizer``, ``start_epoch``
(epochs completed), ``best_ap``, ``ema`` ({"updates": n}), ``train_model`` (raw weights, when EMA is on, for
an exact resume), ``phase``, ``rng``, plus ``exp_name``, ``num_classes``, ``class_names``.

Reading accepts what users already have: checkpoints of stock YOLOX's trainer (its ``best_ap`` is a numpy float, so
a few numpy types are allow-listed for ``weights_only`` loading, nothing else), plain state dicts and DDP
``module.`` names. Loading weights is strict where YOLOX's ``load_ckpt`` is lenient: only the class-dependent head
tensors (``head.cls_preds.*``) may be left out, when the class count differs and the caller allows it; any other
tensor that is missing, extra or of another shape stops the load with the checkpoint's apparent model size and the
exp's (a YOLOX-L file loaded into a YOLOX-S exp would otherwise train a random, frozen backbone for hours).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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

#: the class-dependent head tensors: one classification conv per FPN level (rows = classes).
_CLS_PRED_RE = re.compile(r"^head\.cls_preds\.(\d+)\.(weight|bias)$")
#: the stem conv (output channels = int(64 * width)) and the first CSP stage (bottlenecks = round(3 * depth)).
_STEM_KEY = "backbone.backbone.stem.conv.conv.weight"
_DARK2_BOTTLENECK_RE = re.compile(r"^backbone\.backbone\.dark2\.1\.m\.(\d+)\.")
#: stock YOLOX sizes by (depth, width), for messages (Nano's 0.33/0.25 is left out: its depthwise convs tell it apart).
_STOCK_SIZES = {(0.33, 0.375): "YOLOX-Tiny", (0.33, 0.5): "YOLOX-S",
                (0.67, 0.75): "YOLOX-M", (1.0, 1.0): "YOLOX-L", (1.33, 1.25): "YOLOX-X"}

#: our class name -> the COCO class whose head rows start it (``init_head_from_coco``); other names are looked up
#: in COCO's list as they are (a custom class map's ``train`` finds COCO's ``train``).
COCO_COUNTERPART: dict[str, str] = {"car": "car", "truck": "truck", "bus": "bus", "pedestrian": "person",
                                    "motorcycle": "motorcycle", "bicycle": "bicycle"}


def _cls_level(name: str) -> int | None:
    match = _CLS_PRED_RE.match(name)
    return int(match.group(1)) if match else None


@dataclass
class LoadReport:
    """What a weight load did: tensors loaded, tensors skipped and why, head rows taken from COCO classes."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    coco_rows: list[tuple[str, str]] = field(default_factory=list)
    random_rows: list[str] = field(default_factory=list)
    not_coco: str = ""

    def lines(self) -> list[str]:
        out = [f"loaded {len(self.loaded)} tensors"]
        out += [f"skipped {name}: {why}" for name, why in self.skipped]
        if self.coco_rows:
            out.append("head rows from COCO classes (3 levels, conv weights and biases): "
                       + ", ".join(f"{ours} <- {coco}" for ours, coco in self.coco_rows))
        if self.random_rows:
            out.append("head rows kept at YOLOX's initialisation (no COCO counterpart): " + ", ".join(self.random_rows))
        if self.not_coco:
            out.append(f"head kept at YOLOX's initialisation: {self.not_coco}")
        return out


def _numpy_safe_globals() -> list[Any]:
    """The numpy globals a stock YOLOX checkpoint pickles (numpy scalars such as ``best_ap``, plain numeric arrays),
    under the module names numpy 1.x and 2.x write; no object arrays, no other classes."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 1.26
        from numpy.core import multiarray
    entries: list[Any] = [np.dtype, np.ndarray]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        entries += [(multiarray.scalar, f"{module}.scalar"), (multiarray._reconstruct, f"{module}._reconstruct")]
    numeric = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
               np.float16, np.float32, np.float64)
    entries += sorted({type(np.dtype(kind)) for kind in numeric}, key=str)  # numpy >= 1.25 builds dtypes by class
    return entries


def _plain(value: Any) -> Any:
    """Top-level numpy scalars as Python numbers (``best_ap`` of stock YOLOX), so they log and compare as usual."""
    return value.item() if isinstance(value, np.generic) else value


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    atomic_save(path, lambda handle: torch.save(state, handle))


def read_checkpoint(path: str | os.PathLike, lazy: bool = False) -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only`` plus numpy scalars/arrays); a bare state dict comes back as
    ``{"model": state}``; DDP ``module.`` prefixes are removed. A file that is not a checkpoint is a UserError.
    ``lazy`` maps the tensors' data instead of reading it (zip-format files): enough to look at shapes, cheaply."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=lazy and zipfile.is_zipfile(path))
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        hint = ""
        if "Unsupported global" in str(exc) or "allowlisted" in str(exc):
            hint = ("; it holds Python objects beyond tensors, numbers and numpy scalars, which are not loaded "
                    "(untrusted code could run); re-save just its state dict: torch.save({'model': sd}, path)")
        raise UserError(f"{path} is not a loadable YOLOX checkpoint ({type(exc).__name__}: {first}){hint}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        ckpt = {key: _plain(value) for key, value in obj.items()}
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        ckpt = {"model": obj}  # a bare state dict
    else:
        raise UserError(f"{path} is not a YOLOX checkpoint: expected a dict with a 'model' state dict, or a state dict")
    for key in ("model", "train_model"):
        if isinstance(ckpt.get(key), dict):
            ckpt[key] = {strip_ddp_prefix(name): tensor for name, tensor in ckpt[key].items()}
    return ckpt


def read_resume_state(ckpt: str | None, run_dir: str | os.PathLike, lazy: bool = False) -> tuple[Path, dict[str, Any]]:
    """The training state ``--resume`` continues (``ckpt``, or the run dir's latest) and its path: a file this
    trainer wrote with its optimizer, not weights alone nor stock YOLOX's state."""
    path = Path(ckpt) if ckpt else Path(run_dir) / LATEST_CKPT
    if not path.is_file():
        raise UserError(f"--resume: no checkpoint at {path}; train without --resume first or pass -c CKPT")
    state = read_checkpoint(path, lazy=lazy)
    if "optimizer" not in state or "start_epoch" not in state:
        raise UserError(f"--resume: {path} is a weights-only checkpoint, not a training state")
    if "exp_name" not in state:
        raise UserError(f"--resume: {path} was not written by this trainer (stock YOLOX?); its optimizer "
                        "state does not match ours: start a new run from its weights with -c instead")
    return path, state


# ---------------------------------------------------------------------- model size of a state dict
def apparent_size(state: dict[str, torch.Tensor]) -> tuple[float | None, float | None]:
    """(depth, width) a YOLOX state dict was built with, read from its tensors: the stem conv has int(64 * width)
    output channels, the first CSP stage round(3 * depth) bottlenecks. None where the tensors are not there."""
    stem = state.get(_STEM_KEY)
    width = round(stem.shape[0] / 64, 3) if isinstance(stem, torch.Tensor) and stem.dim() == 4 else None
    bottlenecks = {int(m.group(1)) for name in state if (m := _DARK2_BOTTLENECK_RE.match(name))}
    depth = round(len(bottlenecks) / 3, 2) if bottlenecks else None
    return depth, width


def describe_size(depth: float | None, width: float | None) -> str:
    """``depth 1.0, width 1.0 (YOLOX-L)``; ``unknown`` parts where the tensors did not say."""
    text = f"depth {depth if depth is not None else 'unknown'}, width {width if width is not None else 'unknown'}"
    if depth is not None and width is not None:
        name = _STOCK_SIZES.get((round(depth, 2), round(width, 3)))
        if name:
            text += f" ({name})"
    return text


def check_model_size(state: dict[str, torch.Tensor], source: str | os.PathLike, exp_size: tuple[float, float],
                     what: str = "") -> None:
    """Refuse a checkpoint of another model size before a model is built: the stem's channels (int(64 * width))
    and the first CSP stage's bottlenecks (max(round(3 * depth), 1)) against the exp's, as YOLOX builds them.
    Unknown parts pass; :func:`check_state_fits` still checks every tensor when the weights load."""
    depth, width = exp_size
    stem = state.get(_STEM_KEY)
    bottlenecks = {int(m.group(1)) for name in state if (m := _DARK2_BOTTLENECK_RE.match(name))}
    wrong_width = isinstance(stem, torch.Tensor) and stem.dim() == 4 and stem.shape[0] != int(64 * width)
    wrong_depth = bool(bottlenecks) and len(bottlenecks) != max(round(3 * depth), 1)
    if wrong_width or wrong_depth:
        fix = ("resume with the exp that trained it, or start a new run (-c) from a checkpoint of this size"
               if what == "--resume" else
               "set depth and width in the exp to the checkpoint's, or pass a checkpoint of the exp's size")
        prefix = f"{what}: " if what else ""
        raise UserError(f"{prefix}checkpoint {source} is of another model size: it looks like "
                        f"{describe_size(*apparent_size(state))}, the exp has {describe_size(depth, width)}; {fix}")


def num_classes_of(state: dict[str, torch.Tensor]) -> int | None:
    """Class count of a YOLOX state dict's head (rows of its first classification conv)."""
    weight = state.get("head.cls_preds.0.weight")
    return int(weight.shape[0]) if isinstance(weight, torch.Tensor) else None


# ---------------------------------------------------------------------- loading
def _iter_head_rows(class_names: Sequence[str]) -> Iterator[tuple[int, str, int | None, str | None]]:
    """(our row, our name, COCO row or None, COCO name or None) for each of our classes."""
    from yolox.data.datasets import COCO_CLASSES

    for row, name in enumerate(class_names):
        coco_name = COCO_COUNTERPART.get(name, name)
        coco_row = COCO_CLASSES.index(coco_name) if coco_name in COCO_CLASSES else None
        yield row, name, coco_row, coco_name if coco_row is not None else None


def check_state_fits(model: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike, *,
                     exp_size: tuple[float, float] | None = None,
                     allow_class_change: bool = True) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The tensors of ``state`` to load into ``model`` and a report of what is skipped; loads nothing.

    Only the class-dependent head (``head.cls_preds.*``) may differ: with another class count,
    ``allow_class_change`` skips it (fine-tuning starts a new head) or makes it an error (inference: an untrained
    head is meaningless). Any other tensor that is missing, extra or of another shape is a UserError naming the
    checkpoint's apparent depth/width and the exp's (``exp_size``; the model's own when not given).
    """
    own = unwrap(model).state_dict()
    state = {strip_ddp_prefix(name): tensor for name, tensor in state.items()}
    ours, theirs = num_classes_of(own), num_classes_of(state)
    class_change = ours is not None and theirs is not None and ours != theirs
    report = LoadReport()
    usable: dict[str, torch.Tensor] = {}
    wrong_shape, missing = [], []
    for name, want in own.items():
        have = state.get(name)
        if have is None:
            missing.append(name)
        elif not isinstance(have, torch.Tensor) or tuple(have.shape) != tuple(want.shape):
            shape = list(have.shape) if isinstance(have, torch.Tensor) else type(have).__name__
            if class_change and _cls_level(name) is not None:
                report.skipped.append((name, f"checkpoint shape {shape} != model shape {list(want.shape)}: "
                                             f"class-dependent head tensor ({theirs} classes in the checkpoint, "
                                             f"{ours} in the exp)"))
            else:
                wrong_shape.append(f"{name} {shape} vs model {list(want.shape)}")
        else:
            usable[name] = have
    extra = [name for name in state if name not in own]
    if class_change and not allow_class_change:
        raise UserError(f"checkpoint {source} has a {theirs}-class head but the exp has num_classes {ours}; a "
                        "detector needs the head it was trained with: use the exp that trained this checkpoint")
    if wrong_shape or missing or extra:
        ckpt_size = describe_size(*apparent_size(state))
        exp_text = describe_size(*exp_size) if exp_size is not None else describe_size(*apparent_size(own))
        problems = [f"{len(items)} {what} (first: {items[0]})" for what, items in
                    (("tensors of another shape", wrong_shape), ("model tensors missing from it", missing),
                     ("tensors the model does not have", extra)) if items]
        fix = ("it is not a YOLOX model of this architecture (depthwise convs, another backbone?)"
               if apparent_size(state) == apparent_size(own) else
               "set depth and width in the exp to the checkpoint's, or pass a checkpoint of the exp's size")
        raise UserError(f"checkpoint {source} does not fit the exp's model: it looks like {ckpt_size}, the exp has "
                        f"{exp_text}; {'; '.join(problems)}; {fix}")
    report.loaded = list(usable)
    return usable, report


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike, *,
                       exp_size: tuple[float, float] | None = None, allow_class_change: bool = True,
                       init_head_from_coco: bool = False, class_names: Sequence[str] | None = None,
                       source_class_names: Sequence[str] | None = None) -> LoadReport:
    """Load ``state`` into ``model`` by :func:`check_state_fits`'s rule.

    ``init_head_from_coco`` with an 80-class COCO source fills our classes' head rows from their COCO counterparts
    (``class_names`` in model order); classes without one keep YOLOX's initialisation. A source is COCO's when it
    names no classes (stock YOLOX files) or names COCO's 80; a checkpoint of ours that names other classes (e.g.
    the demo's stand-in, an 80-row head trained on our 7 classes) keeps the whole new head at initialisation.
    """
    usable, report = check_state_fits(model, state, source, exp_size=exp_size, allow_class_change=allow_class_change)
    model = unwrap(model)
    model.load_state_dict(usable, strict=False)
    own = model.state_dict()
    ours, theirs = num_classes_of(own), num_classes_of(state)
    if not (report.skipped and init_head_from_coco and theirs == 80):
        return report
    from yolox.data.datasets import COCO_CLASSES

    if source_class_names is not None and tuple(source_class_names) != tuple(COCO_CLASSES):
        shown = ", ".join(list(source_class_names)[:8]) + (" ..." if len(source_class_names) > 8 else "")
        report.not_coco = f"the checkpoint's 80-row head is not COCO's (it names classes {shown})"
        return report
    names = (tuple(class_names) if class_names is not None and len(class_names) == ours
             else tuple(f"class_{i}" for i in range(ours or 0)))
    _init_head_from_coco(own, {strip_ddp_prefix(k): v for k, v in state.items()}, names, report)
    return report


def _init_head_from_coco(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], class_names: tuple[str, ...],
                         report: LoadReport) -> None:
    """Copy the COCO rows of every level's classification conv (weight and bias) into our classes' rows. ``own``
    holds the model's live tensors (``state_dict`` shares storage), so copying into them changes the model."""
    cls_names = [n for n in own if _cls_level(n) is not None]
    with torch.no_grad():
        for row, name, coco_row, coco_name in _iter_head_rows(class_names):
            if coco_row is None:
                report.random_rows.append(name)
                continue
            for tensor_name in cls_names:
                own[tensor_name][row].copy_(state[tensor_name][coco_row])
            report.coco_rows.append((name, coco_name))


def load_model_weights(model: nn.Module, path: str | os.PathLike, exp: Any = None) -> dict[str, Any]:
    """Load a checkpoint's inference weights into ``model`` for detection: everything must fit, the class count
    included; returns the checkpoint dict."""
    ckpt = read_checkpoint(path)
    exp_size = (float(exp.depth), float(exp.width)) if exp is not None else None
    load_state_checked(model, ckpt["model"], path, exp_size=exp_size, allow_class_change=False)
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

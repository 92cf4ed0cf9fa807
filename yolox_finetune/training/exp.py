"""The nuScenes base Exp: YOLOX-L, seven classes, unfreeze schedule and BatchNorm policy.

Exps in ``exps/`` subclass :class:`NuScenesExp` and state only what differs, as YOLOX's own exps do.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from loguru import logger
from yolox.exp import Exp as YoloxExp

from yolox_finetune.core.classes import CLASS_NAMES
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.groups import GROUPS, Phase, head_only
from yolox_finetune.training.data import build_train_loader
from yolox_finetune.training.inputs import check_data, drop_unusable_boxes, quiet_stdout
from yolox_finetune.training.tracking_validation import validate_tracking_settings

#: what exps import from here besides the Exp itself
__all__ = ["GROUPS", "NuScenesExp", "Phase", "head_only", "load_exp", "apply_overrides"]

#: BatchNorm policies: which BN layers keep their running statistics frozen (eval mode) during training.
#: ``frozen_groups``: those of frozen groups; ``backbone``: also those of trainable CSPDarknet/PAFPN groups;
#: ``requires_grad_only``: none (frozen weights, moving statistics: what a plain ``requires_grad=False`` script does).
BN_POLICIES: tuple[str, ...] = ("frozen_groups", "backbone", "requires_grad_only")
#: what ``optimizer_name`` may say (training/trainer.py builds them).
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")


class NuScenesExp(YoloxExp):
    """YOLOX-L fine-tuned on nuScenes cameras converted by ``tools/convert_nuscenes.py``."""

    def __init__(self) -> None:
        super().__init__()
        # model: YOLOX-L
        self.num_classes = len(CLASS_NAMES)
        self.class_names = CLASS_NAMES
        self.depth = 1.0
        self.width = 1.0

        # data: <data_dir>/annotations/<ann>, image file_name relative to data_dir
        self.data_dir = os.environ.get("YOLOX_FINETUNE_DATA", "datasets/nuscenes_coco")
        self.train_ann = "train.json"
        self.val_ann = "val.json"
        self.test_ann = "test.json"
        self.input_size = (800, 1440)
        self.test_size = (800, 1440)
        self.multiscale_range = 5  # 0 switches multi-scale training off
        self.data_num_workers = 4

        # training (batch_size is the global batch over all devices; -b overrides it)
        self.batch_size = 64
        self.eval_interval = 1
        self.print_interval = 10
        self.seed = None
        self.output_dir = os.environ.get("YOLOX_FINETUNE_OUTPUT", "YOLOX_outputs")
        self.exp_name = Path(inspect.getfile(type(self))).stem

        # fine-tuning: what trains when, and how BatchNorm behaves
        self.unfreeze_schedule: tuple[Phase, ...] = head_only()
        self.bn_policy = "frozen_groups"
        # which epoch_<N>.pth files to keep: None keeps every epoch (YOLOX's save_history_ckpt), () none
        self.ckpt_epochs: tuple[int, ...] | None = None
        # "sgd": YOLOX's (Nesterov, ``momentum``); "adamw": betas (``momentum``, 0.999), decoupled ``weight_decay``.
        # AdamW learns far faster in short runs from scratch (Ultralytics' "auto" picks it for short trainings);
        # the LR schedule, groups, phases and multipliers are the same for both
        self.optimizer_name = "sgd"
        # optional, off by default
        self.grad_clip_norm: float | None = None
        self.early_stop_patience: int | None = None
        # phases, EMA and BatchNorm (issue 9): the EMA's memory as a half-life in epochs, converted with the run's
        # iterations per epoch (None keeps the per-iteration ``ema_decay``, YOLOX's 0.9998 tuned for 300 COCO epochs)
        self.ema_decay = 0.9998
        self.ema_half_life_epochs: float | None = None
        # pretrained weights (-c): when the checkpoint's head has COCO's 80 classes, start each of our classes'
        # classification rows (3 levels, conv weight and bias) from its COCO counterpart (car, truck, bus,
        # pedestrian <- person, motorcycle, bicycle); trailer has none and keeps YOLOX's initialisation
        self.init_head_from_coco = True

        # checkpoints chosen by what they are for (training/tracking_validation.py): at each evaluation the trackers
        # also run on the val MOT sequences, on the boxes of the same validation pass
        self.tracking_val: bool | str = "auto"  # "auto": on when <mot_dir>/val has sequences; True: required
        self.tracking_val_trackers: tuple[str, ...] = ("bytetrack", "botsort")
        self.tracking_val_conf = 0.1  # score filter before tracking, as tools/track_eval.py's --conf default
        self.mot_dir: str | None = None  # folder holding val/<seq>/; None: <data_dir>/mot (convert_nuscenes --mot)
        # what best_ckpt.pth is best by: "AP50_95", "AP50", or "METRIC:tracker" ("HOTA:botsort"), with a leading
        # '-' where lower is better ("-IDSW:bytetrack")
        self.best_metric = "AP50_95"

    # ------------------------------------------------------------------ conveniences
    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.exp_name

    def base_lr(self, batch_size: int) -> float:
        return self.basic_lr_per_img * batch_size

    def annotation_file(self, split: str = "train") -> str:
        return {"train": self.train_ann, "val": self.val_ann, "test": self.test_ann}[split]

    def annotation_path(self, split: str = "train") -> Path:
        return Path(self.data_dir) / "annotations" / self.annotation_file(split)

    def phase_index(self, epoch: int) -> int:
        """0-based index of the phase active at 1-based ``epoch``."""
        index = 0
        for i, phase in enumerate(self.unfreeze_schedule):
            if phase.start_epoch <= epoch:
                index = i
        return index

    def phase_for_epoch(self, epoch: int) -> Phase:
        return self.unfreeze_schedule[self.phase_index(epoch)]

    def phase_epochs(self, index: int) -> tuple[int, int]:
        """First and last 1-based epoch of phase ``index`` in this run (last < first when it never runs)."""
        phases = self.unfreeze_schedule
        last = phases[index + 1].start_epoch - 1 if index + 1 < len(phases) else self.max_epoch
        return phases[index].start_epoch, min(last, self.max_epoch)

    def ema_decay_per_iter(self, iters_per_epoch: int) -> float:
        """The decay YOLOX's ModelEMA gets: ``ema_decay``, or the one whose half-life is ``ema_half_life_epochs``."""
        if self.ema_half_life_epochs is None:
            return float(self.ema_decay)
        return 0.5 ** (1.0 / (float(self.ema_half_life_epochs) * iters_per_epoch))

    def is_no_aug_epoch(self, epoch: int) -> bool:
        """1-based ``epoch`` is one of the last ``no_aug_epochs``: mosaic/mixup off, L1 loss on."""
        return epoch > self.max_epoch - self.no_aug_epochs

    def keeps_epoch_ckpt(self, epoch: int) -> bool:
        if not self.save_history_ckpt:
            return False
        return self.ckpt_epochs is None or epoch in self.ckpt_epochs

    # ------------------------------------------------------------------ data
    def get_train_dataset(self, cache_img: bool = False):
        """The mosaic/mixup-wrapped training set; which epochs mix is decided per batch by the sampler."""
        from yolox.data import COCODataset, MosaicDetection, TrainTransform

        check_data(self, "train")
        with quiet_stdout():
            base = COCODataset(
                data_dir=self.data_dir,
                json_file=self.train_ann,
                name="",
                img_size=self.input_size,
                preproc=TrainTransform(max_labels=50, flip_prob=self.flip_prob, hsv_prob=self.hsv_prob),
                cache=cache_img,
            )
        self._skip_unusable_boxes(base, "train")
        return MosaicDetection(
            base,
            mosaic=True,
            img_size=self.input_size,
            preproc=TrainTransform(max_labels=120, flip_prob=self.flip_prob, hsv_prob=self.hsv_prob),
            degrees=self.degrees,
            translate=self.translate,
            mosaic_scale=self.mosaic_scale,
            mixup_scale=self.mixup_scale,
            shear=self.shear,
            enable_mixup=self.enable_mixup,
            mosaic_prob=self.mosaic_prob,
            mixup_prob=self.mixup_prob,
        )

    def get_val_dataset(self, split: str = "val"):
        """Val images preprocessed exactly as at inference, with real targets so the loss can be computed too."""
        from yolox.data import COCODataset, TrainTransform

        check_data(self, split)
        with quiet_stdout():
            dataset = COCODataset(
                data_dir=self.data_dir,
                json_file=self.annotation_file(split),
                name="",
                img_size=self.test_size,
                preproc=TrainTransform(max_labels=120, flip_prob=0.0, hsv_prob=0.0),
            )
        self._skip_unusable_boxes(dataset, split)
        return dataset

    def _skip_unusable_boxes(self, dataset, split: str) -> None:
        """Boxes without area are no target to learn nor to score against: drop them and say how many went."""
        dropped, total = drop_unusable_boxes(dataset, prune_ground_truth=split != "train")
        if dropped:
            logger.warning(f"{split} ({self.annotation_path(split)}): skipped {dropped} of {total} boxes with zero or "
                           "negative width or height (or area) inside their image")

    def get_data_loader(self, batch_size, is_distributed, no_aug=False, cache_img=False):
        """YOLOX-compatible entry point (epoch 0 of our deterministic per-epoch loader)."""
        world = torch.distributed.get_world_size() if is_distributed else 1
        rank = torch.distributed.get_rank() if is_distributed else 0
        dataset = self.get_train_dataset(cache_img)
        return build_train_loader(self, dataset, batch_size // world, epoch=1, rank=rank, world_size=world,
                                  seed=self.seed or 0, mosaic=not no_aug)

    # ------------------------------------------------------------------ stock YOLOX entry points
    def get_eval_loader(self, batch_size, is_distributed, testdev=False, legacy=False):
        """Stock YOLOX's eval loader on our layout: annotations/<val_ann or test_ann>, image paths relative to
        data_dir (stock looks under data_dir/val2017). Batches are stock's (image, target, info, id)."""
        from yolox.data import COCODataset, ValTransform

        split = "test" if testdev else "val"
        check_data(self, split)
        with quiet_stdout():
            dataset = COCODataset(data_dir=self.data_dir, json_file=self.annotation_file(split), name="",
                                  img_size=self.test_size, preproc=ValTransform(legacy=legacy))
        if is_distributed:
            batch_size = batch_size // torch.distributed.get_world_size()
            sampler = torch.utils.data.distributed.DistributedSampler(dataset, shuffle=False)
        else:
            sampler = torch.utils.data.SequentialSampler(dataset)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                           num_workers=self.data_num_workers, pin_memory=torch.cuda.is_available())

    def random_resize(self, data_loader, epoch, rank, is_distributed):
        """Stock YOLOX's multi-scale pick (a size within multiscale_range * 32 of input_size, or stock's optional
        ``random_size`` range in strides, same aspect) on any device: stock's builds a CUDA tensor. Our trainer
        uses ``trainer.multiscale_size`` instead (seeded, no broadcast)."""
        import random

        if rank == 0 or not is_distributed:
            base = int(self.input_size[0] / 32)
            factor = self.input_size[1] / self.input_size[0]
            low, high = getattr(self, "random_size", None) or (base - self.multiscale_range,
                                                                base + self.multiscale_range)
            steps = random.randint(low, high)
            size = [int(32 * steps), 32 * int(steps * factor)]
        else:
            size = [0, 0]
        if is_distributed:
            torch.distributed.broadcast_object_list(size, src=0)
        return int(size[0]), int(size[1])


# ---------------------------------------------------------------------- loading and overriding
def load_exp(exp_file: str | os.PathLike) -> NuScenesExp:
    """Import an exp file and instantiate its ``Exp`` class."""
    path = Path(exp_file)
    if not path.is_file():
        raise UserError(f"exp file {path} not found; pass -f exps/<name>.py")
    module_name = f"yolox_finetune_exp_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"exp file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report where it broke
        raise UserError(f"exp file {path} failed to import: {type(exc).__name__}: {exc}") from exc
    exp_class = getattr(module, "Exp", None)
    if not (inspect.isclass(exp_class) and issubclass(exp_class, YoloxExp)):
        raise UserError(f"exp file {path} does not define a class Exp (a subclass of "
                        "yolox_finetune.training.exp.NuScenesExp)")
    exp = exp_class()
    if not isinstance(exp, NuScenesExp):
        raise UserError(f"Exp in {path} must subclass yolox_finetune.training.exp.NuScenesExp (it subclasses only "
                        "yolox's Exp)")
    validate_exp(exp, where=str(path))
    return exp


def parse_value(text: str) -> Any:
    """A CLI value: a Python literal when it is one ('(128, 128)', '0.5', 'None'), else the raw string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


#: what an override may set where the exp's current value does not tell: None until set, a number YOLOX writes as
#: an int, or a choice of types. Every other attribute takes the type of its current value.
OVERRIDE_KINDS: dict[str, tuple[str, ...]] = {
    "seed": ("none", "int"),
    "early_stop_patience": ("none", "int"),
    "grad_clip_norm": ("none", "number"),
    "ema_half_life_epochs": ("none", "number"),
    "mot_dir": ("none", "text"),
    "ckpt_epochs": ("none", "tuple"),
    "tracking_val": ("bool", "text"),
    "warmup_lr": ("number",),
    "warmup_epochs": ("number",),
}
_KIND_TEXT = {"none": "None", "bool": "True or False", "int": "an integer", "number": "a number", "text": "text",
              "tuple": "a tuple"}
_REJECTED = object()


def _override_kinds(key: str, old: Any) -> tuple[str, ...]:
    if key in OVERRIDE_KINDS:
        return OVERRIDE_KINDS[key]
    for kind, types in (("bool", bool), ("int", int), ("number", float), ("text", str), ("tuple", (tuple, list))):
        if isinstance(old, types):
            return (kind,)
    return ()  # anything: the exp's own validation has the last word


def _as_kind(kind: str, value: Any, text: str, old: Any) -> Any:
    """``value`` (parsed from ``text``) as an override of this kind, or ``_REJECTED``."""
    if kind == "none":
        return None if value is None else _REJECTED
    if kind == "bool":
        return value if isinstance(value, bool) else _REJECTED
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else _REJECTED
    if kind == "number":
        if not _is_number(value):
            return _REJECTED
        return float(value) if isinstance(old, float) else value
    if kind == "text":
        return text  # a name or path that happens to parse as a number stays the text typed
    if kind == "tuple":
        return tuple(value) if isinstance(value, (tuple, list)) else _REJECTED
    raise ValueError(kind)


def coerce_override(key: str, text: str, old: Any) -> Any:
    """The value ``KEY VALUE`` sets: of the type the attribute holds, or one line naming key, value and type."""
    value = parse_value(text)
    kinds = _override_kinds(key, old)
    if not kinds:
        return value
    for kind in kinds:
        coerced = _as_kind(kind, value, text, old)
        if coerced is not _REJECTED:
            return coerced
    expected = " or ".join(_KIND_TEXT[k] for k in kinds)
    raise UserError(f"override {key} {text!r}: expected {expected} (the exp has {key} {old!r})")


def apply_overrides(exp: NuScenesExp, pairs: list[str]) -> dict[str, Any]:
    """Set ``KEY VALUE`` pairs on the Exp; an unknown key is an error with the closest names suggested, a value of
    the wrong type one naming the type expected."""
    misplaced = [token for token in pairs[::2] if token.startswith("-")] or [t for t in pairs if t.startswith("--")]
    if misplaced:
        raise UserError(f"'{misplaced[0]}' came after the KEY VALUE overrides, where it reads as one; put options "
                        "before them: tools/train.py -f EXP [options] KEY VALUE ...")
    if len(pairs) % 2:
        raise UserError(f"overrides come in KEY VALUE pairs; got an odd list: {' '.join(pairs)}")
    applied: dict[str, Any] = {}
    known = [k for k in vars(exp) if not k.startswith("_")]
    for key, text in zip(pairs[::2], pairs[1::2]):
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown exp attribute '{key}' in overrides{hint}")
        value = coerce_override(key, text, getattr(exp, key))
        setattr(exp, key, value)
        applied[key] = value
    validate_exp(exp, where="overrides")
    return applied


def validate_exp(exp: NuScenesExp, where: str) -> None:
    """Catch schedule mistakes before a long run starts."""
    for name in ("max_epoch", "batch_size", "num_classes"):
        value = getattr(exp, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{where}: {name} must be a whole number of at least 1, not {value!r}")
    phases = exp.unfreeze_schedule
    if not phases:
        raise UserError(f"{where}: unfreeze_schedule is empty; give at least Phase(1, {{'head': 1.0}})")
    if phases[0].start_epoch != 1:
        raise UserError(f"{where}: the first phase must start at epoch 1 (it starts at {phases[0].start_epoch})")
    starts = [p.start_epoch for p in phases]
    if starts != sorted(set(starts)):
        raise UserError(f"{where}: phase start epochs must increase strictly: {starts}")
    for phase in phases:
        unknown = sorted(set(phase.lr_mult) - set(GROUPS))
        if unknown:
            raise UserError(f"{where}: unknown module group(s) {unknown} in a phase; groups are {', '.join(GROUPS)}")
        if not phase.lr_mult:
            raise UserError(f"{where}: phase starting at epoch {phase.start_epoch} trains nothing")
        bad = {g: m for g, m in phase.lr_mult.items() if not (isinstance(m, (int, float)) and m > 0)}
        if bad:
            raise UserError(f"{where}: LR multipliers must be positive numbers: {bad}")
    if exp.optimizer_name not in OPTIMIZERS:
        close = difflib.get_close_matches(str(exp.optimizer_name).lower(), OPTIMIZERS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"{where}: optimizer_name must be one of {OPTIMIZERS}, not {exp.optimizer_name!r}{hint}")
    if exp.bn_policy not in BN_POLICIES:
        raise UserError(f"{where}: bn_policy must be one of {BN_POLICIES}, not {exp.bn_policy!r}")
    if exp.no_aug_epochs > exp.max_epoch or exp.warmup_epochs > exp.max_epoch:
        raise UserError(f"{where}: warmup_epochs and no_aug_epochs must not exceed max_epoch ({exp.max_epoch})")
    validate_phase_settings(exp, where)
    validate_ema(exp, where)
    for name in ("input_size", "test_size"):
        size = getattr(exp, name)
        if not (isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, int) and v % 32 == 0 for v in size)):
            raise UserError(f"{where}: {name} must be a (height, width) tuple of multiples of 32, got {size!r}")
    if exp.grad_clip_norm is not None and not (isinstance(exp.grad_clip_norm, (int, float)) and exp.grad_clip_norm > 0):
        raise UserError(f"{where}: grad_clip_norm must be a positive number or None")
    if not math.isfinite(exp.basic_lr_per_img) or exp.basic_lr_per_img <= 0:
        raise UserError(f"{where}: basic_lr_per_img must be positive")
    validate_tracking_settings(exp, where)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_phase_settings(exp: NuScenesExp, where: str) -> None:
    """Per-phase LR, warmup and BatchNorm policy: each mistake named with its phase and the fix."""
    for index, phase in enumerate(exp.unfreeze_schedule):
        name = f"phase {index + 1} (from epoch {phase.start_epoch})"
        if phase.lr_per_img is not None and not (_is_number(phase.lr_per_img) and phase.lr_per_img > 0):
            raise UserError(f"{where}: {name}: lr_per_img must be a positive number (LR per image, e.g. "
                            f"0.001 / 64) or None for the exp's basic_lr_per_img, not {phase.lr_per_img!r}")
        if phase.warmup_epochs is not None and not (_is_number(phase.warmup_epochs) and phase.warmup_epochs >= 0):
            raise UserError(f"{where}: {name}: warmup_epochs must be a number of epochs >= 0 or None, "
                            f"not {phase.warmup_epochs!r}")
        if phase.bn_policy is not None and phase.bn_policy not in BN_POLICIES:
            raise UserError(f"{where}: {name}: bn_policy must be one of {BN_POLICIES} or None (the exp's "
                            f"{exp.bn_policy!r}), not {phase.bn_policy!r}")
        first, last = exp.phase_epochs(index)
        length = last - first + 1
        if phase.warmup_epochs and length > 0 and phase.warmup_epochs > length:
            raise UserError(f"{where}: {name}: warmup_epochs {phase.warmup_epochs:g} is longer than the phase "
                            f"(epochs {first}-{last}, {length} epochs); shorten the warmup or move the next phase")


def validate_ema(exp: NuScenesExp, where: str) -> None:
    half_life = exp.ema_half_life_epochs
    if half_life is not None and not (_is_number(half_life) and half_life > 0):
        raise UserError(f"{where}: ema_half_life_epochs must be a positive number of epochs or None (then "
                        f"ema_decay applies), not {half_life!r}")
    if half_life is None and not (_is_number(exp.ema_decay) and 0 < exp.ema_decay < 1):
        raise UserError(f"{where}: ema_decay must lie strictly between 0 and 1 (YOLOX: 0.9998), not {exp.ema_decay!r}")

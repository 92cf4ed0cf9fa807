"""The device-agnostic training loop: CPU or CUDA, one process or DDP under torchrun.

What it adds to YOLOX's trainer: phases of progressive unfreezing with per-group LR multipliers and a BN policy,
a data order that makes resume exact, atomic checkpoints, a per-iteration metrics file, and clear stops on
NaN losses and bad input.

Crash safety: the run dir is created (or, with ``--overwrite``, cleared) only once the data, the model and the
weights have loaded, and a run that stops before its first metrics record removes a run dir it created; leftover
temp files of a killed run are removed at the next start; an epoch's summary row is written before its
checkpoint, so a resume from any kill point has exactly one row per epoch.
"""

from __future__ import annotations

import datetime
import json
import random
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from loguru import logger
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from yolox_finetune.core.atomic_io import atomic_copy, atomic_open, atomic_write_json, disk_full_error, is_no_space
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.groups import GROUPS
from yolox_finetune.core.output_dir import remove_stale_temps
from yolox_finetune.core.run_files import (
    BEST_CKPT,
    LAST_MOSAIC_CKPT,
    LATEST_CKPT,
    LOSS_KEYS,
    METRICS_FILE,
    PLAN_FILE,
    TENSORBOARD_DIR,
    TRAIN_LOG,
    read_jsonl,
)
from yolox_finetune.training.checkpoint import (
    check_state_fits,
    load_state_checked,
    read_checkpoint,
    read_resume_state,
    resolve_checkpoint,
    save_checkpoint,
)
from yolox_finetune.training.data import build_train_loader, epoch_seed, iters_per_epoch_for, seed_everything
from yolox_finetune.training.device import resolve_device
from yolox_finetune.training.distributed import barrier, init_distributed, is_distributed, unwrap
from yolox_finetune.training.exp import NuScenesExp
from yolox_finetune.training.freeze import (
    apply_phase,
    effective_bn_policy,
    format_parameter_report,
    group_of,
    parameter_report,
)
from yolox_finetune.training.inputs import check_training_inputs
from yolox_finetune.training.schedule import GroupLRSchedule, build_plan
from yolox_finetune.training.tracking_validation import (
    TENSORBOARD_METRICS,
    json_metrics,
    prepare_tracking_validation,
    tracking_summary,
    validate_tracking_settings,
)
from yolox_finetune.training.validation import evaluate

# yolox 0.3.0 calls the deprecated torch.cuda.amp.autocast inside its loss; nothing a user can act on
warnings.filterwarnings("ignore", category=FutureWarning, module=r"yolox\.")

PARAM_KINDS = ("bn", "weight", "bias")  # YOLOX's three kinds: BN weights (no decay), other weights (decay), biases


class TrainingDiverged(UserError):
    """The loss stopped being finite."""


@dataclass
class TrainOptions:
    batch_size: int | None = None  # global batch; None: the Exp's batch_size
    device: str = "auto"  # "cpu", "cuda" or "auto"
    ckpt: str | None = None  # pretrained weights for a new run
    resume: bool = False
    fp16: bool = False  # mixed-precision training (CUDA only)
    val_fp16: bool = False  # COCO validation under fp16 autocast (CUDA only); default fp32 as stock COCOEvaluator
    cache_img: bool = False
    overwrite: bool = False  # start afresh in a run dir that already holds checkpoints


# ---------------------------------------------------------------------- optimizer
def build_optimizer(model: nn.Module, exp: NuScenesExp) -> torch.optim.Optimizer:
    """The exp's optimizer (YOLOX's SGD, or AdamW) over group x kind parameter groups, every parameter included so
    phases never rebuild the optimizer; weight decay on conv/linear weights only, as YOLOX."""
    buckets: dict[tuple[str, str], list[nn.Parameter]] = {(g, k): [] for g in GROUPS for k in PARAM_KINDS}
    seen: set[int] = set()
    for name, module in unwrap(model).named_modules():
        if not name:
            continue
        group = None
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter) and id(bias) not in seen:
            group = group_of(name)
            buckets[(group, "bias")].append(bias)
            seen.add(id(bias))
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and id(weight) not in seen:
            group = group or group_of(name)
            kind = "bn" if isinstance(module, nn.BatchNorm2d) or "bn" in name else "weight"
            buckets[(group, kind)].append(weight)
            seen.add(id(weight))
    missing = [n for n, p in unwrap(model).named_parameters() if id(p) not in seen]
    if missing:
        raise RuntimeError(f"parameters outside YOLOX's three kinds: {missing[:5]}")
    param_groups = [
        {"params": params, "group": g, "kind": k, "lr": 0.0,
         "weight_decay": exp.weight_decay if k == "weight" else 0.0}
        for (g, k), params in buckets.items()
    ]
    if exp.optimizer_name == "adamw":
        return torch.optim.AdamW(param_groups, lr=0.0, betas=(exp.momentum, 0.999))
    return torch.optim.SGD(param_groups, lr=0.0, momentum=exp.momentum, nesterov=True)


def set_group_lrs(optimizer: torch.optim.Optimizer, lrs: dict[str, float]) -> None:
    for param_group in optimizer.param_groups:
        param_group["lr"] = lrs[param_group["group"]]


# ---------------------------------------------------------------------- RNG state in checkpoints
def rng_state() -> dict[str, Any]:
    """Every RNG as plain tensors/lists so the checkpoint stays loadable with ``weights_only=True``."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def multiscale_size(exp: NuScenesExp, seed: int, global_iter: int) -> tuple[int, int]:
    """YOLOX's multi-scale: a new random size every 10 iterations, the same on every rank without a broadcast."""
    block = (global_iter - 1) // 10
    if exp.multiscale_range <= 0 or block == 0:
        return tuple(exp.input_size)
    height, width = exp.input_size
    rng = random.Random(epoch_seed(seed, block, 7))
    low = int(height / 32) - exp.multiscale_range
    high = int(height / 32) + exp.multiscale_range
    size = rng.randint(max(1, low), high)
    return int(32 * size), 32 * int(size * width / height)


class MetricsFile:
    """``metrics.jsonl``: one JSON object per logged iteration and per epoch (rank 0 writes)."""

    def __init__(self, path: Path, keep_until_epoch: int | None) -> None:
        self.path = path
        self.written = 0  # records written by this process
        if keep_until_epoch is not None and path.exists():
            self._keep_until(keep_until_epoch)
        elif keep_until_epoch is None and path.exists():
            path.unlink()

    def _keep_until(self, epoch: int) -> None:
        """A resume keeps the records up to the checkpoint's epoch: those of the interrupted epoch (and of any
        epoch whose row was written just before a kill took its checkpoint) go, as does a line the kill cut
        short (one warning), so the file ends with exactly one row per finished epoch."""
        records, unreadable = read_jsonl(self.path)
        if unreadable:
            shown = ", ".join(map(str, unreadable[:5])) + (" ..." if len(unreadable) > 5 else "")
            logger.warning(f"--resume: dropped {len(unreadable)} unreadable line(s) of {self.path} (line "
                           f"{shown}; cut short by an interrupted run); the other records are kept")
        kept = [r for r in records if isinstance(r.get("epoch", 0), (int, float)) and r.get("epoch", 0) <= epoch]
        if len(kept) < len(records):
            logger.info(f"--resume: dropped {len(records) - len(kept)} metrics record(s) of epochs after {epoch}, "
                        f"the checkpoint's; they are written again")
        with atomic_open(self.path, "w", encoding="utf-8") as handle:  # always: a last line may lack its newline
            handle.write("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            self.written += 1
        except OSError as exc:
            if is_no_space(exc):
                raise disk_full_error(self.path, kept=False) from None
            raise


_LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} | {message}"


def _fmt_duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(0, seconds))))


# ---------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, exp: NuScenesExp, options: TrainOptions) -> None:
        self.exp = exp
        self.options = options
        kind = resolve_device(options.device).type  # fail on a bad --device before joining a process group
        self.rank, self.world_size, self.local_rank = init_distributed(kind)
        self.device = resolve_device(kind, self.local_rank)
        self.is_main = self.rank == 0
        self.batch_size = int(options.batch_size or exp.batch_size)
        if self.batch_size % self.world_size:
            raise UserError(f"batch size {self.batch_size} is not divisible by the {self.world_size} processes")
        self.batch_per_rank = self.batch_size // self.world_size
        self.fp16 = options.fp16 and self.device.type == "cuda"
        self.val_fp16 = options.val_fp16 and self.device.type == "cuda"
        self.run_dir = exp.run_dir
        self.best_ap = 0.0  # the best val AP50:95 so far (YOLOX's best_ap), whatever best_metric is
        self.best_metric = validate_tracking_settings(exp, exp.exp_name)  # what best_ckpt.pth is chosen by
        # best_metric's value at best_epoch (None: none yet, or undefined there); mAP starts at 0 as YOLOX's best_ap,
        # so an epoch at AP 0 is no improvement (early stopping counts it)
        self.best_value: float | None = None if self.best_metric.needs_tracking else 0.0
        self.best_epoch: int | None = None
        self.tracking_seconds = 0.0  # how long the last tracking validation took
        self.start_epoch = 0  # epochs completed before this process started (resume)
        self.epochs_done = 0
        self.epochs_without_improvement = 0
        self.phase_index: int | None = None
        self.stop_reason = ""
        self.created_dirs: list[Path] = []  # folders this start created for the run dir, deepest first
        self._early_log: list[str] = []  # train log lines from before the run dir exists
        self._log_sink: int | None = None

    # -------------------------------------------------------------- setup
    def _setup_logging(self) -> None:
        """Log to stderr; the train log's lines are held in memory until :meth:`_open_run_dir` creates it."""
        logger.remove()
        if self.is_main:
            logger.add(sys.stderr, level="INFO", format="<green>{time:HH:mm:ss}</green> | {message}")
            self._log_sink = logger.add(self._early_log.append, level="INFO", format=_LOG_FORMAT)
        else:
            logger.add(sys.stderr, level="WARNING", format=f"rank {self.rank} | {{message}}")

    def _shared_seed(self) -> int:
        seed = self.exp.seed if self.exp.seed is not None else random.SystemRandom().randrange(2**31)
        if is_distributed():
            holder = [seed]
            dist.broadcast_object_list(holder, src=0)
            seed = holder[0]
        return int(seed)

    def _check_run_dir(self) -> None:
        """A new run never silently replaces the checkpoints of an earlier one."""
        existing = sorted(p.name for p in self.run_dir.glob("*.pth")) if self.run_dir.is_dir() else []
        if existing and not (self.options.resume or self.options.overwrite):
            raise UserError(f"run dir {self.run_dir} already holds checkpoints ({', '.join(existing[:4])}"
                            f"{' ...' if len(existing) > 4 else ''}); pass --resume to continue that run, --overwrite "
                            f"to start over, or set exp_name/output_dir for a new run")

    def _open_run_dir(self) -> None:
        """Create the run dir (remembering which folders are new), clear the earlier run on ``--overwrite``, start
        the train log and remove leftover temp files of a killed run: only after every input has loaded, so a
        start that stops on bad input writes and deletes nothing."""
        if self.is_main:
            folder = self.run_dir
            while not folder.exists() and folder != folder.parent:
                self.created_dirs.append(folder)
                folder = folder.parent
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.options.overwrite and not self.options.resume and any(self.run_dir.glob("*.pth")):
                # start over means no stale epoch_<N>.pth or TensorBoard events of the old run next to the new ones
                for path in self.run_dir.glob("*.pth"):
                    path.unlink()
                for name in (METRICS_FILE, PLAN_FILE, TRAIN_LOG):
                    (self.run_dir / name).unlink(missing_ok=True)
                shutil.rmtree(self.run_dir / TENSORBOARD_DIR, ignore_errors=True)
            logger.remove(self._log_sink)
            with open(self.run_dir / TRAIN_LOG, "a", encoding="utf-8") as handle:
                handle.write("".join(self._early_log))
            self._early_log.clear()
            self._log_sink = logger.add(self.run_dir / TRAIN_LOG, level="INFO", format=_LOG_FORMAT)
            remove_stale_temps(self.run_dir)
        barrier()

    def _discard_new_run_dir(self) -> None:
        """A start that stopped before its first metrics record leaves no run dir it created (nor the new
        ``output_dir`` above it): only the files this start wrote there go, and a folder is removed only when
        that leaves it empty."""
        if not self.is_main or not self.created_dirs or getattr(getattr(self, "metrics", None), "written", 0):
            return
        if hasattr(self, "tb"):
            self.tb.close()
            del self.tb
        if self._log_sink is not None:
            logger.remove(self._log_sink)
            self._log_sink = None
        for name in (TRAIN_LOG, PLAN_FILE, METRICS_FILE):
            (self.run_dir / name).unlink(missing_ok=True)
        events = self.run_dir / TENSORBOARD_DIR
        if events.is_dir():
            for path in events.glob("events.out.tfevents.*"):
                path.unlink()
        for folder in [events, *self.created_dirs]:
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): what is left there is not ours to delete
                if folder != events:
                    break

    def setup(self) -> None:
        exp = self.exp
        # bad input (data, batch, checkpoint) stops here in one line, before the run dir exists
        check_training_inputs(exp, batch_size=self.options.batch_size, world_size=self.world_size,
                              ckpt=self.options.ckpt, resume=self.options.resume)
        self._check_run_dir()
        self._setup_logging()
        if self.options.fp16 and not self.fp16:
            logger.warning("--fp16 is a CUDA feature; training in fp32 on the CPU")
        if self.options.val_fp16 and not self.val_fp16:
            logger.warning("--val-fp16 is a CUDA feature; validating in fp32 on the CPU")
        self.train_dataset = exp.get_train_dataset(cache_img=self.options.cache_img)
        self.val_dataset = exp.get_val_dataset("val") if exp.eval_interval > 0 else None
        self.tracking = prepare_tracking_validation(exp, self.val_dataset, self.best_metric)
        self.iters_per_epoch = iters_per_epoch_for(len(self.train_dataset), self.batch_size, self.world_size)

        self.seed = self._shared_seed()
        seed_everything(self.seed)  # a seeded run starts from the same random init too
        self.model = exp.get_model().to(self.device)
        self.optimizer = build_optimizer(self.model, exp)
        self.schedule = GroupLRSchedule(exp, self.batch_size, self.iters_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.fp16)
        resume_state = self._load_initial_weights()
        if resume_state and "seed" in resume_state:
            self.seed = int(resume_state["seed"])  # the resumed run continues the original data order
        self.ema = None
        if exp.ema:
            from yolox.utils import ModelEMA

            # a half-life in epochs becomes a per-iteration decay with this run's iterations per epoch
            self.ema = ModelEMA(self.model, exp.ema_decay_per_iter(self.iters_per_epoch))
        if resume_state:
            self._restore(resume_state)
        self._open_run_dir()
        if self.is_main and resume_state and not self.options.ckpt:
            self._complete_interrupted_save()
        if self.is_main:
            self.plan = build_plan(exp, self.iters_per_epoch, self.batch_size, self.world_size)
            atomic_write_json(self.run_dir / PLAN_FILE, self.plan)
            self.metrics = MetricsFile(self.run_dir / METRICS_FILE,
                                       self.start_epoch if self.options.resume else None)
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR))
        logger.info(f"exp {exp.exp_name}: {len(self.train_dataset)} train images, "
                    f"{len(self.val_dataset) if self.val_dataset is not None else 0} val images, batch "
                    f"{self.batch_size} ({self.world_size} x {self.batch_per_rank}) on {self.device}, "
                    f"{self.iters_per_epoch} iters/epoch, seed {self.seed}, run dir {self.run_dir}")

    def _load_initial_weights(self) -> dict[str, Any] | None:
        """The training state to resume, or None after loading ``-c`` weights (only the class-dependent head may be
        left out; a checkpoint of another model size is refused before hours of training go into it)."""
        exp_size = (float(self.exp.depth), float(self.exp.width))
        if self.options.resume:
            path, state = read_resume_state(self.options.ckpt, self.run_dir)
            # the model's shapes must match exactly (the load itself comes with the optimizer in _restore)
            check_state_fits(self.model, state["model"], path, exp_size=exp_size, allow_class_change=False)
            logger.info(f"resuming from {path} (epoch {state['start_epoch']} done)")
            return state
        if self.options.ckpt:
            path = resolve_checkpoint(self.options.ckpt, self.run_dir)
            state = read_checkpoint(path)
            report = load_state_checked(self.model, state["model"], path, exp_size=exp_size, allow_class_change=True,
                                        init_head_from_coco=bool(getattr(self.exp, "init_head_from_coco", False)),
                                        class_names=tuple(self.exp.class_names),
                                        source_class_names=state.get("class_names"))
            logger.info(f"pretrained weights from {path}:")
            for line in report.lines():
                logger.info("  " + line)
        return None

    def _restore(self, state: dict[str, Any]) -> None:
        raw = state.get("train_model") or state["model"]
        unwrap(self.model).load_state_dict(raw)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.ema.load_state_dict(state["model"])
            self.ema.updates = int((state.get("ema") or {}).get("updates", 0))
        self.start_epoch = self.epochs_done = int(state["start_epoch"])
        self.best_ap = float(state.get("best_ap", 0.0))
        self._restore_best(state)
        self.epochs_without_improvement = int(state.get("epochs_without_improvement", 0))
        if "rng" in state:
            set_rng_state(state["rng"])

    def _restore_best(self, state: dict[str, Any]) -> None:
        """The best checkpoint so far, by the metric that chose it; a changed best_metric starts the choice anew."""
        chosen_by = state.get("best_metric", "AP50_95")  # checkpoints from before best_metric chose by AP50:95
        if chosen_by != self.best_metric.name:
            logger.warning(f"--resume: best_ckpt.pth so far was chosen by {chosen_by}, this exp chooses by "
                           f"{self.best_metric.name}; the next evaluation starts the choice anew")
            self.epochs_without_improvement = 0
            return
        value = state.get("best_value", self.best_ap if chosen_by == "AP50_95" else None)
        if value is not None:
            self.best_value = float(value)
        epoch = state.get("best_epoch")
        self.best_epoch = None if epoch is None else int(epoch)

    # -------------------------------------------------------------- phases
    def _enter_phase(self, epoch: int) -> None:
        index = self.exp.phase_index(epoch)
        if index == self.phase_index:
            return
        phase = self.exp.unfreeze_schedule[index]
        model = unwrap(self.model)
        apply_phase(model, phase, self.exp.bn_policy)  # the phase's own bn_policy wins over the exp's
        model.train()
        if self.world_size > 1:  # DDP registers trainable parameters at construction: rebuild it per phase
            self.model = DistributedDataParallel(
                model, device_ids=[self.local_rank] if self.device.type == "cuda" else None,
                broadcast_buffers=False)
        own_lr = (f", own LR {self.schedule.phase_base_lr(index):.4g} with {phase.warmup_epochs or 0:g}-epoch warmup"
                  if phase.has_own_lr else "")
        title = (f"phase {index + 1}/{len(self.exp.unfreeze_schedule)} from epoch {epoch} "
                 f"(bn_policy {effective_bn_policy(phase, self.exp.bn_policy)}{own_lr}):")
        logger.info(format_parameter_report(parameter_report(model, phase, self.exp.bn_policy), title))
        self.phase_index = index

    # -------------------------------------------------------------- loop
    def train(self) -> dict[str, Any]:
        try:
            self.setup()
            self._t0 = time.time()
            if self.start_epoch >= self.exp.max_epoch:
                logger.info(f"nothing to do: {self.start_epoch} of {self.exp.max_epoch} epochs already done")
            for epoch in range(self.start_epoch + 1, self.exp.max_epoch + 1):
                self._enter_phase(epoch)
                self._before_epoch(epoch)
                self._train_epoch(epoch)
                if self._after_epoch(epoch):
                    break
        except BaseException:
            self._discard_new_run_dir()
            raise
        finally:
            if self.is_main and hasattr(self, "tb"):
                self.tb.close()
        suffix = f"; {self.stop_reason}" if self.stop_reason else ""
        chosen = (f"; best_ckpt.pth is epoch {self.best_epoch} by {self.best_metric.label} "
                  f"({_fmt_value(self.best_value)})" if self.best_epoch is not None else "")
        logger.info(f"training done: best AP50:95 {self.best_ap:.4f}{chosen}{suffix}")
        return {"best_ap": self.best_ap, "run_dir": str(self.run_dir), "stop_reason": self.stop_reason,
                "epochs_done": self.epochs_done, "best_metric": self.best_metric.name, "best_value": self.best_value,
                "best_epoch": self.best_epoch}

    def _before_epoch(self, epoch: int) -> None:
        exp = self.exp
        no_aug = exp.is_no_aug_epoch(epoch)
        first_no_aug = no_aug and not exp.is_no_aug_epoch(epoch - 1)
        if first_no_aug and epoch > 1 and self.is_main:
            # the state after the last mosaic epoch, as YOLOX keeps it
            src = self.run_dir / LATEST_CKPT
            if src.is_file():
                atomic_copy(src, self.run_dir / LAST_MOSAIC_CKPT)
        unwrap(self.model).head.use_l1 = no_aug
        mosaic = not no_aug
        if first_no_aug:
            logger.info(f"epoch {epoch}: no-aug epochs start: mosaic and mixup closed, L1 loss on")
        self.train_loader = build_train_loader(exp, self.train_dataset, self.batch_per_rank, epoch, self.rank,
                                               self.world_size, self.seed, mosaic, self.iters_per_epoch)
        self.mosaic_on = mosaic

    def _train_epoch(self, epoch: int) -> None:
        exp, model = self.exp, self.model
        model.train()
        trainable = [p for p in unwrap(model).parameters() if p.requires_grad]
        phase = exp.phase_for_epoch(epoch)
        total_iters = exp.max_epoch * self.iters_per_epoch
        iter_end = time.time()
        for it, (images, targets, _, _) in enumerate(self.train_loader, start=1):
            global_iter = (epoch - 1) * self.iters_per_epoch + it
            lrs = self.schedule.for_groups(global_iter, epoch)
            set_group_lrs(self.optimizer, lrs)
            images = images.to(self.device, non_blocking=True).float()
            targets = targets.to(self.device, non_blocking=True).float()
            targets.requires_grad_(False)
            images, targets = exp.preprocess(images, targets, multiscale_size(exp, self.seed, global_iter))
            data_time = time.time() - iter_end
            try:
                with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.fp16):
                    outputs = model(images, targets)
            except RuntimeError:  # exploded weights make YOLOX's loss code fail before a loss exists
                if self._predictions_finite(images):
                    raise
                self._diverged("the predictions are no longer finite", epoch, it, global_iter)
            loss = outputs["total_loss"]
            self._check_finite(loss, f"loss is {float(loss.detach()):.4g}", epoch, it, global_iter)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if exp.grad_clip_norm:
                self.scaler.unscale_(self.optimizer)
            if exp.grad_clip_norm or not self.fp16:  # with AMP the scaler already skips inf/NaN steps
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, exp.grad_clip_norm or float("inf"))
            if not self.fp16:
                self._check_finite(grad_norm, f"gradient norm is {float(grad_norm):.4g}", epoch, it, global_iter)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(model)
            iter_time = time.time() - iter_end
            iter_end = time.time()
            if it % exp.print_interval == 0 or it == self.iters_per_epoch:
                done = global_iter - self.start_epoch * self.iters_per_epoch
                eta = (time.time() - self._t0) / max(1, done) * (total_iters - global_iter)
                self._log_iteration(epoch, it, global_iter, outputs, phase, lrs, iter_time, data_time, eta)

    @torch.no_grad()
    def _predictions_finite(self, images: torch.Tensor) -> bool:
        model = unwrap(self.model)
        model.eval()
        try:
            return bool(torch.isfinite(model(images)).all())
        finally:
            model.train()

    def _check_finite(self, value: torch.Tensor, what: str, epoch: int, it: int, global_iter: int) -> None:
        bad = torch.tensor([0.0 if torch.isfinite(value.detach()).all() else 1.0], device=self.device)
        if is_distributed():
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        if bad.item() > 0:
            self._diverged(what if not torch.isfinite(value.detach()).all() else "another rank diverged",
                           epoch, it, global_iter)

    def _diverged(self, what: str, epoch: int, it: int, global_iter: int) -> None:
        latest = self.run_dir / LATEST_CKPT
        keep = (f"the last good checkpoint {latest} (epoch {self.epochs_done}) is untouched"
                if latest.exists() else "no checkpoint was written yet")
        raise TrainingDiverged(f"{what} at epoch {epoch} iteration {it} (global iteration {global_iter}); training "
                               f"stopped and {keep}; lower basic_lr_per_img or set grad_clip_norm")

    def _reduced(self, outputs: dict[str, Any]) -> dict[str, float]:
        keys = (*LOSS_KEYS, "num_fg")
        values = torch.tensor([float(torch.as_tensor(outputs[k]).detach()) for k in keys], dtype=torch.float64)
        if is_distributed():
            dist.all_reduce(values)
            values /= self.world_size
        return dict(zip(keys, values.tolist()))

    def _log_iteration(self, epoch, it, global_iter, outputs, phase, lrs, iter_time, data_time, eta) -> None:
        losses = self._reduced(outputs)
        if not self.is_main:
            return
        group_lrs = {g: lrs[g] for g in phase.trainable}
        if len(set(group_lrs.values())) == 1 and len(group_lrs) > 1:
            lr_text = f"{next(iter(group_lrs.values())):.3e} (all {len(group_lrs)} groups)"
        else:
            lr_text = " ".join(f"{g} {v:.3e}" for g, v in group_lrs.items())
        loss_text = " ".join(f"{k.replace('_loss', '')} {losses[k]:.3f}" for k in LOSS_KEYS)
        logger.info(f"epoch {epoch}/{self.exp.max_epoch} iter {it}/{self.iters_per_epoch} | lr {lr_text} | "
                    f"{loss_text} | {iter_time:.2f} s/it (data {data_time:.2f}) | ETA {_fmt_duration(eta)}")
        record = {"type": "iter", "epoch": epoch, "iter": it, "iters_per_epoch": self.iters_per_epoch,
                  "global_iter": global_iter, **losses, "lr": group_lrs, "phase": self.phase_index,
                  "mosaic": self.mosaic_on, "l1": bool(unwrap(self.model).head.use_l1), "iter_time": iter_time,
                  "eta_s": eta, "time": time.time()}
        self.metrics.write(record)
        for k in (*LOSS_KEYS, "num_fg"):
            self.tb.add_scalar(f"train/{k}", losses[k], global_iter)
        for g, v in group_lrs.items():
            self.tb.add_scalar(f"lr/{g}", v, global_iter)

    # -------------------------------------------------------------- end of epoch
    def _after_epoch(self, epoch: int) -> bool:
        """Evaluate (val loss, mAP and, when on, tracking), checkpoint, log; True when early stopping ends the run."""
        exp = self.exp
        self.epochs_done = epoch
        result = None
        if self.val_dataset is not None and (epoch % exp.eval_interval == 0 or epoch == exp.max_epoch):
            eval_model = self.ema.ema if self.ema is not None else self.model
            unwrap(eval_model).head.use_l1 = bool(unwrap(self.model).head.use_l1)  # val loss matches the train loss
            result = evaluate(eval_model, self.val_dataset, exp, self.device, batch_size=self.batch_per_rank,
                              fp16=self.val_fp16, keep_boxes=self.tracking is not None)
            boxes = result.pop("boxes", None)
            if self.tracking is not None:
                result["tracking"] = self._track(boxes)
        improved = False
        if result is not None:
            self.best_ap = max(self.best_ap, result["ap50_95"])
            value = self.best_metric.value(result, result.get("tracking"))
            improved = self.best_metric.better(value, self.best_value)
            if improved:
                self.best_value, self.best_epoch = value, epoch
                self.epochs_without_improvement = 0
            else:
                self.epochs_without_improvement += 1
        saved, is_best = None, False
        if self.is_main:
            # the first evaluated epoch is the best so far even at AP 0 (or an undefined metric), so `best` always
            # resolves after one evaluation
            is_best = improved or (result is not None and self.best_epoch is None
                                   and not (self.run_dir / BEST_CKPT).exists())
            if is_best and not improved:
                self.best_epoch = epoch
            saved = f"epoch_{epoch}.pth" if self.exp.keeps_epoch_ckpt(epoch) else None
            # the row first: a kill before the checkpoint lands makes the resume redo this epoch and drop the row;
            # the other order would lose the row of an epoch whose checkpoint the resume starts from
            self._log_epoch(epoch, result, saved, is_best)
            self._save(epoch)
        barrier()
        patience = exp.early_stop_patience
        if patience and result is not None and self.epochs_without_improvement >= patience:
            self.stop_reason = (f"early stop after epoch {epoch}: val {self.best_metric.label} did not improve for "
                                f"{patience} epochs (best {_fmt_value(self.best_value)}"
                                f"{f' at epoch {self.best_epoch}' if self.best_epoch is not None else ''})")
            logger.info(self.stop_reason)
            return True
        return False

    def _track(self, boxes: dict[int, np.ndarray] | None) -> dict[str, dict[str, Any]]:
        """Tracking metrics of this evaluation's boxes: computed on rank 0 (every rank holds every box), shared
        with the others so that all agree on the best epoch and on early stopping."""
        tracking = None
        if self.is_main:
            start = time.time()
            tracking = {name: json_metrics(m) for name, m in self.tracking.evaluate(boxes or {}).items()}
            self.tracking_seconds = time.time() - start
        if is_distributed():
            holder = [tracking]
            dist.broadcast_object_list(holder, src=0)
            tracking = holder[0]
        return tracking

    def _state(self, epoch: int) -> dict[str, Any]:
        raw = unwrap(self.model)
        state = {
            "model": (self.ema.ema if self.ema is not None else raw).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "start_epoch": epoch,
            "best_ap": self.best_ap,
            "best_metric": self.best_metric.name,
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "epochs_without_improvement": self.epochs_without_improvement,
            "phase": self.phase_index,
            "rng": rng_state(),
            "seed": self.seed,
            "exp_name": self.exp.exp_name,
            "optimizer_name": self.exp.optimizer_name,
            "num_classes": self.exp.num_classes,
            "class_names": list(self.exp.class_names),
            "iters_per_epoch": self.iters_per_epoch,
        }
        if self.ema is not None:
            state["ema"] = {"updates": int(self.ema.updates)}
            state["train_model"] = raw.state_dict()
        return state

    def _save(self, epoch: int) -> None:
        """latest_ckpt.pth, then its copies (epoch_<N>.pth, best_ckpt.pth); a resume completes the copies a kill
        prevented (:meth:`_complete_interrupted_save`)."""
        latest = self.run_dir / LATEST_CKPT
        save_checkpoint(self._state(epoch), latest)
        for name in self._epoch_copies(epoch):
            atomic_copy(latest, self.run_dir / name)

    def _epoch_copies(self, epoch: int) -> list[str]:
        """The copies of latest_ckpt.pth that epoch ``epoch`` makes: epoch_<N>.pth when the exp keeps it,
        best_ckpt.pth when it is the best so far."""
        return ([f"epoch_{epoch}.pth"] if self.exp.keeps_epoch_ckpt(epoch) else []) + \
            ([BEST_CKPT] if self.best_epoch == epoch else [])

    def _complete_interrupted_save(self) -> None:
        """A kill between latest_ckpt.pth and its copies leaves epoch_<N>.pth or best_ckpt.pth missing or older
        than latest: a resume from latest copies them now, so each file holds the epoch the metrics rows name."""
        latest = self.run_dir / LATEST_CKPT
        for name in self._epoch_copies(self.start_epoch):
            path = self.run_dir / name
            if not path.exists() or path.stat().st_mtime_ns < latest.stat().st_mtime_ns:
                atomic_copy(latest, path)
                logger.info(f"--resume: {name} of epoch {self.start_epoch} was not written before the interruption; "
                            f"copied it from {LATEST_CKPT}")

    def _log_epoch(self, epoch: int, result: dict[str, Any] | None, saved: str | None, is_best: bool = False) -> None:
        phase = self.exp.phase_for_epoch(epoch)
        last_iter = epoch * self.iters_per_epoch
        lr_end = {g: v for g, v in self.schedule.for_groups(last_iter, epoch).items() if g in phase.lr_mult}
        record = {"type": "epoch", "epoch": epoch, "val_loss": None, "ap50_95": None, "ap50": None,
                  "val_precision": None, "tracking": None, "best_ap": self.best_ap,
                  "best_metric": self.best_metric.name, "best_value": self.best_value, "best_epoch": self.best_epoch,
                  "is_best": is_best, "phase": self.phase_index, "trainable": phase.trainable, "lr_end": lr_end,
                  "checkpoint": saved, "time": time.time()}
        if result is not None:
            record.update(val_loss=result["val_loss"], ap50_95=result["ap50_95"], ap50=result["ap50"],
                          ap_per_class=result["ap_per_class"], val_precision=result["precision"],
                          tracking=result.get("tracking"))
            vl = result["val_loss"]
            logger.info(f"epoch {epoch} val: AP50:95 {result['ap50_95']:.4f} AP50 {result['ap50']:.4f} "
                        f"(best {self.best_ap:.4f}) | loss total {vl['total_loss']:.3f} iou {vl['iou_loss']:.3f} "
                        f"l1 {vl['l1_loss']:.3f} conf {vl['conf_loss']:.3f} cls {vl['cls_loss']:.3f}")
            self.tb.add_scalar("val/ap50_95", result["ap50_95"], epoch)
            self.tb.add_scalar("val/ap50", result["ap50"], epoch)
            for k, v in vl.items():
                self.tb.add_scalar(f"val/{k}", v, epoch)
            tracking = result.get("tracking")
            if tracking:
                logger.info(f"epoch {epoch} val tracking (score >= {self.tracking.conf:g}, "
                            f"{self.tracking_seconds:.1f} s): {tracking_summary(tracking)}")
                for tracker, metrics in tracking.items():
                    for name in TENSORBOARD_METRICS:
                        if metrics.get(name) is not None:
                            self.tb.add_scalar(f"tracking/{tracker}/{name}", metrics[name], epoch)
            best = "this epoch" if is_best else f"epoch {self.best_epoch}"
            logger.info(f"epoch {epoch}: best_ckpt.pth is {best} by {self.best_metric.label} "
                        f"({_fmt_value(self.best_value)})")
        self.metrics.write(record)


def _fmt_value(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def train(exp: NuScenesExp, options: TrainOptions) -> dict[str, Any]:
    """Train ``exp``; the entry point of tools/train.py and of the demo."""
    trainer = Trainer(exp, options)
    try:
        return trainer.train()
    finally:
        if is_distributed():
            dist.destroy_process_group()



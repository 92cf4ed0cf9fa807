"""AMP training steps of YOLOX-L at 800x1440 on one GPU: our phases (head-only, middle, full) vs stock YOLOX's step.

Only a GPU shows what freezing saves in time and memory under AMP, so this runs where a CUDA device exists
(the numbers go in benchmarks/README.md with card and date). Every variant gets the same seeded model init and
the same batch; each is timed after warm-up iterations with CUDA synchronised, and its peak memory is reset first.

- ``stock``: YOLOX 0.3.0's ``Trainer.train_one_iter`` step on YOLOX's own objects (``Exp.get_optimizer``,
  ``ModelEMA``, ``GradScaler``, ``LRScheduler``), with ``cudnn.benchmark = True`` as stock ``tools/train.py`` sets.
- ``ours:<phase>``: the step of ``yolox_finetune.training.trainer.Trainer._train_epoch`` (group x kind optimizer,
  per-group LRs, the loss finiteness check, frozen groups with locked BatchNorm), mirrored here because the
  trainer's step needs a dataset; keep the two in step when the trainer changes.

    python benchmarks/bench_gpu_train.py [--batch 8] [--iters 20] [--warmup 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from functools import partial

import torch
from torch.backends import cudnn

from yolox_finetune.core.groups import GROUPS, Phase
from yolox_finetune.training.exp import NuScenesExp
from yolox_finetune.training.freeze import apply_phase
from yolox_finetune.training.trainer import build_optimizer, set_group_lrs

#: the shipped progressive exp's stages plus full fine-tuning.
PHASES = {
    "head-only": Phase(1, {"head": 1.0}),
    "pafpn+head": Phase(11, {"pafpn": 0.1, "head": 1.0}),
    "dark5+pafpn+head": Phase(21, {"dark5": 0.05, "pafpn": 0.1, "head": 1.0}),
    "full": Phase(1, dict.fromkeys(GROUPS, 1.0)),
}


def make_batch(batch: int, height: int, width: int, objects: int, num_classes: int, device: torch.device):
    """Images in YOLOX's 0..255 float range and ``[cls, cx, cy, w, h]`` pixel targets padded to 120 rows."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, height, width, generator=gen) * 255
    targets = torch.zeros(batch, 120, 5)
    wh = torch.rand(batch, objects, 2, generator=gen) * torch.tensor([width / 4, height / 4]) + 16
    centre = torch.rand(batch, objects, 2, generator=gen) * (torch.tensor([width, height]) - wh) + wh / 2
    targets[:, :objects, 0] = torch.randint(0, num_classes, (batch, objects), generator=gen).float()
    targets[:, :objects, 1:3] = centre
    targets[:, :objects, 3:5] = wh
    return images.to(device), targets.to(device)


def yolox_l_exp() -> NuScenesExp:
    exp = NuScenesExp()
    exp.depth, exp.width = 1.0, 1.0  # YOLOX-L
    exp.input_size = exp.test_size = (800, 1440)
    return exp


def stock_step(exp: NuScenesExp, batch: int, device: torch.device) -> tuple[Callable, torch.nn.Module]:
    from yolox.exp import Exp as StockExp
    from yolox.utils import LRScheduler, ModelEMA

    stock = StockExp()
    stock.depth, stock.width, stock.num_classes = exp.depth, exp.width, exp.num_classes
    torch.manual_seed(0)
    model = stock.get_model().to(device)
    model.train()
    optimizer = stock.get_optimizer(batch)
    scaler = torch.amp.GradScaler("cuda", enabled=True)
    ema = ModelEMA(model, 0.9998)
    lr_scheduler = LRScheduler("yoloxwarmcos", stock.basic_lr_per_img * batch, 1000, stock.max_epoch,
                               warmup_epochs=stock.warmup_epochs, warmup_lr_start=0,
                               no_aug_epochs=stock.no_aug_epochs, min_lr_ratio=stock.min_lr_ratio)
    progress = [0]

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        with torch.autocast("cuda", dtype=torch.float16):
            outputs = model(images, targets)
        loss = outputs["total_loss"]
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        ema.update(model)
        progress[0] += 1
        lr = lr_scheduler.update_lr(progress[0] + 1)
        for group in optimizer.param_groups:
            group["lr"] = lr

    return step, model


def our_step(exp: NuScenesExp, phase: Phase, batch: int, device: torch.device, check_finite: bool = True,
             stock_optimizer: bool = False) -> tuple[Callable, torch.nn.Module]:
    """``check_finite=False`` / ``stock_optimizer=True`` (YOLOX's 3 parameter groups) isolate where time goes."""
    from yolox.exp import Exp as StockExp
    from yolox.utils import ModelEMA

    torch.manual_seed(0)
    model = exp.get_model().to(device)
    apply_phase(model, phase, exp.bn_policy)
    model.train()
    if stock_optimizer:
        stock = StockExp()
        stock.model = model
        optimizer = stock.get_optimizer(batch)
    else:
        optimizer = build_optimizer(model, exp)
    scaler = torch.amp.GradScaler("cuda", enabled=True)
    ema = ModelEMA(model, exp.ema_decay)
    base_lr = exp.base_lr(batch)
    lrs = {g: base_lr * float(phase.lr_mult.get(g, 0.0)) for g in GROUPS}

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        if not stock_optimizer:
            set_group_lrs(optimizer, lrs)
        with torch.autocast("cuda", dtype=torch.float16):
            outputs = model(images, targets)
        loss = outputs["total_loss"]
        # the trainer checks the loss every iteration (one host sync)
        if check_finite and not torch.isfinite(loss.detach()).all().item():
            raise RuntimeError("loss is not finite")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        ema.update(model)

    return step, model


def measure(name: str, build: Callable, images, targets, iters: int, warmup: int) -> dict:
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    row = {"variant": name, "cudnn_benchmark": bool(cudnn.benchmark)}
    try:
        step, model = build()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        row["trainable_params"] = trainable
        for _ in range(warmup):
            step(images, targets)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            step(images, targets)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        row.update(ms_per_iter=1000 * seconds / iters, images_per_s=images.shape[0] * iters / seconds,
                   peak_alloc_gib=torch.cuda.max_memory_allocated() / 2**30,
                   peak_reserved_gib=torch.cuda.max_memory_reserved() / 2**30)
        del step, model
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
    gc.collect()
    torch.cuda.empty_cache()
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[8])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--objects", type=int, default=30, help="boxes per image")
    parser.add_argument("--json", help="write all rows here")
    parser.add_argument("--isolate", action="store_true",
                        help="full fine-tuning only: ours, ours without the finiteness check, ours with YOLOX's "
                             "3 parameter groups, between two stock runs (order effects)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: bench_gpu_train needs a CUDA device")
    device = torch.device("cuda")
    exp = yolox_l_exp()
    height, width = exp.input_size
    rows = []
    for batch in args.batch:
        images, targets = make_batch(batch, height, width, args.objects, exp.num_classes, device)
        cudnn.benchmark = True  # as stock tools/train.py
        if args.isolate:
            full = PHASES["full"]
            variants = {
                "stock": partial(stock_step, exp, batch, device),
                "ours:full": partial(our_step, exp, full, batch, device),
                "ours:full no-check": partial(our_step, exp, full, batch, device, check_finite=False),
                "ours:full 3-groups": partial(our_step, exp, full, batch, device, stock_optimizer=True),
                "stock again": partial(stock_step, exp, batch, device),
            }
            for name, build in variants.items():
                rows.append(measure(name, build, images, targets, args.iters, args.warmup) | {"batch": batch})
            continue
        rows.append(measure("stock", partial(stock_step, exp, batch, device), images, targets, args.iters,
                            args.warmup) | {"batch": batch})
        for bench_flag in (False, True):  # our trainer today leaves cudnn.benchmark at torch's default (False)
            cudnn.benchmark = bench_flag
            for name, phase in PHASES.items():
                rows.append(measure(f"ours:{name}", partial(our_step, exp, phase, batch, device),
                                    images, targets, args.iters, args.warmup) | {"batch": batch})
        del images, targets
    print(f"\n{torch.cuda.get_device_name()}  torch {torch.__version__}  YOLOX-L {height}x{width} AMP")
    print(f"{'batch':>5} {'variant':<24} {'cudnn.bm':>8} {'img/s':>8} {'ms/it':>8} {'vs stock':>8} "
          f"{'peak GiB':>9} {'trainable':>11}")
    for row in rows:
        stock = next(r for r in rows if r["variant"] == "stock" and r["batch"] == row["batch"])
        if "error" in row:
            print(f"{row['batch']:>5} {row['variant']:<24} {row['error']}")
            continue
        ratio = row["images_per_s"] / stock["images_per_s"] if "images_per_s" in stock else float("nan")
        print(f"{row['batch']:>5} {row['variant']:<24} {str(row['cudnn_benchmark']):>8} "
              f"{row['images_per_s']:>8.1f} "
              f"{row['ms_per_iter']:>8.1f} {ratio:>7.2f}x {row['peak_alloc_gib']:>9.2f} {row['trainable_params']:>11,}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, handle,
                      indent=1)


if __name__ == "__main__":
    main()

"""Training data order that depends only on (seed, epoch, rank): resuming at epoch N sees exactly the batches an
uninterrupted run would have seen. YOLOX's infinite sampler and uuid-seeded workers cannot give that.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def iters_per_epoch_for(num_images: int, batch_size: int, world_size: int = 1) -> int:
    """As YOLOX's loader: each rank sees ``num_images // world`` images in batches of ``batch // world``."""
    per_rank_images = max(1, num_images // world_size)
    per_rank_batch = max(1, batch_size // world_size)
    return max(1, math.ceil(per_rank_images / per_rank_batch))


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A well-spread 32-bit seed per (run seed, epoch, rank)."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**32)


class EpochSampler(Sampler[int]):
    """Indices for one epoch on one rank: shuffled with an epoch-specific seed, sharded by rank."""

    def __init__(self, dataset_size: int, samples_per_rank: int, seed: int, epoch: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if dataset_size <= 0:
            raise ValueError("the training set is empty")
        self.dataset_size = dataset_size
        self.samples_per_rank = samples_per_rank
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        needed = self.samples_per_rank * self.world_size
        order: list[int] = []
        while len(order) < needed:
            order.extend(torch.randperm(self.dataset_size, generator=generator).tolist())
        yield from order[self.rank:needed:self.world_size]

    def __len__(self) -> int:
        return self.samples_per_rank


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a worker from torch's per-worker seed (itself derived from the loader generator)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_train_loader(exp, dataset, batch_per_rank: int, epoch: int, rank: int, world_size: int, seed: int,
                       mosaic: bool, iters_per_epoch: int | None = None):
    """A YOLOX DataLoader for one epoch; ``mosaic=False`` really closes mosaic and with it mixup."""
    from yolox.data import DataLoader, YoloBatchSampler

    if iters_per_epoch is None:
        iters_per_epoch = iters_per_epoch_for(len(dataset), batch_per_rank * world_size, world_size)
    sampler = EpochSampler(len(dataset), iters_per_epoch * batch_per_rank, seed, epoch, rank, world_size)
    batch_sampler = YoloBatchSampler(sampler=sampler, batch_size=batch_per_rank, drop_last=False, mosaic=mosaic)
    generator = torch.Generator()
    generator.manual_seed(epoch_seed(seed, epoch, rank))
    # The main process applies augmentations itself when there are no workers: seed it for this epoch too.
    seed_everything(epoch_seed(seed, epoch, rank))
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=exp.data_num_workers,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=False,
    )

"""A batch sampler whose order is a pure function of (seed, epoch), so training resumes exactly.

Epoch ``e`` visits the dataset in the order ``randperm(N)`` drawn from a generator seeded with
``seed + e``; global batch ``b`` of that epoch covers positions ``[b*G, (b+1)*G)`` with
``G = batch_size * world_size``, and rank ``r`` takes its slice ``[r*B, (r+1)*B)`` of it. Only
whole global batches are served (``drop_last``), so every iteration shows D the same number of
images. A run resumed at iteration ``i`` starts the stream at global batch ``i``: nothing about
the data order needs saving beyond the iteration count, which the checkpoint holds anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler


class SeededBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int = 0,
        start_batch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        global_batch = batch_size * world_size
        if num_samples < global_batch:
            raise ValueError(
                f"the dataset has {num_samples} images, fewer than one batch "
                f"({batch_size} x {world_size} device(s) = {global_batch})"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.batches_per_epoch = num_samples // global_batch
        self.next_batch = start_batch  # global batch index of the next batch to serve

    def __len__(self) -> int:
        return self.batches_per_epoch

    def epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        return torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(self.seed + epoch))

    def __iter__(self) -> Iterator[list[int]]:
        """Serve the rest of the current epoch, then stop (the next ``iter`` starts the next one)."""
        epoch, first = divmod(self.next_batch, self.batches_per_epoch)
        order = self.epoch_order(epoch)
        global_batch = self.batch_size * self.world_size
        for b in range(first, self.batches_per_epoch):
            start = b * global_batch + self.rank * self.batch_size
            self.next_batch = epoch * self.batches_per_epoch + b + 1
            yield order[start : start + self.batch_size].tolist()

    def order_state(self) -> dict[str, Any]:
        """What the data order depends on (besides the iteration count)."""
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "num_samples": self.num_samples,
            "shuffle": self.shuffle,
        }

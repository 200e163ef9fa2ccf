"""Checks that data-parallel replicas hold the same networks (a no-op on one process).

DDP keeps replicas identical by averaging gradients; anything that breaks that (a parameter a
rank updates on its own, a buffer drawn differently per rank) would silently train several
different models. At the end of training (and every ``every_n_iters`` iterations if set), every
rank computes a checksum of the parameters of G, D and G_ema and the checksums are gathered and
compared; a mismatch is an error naming the network. Buffers are left out: batch-norm statistics,
``w_avg`` and ADA's ``p`` are updated by each rank from its own batch within a step and made equal
again from rank 0 at the next one (DDP's ``broadcast_buffers``).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

log = logging.getLogger("gan_lab.train")


def checksum(module: nn.Module) -> torch.Tensor:
    """Sum and sum of squares of every parameter, in float64."""
    tensors = [t.detach().double() for t in module.parameters()]
    if not tensors:
        return torch.zeros(2, dtype=torch.float64)
    return torch.stack([sum(t.sum() for t in tensors), sum(t.square().sum() for t in tensors)])


class ReplicaCheck(pl.Callback):
    def __init__(self, every_n_iters: int = 0, rtol: float = 1e-9) -> None:
        self.every_n_iters, self.rtol = int(every_n_iters), float(rtol)

    def check(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.world_size < 2:
            return
        names = [n for n in ("G", "D", "G_ema") if hasattr(pl_module, n)]
        local = torch.stack([checksum(getattr(pl_module, n)) for n in names]).to(pl_module.device)
        gathered = trainer.strategy.all_gather(local)  # (world, networks, 2)
        reference = gathered[0]
        for i, name in enumerate(names):
            if not torch.allclose(
                gathered[:, i], reference[i].expand_as(gathered[:, i]), rtol=self.rtol, atol=0
            ):
                raise RuntimeError(
                    f"data-parallel replicas differ in {name} at iteration {trainer.global_step}"
                )
        if trainer.is_global_zero:
            log.info(
                "replicas agree: %s identical on %d processes at iteration %d",
                ", ".join(names),
                trainer.world_size,
                trainer.global_step,
            )

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.every_n_iters and trainer.global_step % self.every_n_iters == 0:
            self.check(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer, pl_module)

"""Stops a run whose losses are no longer finite, cleanly.

Every ``check_every_n_iters`` iterations (one host synchronisation each time) the latest D and G
losses of the module are checked; a NaN or infinite value ends training after the current iteration
with an error line naming the loss, the value and the iteration. ``last.ckpt`` keeps the last
finite state (``IterationCheckpoint`` never overwrites it with NaN weights; the diverged state
goes to ``diverged.ckpt`` for inspection), FID is not computed, and ``train`` returns an
infinite objective, so a sweep marks the trial as bad and goes on.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl

log = logging.getLogger("gan_lab.train")


class DivergenceGuard(pl.Callback):
    WATCHED = ("loss/d", "loss/g")

    def __init__(self, check_every_n_iters: int = 10) -> None:
        self.check_every_n_iters = int(check_every_n_iters)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if trainer.global_step % self.check_every_n_iters:
            return
        latest = getattr(pl_module, "latest_logs", {})
        for key in self.WATCHED:
            value = latest.get(key)
            if value is not None and not math.isfinite(float(value)):
                pl_module.diverged = f"{key}={float(value)} at iteration {trainer.global_step}"
                log.error("training diverged (%s): stopping", pl_module.diverged)
                trainer.should_stop = True
                return

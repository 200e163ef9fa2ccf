"""A test callback that signals its own process at a given iteration, as `kill` would from outside."""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl


class SendSignalAt(pl.Callback):
    def __init__(self, iteration: int, signum: int) -> None:
        self.iteration, self.signum = int(iteration), int(signum)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.iteration:
            os.kill(os.getpid(), self.signum)

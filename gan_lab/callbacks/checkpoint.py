"""Lightning's ModelCheckpoint, made to always leave ``last.ckpt`` at the final iteration."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class IterationCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is also written when training ends.

    With ``every_n_train_steps``, Lightning writes ``last.ckpt`` only at the intervals, so a run
    of 1,234 iterations with an interval of 500 would end with a ``last.ckpt`` of iteration
    1,000. Here the end of training writes it again (unless that iteration was just saved), so
    ``last.ckpt`` is the finished model and extending the run resumes from its true end.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            self._last_global_step_saved = trainer.global_step

"""Lightning's ModelCheckpoint, made to name files by the iteration they hold, to leave
``last.ckpt`` at the final iteration, and never to overwrite a good state with a diverged one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

log = logging.getLogger("gan_lab.train")

DIVERGED_CKPT = "diverged.ckpt"


def is_finite(module: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer of ``module`` is finite (one host sync)."""
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all())


class IterationCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` for the lab's iterations.

    * File names and the top-k ranking (``{step}``, ``monitor: step``) read the iteration the
      file holds (``trainer.global_step``). Lightning reads the last *logged* ``step``, which the
      module refreshes only every ``trainer.log_every_n_steps`` iterations, so a snapshot of
      iteration 35 was named after iteration 30 and pruned the wrong file.
    * ``last.ckpt`` is also written when training ends (Lightning writes it only at the
      intervals), and on demand (``save_last_now``: a stop signal), so it always holds the
      iteration training stopped at.
    * A state that is not finite (NaN/inf weights after a divergence) never replaces
      ``last.ckpt`` or a snapshot: it is written once to ``diverged.ckpt`` for inspection and
      ``last.ckpt`` keeps the last finite state, which a resume can train on from.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # a name is an iteration: a file of that name holds that iteration (a requeued job that
        # resumes in its own folder rewrites last.ckpt, not last-v1.ckpt)
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(*args, **kwargs)
        self._diverged_saved: int | None = None  # the iteration kept in diverged.ckpt
        self._finite_at: tuple[int, bool] | None = None  # (iteration, whether its state is finite)

    def _monitor_candidates(self, trainer: pl.Trainer) -> dict[str, Tensor]:
        candidates = super()._monitor_candidates(trainer)
        candidates["step"] = torch.tensor(trainer.global_step)
        return candidates

    def _state_is_finite(self, trainer: pl.Trainer) -> bool:
        # a snapshot and last.ckpt of one iteration share one check (one host sync)
        if self._finite_at is None or self._finite_at[0] != trainer.global_step:
            self._finite_at = (trainer.global_step, is_finite(trainer.lightning_module))
        if self._finite_at[1]:
            return True
        path = Path(self.dirpath or ".") / DIVERGED_CKPT
        if self._diverged_saved is None:
            self._diverged_saved = trainer.global_step
            trainer.save_checkpoint(str(path), self.save_weights_only)
            log.error(
                "the state at iteration %d is not finite: kept in %s; last.ckpt keeps the last finite one%s",
                trainer.global_step,
                path,
                f" ({self.last_model_path})" if self.last_model_path else " (none was saved)",
            )
        return False

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if self.save_top_k != 0 and self._state_is_finite(trainer):
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if self.save_last and self._state_is_finite(trainer):
            super()._save_last_checkpoint(trainer, monitor_candidates)
            self._last_global_step_saved = trainer.global_step

    def save_last_now(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` at the current iteration unless it already holds it."""
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @property
    def last_path(self) -> Path:
        return Path(self.dirpath or ".") / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save_last_now(trainer)

"""Lightning's rich progress bar, counting iterations instead of batches of the current epoch.

The bar runs over the whole training budget (``trainer.max_steps`` iterations) and shows the
iteration, kimg (thousands of real images shown to D), the logged D and G losses and the speed
in iterations per second.

Cost: Lightning's rich bar updates its task, gathers the logged metrics and redraws (a full
render in a terminal) after every batch, with a refresh thread ticking ``refresh_rate`` times a
second; on a small network that is several milliseconds of an iteration. This bar does that work
only every ``refresh_rate`` iterations and lets the thread tick twice a second.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar

from gan_lab.config import check_arguments
from gan_lab.config.schema import IterationLogConfig, ProgressConfig

log = logging.getLogger("gan_lab.train")


class GANProgressBar(RichProgressBar):
    """Progress in iterations over the whole run (not per epoch).

    Args:
        refresh_rate: iterations between redraws (0 hides the bar). Lightning's own argument of
            that name is a redraw frequency in Hz; here the redraw thread runs at
            ``THREAD_HZ``.
        leave: keep the finished bar on screen.
    """

    SHOWN: ClassVar[dict[str, str]] = {"loss/d": "D", "loss/g": "G"}
    THREAD_HZ = 2

    def __init__(self, refresh_rate: int = 10, leave: bool = True) -> None:
        check_arguments(ProgressConfig, "callbacks.progress.", refresh_rate=refresh_rate)
        super().__init__(refresh_rate=self.THREAD_HZ if refresh_rate > 0 else 0, leave=leave)
        self.every_n_iters = refresh_rate

    @property
    def total_train_batches(self) -> int | float:
        max_steps = self.trainer.max_steps
        return max_steps if max_steps and max_steps > 0 else super().total_train_batches

    def _get_train_description(self, current_epoch: int) -> str:
        return "Training"

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # one bar for the whole run: create it once, never reset it at epoch boundaries
        if self.is_disabled:
            return
        if self.progress is not None and self.train_progress_bar_id is None:
            self.train_progress_bar_id = self._add_task(self.total_train_batches, "Training")
            self._update(self.train_progress_bar_id, trainer.global_step)
        self.refresh()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.is_disabled:
            return
        step = trainer.global_step
        if step % self.every_n_iters and step != trainer.max_steps:
            return
        if self.train_progress_bar_id is None:
            self._initialize_train_progress_bar_id()
        self._update(self.train_progress_bar_id, step)
        self._update_metrics(trainer, pl_module)
        self.refresh()

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        logged = super().get_metrics(trainer, pl_module)
        metrics: dict[str, Any] = {"iter": str(trainer.global_step)}
        images_seen = getattr(pl_module, "images_seen", None)
        if images_seen is not None:
            metrics["kimg"] = f"{images_seen / 1000:.1f}"
        for key, short in self.SHOWN.items():
            if key in logged:
                metrics[short] = f"{logged[key]:.3f}"
        return metrics


class IterationLog(pl.Callback):
    """One line in the run's log file every ``every_n_iters`` iterations (the progress bar does not
    reach log files or batch-job output): iteration, kimg, D and G losses, iterations per second."""

    def __init__(self, every_n_iters: int = 100) -> None:
        check_arguments(IterationLogConfig, "callbacks.iteration_log.", every_n_iters=every_n_iters)
        self.every_n_iters = every_n_iters
        self._since: tuple[float, int] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._since = (time.monotonic(), trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % self.every_n_iters or self._since is None or not trainer.is_global_zero:
            return
        now = time.monotonic()
        rate = (step - self._since[1]) / max(now - self._since[0], 1e-9)
        self._since = (now, step)
        metrics = trainer.callback_metrics
        losses = " ".join(
            f"{short} {float(metrics[key]):.4f}"
            for key, short in GANProgressBar.SHOWN.items()
            if key in metrics
        )
        total = f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else ""
        kimg = getattr(pl_module, "images_seen", 0) / 1000
        log.info("iter %d%s  kimg %.1f  %s  %s", step, total, kimg, losses, format_speed(rate))


def format_speed(rate: float) -> str:
    """Iterations per second, or seconds per iteration when that reads better (big models on CPU)."""
    return f"{rate:.2f} it/s" if rate >= 0.5 else f"{1 / max(rate, 1e-9):.1f} s/it"

"""Stopping a run from outside: SIGTERM, SIGINT (Ctrl-C) and a cluster's requeue signal.

Lightning's own handling ends a run on SIGTERM with exit status 0 and nothing saved since the
last checkpoint interval, so a supervisor or a sweep cannot tell it from a finished run; Ctrl-C
raises wherever the loop happens to be. Here a signal only raises a flag; at the end of the
current iteration (on every rank at the same iteration: the flag is reduced over the ranks):

* SIGTERM / SIGINT: training stops, ``last.ckpt`` is written at that iteration (atomically, by
  ``IterationCheckpoint``) and ``train.py`` logs how to resume and exits with ``128 + signal``
  (143, 130). A second Ctrl-C aborts at once, without saving.
* the requeue signal (SIGUSR1, or what SLURM's environment names): ``last.ckpt`` is written at
  that iteration, then the handler that was installed before the lab's runs (submitit's or
  Lightning's requeue), so the requeued job resumes from the iteration it was stopped at
  (``train.py`` resumes a requeued SLURM job from its folder's ``last.ckpt``).

SLURM sends SIGTERM at preemption and at the time limit, and SIGUSR1 ``signal_delay_s`` before
the limit with ``hydra/launcher=submitit_slurm``.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import torch

log = logging.getLogger("gan_lab.train")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REQUEUE_SIGNAL = signal.SIGUSR1


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class StopOnSignal(pl.Callback):
    """See the module docstring. ``received`` is the stop signal that ended training (or None)."""

    def __init__(self) -> None:
        self.received: int | None = None  # a stop signal, once acted on
        self._pending: int | None = None  # raised by a handler, not yet acted on
        self._requeue_pending = False
        self._previous: dict[int, Any] = {}

    # ------------------------------------------------------------------ handlers
    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._pending == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt  # the second Ctrl-C: abort now, without saving
        self._pending = signum
        again = " (Ctrl-C again to abort without saving)" if signum == signal.SIGINT else ""
        log.warning("received %s: stopping after the current iteration%s", signal_name(signum), again)

    def _on_requeue_signal(self, signum: int, frame: FrameType | None) -> None:
        self._requeue_pending = True
        log.warning(
            "received %s: saving last.ckpt after the current iteration, then requeueing", signal_name(signum)
        )

    def install(self, trainer: pl.Trainer) -> None:
        """Replace the handlers Lightning installed when fit started (call on the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        if trainer.received_sigterm:  # a SIGTERM between Lightning's setup and the first iteration
            self._pending = signal.SIGTERM
            trainer._signal_connector.received_sigterm = False
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_stop_signal)
        previous = signal.getsignal(REQUEUE_SIGNAL)
        if callable(previous):  # a requeue handler (submitit's, Lightning's on SLURM): defer it
            self._previous[REQUEUE_SIGNAL] = signal.signal(REQUEUE_SIGNAL, self._on_requeue_signal)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            if threading.current_thread() is threading.main_thread() and handler is not None:
                signal.signal(signum, handler)
        self._previous = {}

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install(trainer)

    def _agreed(self, trainer: pl.Trainer) -> tuple[int | None, bool]:
        """The pending stop signal and requeue request, the same on every rank."""
        stop, requeue = self._pending or 0, int(self._requeue_pending)
        if trainer.world_size > 1:
            flags = torch.tensor([stop, requeue], device=trainer.strategy.root_device)
            flags = trainer.strategy.reduce(flags, reduce_op="max")
            stop, requeue = int(flags[0]), int(flags[1])
        return (stop or None), bool(requeue)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        stop, requeue = self._agreed(trainer)
        if requeue:
            self._requeue_pending = False
            self.save_last(trainer)
            previous = self._previous.get(REQUEUE_SIGNAL)
            if callable(previous):
                previous(REQUEUE_SIGNAL, None)
        if stop:
            self.received = stop
            trainer.should_stop = True

    def save_last(self, trainer: pl.Trainer) -> None:
        callback = trainer.checkpoint_callback
        save_last_now = getattr(callback, "save_last_now", None)
        if callable(save_last_now):
            save_last_now(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.received is None and self._pending is not None:  # arrived after the last iteration
            self.received = self._pending
        self.uninstall()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.uninstall()


def stopped_by_signal(trainer: pl.Trainer) -> bool:
    """Whether a stop signal ended (or is ending) training: the end-of-run extras are skipped."""
    return any(
        isinstance(c, StopOnSignal) and (c.received or c._pending) is not None for c in trainer.callbacks
    )

"""One training iteration = one ``trainer.global_step``.

A GAN iteration steps two optimizers (and, with lazy regularization or ``n_critic``, sometimes
more). Lightning's manual-optimization loop counts every ``optimizer.step()`` in
``trainer.global_step`` (Lightning-AI/pytorch-lightning#17958), so ``max_steps``, checkpoint
intervals and ``{step}`` in file names would count optimizer steps, a number that changes with the
regularization schedule. The lab's unit is the iteration: ``one_global_step`` silences the
per-optimizer counting hooks Lightning installs for the duration of an iteration and fires them
once when the iteration completes. ``tests/test_training.py`` pins this behaviour
(``trainer.max_steps=N`` stops after N iterations) against the installed Lightning.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import lightning.pytorch as pl


def _do_nothing() -> None:
    return None


@contextmanager
def one_global_step(trainer: pl.Trainer) -> Iterator[None]:
    """Count everything stepped inside the block as a single optimizer step of the trainer."""
    optimizers = trainer.strategy._lightning_optimizers
    hooks = [(opt._on_before_step, opt._on_after_step) for opt in optimizers]
    for opt in optimizers:
        opt._on_before_step = _do_nothing
        opt._on_after_step = _do_nothing
    try:
        yield
    finally:
        for opt, (before, after) in zip(optimizers, hooks, strict=True):
            opt._on_before_step, opt._on_after_step = before, after
    if hooks:  # reached only when the iteration completed without an exception
        before, after = hooks[0]
        before()
        after()

"""One image to every logger of a run that can take images.

The sample grids (``callbacks/samples.py``) and the FID plot (``callbacks/quality.py``) go through
``log_image``, which dispatches per logger type, so ``logger=[wandb,tensorboard]`` gets each image
in both: W&B through ``WandbLogger.log_image``, TensorBoard through its ``SummaryWriter.add_image``.
Loggers without images (CSV) are skipped; any other logger with a ``log_image`` method of W&B's
signature (a user's own) gets the image through it.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


def as_hwc_uint8(image: Any) -> np.ndarray:
    """``image`` (array-like, HxW or HxWxC with C in 1, 3, 4) as a contiguous HxWxC uint8 array."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxWxC image with C in 1, 3, 4, got shape {array.shape}")
    return np.ascontiguousarray(array)


def log_image(
    trainer: pl.Trainer, key: str, image: Any, step: int, caption: str | None = None
) -> list[pl.loggers.Logger]:
    """Log ``image`` (uint8, HxWxC) as ``key`` at ``step`` to each of ``trainer.loggers`` that takes
    images; returns the loggers that got it."""
    picture = as_hwc_uint8(image)
    got = []
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            # TensorBoard shows one or three channels
            tb_picture = picture if picture.shape[2] != 4 else picture[:, :, :3]
            logger.experiment.add_image(key, tb_picture, global_step=step, dataformats="HWC")
        elif isinstance(logger, WandbLogger) or callable(getattr(logger, "log_image", None)):
            extra = {"caption": [caption]} if caption is not None else {}
            logger.log_image(key=key, images=[picture], step=step, **extra)
        else:
            continue  # CSV and other loggers of numbers only
        got.append(logger)
    return got

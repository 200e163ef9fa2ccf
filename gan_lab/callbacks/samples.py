"""Sample grids from one fixed latent batch, so that progress is comparable over a run.

The module's ``sample_z`` buffer is drawn once from the run's seed and saved in checkpoints: a
resumed run keeps drawing the same faces/garments. Grids come from the EMA generator in eval
mode and are written as ``samples/iter_0001000.png`` (the iteration count, zero-padded), at
iteration 0, every ``every_n_iters`` iterations and when training ends. Every logger that takes
images (W&B, TensorBoard) gets each grid too, as ``samples``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from gan_lab.config import check_arguments
from gan_lab.config.schema import SampleGridConfig
from gan_lab.data.transforms import to_uint8
from gan_lab.loggers import log_image

log = logging.getLogger(__name__)


def grid_file(dirpath: str | Path, iteration: int) -> Path:
    return Path(dirpath) / f"iter_{iteration:07d}.png"


class SampleGrid(pl.Callback):
    def __init__(self, dirpath: str, every_n_iters: int = 500, nrow: int | None = None) -> None:
        check_arguments(SampleGridConfig, "callbacks.samples.", every_n_iters=every_n_iters, nrow=nrow)
        self.dirpath = Path(dirpath)
        self.every_n_iters = every_n_iters
        self.nrow = nrow
        self._last_saved: int | None = None

    @rank_zero_only
    def save(self, trainer: pl.Trainer, pl_module: Any) -> Path:
        iteration = trainer.global_step
        images = pl_module.sample().float()
        nrow = self.nrow or math.ceil(math.sqrt(images.shape[0]))
        grid = make_grid(to_uint8(images).cpu(), nrow=nrow, padding=1)
        path = grid_file(self.dirpath, iteration)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid.float() / 255.0, path)
        self._last_saved = iteration
        picture = grid.permute(1, 2, 0).numpy()  # HWC uint8, what image loggers expect
        log_image(trainer, "samples", picture, step=iteration, caption=f"iter {iteration}")
        return path

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0:
            self.save(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if trainer.global_step % self.every_n_iters == 0:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._last_saved != trainer.global_step:
            self.save(trainer, pl_module)

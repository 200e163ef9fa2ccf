"""Sample grids from one fixed latent batch, so that progress is comparable over a run.

The module's ``sample_z`` buffer is drawn once from the run's seed and saved in checkpoints: a
resumed run keeps drawing the same faces/garments. Grids come from the EMA generator in eval
mode and are written as ``samples/iter_0001000.png`` (the iteration count, zero-padded), at
iteration 0, every ``every_n_iters`` iterations and when training ends. Every logger that takes
images (W&B, TensorBoard) gets each grid too, as ``samples``.

A class-conditional module (``num_classes`` > 0) draws one row per class: its ``sample_c``
buffer holds the labels row-major (``gan_lab.utils.classes.grid_classes``) and
``sample_grid_cols`` the images per row, which then sets the grid's width (``nrow`` is for
square grids of unconditional modules). The caption, the PNG's ``classes`` text chunk and the
log say which class each row is.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image, PngImagePlugin
from torchvision.utils import make_grid

from gan_lab.config import check_arguments
from gan_lab.config.schema import SampleGridConfig
from gan_lab.data.transforms import to_uint8
from gan_lab.loggers import log_image
from gan_lab.utils.classes import describe_rows, num_classes_of, rows_of

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
        self._told_rows = False

    def layout(self, pl_module: Any, num_images: int) -> tuple[int, list[int] | None]:
        """Images per row, and the class of each row (None: unconditional, a square grid)."""
        cols = getattr(pl_module, "sample_grid_cols", None) if num_classes_of(pl_module) else None
        if cols is None:
            return self.nrow or math.ceil(math.sqrt(num_images)), None
        return int(cols), rows_of(pl_module.sample_c.cpu(), int(cols))

    @rank_zero_only
    def save(self, trainer: pl.Trainer, pl_module: Any) -> Path:
        iteration = trainer.global_step
        images = pl_module.sample().float()
        nrow, rows = self.layout(pl_module, images.shape[0])
        grid = make_grid(to_uint8(images).cpu(), nrow=nrow, padding=1)
        picture = grid.permute(1, 2, 0).numpy()  # HWC uint8, what image loggers expect
        path = grid_file(self.dirpath, iteration)
        path.parent.mkdir(parents=True, exist_ok=True)
        caption, info = f"iter {iteration}", None
        if rows is not None:
            caption = f"{caption} ({describe_rows(rows)})"
            info = PngImagePlugin.PngInfo()
            info.add_text("classes", describe_rows(rows))
            if not self._told_rows:
                log.info("sample grids have one row per class (%s)", describe_rows(rows))
                self._told_rows = True
        Image.fromarray(picture).save(path, pnginfo=info)
        self._last_saved = iteration
        log_image(trainer, "samples", picture, step=iteration, caption=caption)
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

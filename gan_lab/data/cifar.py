"""CIFAR-10 (Krizhevsky 2009): 60,000 32x32 colour images in 10 classes, 50,000 for training.

On disk (torchvision's layout): ``ROOT/cifar-10-batches-py/`` with the Python pickle batches
``data_batch_1`` ... ``data_batch_5`` (train) and ``test_batch`` (test). Each is a dict with
``data``, a uint8 array (10000, 3072) of row-major 32x32 planes R, G, B, and ``labels``. They are
read directly (torchvision's class would check MD5 sums); a missing folder is downloaded with
torchvision when ``download`` is on.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lab.config import check_arguments
from gan_lab.config.schema import CIFAR10Config
from gan_lab.data.datamodule import ArrayDataModule
from gan_lab.errors import DatasetFormatError, DatasetNotFoundError
from gan_lab.utils.once import compute_once

log = logging.getLogger(__name__)

FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels int64) from one pickle batch."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DatasetFormatError(f"{path} is not a readable CIFAR batch: {e}") from e
    if not isinstance(entry, dict) or "data" not in entry:
        raise DatasetFormatError(f"{path} is not a CIFAR batch (no 'data' entry)")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels", [])), dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != data.shape[:1]:
        raise DatasetFormatError(
            f"{path}: expected data (N, 3072) and N labels, got {data.shape}, {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10DataModule(ArrayDataModule):
    """CIFAR-10 in memory; batches resized on the device when ``resolution`` is not 32."""

    name = "cifar10"
    splits = ("train", "test")

    def __init__(
        self,
        root: str,
        resolution: int = 32,
        channels: int = 3,
        batch_size: int = 64,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
        hflip: bool = False,
        download: bool = True,
        **loop: Any,
    ) -> None:
        super().__init__(root, resolution, channels, batch_size, split, seed, shuffle, hflip, **loop)
        check_arguments(CIFAR10Config, "data.", split=split)
        self.download = bool(download)

    @property
    def folder(self) -> Path:
        return Path(self.root).expanduser() / FOLDER

    def missing(self) -> list[str]:
        return [name for name in BATCHES[self.split] if not (self.folder / name).is_file()]

    def prepare_data(self) -> None:
        if self.missing() and self.download:

            def download() -> None:
                try:
                    from torchvision.datasets import CIFAR10

                    log.info("CIFAR-10 not found locally; downloading into %s", self.folder.parent)
                    CIFAR10(str(self.folder.parent), train=self.split == "train", download=True)
                except Exception as e:
                    log.warning("download failed: %s", e)

            # one process per data root downloads; the others (DDP ranks) wait for it
            compute_once(self.folder, download, "the CIFAR-10 download", ready=lambda: not self.missing())
        if missing := self.missing():
            raise DatasetNotFoundError(
                f"CIFAR-10 not found: {self.folder} lacks {', '.join(missing)}. Get it with internet "
                f"('data.download=true' downloads it there with torchvision), or unpack "
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into data.root"
            )

    def load(self) -> tuple[Tensor, Tensor]:
        parts = [read_cifar_batch(self.folder / name) for name in BATCHES[self.split]]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return torch.from_numpy(images), torch.from_numpy(labels)

    def resize(self, images: Tensor) -> Tensor:
        if self.resolution == 32:
            return images
        return F.interpolate(
            images,
            size=(self.resolution,) * 2,
            mode="bilinear",
            align_corners=False,
            antialias=self.resolution < 32,
        )

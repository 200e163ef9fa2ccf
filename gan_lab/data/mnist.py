"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28x28 gray images
in IDX files, 60,000 for training and 10,000 for testing, 10 classes.

Where the files are looked for, in order:

1. ``ROOT/<MNIST|FashionMNIST>/raw/`` (torchvision's layout; plain or ``.gz`` IDX files);
2. each folder of ``search_dirs`` (Fashion-MNIST's default: ``/usr/share/datasets/fashion-mnist``,
   where the Debian/Ubuntu package ``dataset-fashion-mnist`` puts them);
3. a download by torchvision into ``ROOT/<name>/raw/`` (when ``download`` is on).

The IDX files are read directly (``gan_lab/data/idx.py``): torchvision's dataset classes check
MD5 sums that re-compressed copies (Debian's) do not match.

Images are framed as 32x32 (28x28 plus a 2-pixel border, the common GAN setting) and that frame
is scaled to ``resolution``; see ``gan_lab.data.transforms.fit_small_images``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_lab.config import check_arguments
from gan_lab.config.schema import MNISTConfig
from gan_lab.data.datamodule import ArrayDataModule
from gan_lab.data.idx import read_idx
from gan_lab.data.transforms import fit_small_images
from gan_lab.errors import DatasetFormatError, DatasetNotFoundError
from gan_lab.utils.once import compute_once

log = logging.getLogger(__name__)

DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_split(folders: list[Path], split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of ``split`` in the first folder that has both."""
    for folder in folders:
        images, labels = (_find_file(folder, stem) for stem in FILES[split])
        if images is not None and labels is not None:
            return images, labels
    return None


class IdxDataModule(ArrayDataModule):
    """An MNIST-format dataset in memory, at any power-of-two resolution >= 32, 1 or 3 channels."""

    splits = ("train", "test")
    folder = "MNIST"  # torchvision's folder name below the root
    title = "MNIST"
    torchvision_class = "MNIST"
    how_to_install: str | None = None  # a system package that provides the files

    def __init__(
        self,
        root: str,
        resolution: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
        hflip: bool = False,
        search_dirs: list[str] | tuple[str, ...] = (),
        download: bool = True,
        **loop: Any,
    ) -> None:
        super().__init__(root, resolution, channels, batch_size, split, seed, shuffle, hflip, **loop)
        check_arguments(MNISTConfig, "data.", split=split)
        self.search_dirs = [Path(d).expanduser() for d in search_dirs]
        self.download = bool(download)
        self.files: tuple[Path, Path] | None = None

    @property
    def raw_dir(self) -> Path:
        return Path(self.root).expanduser() / self.folder / "raw"

    def fetch(self) -> None:
        """Download with torchvision into ``ROOT/<folder>/raw`` (needs internet)."""
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, self.torchvision_class)
        for train in (True, False):
            dataset_class(str(Path(self.root).expanduser()), train=train, download=True)

    def how_to_get(self, searched: list[Path]) -> str:
        places = ", ".join(str(p) for p in searched)
        ways = [f"with internet 'data.download=true' (torchvision download into {self.raw_dir})"]
        if self.how_to_install:
            ways.insert(0, self.how_to_install)
        return (
            f"{self.title} not found (looked in {places}). Get it either way: {'; or '.join(ways)}; "
            f"data.root=DIR points to another copy"
        )

    def locate(self) -> tuple[Path, Path]:
        """Find (or, if allowed, download) the split's files; raise with how to get them."""
        folders = [self.raw_dir, *self.search_dirs]
        found = find_split(folders, self.split)
        if found is None and self.download:

            def download() -> None:
                try:
                    log.info("%s not found locally; downloading into %s", self.title, self.raw_dir)
                    self.fetch()
                except Exception as e:  # no network, proxy, disk: all end in the same advice
                    log.warning("download failed: %s", e)

            # one process per data root downloads; the others (DDP ranks) wait for it
            compute_once(
                self.raw_dir.parent,
                download,
                f"the {self.title} download",
                ready=lambda: find_split(folders, self.split) is not None,
            )
            found = find_split(folders, self.split)
        if found is None:
            raise DatasetNotFoundError(self.how_to_get(folders))
        return found

    def prepare_data(self) -> None:
        self.files = self.locate()

    def reset_prepared(self) -> None:
        self.files = None

    def load(self) -> tuple[Tensor, Tensor]:
        images_path, labels_path = self.files or self.locate()
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DatasetFormatError(f"{images_path}: expected (N, 28, 28) images, got {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise DatasetFormatError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images")
        log.info("%s %s split from %s", self.title, self.split, images_path.parent)
        return images.unsqueeze(1), labels.to(torch.int64)

    def resize(self, images: Tensor) -> Tensor:
        return fit_small_images(images, self.resolution, native=28, canvas=32)


class MNISTDataModule(IdxDataModule):
    name = "mnist"


class FashionMNISTDataModule(IdxDataModule):
    name = "fashion_mnist"
    folder = "FashionMNIST"
    title = "Fashion-MNIST"
    torchvision_class = "FashionMNIST"
    how_to_install = (
        f"'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu, files in {DEBIAN_FASHION_DIR}) "
        "or 'make data'"
    )

    def __init__(self, root: str, **kwargs) -> None:
        kwargs.setdefault("search_dirs", (DEBIAN_FASHION_DIR,))
        super().__init__(root, **kwargs)

"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 gray images of 10 garment classes.

Where the files are looked for, in order:

1. ``ROOT/FashionMNIST/raw/`` (torchvision's layout; plain or ``.gz`` IDX files);
2. each folder of ``search_dirs`` (default: ``/usr/share/datasets/fashion-mnist``, where the
   Debian/Ubuntu package ``dataset-fashion-mnist`` puts them);
3. a download by torchvision into ``ROOT/FashionMNIST/raw/`` (when ``download`` is on).

The IDX files are read directly (``gan_lab/data/idx.py``): torchvision's own dataset class
checks MD5 sums that the Debian package's re-compressed files do not match.

Images are framed as 32x32 (28x28 plus a 2-pixel border, the common GAN setting) and that frame
is scaled to ``resolution``; see ``gan_lab.data.transforms.fit_small_images``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from gan_lab.data.datamodule import InMemoryImageDataModule
from gan_lab.data.idx import read_idx
from gan_lab.data.transforms import fit_small_images
from gan_lab.errors import DatasetFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}


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


def download(root: Path) -> None:
    """Download with torchvision into ``root/FashionMNIST/raw`` (needs internet)."""
    from torchvision.datasets import FashionMNIST

    for train in (True, False):
        FashionMNIST(str(root), train=train, download=True)


def how_to_get(root: Path, searched: list[Path]) -> str:
    places = ", ".join(str(p) for p in searched)
    return (
        f"Fashion-MNIST not found (looked in {places}). Get it either way: "
        f"'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu, files in {DEBIAN_DIR}), "
        f"or with internet 'make data' (torchvision download into {root / 'FashionMNIST' / 'raw'}); "
        f"data.root=DIR points to another copy"
    )


class FashionMNISTDataModule(InMemoryImageDataModule):
    """Fashion-MNIST in memory, at any power-of-two resolution, 1 or 3 channels."""

    name = "fashion_mnist"
    native_channels = 1

    def __init__(
        self,
        root: str,
        resolution: int = 32,
        channels: int = 1,
        batch_size: int = 64,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
        search_dirs: list[str] | tuple[str, ...] = (DEBIAN_DIR,),
        download: bool = True,
    ) -> None:
        super().__init__(root, resolution, channels, batch_size, split, seed, shuffle)
        if split not in FILES:
            raise ValueError(f"split={split!r} is not one of {sorted(FILES)}")
        self.search_dirs = [Path(d).expanduser() for d in search_dirs]
        self.download = bool(download)
        self.files: tuple[Path, Path] | None = None

    @property
    def raw_dir(self) -> Path:
        return Path(self.root).expanduser() / "FashionMNIST" / "raw"

    def locate(self) -> tuple[Path, Path]:
        """Find (or, if allowed, download) the split's files; raise with how to get them."""
        folders = [self.raw_dir, *self.search_dirs]
        found = find_split(folders, self.split)
        if found is None and self.download:
            try:
                log.info("Fashion-MNIST not found locally; downloading into %s", self.raw_dir)
                download(Path(self.root).expanduser())
            except Exception as e:  # no network, proxy, disk: all end in the same advice
                log.warning("download failed: %s", e)
            found = find_split(folders, self.split)
        if found is None:
            raise DatasetNotFoundError(how_to_get(Path(self.root).expanduser(), folders))
        return found

    def prepare_data(self) -> None:
        self.files = self.locate()

    def load(self) -> tuple[Tensor, Tensor]:
        images_path, labels_path = self.files or self.locate()
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DatasetFormatError(f"{images_path}: expected (N, 28, 28) images, got {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise DatasetFormatError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images")
        log.info("Fashion-MNIST %s split from %s", self.split, images_path.parent)
        return images.unsqueeze(1), labels.to(torch.int64)

    def resize(self, images: Tensor) -> Tensor:
        return fit_small_images(images, self.resolution, native=28, canvas=32)

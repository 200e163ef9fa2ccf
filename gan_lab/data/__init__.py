"""Datamodules and dataset readers. Datamodules hand uint8 batches to the device and finish them
there as float tensors in [-1, 1]."""

from gan_lab.data.datamodule import InMemoryImageDataModule
from gan_lab.data.fashion_mnist import FashionMNISTDataModule

__all__ = ["FashionMNISTDataModule", "InMemoryImageDataModule"]

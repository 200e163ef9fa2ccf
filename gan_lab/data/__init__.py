"""Datamodules and dataset readers. Datamodules hand uint8 batches to the device and finish them
there as float tensors in [-1, 1]."""

from gan_lab.data.celeba import CelebADataModule
from gan_lab.data.cifar import CIFAR10DataModule
from gan_lab.data.datamodule import ArrayDataModule, ImageDataModule
from gan_lab.data.image_folder import ImageFolderDataModule
from gan_lab.data.mnist import FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "ArrayDataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
]

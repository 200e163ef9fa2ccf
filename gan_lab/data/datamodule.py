"""The data layer's serving side, shared by every dataset.

A dataset here is anything with ``__len__`` and ``__getitems__(indices) -> (uint8 images, labels)``
that returns a whole batch at once: a tensor held in memory (``TensorBatchDataset``) or files
decoded by DataLoader workers (``gan_lab.data.files.FileBatchDataset``). ``ImageDataModule``
serves its batches in the resumable order of ``SeededBatchSampler`` and finishes them on the
training device, batch-wise (``on_after_batch_transfer``): float conversion, scaling to [-1, 1],
resizing where the stored size is not the training size, and the channel count.

``hflip`` mirrors the dataset as StyleGAN2-ADA's ``--mirror`` does: index ``i + N`` is image
``i`` flipped left-right, so the flips are part of the seeded order and resume exactly.

Subclasses: ``ArrayDataModule`` for datasets stored as arrays (MNIST, Fashion-MNIST, CIFAR-10;
always in memory at their native size) and ``gan_lab.data.files.FileDataModule`` for folders of
image files (CelebA, any image folder; in memory with an on-disk cache, or streamed).
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any, Protocol

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_lab.data.sampler import SeededBatchSampler
from gan_lab.data.transforms import match_channels, to_signed_unit
from gan_lab.errors import ConfigError

log = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor]


class BatchDataset(Protocol):
    def __len__(self) -> int: ...
    def __getitems__(self, indices: list[int]) -> Batch: ...


class TensorBatchDataset(Dataset):
    """Images and labels held as tensors; a whole batch is fetched with one indexing op."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = torch.as_tensor(indices)
        return self.images[idx], self.labels[idx]


class MirroredDataset(Dataset):
    """A dataset twice as long: index ``i + N`` is image ``i`` flipped left-right."""

    def __init__(self, base: BatchDataset) -> None:
        self.base = base
        self.n = len(base)

    def __len__(self) -> int:
        return 2 * self.n

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = torch.as_tensor(indices)
        flip = idx >= self.n
        images, labels = self.base.__getitems__((idx % self.n).tolist())
        images = images.clone()
        images[flip] = images[flip].flip(-1)
        return images, labels


def _keep_batch(batch: Any) -> Any:
    """Collate function for datasets that already return whole batches."""
    return batch


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``SeededBatchSampler``.

    Its order depends only on the sampler's settings and the iteration the run starts from, so
    it declares itself resumable to Lightning (``state_dict``/``load_state_dict``); loading a
    state whose settings differ (e.g. another batch size) warns that the data order changes.
    """

    batch_sampler: SeededBatchSampler

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.order_state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        current = self.batch_sampler.order_state()
        changed = {k: (v, current.get(k)) for k, v in state.items() if current.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changed.items())
            warnings.warn(
                f"resuming with a different data order than the checkpoint's ({detail})", stacklevel=2
            )


class ImageDataModule(pl.LightningDataModule):
    """Serving and device-side transforms for every dataset of the lab.

    Args:
        root: data folder (torchvision's layout below it for the named datasets).
        resolution: side of the square training images.
        channels: channels of the training images (gray is repeated to RGB, RGB reduced to luma).
        batch_size: images per device per iteration.
        split: which split to train on.
        seed: seeds the data order.
        shuffle: visit the data in a new random order each epoch.
        hflip: add left-right mirrored copies of every image (dataset x-flips).
        batches_per_iteration: real batches served per iteration, one per D step
            (``model.d_steps``, through the config's interpolation).
        conditional: train class-conditionally: the model gets the dataset's classes
            (``num_classes``); a dataset without classes is refused (``class_count``).
        num_classes: what the config says of the classes (None: take them from the dataset;
            ``train.py`` writes the number it found back into the run's config).
    """

    name = "images"
    splits: tuple[str, ...] = ("train",)

    def __init__(
        self,
        root: str,
        resolution: int,
        channels: int,
        batch_size: int,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
        hflip: bool = False,
        batches_per_iteration: int = 1,
        conditional: bool = False,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.root = root
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.batch_size = int(batch_size)
        self.split = split
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.hflip = bool(hflip)
        # D batches per training iteration (model.d_steps): the loader serves them together
        self.batches_per_iteration = int(batches_per_iteration)
        self.conditional = bool(conditional)
        self.configured_classes = num_classes
        self.dataset: BatchDataset | None = None

    def for_split(self, split: str) -> ImageDataModule:
        """The same dataset and options, another split (for metrics' reference statistics)."""
        if split not in self.splits:
            raise ConfigError(f"{self.name} has no {split!r} split (it has {', '.join(self.splits)})")
        other = copy.copy(self)
        other.split, other.dataset, other.batches_per_iteration = split, None, 1
        other.reset_prepared()
        return other

    def reset_prepared(self) -> None:
        """Forget what ``prepare_data`` found (for a copy that reads another split)."""

    # -- classes
    def dataset_classes(self) -> int:
        """How many classes the dataset's labels name (0: it has no class labels); valid after
        ``prepare_data``."""
        return 0

    @property
    def num_classes(self) -> int:
        """The classes a model of this data is conditioned on: the dataset's when
        ``conditional``, else 0."""
        return self.dataset_classes() if self.conditional else 0

    def class_count(self) -> int:
        """``num_classes``, after refusing a conditional run on data without classes (one line)."""
        if not self.conditional:
            return 0
        found = self.dataset_classes()
        if found < 2:
            what = "no class labels" if found == 0 else "a single class"
            hint = " (an image folder's classes are its top-level subfolders)" if found == 1 else ""
            raise ConfigError(
                f"data.conditional=true needs a dataset with classes, but {self.name} has {what}{hint}; "
                "train it unconditionally (data.conditional=false)"
            )
        if self.configured_classes is not None and self.configured_classes != found:
            raise ConfigError(
                f"data.num_classes={self.configured_classes} does not match the {found} classes of "
                f"{self.name} (leave it null: it is read from the dataset)"
            )
        return found

    # -- for subclasses
    def build_dataset(self) -> BatchDataset:
        """The split as a batch dataset of uint8 images."""
        raise NotImplementedError

    def resize(self, images: Tensor) -> Tensor:
        """Bring a float batch in [-1, 1] to ``resolution`` (identity when stored at that size)."""
        return images

    @property
    def loader_workers(self) -> int:
        """DataLoader worker processes while training (0: batches come from memory)."""
        return 0

    # -- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        dataset = self.build_dataset()
        self.dataset = MirroredDataset(dataset) if self.hflip else dataset
        world_size = self.trainer.world_size if self.trainer is not None else 1
        if len(self.dataset) < self.iteration_batch * world_size:
            devices = f" x {world_size} devices" if world_size > 1 else ""
            critic = f" x {self.batches_per_iteration} critic steps" if self.batches_per_iteration > 1 else ""
            raise ConfigError(
                f"data.batch_size={self.batch_size}{critic}{devices} is larger than the {self.split} split "
                f"of {self.name} ({len(self.dataset)} images)"
            )

    @property
    def iteration_batch(self) -> int:
        """Real images per device per iteration."""
        return self.batch_size * self.batches_per_iteration

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.dataset is not None, "setup() must run first"
        trainer = self.trainer
        sampler = SeededBatchSampler(
            len(self.dataset),
            self.iteration_batch,
            seed=self.seed,
            # a resumed run continues the stream at its iteration (one batch per iteration)
            start_batch=trainer.global_step if trainer is not None else 0,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            shuffle=self.shuffle,
        )
        workers = self.loader_workers
        on_gpu = trainer is not None and trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        return ResumableDataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=_keep_batch,
            num_workers=workers,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
            pin_memory=on_gpu,
        )

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        images, labels = batch
        return self.transform(images), labels

    def transform(self, images: Tensor) -> Tensor:
        """uint8 batch -> float batch in [-1, 1] at the training resolution and channel count."""
        images = to_signed_unit(images)
        images = self.resize(images)
        return match_channels(images, self.channels).contiguous()


class ArrayDataModule(ImageDataModule):
    """Datasets stored as arrays (IDX, CIFAR batches): decoded into memory at their native size;
    ``resize`` brings batches to the training resolution on the device."""

    labelled_classes = 10  # MNIST, Fashion-MNIST, CIFAR-10

    def dataset_classes(self) -> int:
        return self.labelled_classes

    def load(self) -> Batch:
        """Decode the split into a uint8 ``(N, C, H, W)`` tensor and int64 labels."""
        raise NotImplementedError

    def build_dataset(self) -> BatchDataset:
        images, labels = self.load()
        log.info(
            "%s/%s: %d images %s in memory (%.1f MB)",
            self.name,
            self.split,
            images.shape[0],
            tuple(images.shape[1:]),
            images.numel() / 1e6,
        )
        return TensorBatchDataset(images, labels)

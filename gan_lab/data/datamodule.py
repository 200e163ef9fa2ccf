"""In-memory image datamodule: the dataset is one uint8 tensor, batches are index slices of it.

Subclasses say where the data is (``prepare_data``: find or fetch, and fail with how to get it)
and how to read it (``load``: a uint8 tensor ``(N, C, H, W)`` and int64 labels). This class serves
batches in the resumable order of ``SeededBatchSampler`` and does the float conversion,
[-1, 1] scaling and resizing batch-wise on the training device (``on_after_batch_transfer``).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_lab.data.sampler import SeededBatchSampler
from gan_lab.data.transforms import match_channels, to_signed_unit
from gan_lab.errors import ConfigError

log = logging.getLogger(__name__)


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

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices)
        return self.images[idx], self.labels[idx]


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


class InMemoryImageDataModule(pl.LightningDataModule):
    """Base for datasets small enough to decode once into memory.

    Args:
        root: data folder (torchvision's layout below it).
        resolution: side of the square training images.
        channels: channels of the training images (gray is repeated to RGB, RGB reduced to luma).
        batch_size: images per device per iteration.
        split: which split to train on.
        seed: seeds the data order.
        shuffle: visit the data in a new random order each epoch.
    """

    name = "images"
    native_channels = 3

    def __init__(
        self,
        root: str,
        resolution: int,
        channels: int,
        batch_size: int,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.root = root
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.batch_size = int(batch_size)
        self.split = split
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.dataset: TensorBatchDataset | None = None

    # -- for subclasses
    def load(self) -> tuple[Tensor, Tensor]:
        """Decode the split into a uint8 ``(N, C, H, W)`` tensor and int64 labels."""
        raise NotImplementedError

    def resize(self, images: Tensor) -> Tensor:
        """Bring a float batch in [-1, 1] to ``resolution`` (subclasses define the framing)."""
        raise NotImplementedError

    # -- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            images, labels = self.load()
            self.dataset = TensorBatchDataset(images, labels)
            world_size = self.trainer.world_size if self.trainer is not None else 1
            if len(self.dataset) < self.batch_size * world_size:
                devices = f" x {world_size} devices" if world_size > 1 else ""
                raise ConfigError(
                    f"data.batch_size={self.batch_size}{devices} is larger than the {self.split} split "
                    f"of {self.name} ({len(self.dataset)} images)"
                )
            log.info(
                "%s/%s: %d images %s in memory (%.1f MB)",
                self.name,
                self.split,
                len(self.dataset),
                tuple(images.shape[1:]),
                images.numel() / 1e6,
            )

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.dataset is not None, "setup() must run first"
        trainer = self.trainer
        sampler = SeededBatchSampler(
            len(self.dataset),
            self.batch_size,
            seed=self.seed,
            # a resumed run continues the stream at its iteration (one batch per iteration)
            start_batch=trainer.global_step if trainer is not None else 0,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
            shuffle=self.shuffle,
        )
        return ResumableDataLoader(self.dataset, batch_sampler=sampler, collate_fn=_keep_batch, num_workers=0)

    def on_after_batch_transfer(
        self, batch: tuple[Tensor, Tensor], dataloader_idx: int
    ) -> tuple[Tensor, Tensor]:
        images, labels = batch
        return self.transform(images), labels

    def transform(self, images: Tensor) -> Tensor:
        """uint8 batch -> float batch in [-1, 1] at the training resolution and channel count."""
        images = to_signed_unit(images)
        images = self.resize(images)
        return match_channels(images, self.channels).contiguous()

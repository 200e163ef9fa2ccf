"""Datasets that are folders of image files (CelebA, any image folder).

Two ways to serve them, chosen by ``in_memory`` (``auto``: by the ``memory_budget_gb`` the
decoded split needs, ``N * C * R * R`` bytes):

* in memory: every file is decoded once, in parallel, to the training size and saved as one
  uint8 tensor file in ``cache_dir``, named by dataset, split and options and keyed by a digest
  of the folder, the decoding options and every file's identity (see below). A later run with
  the same data and options memory-maps that file and starts at once; a changed folder gets a
  new cache entry. Batches are index slices (``TensorBatchDataset``).
* streaming: DataLoader workers decode each batch's files (``FileBatchDataset``); the list of
  readable files is checked once (headers, ``PIL.Image.verify``) and cached the same way.

The cache key (``cache_verify``): ``stat`` (default) covers every file's path, size, modification
time, inode and change time (ctime): a file replaced, rewritten, renamed or touched gets a new
entry, even when its size is the same and its mtime was set back (``os.utime``). ``hash`` also
hashes every file's bytes (SHA-256, streamed): it catches a change that leaves all of those alone
(a network or FAT mount without real inodes or ctimes; a rewrite within one clock tick), at the
cost of reading the whole dataset at every start.

Files that cannot be decoded are skipped, counted, and reported once, with their paths and the
reason, when training starts. A folder with no readable image is an error naming the folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_lab.config import check_arguments
from gan_lab.config.schema import CACHE_VERIFY as CACHE_VERIFY
from gan_lab.config.schema import FileDataConfig
from gan_lab.data.datamodule import Batch, BatchDataset, ImageDataModule, TensorBatchDataset
from gan_lab.data.decode import DecodeSpec, UndecodableImage, decode_image
from gan_lab.errors import DatasetFormatError
from gan_lab.utils.checkpoint_io import atomic_torch_save
from gan_lab.utils.once import compute_once

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: inode and ctime in the key, cache_verify
HASH_CHUNK = 1 << 20
REPORTED_PATHS = 10  # how many skipped files the report lists by name


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class _DecodeOne(Dataset):
    """file i -> (i, uint8 array or None, error message) (for the parallel decoding pass)."""

    def __init__(self, files: Sequence[str], spec: DecodeSpec | None) -> None:
        self.files, self.spec = files, spec

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str]:
        assert self.spec is not None
        try:
            return i, decode_image(self.files[i], self.spec), ""
        except UndecodableImage as e:
            return i, None, str(e)


class _VerifyOne(_DecodeOne):
    """file i -> (i, None, error message): header and integrity check without decoding pixels."""

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            with Image.open(self.files[i]) as img:
                img.verify()
            return i, None, ""
        except Exception as e:  # PIL raises many types for bad files
            return i, None, f"{self.files[i]}: {e}"


def _as_list(batch: list) -> list:
    return batch


def _parallel(dataset: Dataset, workers: int, what: str) -> Any:
    """Iterate ``dataset`` items in order through ``workers`` processes, logging progress."""
    n = len(dataset)
    loader = DataLoader(dataset, batch_size=64, num_workers=workers, collate_fn=_as_list)
    start, done, next_report = time.monotonic(), 0, 0.1
    for batch in loader:
        yield from batch
        done += len(batch)
        if done / n >= next_report or done == n:
            rate = done / max(time.monotonic() - start, 1e-9)
            log.info("%s: %d/%d files (%.0f files/s)", what, done, n, rate)
            next_report += 0.1


def decode_all(files: Sequence[str], labels: Tensor, spec: DecodeSpec, workers: int) -> dict[str, Any]:
    """Decode every file into one uint8 tensor, in file order; undecodable files are left out."""
    n = len(files)
    images = torch.empty((n, spec.channels, spec.resolution, spec.resolution), dtype=torch.uint8)
    kept = torch.empty(n, dtype=torch.long)
    skipped: list[str] = []
    k = 0
    for i, array, error in _parallel(_DecodeOne(files, spec), workers, "decoding"):
        if array is None:
            skipped.append(error)
            continue
        images[k] = torch.from_numpy(array)
        kept[k] = i
        k += 1
    # a slice would save the whole preallocated storage: copy only when files were skipped
    images = images if k == n else images[:k].clone()
    return {"images": images, "labels": labels[kept[:k]], "skipped": skipped}


def verify_all(files: Sequence[str], labels: Tensor, workers: int) -> dict[str, Any]:
    """The readable files (by header check) and the reasons the others are not."""
    bad = {i: error for i, _, error in _parallel(_VerifyOne(files, None), workers, "checking") if error}
    keep = [i for i in range(len(files)) if i not in bad]
    return {"files": [files[i] for i in keep], "labels": labels[keep], "skipped": list(bad.values())}


class FileBatchDataset(Dataset):
    """Decodes a batch's files on access (in DataLoader workers). A file that fails to decode
    here (it passed the header check) is replaced by the next readable one and reported once."""

    def __init__(self, files: Sequence[str], labels: Tensor, spec: DecodeSpec) -> None:
        self.files, self.labels, self.spec = list(files), labels, spec
        self._reported: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, i: int) -> tuple[np.ndarray, int]:
        for attempt in range(len(self.files)):
            j = (i + attempt) % len(self.files)
            try:
                return decode_image(self.files[j], self.spec), j
            except UndecodableImage as e:
                if j not in self._reported:
                    self._reported.add(j)
                    log.warning("skipping an image that failed to decode: %s", e)
        raise DatasetFormatError("no file of the dataset could be decoded")

    def __getitems__(self, indices: list[int]) -> Batch:
        decoded = [self._decode(i) for i in indices]
        images = torch.from_numpy(np.stack([a for a, _ in decoded]))
        return images, self.labels[[j for _, j in decoded]]


def stat_key(path: str) -> str:
    """What the file system says about ``path``: the path, size, mtime, inode and ctime. A user can
    set the mtime back (``os.utime``, ``cp -p``, ``rsync -t``), but not the ctime, which the kernel
    sets on every write, rename or metadata change: hence both it and the inode are in the key."""
    st = os.stat(path)
    return f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"


def content_hash(path: str) -> str:
    """SHA-256 of the file's bytes, read in chunks (faster than BLAKE2b on CPUs with SHA instructions)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(root: Path, files: Sequence[str], options: str, verify: str = "stat") -> str:
    """Digest of the options and every file's ``stat_key`` (and, with ``verify="hash"``, its bytes)."""
    h = hashlib.sha256(f"{CACHE_FORMAT}|{root.resolve()}|{options}|{verify}\n".encode())
    start = time.monotonic()
    for f in files:
        h.update(f"{stat_key(f)}\n".encode())
        if verify == "hash":
            h.update(f"{content_hash(f)}\n".encode())
    if verify == "hash":
        log.info("hashed %d files for the cache key in %.1f s", len(files), time.monotonic() - start)
    return h.hexdigest()


class FileDataModule(ImageDataModule):
    """Base of the file-folder datasets. Subclasses implement ``list_files`` (and may refine
    ``decode_spec``); this class decodes, caches, streams and reports skipped files.

    Extra args:
        in_memory: ``auto`` (by ``memory_budget_gb``), ``true`` or ``false`` (stream).
        memory_budget_gb: largest decoded split kept in memory under ``auto``.
        cache_dir: folder of decoded-dataset caches.
        num_workers: decoding processes (None: min(8, CPUs)).
        cache_verify: what keys the decoded cache: ``stat`` (path, size, mtime, inode, ctime of
            every file) or ``hash`` (also every file's bytes; reads the whole dataset at each start).
    """

    def __init__(
        self,
        root: str,
        resolution: int,
        channels: int = 3,
        batch_size: int = 64,
        split: str = "train",
        seed: int = 0,
        shuffle: bool = True,
        hflip: bool = False,
        in_memory: bool | str = "auto",
        memory_budget_gb: float = 4.0,
        cache_dir: str = "~/.cache/gan_lab/datasets",
        num_workers: int | None = None,
        cache_verify: str = "stat",
        **loop: Any,
    ) -> None:
        super().__init__(root, resolution, channels, batch_size, split, seed, shuffle, hflip, **loop)
        check_arguments(FileDataConfig, "data.", in_memory=in_memory, cache_verify=cache_verify)
        self.in_memory = in_memory
        self.cache_verify = cache_verify
        self.memory_budget_gb = float(memory_budget_gb)
        self.cache_dir = Path(cache_dir).expanduser()
        self.num_workers = default_workers() if num_workers is None else int(num_workers)
        self._prepared: dict[str, Any] | None = None
        self._streaming = False

    def reset_prepared(self) -> None:
        self._prepared = None

    has_classes = True  # the labels of list_files are classes (CelebA's are not)

    def dataset_classes(self) -> int:
        self.prepare_data()
        assert self._prepared is not None
        return int(self._prepared["classes"])

    # -- for subclasses
    def list_files(self) -> tuple[list[str], list[int]]:
        """Paths of the split's image files and their class labels (raise if the data is missing)."""
        raise NotImplementedError

    def decode_spec(self) -> DecodeSpec:
        return DecodeSpec(self.resolution, self.channels)

    # -- decoding and caching
    def decides_in_memory(self, n_files: int) -> bool:
        if self.in_memory != "auto":
            return bool(self.in_memory)
        needed = n_files * self.channels * self.resolution**2
        return needed <= self.memory_budget_gb * 1e9

    def cache_file(self, files: Sequence[str], kind: str) -> Path:
        spec = self.decode_spec()
        digest = folder_digest(
            Path(self.root).expanduser(),
            files,
            f"{type(self).__name__}|{self.split}|{spec}",
            self.cache_verify,
        )
        return self.cache_dir / f"{self.name}-{self.split}-{kind}-{spec.key()}-{digest[:16]}.pt"

    def prepare_data(self) -> None:
        """Decode (or check) the split once and cache it; a later call or run reuses the cache."""
        if self._prepared is not None:
            return
        files, labels = self.list_files()
        if not files:
            raise DatasetFormatError(f"no image files for {self.name} in {self.root}")
        label_tensor = torch.as_tensor(labels, dtype=torch.int64)
        self._streaming = not self.decides_in_memory(len(files))
        kind = "index" if self._streaming else "images"
        path = self.cache_file(files, kind)
        if path.is_file():
            log.info("%s/%s: using the decoded cache %s", self.name, self.split, path)
        else:
            self.cache_dir.mkdir(parents=True, exist_ok=True)

            def decode_and_save() -> None:
                log.info(
                    "%s/%s: %s %d files with %d workers (once; cached in %s)",
                    self.name,
                    self.split,
                    "checking" if self._streaming else "decoding",
                    len(files),
                    self.num_workers,
                    path,
                )
                if self._streaming:
                    entry = verify_all(files, label_tensor, self.num_workers)
                else:
                    entry = decode_all(files, label_tensor, self.decode_spec(), self.num_workers)
                entry["format"] = CACHE_FORMAT
                atomic_torch_save(entry, path)

            # once per job: the other ranks (torchrun, SLURM) wait for the cache, then use it
            compute_once(path, decode_and_save, f"the {self.name}/{self.split} decode cache")
        self._prepared = {
            "path": path,
            "total": len(files),
            "classes": len(set(labels)) if self.has_classes else 0,
        }

    def build_dataset(self) -> BatchDataset:
        self.prepare_data()
        assert self._prepared is not None
        entry = torch.load(self._prepared["path"], map_location="cpu", weights_only=True, mmap=True)
        self.report_skipped(entry["skipped"], self._prepared["total"])
        if self._streaming:
            log.info("%s/%s: streaming %d files", self.name, self.split, len(entry["files"]))
            return FileBatchDataset(entry["files"], entry["labels"], self.decode_spec())
        images = entry["images"]
        log.info(
            "%s/%s: %d images %s in memory (%.1f MB)",
            self.name,
            self.split,
            images.shape[0],
            tuple(images.shape[1:]),
            images.numel() / 1e6,
        )
        return TensorBatchDataset(images, entry["labels"])

    def report_skipped(self, skipped: list[str], total: int) -> None:
        if len(skipped) == total:
            raise DatasetFormatError(
                f"none of the {total} image files of {self.name} in {self.root} could be decoded "
                f"(first: {skipped[0]})"
            )
        if skipped:
            listed = "; ".join(skipped[:REPORTED_PATHS])
            more = f"; and {len(skipped) - REPORTED_PATHS} more" if len(skipped) > REPORTED_PATHS else ""
            log.warning(
                "%s/%s: %d of %d files could not be decoded and are skipped: %s%s",
                self.name,
                self.split,
                len(skipped),
                total,
                listed,
                more,
            )

    @property
    def streaming(self) -> bool:
        """Whether batches are decoded from the files while training (decided by ``prepare_data``)."""
        return self._streaming

    @property
    def loader_workers(self) -> int:
        return self.num_workers if self._streaming else 0

"""Checkpoint writing that never leaves a half-written file behind.

Lightning's default writer stages a checkpoint in the system temp folder and moves it into place;
when that folder is on another filesystem the move is a copy, and a run killed during the copy
leaves a truncated ``last.ckpt``. Here the checkpoint is written next to its destination, flushed
to disk (``fsync``) and renamed over it with ``os.replace``, which POSIX makes atomic: a reader,
or a resumed run, sees either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

TMP_MARK = ".tmp-"


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` atomically (temporary file in the same folder + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that names ``tmp`` (``...tmp-<pid>``) still runs on this machine."""
    pid = tmp.name.rsplit(TMP_MARK, 1)[-1]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files left by writers that were killed mid-write (a writer that is still
    running keeps its file); return what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".*.ckpt{TMP_MARK}*"):
        if _writer_alive(tmp):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with atomic local writes (remote paths keep Lightning's behaviour)."""

    def __init__(self) -> None:
        super().__init__()
        self._cleaned: set[Path] = set()

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        folder = Path(path).parent
        if folder not in self._cleaned and folder.is_dir():
            remove_stale_temporaries(folder)
            self._cleaned.add(folder)
        atomic_torch_save(checkpoint, path)

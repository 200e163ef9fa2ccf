"""Work done once per dataset, once per job: an inter-process lock around each cache producer.

Under torchrun or SLURM every rank runs ``train.py`` from the start, at the same moment, before
Lightning's own ``prepare_data`` barrier exists: dataset downloads, decode caches, the domain
classifier and the real-feature statistics would otherwise be computed by every rank at once,
into the same files. ``compute_once(path, produce)`` makes the first process to take the lock
beside ``path`` (``<path>.lock``) produce it, while the others wait on the lock and then find it.

The lock is ``filelock.FileLock`` (``flock``): the operating system releases it when its holder
exits, so a crashed producer leaves no stale lock, and a waiting process then produces the cache
itself. It serialises processes on one machine, and across machines on filesystems whose ``flock``
is shared (local disks, NFSv4, Lustre with ``flock`` mounts). ``produce`` must write ``path``
atomically (write beside it, then rename), so that a reader that takes no lock never sees a
partial file. It must not take part in collective operations (``torch.distributed``, or
torchmetrics' sync at ``compute``): the waiting ranks are not there to join them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of ``path``: ``<path>.lock`` beside it."""
    path = Path(path).expanduser()
    return path.with_name(f"{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the inter-process lock of ``path`` (logging when another process holds it).

    Where the lock file cannot be created (a read-only folder) the block runs unlocked: nothing
    can be written there by any process either."""
    lock_file = lock_path(path)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666))  # can this process lock here?
    except OSError as e:
        log.debug("no lock for %s (%s): running unlocked", what, e)
        yield
        return
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process to finish %s (lock %s)", what, lock_file)
        start = time.monotonic()
        lock.acquire()
        log.info("%s: lock taken after %.1f s of waiting", what, time.monotonic() - start)
    try:
        yield
    finally:
        lock.release()


def compute_once(
    path: str | os.PathLike[str],
    produce: Callable[[], object],
    what: str,
    ready: Callable[[], bool] | None = None,
) -> bool:
    """Make sure the cache ``path`` exists: call ``produce`` (which writes it) unless it is
    ``ready`` (default: ``path`` exists), in at most one process at a time. Returns whether this
    process produced it.

    The check is made again under the lock, so a process that waited for another's work finds
    it there and does not redo it."""
    path = Path(path).expanduser()
    is_ready = ready if ready is not None else path.exists
    if is_ready():
        return False
    with exclusive(path, what):
        if is_ready():
            return False
        produce()
        return True


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (a file beside it, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise

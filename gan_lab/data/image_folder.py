"""Any folder of images: FFHQ, LSUN or AFHQ exports, a user's own photos.

Every file with an image extension below ``root`` is used (recursively, following symlinked
folders, also to outside ``root``; other files are ignored), each real file once: a symlinked
folder that loops back to a folder already scanned (``d/loop -> ..``) or repeats one (two links to
the same folder) is skipped, and so is a second path (symlink, hard link) to a file already used;
both are reported in one warning. Each image is converted to RGB (or gray with ``channels=1``;
transparency composited over white), resized so its shorter side is ``resolution`` (Lanczos) and
centre-cropped to a square. Class labels: one per top-level subfolder of the path it is used
under, in sorted order (images directly in ``root`` form their own class; a linked folder is a
class like a real one), as torchvision's ``ImageFolder`` names them.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path

from gan_lab.data.decode import IMAGE_EXTENSIONS, is_image_file
from gan_lab.data.files import FileDataModule
from gan_lab.errors import DatasetFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

REPORTED_PATHS = 10  # how many skipped links the warning lists by name

Identity = tuple[int, int]  # (st_dev, st_ino): the same for every path to one file or folder


def _identity(st: os.stat_result) -> Identity:
    return st.st_dev, st.st_ino


def _listed(paths: list[str]) -> str:
    more = f", and {len(paths) - REPORTED_PATHS} more" if len(paths) > REPORTED_PATHS else ""
    return ", ".join(paths[:REPORTED_PATHS]) + more


def _as_link(path: str) -> str:
    return f"{path} -> {os.readlink(path)}" if os.path.islink(path) else path


def scan_images(root: Path) -> list[Path]:
    """Image files below ``root``, sorted, each real file once, following symlinked folders.

    The real folders below ``root`` are scanned first; symlinked folders are followed afterwards, in
    the order found, unless their target (by ``st_dev, st_ino``) was already scanned: a loop or a
    repeat. A file reached by several paths is kept under its path without links, else the first.
    Hidden folders are skipped.
    """
    seen_folders: set[Identity] = {_identity(os.stat(root))}
    links: deque[str] = deque()  # symlinked folders, followed once every real folder is scanned
    found: list[tuple[bool, str, Identity]] = []  # (reached through a link, path, file identity)
    repeated: list[str] = []  # folders not scanned: already scanned by another path
    dangling: list[str] = []

    def scan_tree(top: str, through_link: bool) -> None:
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                log.warning("cannot read the folder %s (skipped): %s", folder, e)
                continue
            subfolders = []
            for entry in entries:
                try:
                    if entry.is_dir():  # follows links
                        if entry.name.startswith("."):
                            continue
                        if entry.is_symlink():
                            links.append(entry.path)
                            continue
                        key = _identity(entry.stat())
                        if key in seen_folders:  # a bind mount, or a folder a link scanned first
                            repeated.append(entry.path)
                        else:
                            seen_folders.add(key)
                            subfolders.append(entry.path)
                    elif is_image_file(Path(entry.name)):
                        found.append(
                            (through_link or entry.is_symlink(), entry.path, _identity(entry.stat()))
                        )
                except OSError:  # a dangling link or a link loop
                    if is_image_file(Path(entry.name)):
                        dangling.append(entry.path)
            stack.extend(reversed(subfolders))

    scan_tree(str(root), through_link=False)
    while links:
        link = links.popleft()
        try:
            key = _identity(os.stat(link))
        except OSError:
            dangling.append(link)
            continue
        if key in seen_folders:
            repeated.append(link)
        else:
            seen_folders.add(key)
            scan_tree(link, through_link=True)

    kept: dict[Identity, str] = {}
    again: list[str] = []
    for _, path, key in sorted(found):  # paths without links first
        if key in kept:
            again.append(path)
        else:
            kept[key] = path
    skipped = []
    if repeated:
        skipped.append(
            f"{len(repeated)} folder(s) already scanned through another path (a symlink loop or a "
            f"repeated link): {_listed([_as_link(p) for p in repeated])}"
        )
    if again:
        skipped.append(
            f"{len(again)} path(s) to an image already used: {_listed([_as_link(p) for p in again])}"
        )
    if skipped:
        log.warning("%s: each file is used once; skipped %s", root, "; and ".join(skipped))
    if dangling:
        log.warning("%s: %d broken link(s) skipped: %s", root, len(dangling), _listed(dangling))
    return sorted(Path(p) for p in kept.values())


class ImageFolderDataModule(FileDataModule):
    name = "image_folder"

    def list_files(self) -> tuple[list[str], list[int]]:
        root = Path(self.root).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"data.root={self.root} is not a folder (data=image_folder needs a folder of images)"
            )
        files = scan_images(root)
        if not files:
            raise DatasetFormatError(
                f"no image files in {root} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})"
            )
        groups = [f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else "" for f in files]
        classes = {name: i for i, name in enumerate(sorted(set(groups)))}
        return [str(f) for f in files], [classes[g] for g in groups]

"""Any folder of images: FFHQ, LSUN or AFHQ exports, a user's own photos.

Every file with an image extension below ``root`` is used (recursively, following symlinked
folders; other files are ignored), converted to RGB (or gray with ``channels=1``; transparency
composited over white), resized so its shorter side is ``resolution`` (Lanczos) and centre-cropped
to a square. Class labels: one per top-level subfolder, in sorted order (images directly in
``root`` form their own class), as torchvision's ``ImageFolder`` names them.
"""

from __future__ import annotations

import os
from pathlib import Path

from gan_lab.data.decode import IMAGE_EXTENSIONS, is_image_file
from gan_lab.data.files import FileDataModule
from gan_lab.errors import DatasetFormatError, DatasetNotFoundError


def scan_images(root: Path) -> list[Path]:
    """Image files below ``root``, sorted, following symlinked folders."""
    found = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(folder) / n for n in names if is_image_file(Path(n)))
    return sorted(found)


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

"""CelebA (Liu et al. 2015, "Deep Learning Face Attributes in the Wild"): 202,599 aligned and
cropped celebrity faces of 178x218 pixels.

On disk (torchvision's layout): ``ROOT/celeba/img_align_celeba/*.jpg`` and
``ROOT/celeba/list_eval_partition.txt`` (lines ``000001.jpg 0``; 0 train: 162,770 images,
1 valid: 19,867, 2 test: 19,962). ``split=all`` takes every listed image.

Framing: a centred ``crop`` x ``crop`` square of the 178x218 image, resized to ``resolution``.
The default 108 is the crop of the widely used DCGAN-tensorflow CelebA setup
(``--input_height=108 --crop``, then 64x64), tight on the face; ``crop=178`` keeps the full width
(hair and background), better at 128 and above; ``crop=null`` takes the largest centred square.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gan_lab.config import check_arguments
from gan_lab.config.schema import CelebAConfig
from gan_lab.data.decode import DecodeSpec
from gan_lab.data.files import FileDataModule
from gan_lab.errors import DatasetFormatError, DatasetNotFoundError
from gan_lab.utils.once import compute_once

log = logging.getLogger(__name__)

SPLITS = {"train": "0", "valid": "1", "test": "2", "all": None}
SITE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


class CelebADataModule(FileDataModule):
    has_classes = False  # identities and attributes, not classes: no conditional training
    name = "celeba"
    splits = tuple(SPLITS)

    def __init__(
        self, root: str, resolution: int = 64, crop: int | None = 108, download: bool = True, **kwargs
    ) -> None:
        super().__init__(root, resolution, **kwargs)
        check_arguments(CelebAConfig, "data.", split=self.split, crop=crop)
        self.crop = crop
        self.download = bool(download)

    @property
    def folder(self) -> Path:
        return Path(self.root).expanduser() / "celeba"

    def decode_spec(self) -> DecodeSpec:
        return DecodeSpec(self.resolution, self.channels, self.crop)

    def _present(self) -> bool:
        return (self.folder / "list_eval_partition.txt").is_file() and (
            self.folder / "img_align_celeba"
        ).is_dir()

    def list_files(self) -> tuple[list[str], list[int]]:
        if not self._present() and self.download:

            def download() -> None:
                try:
                    from torchvision.datasets import CelebA

                    log.info("CelebA not found locally; trying torchvision's download into %s", self.folder)
                    CelebA(str(self.folder.parent), split="all", target_type=[], download=True)
                except Exception as e:
                    log.warning("download failed: %s", e)

            # one process per data root downloads and extracts; the others (DDP ranks) wait for it
            compute_once(self.folder, download, "the CelebA download", ready=self._present)
        if not self._present():
            raise DatasetNotFoundError(
                f"CelebA not found: expected {self.folder / 'img_align_celeba'}/ and "
                f"{self.folder / 'list_eval_partition.txt'}. Download 'img_align_celeba.zip' and "
                f"'list_eval_partition.txt' from {SITE} (or torchvision's CelebA download, which "
                "uses Google Drive) and unpack them there; data.root=DIR points to another copy"
            )
        wanted = SPLITS[self.split]
        files, missing = [], 0
        images = self.folder / "img_align_celeba"
        for line_no, line in enumerate((self.folder / "list_eval_partition.txt").read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetFormatError(
                    f"{self.folder / 'list_eval_partition.txt'}:{line_no}: bad line {line!r}"
                )
            if wanted is None or parts[1] == wanted:
                path = images / parts[0]
                if path.is_file():
                    files.append(str(path))
                else:
                    missing += 1
        if missing:
            log.warning("celeba/%s: %d listed images are missing from %s", self.split, missing, images)
        return files, [0] * len(files)

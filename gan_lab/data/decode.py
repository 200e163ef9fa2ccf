"""Decoding image files into uint8 arrays of the training size, with PIL.

``decode_image(path, spec)`` opens a file, optionally crops a centred box (CelebA), converts the
colour mode (gray, RGBA, palette, CMYK, 16-bit -> RGB or L; transparent pixels are composited
over white), resizes so the shorter side equals the resolution (Lanczos, as StyleGAN2-ADA's
``dataset_tool.py``) and centre-crops to a square. JPEGs much larger than the target are decoded
at reduced scale first (``Image.draft``), which is several times faster and loses nothing after
the Lanczos downscale.

Files that cannot be decoded raise ``UndecodableImage``; callers skip and report them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class UndecodableImage(Exception):
    """A file with an image extension that PIL cannot decode (corrupt, truncated, not an image)."""


@dataclass(frozen=True)
class DecodeSpec:
    """How files become training images: side ``resolution``, ``channels`` (1 or 3), and an
    optional centred square crop of side ``crop`` taken before resizing (None: none)."""

    resolution: int
    channels: int = 3
    crop: int | None = None

    def key(self) -> str:
        return f"r{self.resolution}-c{self.channels}-crop{self.crop}"


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Gray or RGB, compositing any transparency over white."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        img = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    return img.convert("L" if channels == 1 else "RGB")


def decode_image(path: str | Path, spec: DecodeSpec) -> np.ndarray:
    """A uint8 array (channels, resolution, resolution) from an image file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and palette warnings of PIL are not ours to show
            with Image.open(path) as img:
                w0, h0 = img.size
                reference = spec.crop or min(w0, h0)  # the length that becomes `resolution`
                if img.format == "JPEG" and reference > 2 * spec.resolution:
                    f = spec.resolution / reference  # decode at a reduced scale that keeps >= f
                    img.draft("L" if spec.channels == 1 else "RGB", (math.ceil(w0 * f), math.ceil(h0 * f)))
                img.load()
                drafted = img.size[0] / w0
                img = _to_mode(img, spec.channels)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UndecodableImage(f"{path}: {e}") from e
    if spec.crop:
        img = _center_crop(img, min(round(spec.crop * drafted), *img.size))
    w, h = img.size
    scale = spec.resolution / min(w, h)
    if scale != 1:
        size = (max(spec.resolution, round(w * scale)), max(spec.resolution, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    img = _center_crop(img, spec.resolution)
    array = np.asarray(img, dtype=np.uint8)
    return array[None].copy() if array.ndim == 2 else array.transpose(2, 0, 1).copy()


def _center_crop(img: Image.Image, side: int) -> Image.Image:
    w, h = img.size
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")

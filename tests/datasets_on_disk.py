"""Small datasets written in the real on-disk formats of MNIST, CIFAR-10, CelebA and image folders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from gan_lab.data.idx import write_idx

from .conftest import garment_like_images


def write_mnist(root: Path, n_train: int = 64, n_test: int = 32) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 2), ("t10k", n_test, 3)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", garment_like_images(n, seed))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)
    return root


def write_cifar10(root: Path, per_batch: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "batch_label": name,
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "labels": [int(x) for x in rng.integers(0, 10, size=per_batch)],
            "filenames": [f"img_{i}.png" for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return root


def face_like(i: int, size: tuple[int, int] = (178, 218)) -> Image.Image:
    """A 178x218 RGB picture: a coloured ellipse ("face") centred on a gradient background."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (x * 255 // w).astype(np.uint8)
    img[..., 2] = (y * 255 // h).astype(np.uint8)
    inside = ((x - w / 2) / (w / 4)) ** 2 + ((y - h / 2) / (h / 3)) ** 2 < 1
    img[inside] = [(40 * i) % 256, 200, 120]
    return Image.fromarray(img)


def write_celeba(root: Path, counts: tuple[int, int, int] = (12, 4, 4)) -> Path:
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    lines, k = [], 0
    for split, n in enumerate(counts):
        for _ in range(n):
            k += 1
            name = f"{k:06d}.jpg"
            face_like(k).save(images / name, quality=90)
            lines.append(f"{name} {split}")
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def write_image_folder(root: Path) -> dict[str, Path]:
    """RGB, gray, RGBA, palette, 16-bit, non-square, nested, a corrupt file and a text file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cats").mkdir()
    (root / "dogs" / "big").mkdir(parents=True)
    paths = {
        "rgb": root / "cats" / "rgb.jpg",
        "gray": root / "cats" / "gray.png",
        "rgba": root / "dogs" / "rgba.png",
        "palette": root / "dogs" / "palette.gif",
        "wide": root / "dogs" / "big" / "wide.png",
        "deep": root / "dogs" / "big" / "sixteen_bit.png",
        "top": root / "top_level.bmp",
        "corrupt": root / "cats" / "corrupt.jpg",
        "text": root / "notes.txt",
    }
    face_like(1).save(paths["rgb"])
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))).save(paths["gray"])
    Image.new("RGBA", (50, 50), (255, 0, 0, 0)).save(paths["rgba"])  # fully transparent red
    face_like(2, (60, 60)).convert("P", palette=Image.Palette.ADAPTIVE).save(paths["palette"])
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[:, 100:200] = 255  # a white band in the middle third, black sides
    Image.fromarray(wide).save(paths["wide"])
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(paths["deep"])
    face_like(3, (80, 80)).save(paths["top"])
    paths["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    paths["text"].write_text("not an image")
    return paths

"""Data throughput at 64x64, images/s: the lab's in-memory and streaming paths next to a plain
torchvision ImageFolder + DataLoader pipeline on the same files, and the DCGAN training step
they feed (to show whether data loading could be the bottleneck).

    python scripts/benchmarks/data_throughput.py [--images 2000] [--workers 2] [--batches 30]

Writes scripts/benchmarks/results/data_throughput.json and prints a Markdown table. Every path ends in
the same thing: a float batch in [-1, 1] of shape (64, 3, 64, 64) on the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from gan_lab.data import ImageFolderDataModule
from gan_lab.modules import GANModule
from gan_lab.nn.dcgan import DCGANDiscriminator, DCGANGenerator

RESOLUTION, BATCH = 64, 64


def write_images(folder: Path, n: int) -> None:
    """n JPEGs of 178x218 (CelebA's size) with random smooth content, in one class folder."""
    (folder / "all").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, size=(14, 11, 3), dtype=np.uint8)
        Image.fromarray(small).resize((178, 218), Image.Resampling.BILINEAR).save(
            folder / "all" / f"{i:06d}.jpg", quality=90
        )


def rate(batches, n_batches: int, finish=lambda b: b) -> float:
    """Images per second over n_batches batches (after one warm-up batch)."""
    it = iter(batches)
    finish(next(it))
    start, seen = time.perf_counter(), 0
    for _ in range(n_batches):
        batch = finish(next(it))
        seen += batch.shape[0]
    return seen / (time.perf_counter() - start)


def lab_rate(folder: Path, cache: Path, in_memory: bool, workers: int, n_batches: int) -> float:
    dm = ImageFolderDataModule(
        str(folder),
        resolution=RESOLUTION,
        batch_size=BATCH,
        in_memory=in_memory,
        cache_dir=str(cache),
        num_workers=workers,
    )
    dm.prepare_data()
    dm.setup("fit")

    def endless():
        while True:
            yield from dm.train_dataloader()

    return rate(endless(), n_batches, lambda b: dm.transform(b[0]))


def torchvision_rate(folder: Path, workers: int, n_batches: int) -> float:
    tf = transforms.Compose(
        [
            transforms.Resize(RESOLUTION, interpolation=transforms.InterpolationMode.LANCZOS),
            transforms.CenterCrop(RESOLUTION),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )
    loader = DataLoader(
        datasets.ImageFolder(str(folder), tf),
        batch_size=BATCH,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )

    def endless():
        while True:
            for images, _ in loader:
                yield images

    return rate(endless(), n_batches)


def dcgan_step_rate(n_steps: int) -> float:
    """Images/s of the DCGAN iteration (D and G steps) at 64x64, default widths, plain PyTorch."""
    model = GANModule(
        DCGANGenerator(100, RESOLUTION, 3, width=32), DCGANDiscriminator(RESOLUTION, 3, width=32)
    )
    opt_d, opt_g = model.configure_optimizers()
    real = torch.rand(BATCH, 3, RESOLUTION, RESOLUTION) * 2 - 1

    def step() -> torch.Tensor:
        z = torch.randn(BATCH, 100)
        with torch.no_grad():
            fake = model.G(z)
        loss_d = model.loss.discriminator(model.D(real), model.D(fake))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = model.loss.generator(model.D(model.G(torch.randn(BATCH, 100))))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return real

    return rate(iter(step, None), n_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "images", Path(tmp) / "cache"
        write_images(folder, args.images)
        t0 = time.perf_counter()
        lab_rate(folder, cache, True, args.workers, 1)
        decode_once = time.perf_counter() - t0
        results: dict[str, list[float]] = {
            "lab in-memory (cached)": [],
            "lab streaming": [],
            "torchvision ImageFolder": [],
            "DCGAN 64x64 training step": [],
        }
        for _ in range(args.repeats):  # interleaved, so machine noise hits every path alike
            results["lab in-memory (cached)"].append(
                lab_rate(folder, cache, True, args.workers, args.batches)
            )
            results["lab streaming"].append(lab_rate(folder, cache, False, args.workers, args.batches))
            results["torchvision ImageFolder"].append(torchvision_rate(folder, args.workers, args.batches))
            results["DCGAN 64x64 training step"].append(dcgan_step_rate(5))
    table = ["| path | images/s (median) | min | max |", "| --- | ---: | ---: | ---: |"]
    for name, values in results.items():
        table.append(
            f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f} | {max(values):,.0f} |"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    summary = {
        "images": args.images,
        "workers": args.workers,
        "batch": BATCH,
        "resolution": RESOLUTION,
        "first_decode_and_cache_s": decode_once,
        "images_per_s": results,
    }
    (out / "data_throughput.json").write_text(json.dumps(summary, indent=2))
    print(f"first decode + cache of {args.images} JPEGs (178x218 -> 64x64): {decode_once:.1f} s")
    print("\n".join(table))
    memory = statistics.median(results["lab in-memory (cached)"])
    step = statistics.median(results["DCGAN 64x64 training step"])
    print(f"in-memory data / DCGAN step throughput: {memory / step:.0f}x")


if __name__ == "__main__":
    main()

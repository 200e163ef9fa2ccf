"""`python -m gan_lab.data.get [--root DIR]`: make sure Fashion-MNIST is available (``make data``).

Uses the Debian package's files when present, otherwise downloads with torchvision into
``ROOT/FashionMNIST/raw``; prints where the data is, or how to get it and exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gan_lab.data.mnist import FashionMNISTDataModule
from gan_lab.errors import GanLabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("GAN_LAB_DATA", "data"), help="dataset root folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        for split in ("train", "test"):
            images, _ = FashionMNISTDataModule(args.root, split=split).locate()
            print(f"Fashion-MNIST {split}: {images.parent}")
    except GanLabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Get Fashion-MNIST (``make data``): ``python scripts/get_data.py [--root DIR]``.

The same as ``python -m gan_lab.data.get``: uses the Debian package's files when present,
otherwise downloads with torchvision into ``ROOT/FashionMNIST/raw``; prints where the data is, or
how to get it and exits with status 2.
"""

from __future__ import annotations

import sys

from gan_lab.data.get import main

if __name__ == "__main__":
    sys.exit(main())

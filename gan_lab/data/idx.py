"""Reader for the IDX format of MNIST-style datasets (LeCun et al., http://yann.lecun.com/exdb/mnist/).

Layout: a 4-byte magic number ``0x00 0x00 <type> <ndim>`` (type 0x08 = unsigned byte), then
``ndim`` big-endian uint32 dimension sizes, then the data in C order. Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from gan_lab.errors import DatasetFormatError

_UBYTE = 0x08


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an unsigned-byte IDX file (plain or ``.gz``) into a uint8 tensor of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetFormatError(f"cannot read {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetFormatError(f"{path} is not an IDX file (bad magic number)")
    if data[2] != _UBYTE:
        raise DatasetFormatError(f"{path}: IDX data type 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetFormatError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) if shape else 0
    if len(data) - header != expected:
        raise DatasetFormatError(
            f"{path}: IDX header announces shape {shape} ({expected} bytes) "
            f"but the file holds {len(data) - header} bytes"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(array.copy())


def write_idx(path: str | Path, array: np.ndarray | torch.Tensor) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when the name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array).tobytes())
    return path

"""Class labels as network inputs: the checks every class-conditional network of the lab shares.

A condition ``c`` is int64 class labels of shape (N,), or None for an unconditional network.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor


def check_num_classes(num_classes: object) -> int:
    """``num_classes`` as an int, or a ValueError: an integer >= 0 (0 = unconditional)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 0:
        raise ValueError(f"num_classes={num_classes!r} must be an integer >= 0 (0 = unconditional)")
    return int(num_classes)


def check_labels(c: object, num_classes: int, batch: int | None, who: str) -> Tensor | None:
    """Validate the condition of a network with ``num_classes`` classes; return int64 labels or None.

    An unconditional network (``num_classes == 0``) ignores ``c`` (None or a tensor). A conditional
    one needs integer labels of shape (N,) in ``[0, num_classes)``. The range is checked on the
    host only for CPU tensors: on an accelerator that would synchronise every step, and an
    out-of-range label trips the device-side assert of ``one_hot``'s scatter instead.
    """
    if c is not None and not isinstance(c, Tensor):
        raise TypeError(
            f"{who}: c={c!r} is not a tensor of class labels or None "
            "(truncation_psi and truncation_cutoff are keyword arguments)"
        )
    if num_classes == 0:
        return None
    if c is None:
        raise ValueError(f"{who} is conditional (num_classes={num_classes}): it needs labels c, got c=None")
    if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
        raise ValueError(f"{who}: c must hold integer class labels (int64), got dtype {c.dtype}")
    if c.ndim != 1 or (batch is not None and c.shape[0] != batch):
        expected = "(N,)" if batch is None else f"({batch},)"
        raise ValueError(f"{who}: labels c of shape {tuple(c.shape)}, expected {expected}")
    if c.device.type == "cpu" and c.numel() and not torch.compiler.is_compiling():
        low, high = int(c.min()), int(c.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"{who}: label {bad} is out of range: num_classes={num_classes}, labels 0..{num_classes - 1}"
            )
    return c.long()

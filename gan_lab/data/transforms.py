"""Batch-wise image transforms, run on the training device after the batch is transferred.

Datasets in memory are uint8 tensors ``(N, C, H, W)``; the per-sample path does no work at all.
Here a whole batch is converted to float, scaled to [-1, 1] (``x / 127.5 - 1``), brought to the
training resolution and channel count in a few tensor ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def match_channels(images: Tensor, channels: int) -> Tensor:
    """Gray -> RGB by repetition, RGB -> gray by ITU-R BT.601 luma; identity otherwise."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


def pad_to_square(images: Tensor, size: int, value: float = -1.0) -> Tensor:
    """Center ``images`` on a ``size`` x ``size`` canvas filled with ``value``."""
    h, w = images.shape[-2:]
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(images, (left, size - w - left, top, size - h - top), value=value)


def fit_small_images(images: Tensor, resolution: int, native: int, canvas: int) -> Tensor:
    """Place ``native``-sized images (e.g. 28x28 MNIST digits) on a ``canvas``-sized frame scaled to
    ``resolution``: the images are resized by ``resolution / canvas`` (bilinear, antialiased when
    shrinking) and padded with background.

    With ``native=28, canvas=32``, resolution 32 is the classic 2-pixel padding with no
    resampling, and resolution 64 resizes the digits to 56x56 and pads by 4: the framing is the
    same at every resolution.
    """
    inner = round(native * resolution / canvas)
    if inner != images.shape[-1]:
        images = F.interpolate(
            images, size=(inner, inner), mode="bilinear", align_corners=False, antialias=inner < native
        )
    return pad_to_square(images, resolution)

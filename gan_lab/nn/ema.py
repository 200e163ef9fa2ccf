"""Exponential moving average of generator weights (Karras et al. 2018, "Progressive Growing of
GANs", appendix; half-life parametrisation of StyleGAN2-ADA, Karras et al. 2020).

After each generator step the averaged weights move towards the trained ones:

    theta_ema <- beta * theta_ema + (1 - beta) * theta,    beta = 0.5 ** (B / (1000 * ema_kimg))

so that ``ema_kimg`` thousand images shown to D halve the weight of the past (``B`` is the number
of real images per iteration, over all devices). With a ramp-up ``r`` the half-life is capped at
``r * images_seen`` early in training, so the average forgets the random initialisation quickly:

    ema_nimg = min(1000 * ema_kimg, r * images_seen)

Buffers (batch-norm running statistics) are copied, not averaged, as StyleGAN2-ADA does.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch_images: int, ema_kimg: float, images_seen: int, rampup: float | None = None) -> float:
    """The decay ``beta`` for one update; 0 (plain copy) when ``ema_kimg`` is 0."""
    ema_nimg = ema_kimg * 1000.0
    if rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * rampup)
    if ema_nimg <= 0:
        return 0.0
    return 0.5 ** (batch_images / ema_nimg)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """Move ``ema``'s parameters towards ``model``'s by ``1 - beta`` and copy its buffers."""
    ema_params = list(ema.parameters())
    params = [p.detach() for p in model.parameters()]
    if len(ema_params) != len(params):
        raise ValueError("EMA and model have different parameter lists")
    if ema_params:
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)

"""Adversarial losses, written as functions of the discriminator's logits.

Every loss here takes raw logits ``D(x)`` (no sigmoid), which keeps the log-sigmoid terms in
their numerically stable ``softplus`` form and lets mixed precision use them safely.
Losses are averaged over the batch.

A loss object has two methods, ``discriminator(real_logits, fake_logits)`` and
``generator(fake_logits)``; the GAN module calls them and never needs to know which loss it has.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def nonsaturating_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Logistic discriminator loss (Goodfellow et al. 2014, eq. 1):

    L_D = E_x[-log sigmoid(D(x))] + E_z[-log(1 - sigmoid(D(G(z))))]
        = E_x[softplus(-D(x))] + E_z[softplus(D(G(z)))]
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def nonsaturating_g_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss (Goodfellow et al. 2014, section 3):

        L_G = E_z[-log sigmoid(D(G(z)))] = E_z[softplus(-D(G(z)))]

    It has the same fixed point as the minimax loss but strong gradients early in training, when
    D rejects the fakes confidently.
    """
    return F.softplus(-fake_logits).mean()


class AdversarialLoss:
    """Interface of a GAN loss: the D loss of real and fake logits, and the G loss of fake logits."""

    name: str = "adversarial"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def generator(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NonSaturatingLoss(AdversarialLoss):
    """The logistic GAN loss with the non-saturating generator objective (DCGAN's and StyleGAN2's)."""

    name = "nonsaturating"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return nonsaturating_d_loss(real_logits, fake_logits)

    def generator(self, fake_logits: Tensor) -> Tensor:
        return nonsaturating_g_loss(fake_logits)

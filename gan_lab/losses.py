"""Adversarial losses, written as functions of the discriminator's logits.

Every loss here takes raw logits ``D(x)`` (no sigmoid), which keeps the log-sigmoid terms in
their numerically stable ``softplus`` form and lets mixed precision use them safely.
Losses are averaged over the batch.

Regularizers (R1, path length) are functions of the inputs they differentiate against.

A loss object has two methods, ``discriminator(real_logits, fake_logits)`` and
``generator(fake_logits)``; the GAN module calls them and never needs to know which loss it has.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_lab.config import check_arguments
from gan_lab.config.schema import WGANGPConfig


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


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16):

    L_D = E_x[max(0, 1 - D(x))] + E_z[max(0, 1 + D(G(z)))]
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def wasserstein_g_loss(fake_logits: Tensor) -> Tensor:
    """Generator loss of the hinge and Wasserstein GANs: ``L_G = -E_z[D(G(z))]``."""
    return -fake_logits.mean()


def wasserstein_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Wasserstein critic loss (Arjovsky et al. 2017): ``L_D = E_z[D(G(z))] - E_x[D(x)]``."""
    return fake_logits.mean() - real_logits.mean()


def lsgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Least-squares discriminator loss (Mao et al. 2017, eq. 2 with a = 0, b = c = 1):

    L_D = 1/2 E_x[(D(x) - 1)^2] + 1/2 E_z[D(G(z))^2]
    """
    return 0.5 * (real_logits - 1.0).square().mean() + 0.5 * fake_logits.square().mean()


def lsgan_g_loss(fake_logits: Tensor) -> Tensor:
    """Least-squares generator loss (Mao et al. 2017): ``L_G = 1/2 E_z[(D(G(z)) - 1)^2]``."""
    return 0.5 * (fake_logits - 1.0).square().mean()


class AdversarialLoss:
    """Interface of a GAN loss: the D loss of real and fake logits, and the G loss of fake logits.

    ``gradient_penalty`` is the weight of a penalty the module computes on interpolates (0: none).
    """

    name: str = "adversarial"
    gradient_penalty: float = 0.0

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


class HingeLoss(AdversarialLoss):
    """Hinge loss (SNGAN, BigGAN): hinge for D, ``-E[D(G(z))]`` for G."""

    name = "hinge"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return hinge_d_loss(real_logits, fake_logits)

    def generator(self, fake_logits: Tensor) -> Tensor:
        return wasserstein_g_loss(fake_logits)


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN loss (Mao et al. 2017)."""

    name = "lsgan"

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return lsgan_d_loss(real_logits, fake_logits)

    def generator(self, fake_logits: Tensor) -> Tensor:
        return lsgan_g_loss(fake_logits)


class WGANGPLoss(AdversarialLoss):
    """WGAN-GP (Gulrajani et al. 2017, algorithm 1): Wasserstein critic loss plus
    ``lambda * E[(||grad D(x_hat)||_2 - 1)^2]`` on random interpolates ``x_hat`` of reals and
    fakes (``gradient_penalty_on_interpolates``). The paper's defaults: lambda 10 and 5 critic
    steps per generator step, which is loop configuration (``model.d_steps``, which
    ``conf/loss/wgan_gp.yaml`` sets to 5). The critic must not use batch norm (the penalty is per
    sample): DCGAN's discriminator config drops it with this loss.
    """

    name = "wgan_gp"

    def __init__(self, gp_lambda: float = 10.0) -> None:
        check_arguments(WGANGPConfig, "loss.", gp_lambda=gp_lambda)
        self.gradient_penalty = float(gp_lambda)

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return wasserstein_d_loss(real_logits, fake_logits)

    def generator(self, fake_logits: Tensor) -> Tensor:
        return wasserstein_g_loss(fake_logits)

    def __repr__(self) -> str:
        return f"WGANGPLoss(gp_lambda={self.gradient_penalty})"


# ---------------------------------------------------------------------------- regularizers
def input_gradients(outputs: Tensor, inputs: Tensor, grad_scale: float = 1.0) -> Tensor:
    """``d(sum outputs)/d inputs`` with a graph (for penalties that are themselves trained on).

    Under float16 loss scaling the outputs are multiplied by ``grad_scale`` before
    differentiation and the gradients divided by it, as PyTorch's AMP recipe for gradient
    penalties prescribes (small gradients would otherwise flush to zero).
    """
    (grads,) = torch.autograd.grad(outputs.sum() * grad_scale, inputs, create_graph=True)
    return grads / grad_scale if grad_scale != 1.0 else grads


def r1_penalty(real_logits: Tensor, real_images: Tensor, grad_scale: float = 1.0) -> Tensor:
    """R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", eq. 9):
    per-sample squared gradient norm of D on real images, ``||grad_x D(x)||^2``.

    The regularization term is ``gamma / 2 * E[||grad_x D(x)||^2]`` (StyleGAN2's convention;
    some codebases use ``gamma * E[...]``, a factor of 2 apart). ``real_images`` must require
    grad and ``real_logits`` be computed from them. R2 is the same on fakes.
    """
    grads = input_gradients(real_logits, real_images, grad_scale)
    return grads.float().square().sum(dim=[1, 2, 3])


def gradient_penalty(logits: Tensor, interpolates: Tensor, grad_scale: float = 1.0) -> Tensor:
    """WGAN-GP's per-sample penalty (Gulrajani et al. 2017, eq. 3): ``(||grad D(x_hat)||_2 - 1)^2``
    at ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]`` per sample (the caller draws them)."""
    grads = input_gradients(logits, interpolates, grad_scale)
    norms = grads.float().flatten(1).norm(dim=1)
    return (norms - 1.0).square()


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor, grad_scale: float = 1.0) -> Tensor:
    """Path lengths of StyleGAN2's path-length regularization (Karras et al. 2020, eq. 4):

        a = || J_w^T y ||_2,   y = noise / sqrt(H * W),   noise ~ N(0, I)

    with the norm taken over ``w_dim`` and averaged (in the square) over the ``num_ws`` copies of
    w, as StyleGAN2-ADA computes it: ``sqrt(mean_ws(sum_wdim(g^2)))`` with ``g = d(sum(G(w) * y))/dw``.
    ``noise`` is the un-normalised N(0, 1) draw of the images' shape. Returns one length per sample.
    """
    y = noise / math.sqrt(images.shape[2] * images.shape[3])
    grads = input_gradients(images * y, ws, grad_scale)
    return grads.float().square().sum(dim=2).mean(dim=1).sqrt()

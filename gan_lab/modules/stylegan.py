"""StyleGAN2 training (Karras et al. 2020; the training setup of StyleGAN2-ADA) on the GAN base.

Per iteration, in StyleGAN2-ADA's phase order:

* G main: non-saturating loss on fakes made with style mixing;
* G reg, every ``pl_interval`` (4) iterations: path-length regularization on
  ``B / pl_batch_shrink`` fakes, ``pl_interval * pl_weight * E[(a - a_mean)^2]``, ``a_mean`` an
  exponential average of the path lengths (decay ``pl_decay``);
* D main: logistic loss on reals and fakes;
* D reg, every ``d_reg_interval`` (16) iterations: ``16 * gamma / 2 * E||grad D(x)||^2`` (R1);

then the EMA update of ``G_ema``. Adam with betas (0, 0.99); learning rates and betas corrected
for the lazy intervals (see ``gan_lab/modules/gan.py``) as StyleGAN2-ADA does: always, for both
networks, by ``pl_interval / (pl_interval + 1)`` for G and ``d_reg_interval / (d_reg_interval + 1)``
for D, also when path length or R1 is off (its training_loop corrects whenever an interval is set,
and its train.py always sets G_reg_interval=4 and D_reg_interval=16; with a regularizer off its
reg phase steps no parameter, so the lab skips it, and only the correction remains). Its
``--cfg=cifar`` (path length off) thus trains G at lr 0.0025 * 4/5 = 0.002, beta2 0.99**0.8.

Style mixing (StyleGAN, section 3.1): with probability ``style_mixing_prob`` a batch takes its
ws from a second latent from a random layer ``cutoff`` in [1, num_ws) on.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from gan_lab.augment import Augment
from gan_lab.config import check_arguments
from gan_lab.config.schema import StyleGANConfig
from gan_lab.losses import AdversarialLoss, path_lengths
from gan_lab.modules.gan import GANModule, LossAndLogs, OptimizerFactory


class StyleGAN(GANModule):
    """StyleGAN2's training schedule on the GAN loop. The networks (``model.generator``,
    ``model.discriminator``: ``gan_lab.nn.stylegan``) and optimizers come from the config; see
    ``conf/model/stylegan.yaml`` for StyleGAN2-ADA's settings."""

    generator_first = True

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory | None = None,
        optimizer_d: OptimizerFactory | None = None,
        loss: AdversarialLoss | None = None,
        d_steps: int = 1,
        style_mixing_prob: float = 0.9,
        r1_gamma: float = 10.0,
        r2_gamma: float = 0.0,
        d_reg_interval: int = 16,
        augment: Augment | None = None,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_decay: float = 0.01,
        pl_batch_shrink: int = 2,
        ema_kimg: float = 10.0,
        ema_rampup: float | None = None,
        sample_psi: float = 1.0,
        num_samples: int = 64,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        check_arguments(
            StyleGANConfig,
            "model.",
            style_mixing_prob=style_mixing_prob,
            pl_interval=pl_interval,
            pl_batch_shrink=pl_batch_shrink,
        )
        adam = functools.partial(torch.optim.Adam, lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        super().__init__(
            generator,
            discriminator,
            optimizer_g if optimizer_g is not None else adam,
            optimizer_d if optimizer_d is not None else adam,
            loss,
            d_steps=d_steps,
            ema_kimg=ema_kimg,
            ema_rampup=ema_rampup,
            r1_gamma=r1_gamma,
            r2_gamma=r2_gamma,
            d_reg_interval=d_reg_interval,
            augment=augment,
            num_samples=num_samples,
            seed=seed,
            channels_last=channels_last,
            compile=compile,
        )
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight, self.pl_interval = float(pl_weight), int(pl_interval)
        self.pl_decay, self.pl_batch_shrink = float(pl_decay), int(pl_batch_shrink)
        self.sample_psi = float(sample_psi)
        self.register_buffer("pl_mean", torch.zeros([]))

    # ------------------------------------------------------------------ generation
    def mixed_ws(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """ws of the trained mapping with style mixing; one random cutoff per batch (StyleGAN2-ADA).

        Written with masks instead of indexing by a random tensor, so it never synchronises a GPU.
        """
        ws = self.G.mapping(z, c)
        if self.style_mixing_prob <= 0:
            return ws
        num_ws = ws.shape[1]
        cutoff = torch.randint(1, num_ws, (), generator=self.rng, device=z.device)
        mix = torch.rand((), generator=self.rng, device=z.device) < self.style_mixing_prob
        cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
        z2 = torch.randn(z.shape, generator=self.rng, device=z.device, dtype=z.dtype)
        ws2 = self.G.mapping(z2, c, update_w_avg=False)
        later = (torch.arange(num_ws, device=z.device) >= cutoff).view(1, -1, 1)
        return torch.where(later, ws2, ws)

    def generate(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.G.synthesis(self.mixed_ws(z, c), noise_mode="random", rng=self.rng)

    @torch.no_grad()
    def sample(
        self, z: Tensor | None = None, c: Tensor | None = None, truncation_psi: float | None = None
    ) -> Tensor:
        """EMA generator with constant noise (reproducible grids) and truncation ``sample_psi``."""
        z, c = self.sample_inputs(z, c)
        psi = self.sample_psi if truncation_psi is None else truncation_psi
        return self.in_chunks(lambda z_, c_: self.G_ema(z_, c_, truncation_psi=psi, noise_mode="const"), z, c)

    @torch.no_grad()
    def metric_samples(self, z: Tensor, c: Tensor | None, rng: torch.Generator) -> Tensor:
        """EMA generator, no truncation, fresh noise: the images FID and KID judge (StyleGAN2-ADA)."""
        c = c if self.conditional else None
        return self.G_ema(z, c, truncation_psi=1.0, noise_mode="random", rng=rng)

    # ------------------------------------------------------------------ regularization
    @property
    def g_reg_interval(self) -> int | None:
        return self.pl_interval if self.pl_weight > 0 else None

    @property
    def g_correction_interval(self) -> int:
        """StyleGAN2-ADA corrects G's Adam by ``4 / 5`` whether path length runs or not."""
        return self.pl_interval

    @property
    def d_correction_interval(self) -> int:
        """StyleGAN2-ADA corrects D's Adam by ``16 / 17`` whether R1 runs or not."""
        return self.reg_interval_d

    def generator_regularization(self, batch_size: int, c: Tensor | None = None) -> LossAndLogs:
        """Path-length regularization (StyleGAN2, section 3.2), lazy and on a shrunk batch."""
        n = max(batch_size // self.pl_batch_shrink, 1)
        ws = self.mixed_ws(self.draw_latents(n, self.rng), None if c is None else c[:n])
        images = self.G.synthesis(ws, noise_mode="random", rng=self.rng)
        noise = torch.randn(images.shape, generator=self.rng, device=images.device, dtype=torch.float32)
        lengths = path_lengths(images, ws, noise.to(images.dtype), self.grad_scale())
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        loss = penalty.mean() * self.pl_weight * self.pl_interval
        # images[:, 0, 0, 0] * 0 keeps the synthesis network's parameters in the graph (DDP)
        return loss + images[:, 0, 0, 0].sum() * 0, {
            "reg/pl_penalty": penalty.detach().mean(),
            "reg/pl_mean": self.pl_mean.detach().clone(),
        }

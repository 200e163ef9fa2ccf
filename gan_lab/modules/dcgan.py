"""DCGAN (Radford, Metz & Chintala 2015) on the lab's GAN base."""

from __future__ import annotations

from gan_lab.augment import Augment
from gan_lab.losses import AdversarialLoss, NonSaturatingLoss
from gan_lab.modules.gan import GANModule
from gan_lab.nn.dcgan import DCGANDiscriminator, DCGANGenerator


class DCGAN(GANModule):
    """DCGAN networks (``gan_lab/nn/dcgan.py``) trained by the shared adversarial loop.

    Defaults are the paper's: z of dimension 100, Adam with lr 2e-4 and betas (0.5, 0.999) for
    both networks, batch norm in G and D. ``d_norm="auto"`` keeps D's batch norm unless the loss
    has a gradient penalty (WGAN-GP), which needs the samples of a batch independent. The EMA
    generator (not in the paper) is what sample grids and evaluation use; ``ema_kimg=0`` makes it
    a plain copy of G.
    """

    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        z_dim: int = 100,
        g_width: int = 64,
        d_width: int = 64,
        max_width: int = 512,
        d_norm: str = "auto",
        loss: AdversarialLoss | None = None,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] | list[float] = (0.5, 0.999),
        ema_kimg: float = 10.0,
        ema_rampup: float | None = 0.05,
        r1_gamma: float = 0.0,
        r2_gamma: float = 0.0,
        d_reg_interval: int = 16,
        augment: Augment | None = None,
        num_samples: int = 64,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        loss = loss if loss is not None else NonSaturatingLoss()
        if d_norm == "auto":
            d_norm = "none" if loss.gradient_penalty > 0 else "batch"
        generator = DCGANGenerator(z_dim, resolution, channels, g_width, max_width)
        discriminator = DCGANDiscriminator(resolution, channels, d_width, max_width, d_norm)
        super().__init__(
            generator,
            discriminator,
            loss,
            lr_g=lr_g,
            lr_d=lr_d,
            betas=betas,
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
        self.save_hyperparameters(ignore=["loss", "augment"], logger=False)  # the run logs its Hydra config

"""The GAN base module: the adversarial loop every architecture in the lab shares.

One training iteration (the user's unit of progress; ``trainer.global_step`` counts iterations,
see ``iteration.py``) on a batch of ``B`` real images:

1. D phase: fakes ``G(z)`` from fresh latents (no graph through G), ``L_D`` from ``D(real)``
   and ``D(fake)``, one optimizer step of D; every ``r1_interval`` iterations a separate
   lazy R1 step (below);
2. G phase: fresh latents, ``L_G`` from ``D(G(z))``, one optimizer step of G; every
   ``g_reg_interval`` iterations a separate generator regularization step (a subclass hook,
   e.g. StyleGAN's path length);
3. EMA update of the sampling generator ``G_ema`` (``gan_lab/nn/ema.py``).

``generator_first`` runs the G phase before the D phase (StyleGAN2-ADA's order).

Lazy regularization (StyleGAN2, appendix B): a regularizer evaluated every ``k`` iterations is
weighted by ``k`` and takes its own optimizer step; Adam's learning rate and betas are then
corrected by ``c = k / (k + 1)`` (``lr * c``, ``beta ** c``) so that the ``k + 1`` steps of
``k`` iterations move the weights as ``k`` plain ones would.

Subclasses change the loop through small hooks: ``generate`` (how training fakes are made, e.g.
style mixing), ``discriminate`` (e.g. augmentation), ``discriminator_loss`` / ``generator_loss``,
``generator_regularization``.

Randomness: every draw of the loop comes from ``self.rng``, reseeded at each iteration from
``(seed, rank, iteration)``. The draws of iteration ``i`` are therefore the same whether the run
went straight through or was resumed from a checkpoint, and differ between data-parallel ranks.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from gan_lab.losses import AdversarialLoss, r1_penalty
from gan_lab.modules.iteration import one_global_step
from gan_lab.nn.ema import ema_beta, update_ema

LossAndLogs = tuple[Tensor, dict[str, Tensor]]


def iteration_seed(seed: int, rank: int, iteration: int) -> int:
    """A 63-bit seed that depends on all of (seed, rank, iteration), without overlaps between runs."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{iteration}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class GANModule(pl.LightningModule):
    """Manual-optimization GAN training around a generator ``G`` and a discriminator ``D``.

    Args:
        generator: maps latents ``(B, z_dim)`` to images in [-1, 1]; must expose ``z_dim``.
        discriminator: maps images to one logit per image, shape ``(B,)``.
        loss: the adversarial loss (``gan_lab.losses``).
        lr_g, lr_d: Adam learning rates of G and D.
        betas: Adam ``(beta1, beta2)``, shared by both optimizers.
        ema_kimg: half-life of the generator EMA in thousands of real images (0: no averaging).
        ema_rampup: ramp-up factor of the EMA half-life (None: none).
        r1_gamma: weight of R1 on reals, ``gamma / 2 * E||grad D(x)||^2`` (0: off).
        r1_interval: lazy interval of R1, in iterations.
        num_samples: size of the fixed latent batch used for sample grids.
        seed: seeds the fixed sample latents and the loop's random draws.
    """

    progress_bar_keys = ("loss/d", "loss/g")
    generator_first = False

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: AdversarialLoss,
        lr_g: float,
        lr_d: float,
        betas: tuple[float, float] | list[float] = (0.5, 0.999),
        ema_kimg: float = 10.0,
        ema_rampup: float | None = 0.05,
        r1_gamma: float = 0.0,
        r1_interval: int = 16,
        num_samples: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if r1_interval < 1:
            raise ValueError(f"r1_interval={r1_interval} must be >= 1")
        self.automatic_optimization = False
        self.G = generator
        self.D = discriminator
        self.G_ema = copy.deepcopy(generator).eval().requires_grad_(False)
        self.loss = loss
        self.lr_g, self.lr_d = float(lr_g), float(lr_d)
        self.betas = (float(betas[0]), float(betas[1]))
        self.ema_kimg = float(ema_kimg)
        self.ema_rampup = None if ema_rampup is None else float(ema_rampup)
        self.r1_gamma, self.r1_interval = float(r1_gamma), int(r1_interval)
        self.seed = int(seed)
        self.images_seen = 0  # real images shown to D, over all ranks (kimg = images_seen / 1000)
        self._rng: torch.Generator | None = None
        sample_rng = torch.Generator().manual_seed(self.seed)
        self.register_buffer("sample_z", self.draw_latents(num_samples, sample_rng, device="cpu"))

    # ------------------------------------------------------------------ progress
    @property
    def iteration(self) -> int:
        """Completed training iterations (equal to ``trainer.global_step``)."""
        return self.trainer.global_step if self._trainer is not None else 0

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0

    # ------------------------------------------------------------------ randomness
    @property
    def rng(self) -> torch.Generator:
        """The loop's random generator, on the module's device."""
        if self._rng is None or self._rng.device != self.device:
            self._rng = torch.Generator(device=self.device)
        return self._rng

    def reseed(self) -> torch.Generator:
        """Reseed ``rng`` for the current iteration and rank and return it."""
        rank = self.trainer.global_rank if self._trainer is not None else 0
        return self.rng.manual_seed(iteration_seed(self.seed, rank, self.iteration))

    def draw_latents(self, n: int, rng: torch.Generator, device: torch.device | str | None = None) -> Tensor:
        """``n`` latents ``z ~ N(0, I)`` of the generator's ``z_dim``."""
        device = self.device if device is None else device
        return torch.randn(n, self.G.z_dim, generator=rng, device=device)

    # ------------------------------------------------------------------ hooks for subclasses
    def generate(self, z: Tensor) -> Tensor:
        """Training-time fakes (the trained G, in training mode)."""
        return self.G(z)

    def discriminate(self, images: Tensor) -> Tensor:
        """Discriminator logits for real or fake images."""
        return self.D(images)

    def discriminator_loss(self, real: Tensor) -> LossAndLogs:
        """``L_D`` on a real batch and as many fresh fakes."""
        z = self.draw_latents(real.shape[0], self.rng)
        with torch.no_grad():
            fake = self.generate(z)
        real_logits = self.discriminate(real)
        fake_logits = self.discriminate(fake)
        loss = self.loss.discriminator(real_logits, fake_logits)
        return loss, {
            "loss/d": loss.detach(),
            "logits/real": real_logits.detach().mean(),
            "logits/fake": fake_logits.detach().mean(),
        }

    def generator_loss(self, batch_size: int) -> LossAndLogs:
        """``L_G`` on fresh fakes."""
        fake = self.generate(self.draw_latents(batch_size, self.rng))
        loss = self.loss.generator(self.discriminate(fake))
        return loss, {"loss/g": loss.detach()}

    def r1_loss(self, real: Tensor) -> LossAndLogs:
        """Lazy R1: ``r1_interval * gamma / 2 * E||grad_x D(x)||^2`` on reals."""
        real = real.detach().requires_grad_(True)
        logits = self.discriminate(real)
        penalty = r1_penalty(logits, real, self.grad_scale())
        loss = penalty.mean() * (self.r1_gamma / 2) * self.r1_interval
        # logits * 0 keeps every D parameter in the graph (data-parallel gradient sync)
        return loss + logits.sum() * 0, {"reg/r1": penalty.detach().mean()}

    def generator_regularization(self, batch_size: int) -> LossAndLogs:
        """A lazy G regularizer, weighted by its interval; runs when ``g_reg_interval`` is set."""
        raise NotImplementedError(f"{type(self).__name__} sets g_reg_interval but has no regularizer")

    @property
    def g_reg_interval(self) -> int | None:
        """Interval of ``generator_regularization`` in iterations, None when there is none."""
        return None

    @property
    def d_reg_interval(self) -> int | None:
        return self.r1_interval if self.r1_gamma > 0 else None

    def discriminator_phase(self, real: Tensor, opt_d: Any) -> dict[str, Tensor]:
        logs = self.optimize(opt_d, lambda: self.discriminator_loss(real))
        if self.d_reg_interval and self.iteration % self.d_reg_interval == 0:
            logs |= self.optimize(opt_d, lambda: self.r1_loss(real))
        return logs

    def generator_phase(self, batch_size: int, opt_g: Any) -> dict[str, Tensor]:
        logs = self.optimize(opt_g, lambda: self.generator_loss(batch_size))
        if self.g_reg_interval and self.iteration % self.g_reg_interval == 0:
            logs |= self.optimize(opt_g, lambda: self.generator_regularization(batch_size))
        return logs

    def train_iteration(self, real: Tensor) -> dict[str, Tensor]:
        """The D and G phases (in ``generator_first`` order) and the EMA update; returns logs."""
        opt_d, opt_g = self.optimizers()
        if self.generator_first:
            logs = self.generator_phase(real.shape[0], opt_g)
            logs |= self.discriminator_phase(real, opt_d)
        else:
            logs = self.discriminator_phase(real, opt_d)
            logs |= self.generator_phase(real.shape[0], opt_g)
        self.update_generator_ema(real.shape[0] * self.trainer.world_size)
        return logs

    def grad_scale(self) -> float:
        """The float16 loss scale in use (1 otherwise), for gradient penalties (see losses.py)."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None) if self._trainer is not None else None
        if scaler is None or not scaler.is_enabled():
            return 1.0
        return float(scaler.get_scale())

    # ------------------------------------------------------------------ the loop
    def optimize(self, optimizer: Any, compute: Callable[[], LossAndLogs]) -> dict[str, Tensor]:
        """Compute a loss with only ``optimizer``'s parameters requiring grad, and step it."""
        with self.toggled_optimizer(optimizer):
            loss, logs = compute()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        return logs

    def update_generator_ema(self, batch_images: int) -> None:
        beta = ema_beta(batch_images, self.ema_kimg, self.images_seen, self.ema_rampup)
        update_ema(self.G_ema, self.G, beta)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real = batch[0]
        self.reseed()
        with one_global_step(self.trainer):
            logs = self.train_iteration(real)
        self.images_seen += real.shape[0] * self.trainer.world_size
        shown = {k: v for k, v in logs.items() if k in self.progress_bar_keys}
        others = {k: v for k, v in logs.items() if k not in self.progress_bar_keys}
        self.log_dict(shown, on_step=True, on_epoch=False, prog_bar=True)
        self.log_dict(others, on_step=True, on_epoch=False)
        self.log("progress/kimg", self.kimg, on_step=True, on_epoch=False)
        # loggers' x-axis: the number of completed iterations (Lightning uses a logged "step")
        self.log("step", float(self.iteration), on_step=True, on_epoch=False)

    @staticmethod
    def lazy_adam(
        params: Any, lr: float, betas: tuple[float, float], interval: int | None
    ) -> torch.optim.Adam:
        """Adam with StyleGAN2's lazy-regularization correction ``c = k / (k + 1)``."""
        c = interval / (interval + 1) if interval else 1.0
        return torch.optim.Adam(params, lr=lr * c, betas=(betas[0] ** c, betas[1] ** c), eps=1e-8)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Adam for D and for G, in that order (the order ``train_iteration`` unpacks)."""
        opt_d = self.lazy_adam(self.D.parameters(), self.lr_d, self.betas, self.d_reg_interval)
        opt_g = self.lazy_adam(self.G.parameters(), self.lr_g, self.betas, self.g_reg_interval)
        return [opt_d, opt_g]

    # ------------------------------------------------------------------ sampling
    def train(self, mode: bool = True) -> GANModule:
        """Like ``nn.Module.train``, but the EMA generator always stays in eval mode."""
        super().train(mode)
        self.G_ema.eval()
        return self

    @torch.no_grad()
    def sample(self, z: Tensor | None = None) -> Tensor:
        """Images in [-1, 1] from the EMA generator; ``z`` defaults to the fixed sample latents."""
        z = self.sample_z if z is None else z.to(self.device)
        return self.G_ema(z)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["images_seen"] = self.images_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.images_seen = int(checkpoint.get("images_seen", 0))

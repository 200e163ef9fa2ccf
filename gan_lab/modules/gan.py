"""The GAN base module: the adversarial loop every architecture in the lab shares.

One training iteration (the user's unit of progress; ``trainer.global_step`` counts iterations,
see ``iteration.py``) on a batch of ``B`` real images:

1. D phase: ``d_steps`` D steps (1 unless configured, e.g. WGAN-GP's 5), each on its
   own slice of the iteration's real batch and fresh fakes ``G(z)`` (no graph through G):
   ``L_D`` from ``D(real)`` and ``D(fake)``, plus the loss's gradient penalty on interpolates
   when it has one; every ``d_reg_interval`` iterations a separate lazy step of R1 on reals
   and/or R2 on fakes (below);
2. G phase: fresh latents, ``L_G`` from ``D(G(z))``, one optimizer step of G; every
   ``g_reg_interval`` iterations a separate generator regularization step (a subclass hook,
   e.g. StyleGAN's path length);
3. EMA update of the sampling generator ``G_ema`` (``gan_lab/nn/ema.py``), and the augmentation's
   update (ADA's probability).

``generator_first`` runs the G phase before the D phase (StyleGAN2-ADA's order). D sees every
image, real or fake, through the optional augmentation (``gan_lab/augment.py``).

The networks and the optimizers come from the config (``model.generator``,
``model.discriminator``, ``model.optimizer_g``, ``model.optimizer_d``; the optimizers as partials
that take the parameters), so one module serves every architecture trained by this loop (DCGAN,
or any other network pair with the same call signature); StyleGAN2's phase schedule is a
subclass (``gan_lab/modules/stylegan.py``).

Conditioning: every hook that makes or judges images takes the condition ``c``, int64 class
labels of shape (B,), or None for an unconditional model (``num_classes == 0``). Fakes are made
for the labels of the real batch they are judged with (so WGAN-GP's interpolates and R2 stay
within a class, and fakes follow the data's label distribution); the augmentation transforms
the image and leaves the label alone.

R1 and R2 (Mescheder et al. 2018) follow StyleGAN2's convention: ``gamma / 2 * E||grad D||^2``
(some codebases use ``gamma * E||grad D||^2``, a factor of 2 apart).

Lazy regularization (StyleGAN2, appendix B): a regularizer evaluated every ``k`` iterations is
weighted by ``k`` and takes its own optimizer step; Adam's learning rate and betas are then
corrected by ``c = k / (k + 1)`` (``lr * c``, ``beta ** c``) so that the ``k + 1`` steps of
``k`` iterations move the weights as ``k`` plain ones would. Which interval corrects an optimizer
is ``d_correction_interval`` / ``g_correction_interval``, apart from the schedule
(``d_reg_interval`` / ``g_reg_interval``): this generic loop, which has no reference schedule to
follow, corrects only while a lazy regularizer takes its extra steps (DCGAN with R1 or R2 off
trains with the optimizer exactly as configured); StyleGAN follows StyleGAN2-ADA, which corrects
both networks whatever the regularizers (``gan_lab/modules/stylegan.py``).

Subclasses change the loop through small hooks: ``generate`` (how training fakes are made, e.g.
style mixing), ``discriminator_loss`` / ``generator_loss``, ``generator_regularization``, each
with the condition ``c``.

Randomness: every draw of the loop comes from ``self.rng``, reseeded at each iteration from
``(seed, rank, iteration)``. The draws of iteration ``i`` are therefore the same whether the run
went straight through or was resumed from a checkpoint, and differ between data-parallel ranks.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

from gan_lab.augment import Augment
from gan_lab.config import check_arguments
from gan_lab.config.schema import GANConfig
from gan_lab.losses import AdversarialLoss, NonSaturatingLoss, gradient_penalty, r1_penalty
from gan_lab.modules.iteration import one_global_step
from gan_lab.nn.ema import ema_beta, update_ema
from gan_lab.utils.classes import grid_classes

LossAndLogs = tuple[Tensor, dict[str, Tensor]]
OptimizerFactory = Callable[..., torch.optim.Optimizer]  # params -> optimizer (a Hydra partial)


def iteration_seed(seed: int, rank: int, iteration: int) -> int:
    """A 63-bit seed that depends on all of (seed, rank, iteration), without overlaps between runs."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{iteration}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class GANModule(pl.LightningModule):
    """Manual-optimization GAN training around a generator ``G`` and a discriminator ``D``.

    Args:
        generator: maps latents ``(B, z_dim)`` (and labels ``c`` when conditional) to images in
            [-1, 1]; must expose ``z_dim`` (and ``num_classes``, 0 when unconditional).
        discriminator: maps images (and labels) to one logit per image, shape ``(B,)``.
        optimizer_g, optimizer_d: callables that build an optimizer from parameters (Hydra
            ``_partial_`` nodes, e.g. ``functools.partial(torch.optim.Adam, lr=2e-4)``); their
            ``lr`` and ``betas`` are corrected for lazy regularization (below).
        loss: the adversarial loss (``gan_lab.losses``; default non-saturating).
        d_steps: D steps per iteration, each on its own real batch (WGAN-GP: 5).
        ema_kimg: half-life of the generator EMA in thousands of real images (0: no averaging).
        ema_rampup: ramp-up factor of the EMA half-life (None: none).
        r1_gamma: weight of R1 on reals, ``gamma / 2 * E||grad D(x)||^2`` (0: off).
        r2_gamma: weight of R2 on fakes, ``gamma / 2 * E||grad D(G(z))||^2`` (0: off).
        d_reg_interval: lazy interval of R1 and R2, in iterations.
        augment: differentiable augmentation of D's inputs (None: none).
        num_samples: size of the fixed latent batch used for sample grids (conditional: rounded
            down to one row per class, ``gan_lab.utils.classes.grid_classes``).
        seed: seeds the fixed sample latents and the loop's random draws.
        channels_last: keep G, D and the batches in channels-last memory layout.
        compile: compile G's and D's forward with ``torch.compile`` (in place: checkpoints keep
            their keys). Not with R1/R2, gradient penalties or path length, which need double
            backward, which compiled graphs do not support.
    """

    progress_bar_keys = ("loss/d", "loss/g")
    generator_first = False
    SAMPLE_CHUNK = 16  # sample grids are rendered this many images at a time (``in_chunks``)

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory | None = None,
        optimizer_d: OptimizerFactory | None = None,
        loss: AdversarialLoss | None = None,
        d_steps: int = 1,
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
        super().__init__()
        check_arguments(
            GANConfig, "model.", d_reg_interval=d_reg_interval, d_steps=d_steps, num_samples=num_samples
        )
        self.automatic_optimization = False
        self.G = generator
        self.D = discriminator
        self.num_classes = int(getattr(generator, "num_classes", 0) or 0)
        d_classes = int(getattr(discriminator, "num_classes", 0) or 0)
        if d_classes != self.num_classes:
            raise ValueError(
                f"the generator has {self.num_classes} classes and the discriminator {d_classes}: "
                "both are conditional on the same classes, or neither is"
            )
        self.G_ema = copy.deepcopy(generator).eval().requires_grad_(False)
        default_adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
        self.optimizer_g = optimizer_g if optimizer_g is not None else default_adam
        self.optimizer_d = optimizer_d if optimizer_d is not None else default_adam
        self.loss = loss if loss is not None else NonSaturatingLoss()
        self.d_steps = int(d_steps)
        self.ema_kimg = float(ema_kimg)
        self.ema_rampup = None if ema_rampup is None else float(ema_rampup)
        self.r1_gamma, self.r2_gamma = float(r1_gamma), float(r2_gamma)
        self.reg_interval_d = int(d_reg_interval)
        self.augment = augment
        self.seed = int(seed)
        self.channels_last, self.compile_networks = bool(channels_last), bool(compile)
        self.images_seen = 0  # real images shown to D, over all ranks (kimg = images_seen / 1000)
        self.diverged: str | None = None  # set by DivergenceGuard when the losses stop being finite
        self._latest_logs: dict[str, Tensor] = {}
        self._rng: torch.Generator | None = None
        sample_rng = torch.Generator().manual_seed(self.seed)
        if self.num_classes:  # one row per class (at most 10 rows)
            sample_c = grid_classes(num_samples, self.num_classes)
            self.sample_grid_cols: int | None = sample_c.shape[0] // int(sample_c.unique().numel())
        else:
            sample_c, self.sample_grid_cols = torch.zeros(0, dtype=torch.int64), None
        n = sample_c.shape[0] if self.num_classes else num_samples
        self.register_buffer("sample_z", self.draw_latents(n, sample_rng, device="cpu"))
        self.register_buffer("sample_c", sample_c)
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "optimizer_g", "optimizer_d", "loss", "augment"],
            logger=False,  # the run logs its Hydra config
        )

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

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

    def condition(self, labels: Tensor | None) -> Tensor | None:
        """The labels a conditional model trains with (None for an unconditional one)."""
        return labels if self.conditional else None

    # ------------------------------------------------------------------ hooks for subclasses
    def generate(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """Training-time fakes (the trained G, in training mode)."""
        return self.G(z, c)

    def discriminate(self, images: Tensor, c: Tensor | None = None) -> Tensor:
        """Discriminator logits, through the augmentation when there is one (the image is
        transformed, the label is not)."""
        if self.augment is not None:
            images = self.augment(images, self.rng)
        return self.D(images, c)

    def discriminator_loss(self, real: Tensor, c: Tensor | None = None) -> LossAndLogs:
        """``L_D`` on a real batch and as many fresh fakes of the same labels (plus the loss's
        gradient penalty)."""
        z = self.draw_latents(real.shape[0], self.rng)
        with torch.no_grad():
            fake = self.generate(z, c)
        real_logits = self.discriminate(real, c)
        fake_logits = self.discriminate(fake, c)
        loss = self.loss.discriminator(real_logits, fake_logits)
        if self.augment is not None:
            self.augment.observe(real_logits)
        logs = {
            "loss/d": loss.detach(),
            "logits/real": real_logits.detach().mean(),
            "logits/fake": fake_logits.detach().mean(),
            "logits/sign_real": real_logits.detach().sign().mean(),  # ADA's overfitting heuristic r_t
        }
        if self.loss.gradient_penalty > 0:
            penalty = self.interpolate_penalty(real, fake, c)
            loss = loss + self.loss.gradient_penalty * penalty.mean()
            logs["reg/gp"] = penalty.detach().mean()
        return loss, logs

    def interpolate_penalty(self, real: Tensor, fake: Tensor, c: Tensor | None = None) -> Tensor:
        """WGAN-GP's penalty at ``eps * real + (1 - eps) * fake``, ``eps ~ U[0, 1]`` per sample
        (real and fake of the same label when conditional)."""
        eps = torch.rand(real.shape[0], 1, 1, 1, generator=self.rng, device=real.device, dtype=real.dtype)
        mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        return gradient_penalty(self.discriminate(mixed, c), mixed, self.grad_scale())

    def generator_loss(self, batch_size: int, c: Tensor | None = None) -> LossAndLogs:
        """``L_G`` on fresh fakes (of the labels ``c`` when conditional)."""
        fake = self.generate(self.draw_latents(batch_size, self.rng), c)
        loss = self.loss.generator(self.discriminate(fake, c))
        return loss, {"loss/g": loss.detach()}

    def d_regularization(self, real: Tensor, c: Tensor | None = None) -> LossAndLogs:
        """Lazy R1 on reals and R2 on fakes: ``d_reg_interval * gamma / 2 * E||grad D||^2`` each.
        R1's real logits count towards ADA's ``E[sign(D(x))]`` too, as in StyleGAN2-ADA."""
        loss = real.new_zeros(())
        logs: dict[str, Tensor] = {}
        for name, gamma in (("r1", self.r1_gamma), ("r2", self.r2_gamma)):
            if gamma <= 0:
                continue
            if name == "r1":
                images = real.detach().requires_grad_(True)
            else:
                with torch.no_grad():
                    images = self.generate(self.draw_latents(real.shape[0], self.rng), c)
                images.requires_grad_(True)
            logits = self.discriminate(images, c)
            if name == "r1" and self.augment is not None:
                self.augment.observe(logits)
            penalty = r1_penalty(logits, images, self.grad_scale())
            # logits * 0 keeps every D parameter in the graph (data-parallel gradient sync)
            loss = loss + penalty.mean() * (gamma / 2) * self.reg_interval_d + logits.sum() * 0
            logs[f"reg/{name}"] = penalty.detach().mean()
        return loss, logs

    def generator_regularization(self, batch_size: int, c: Tensor | None = None) -> LossAndLogs:
        """A lazy G regularizer, weighted by its interval; runs when ``g_reg_interval`` is set."""
        raise NotImplementedError(f"{type(self).__name__} sets g_reg_interval but has no regularizer")

    @property
    def g_reg_interval(self) -> int | None:
        """Interval of ``generator_regularization`` in iterations, None when there is none."""
        return None

    @property
    def d_reg_interval(self) -> int | None:
        """Interval of the lazy D regularization, None when R1 and R2 are off."""
        return self.reg_interval_d if self.r1_gamma > 0 or self.r2_gamma > 0 else None

    @property
    def g_correction_interval(self) -> int | None:
        """The ``k`` of G's optimizer correction ``k / (k + 1)`` (None: uncorrected). Here: the
        regularizer's interval, so only while one runs; StyleGAN: always its path-length interval."""
        return self.g_reg_interval

    @property
    def d_correction_interval(self) -> int | None:
        """The ``k`` of D's optimizer correction (None: uncorrected). Here: ``d_reg_interval``, so
        only while R1 or R2 runs; StyleGAN: always ``model.d_reg_interval``."""
        return self.d_reg_interval

    def discriminator_phase(self, real: Tensor, c: Tensor | None, opt_d: Any) -> dict[str, Tensor]:
        logs: dict[str, Tensor] = {}
        n = real.shape[0] // self.d_steps
        for k in range(self.d_steps):
            part = slice(k * n, (k + 1) * n)
            batch, labels = real[part], None if c is None else c[part]
            logs = self.optimize(opt_d, lambda b=batch, y=labels: self.discriminator_loss(b, y))
        if self.d_reg_interval and self.iteration % self.d_reg_interval == 0:
            first, labels = real[:n], None if c is None else c[:n]
            logs |= self.optimize(opt_d, lambda: self.d_regularization(first, labels))
        return logs

    def generator_phase(self, batch_size: int, c: Tensor | None, opt_g: Any) -> dict[str, Tensor]:
        logs = self.optimize(opt_g, lambda: self.generator_loss(batch_size, c))
        if self.g_reg_interval and self.iteration % self.g_reg_interval == 0:
            logs |= self.optimize(opt_g, lambda: self.generator_regularization(batch_size, c))
        return logs

    def train_iteration(self, real: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """The D and G phases (in ``generator_first`` order) and the EMA update; returns logs.

        ``real`` holds ``d_steps`` D batches (``labels`` theirs); G steps on batches of the same
        size, with the labels of the first one."""
        opt_d, opt_g = self.optimizers()
        c = self.condition(labels)
        batch_size = real.shape[0] // self.d_steps
        g_c = None if c is None else c[:batch_size]
        if self.generator_first:
            logs = self.generator_phase(batch_size, g_c, opt_g)
            logs |= self.discriminator_phase(real, c, opt_d)
        else:
            logs = self.discriminator_phase(real, c, opt_d)
            logs |= self.generator_phase(batch_size, g_c, opt_g)
        world = self.trainer.world_size
        self.update_generator_ema(batch_size * world)
        if self.augment is not None:
            self.augment.update(self.iteration, real.shape[0] * world)
            if self.augment.probability is not None:
                logs["augment/p"] = torch.tensor(self.augment.probability, device=self.device)
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

    def configure_model(self) -> None:
        """Apply the memory-layout and compilation options (once, on the training device)."""
        if self.channels_last:
            for net in (self.G, self.D, self.G_ema):
                net.to(memory_format=torch.channels_last)
        if self.compile_networks and not getattr(self, "_compiled", False):
            if self.d_reg_interval or self.g_reg_interval or self.loss.gradient_penalty > 0:
                raise ValueError(
                    "model.compile=true cannot be used with R1/R2, gradient penalties or path length "
                    "(they need double backward, which torch.compile does not support)"
                )
            self.G.compile()
            self.D.compile()
            self._compiled = True

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        self.reseed()
        with one_global_step(self.trainer):
            logs = self.train_iteration(real, labels)
        self.images_seen += real.shape[0] * self.trainer.world_size
        self._latest_logs.update(logs)
        if self.should_log():
            self.log_iteration()

    @property
    def latest_logs(self) -> dict[str, Tensor]:
        """The latest value of everything the loop logs (lazy regularizers: their last evaluation)."""
        return self._latest_logs

    def should_log(self) -> bool:
        """At the loggers' interval (``trainer.log_every_n_steps`` iterations) and at the last iteration.

        ``self.log`` costs about a millisecond per value, which adds up on small networks; values
        computed between logging steps (lazy regularizers) are kept until the next one."""
        every, last = self.trainer.log_every_n_steps, self.trainer.max_steps
        return (every > 0 and self.iteration % every == 0) or (
            last is not None and 0 < last <= self.iteration
        )

    def log_iteration(self) -> None:
        logs = self._latest_logs
        shown = {k: v for k, v in logs.items() if k in self.progress_bar_keys}
        others = {k: v for k, v in logs.items() if k not in self.progress_bar_keys}
        self.log_dict(shown, on_step=True, on_epoch=False, prog_bar=True)
        self.log_dict(others, on_step=True, on_epoch=False)
        self.log("progress/kimg", self.kimg, on_step=True, on_epoch=False)
        # loggers' x-axis: the number of completed iterations (Lightning uses a logged "step")
        self.log("step", float(self.iteration), on_step=True, on_epoch=False)

    @staticmethod
    def lazy_optimizer(factory: OptimizerFactory, params: Any, interval: int | None) -> torch.optim.Optimizer:
        """``factory(params)`` with StyleGAN2's lazy-regularization correction ``c = k / (k + 1)``:
        ``lr * c`` and, for optimizers with them (Adam), ``betas ** c``."""
        c = interval / (interval + 1) if interval else 1.0
        keywords = dict(getattr(factory, "keywords", {}) or {})
        func = getattr(factory, "func", factory)
        corrected: dict[str, Any] = {}
        if "lr" in keywords:
            corrected["lr"] = float(keywords["lr"]) * c
        if "betas" in keywords:
            corrected["betas"] = tuple(float(b) ** c for b in keywords["betas"])
        return func(params, **{**keywords, **corrected}) if corrected or keywords else factory(params)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimizers of D and G, in that order (the order ``train_iteration`` unpacks), corrected
        for the lazy intervals ``d_correction_interval`` and ``g_correction_interval``."""
        opt_d = self.lazy_optimizer(self.optimizer_d, self.D.parameters(), self.d_correction_interval)
        opt_g = self.lazy_optimizer(self.optimizer_g, self.G.parameters(), self.g_correction_interval)
        return [opt_d, opt_g]

    # ------------------------------------------------------------------ sampling
    def train(self, mode: bool = True) -> GANModule:
        """Like ``nn.Module.train``, but the EMA generator always stays in eval mode."""
        super().train(mode)
        self.G_ema.eval()
        return self

    def sample_inputs(self, z: Tensor | None, c: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``(z, c)`` on the module's device; the fixed sample latents and labels by default."""
        if z is None:
            z, c = self.sample_z, (self.sample_c if c is None else c)
        c = c.to(self.device) if self.conditional and c is not None else None
        return z.to(self.device), c

    @torch.no_grad()
    def sample(self, z: Tensor | None = None, c: Tensor | None = None) -> Tensor:
        """Images in [-1, 1] from the EMA generator; ``z``/``c`` default to the fixed sample
        latents and labels (one row per class when conditional)."""
        z, c = self.sample_inputs(z, c)
        return self.in_chunks(self.G_ema, z, c)

    def in_chunks(
        self, render: Callable[[Tensor, Tensor | None], Tensor], z: Tensor, c: Tensor | None
    ) -> Tensor:
        """``render(z, c)`` over ``SAMPLE_CHUNK`` latents at a time, concatenated: a grid of 64
        samples at full width would otherwise need the activations of all 64 at once (at
        stylegan2-ada-pytorch's size, 512 channels at 32 px, that doubled the run's peak memory).
        The EMA generator is in eval mode, so each image depends on its own latent only."""
        n = self.SAMPLE_CHUNK
        chunks = [render(z[i : i + n], None if c is None else c[i : i + n]) for i in range(0, z.shape[0], n)]
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    @torch.no_grad()
    def metric_samples(self, z: Tensor, c: Tensor | None, rng: torch.Generator) -> Tensor:
        """Images from the EMA generator for FID/KID (random noise where the model has it)."""
        return self.G_ema(z, c if self.conditional else None)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["images_seen"] = self.images_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.images_seen = int(checkpoint.get("images_seen", 0))

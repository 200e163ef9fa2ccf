"""Differentiable augmentation of the discriminator's inputs.

The same pipeline transforms reals and fakes, before D, on the training device, with random
draws from the module's per-iteration generator (so a resumed run draws the same ones). Every
operation is differentiable with respect to the images, so G's gradients flow through it and R1
is taken through it.

* ``DiffAugment`` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): ``color`` (brightness, saturation, contrast), ``translation`` (integer shifts up to
  1/8 of the side, zero padding) and ``cutout`` (a zeroed square of half the side), all always on.
* ``AdaptiveAugment`` (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
  Data", ADA): x-flip, 90-degree rotations, integer translation, isotropic scaling, arbitrary
  rotation, brightness, contrast and saturation, each applied to each image with probability
  ``p``; ``p`` follows the overfitting heuristic ``r_t = E[sign(D(x_real))]``: every
  ``interval`` iterations ``p += sign(r_t - target) * (B * interval) / (kimg * 1000)``, clamped to
  [0, 1], so it can go from 0 to 1 in ``kimg`` thousand images (``B``: real images of an iteration,
  all data-parallel ranks together, whose statistics are summed). ``p`` and the running statistic
  are buffers: they are logged, saved in checkpoints and resume where they were.

Simplifications of ADA, stated: the geometric transforms are one bilinear resampling with
reflection padding (ADA upsamples 2x with wavelet filters first to reduce aliasing), and its
luma flip, hue rotation, anisotropic scaling, fractional translation and image-space filters are
left out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.config import check_arguments
from gan_lab.config.schema import DIFFAUG_POLICIES as DIFFAUG_POLICIES
from gan_lab.config.schema import AdaConfig, DiffAugmentConfig


class Augment(nn.Module):
    """Base: ``forward(images, rng)``; adaptive pipelines also ``observe`` logits and ``update``."""

    @property
    def probability(self) -> float | None:
        """The current augmentation probability, for logging (None: not adaptive)."""
        return None

    def observe(self, real_logits: Tensor) -> None:
        """Record D's logits on (augmented) reals."""

    def update(self, iteration: int, batch_images: int) -> None:
        """Called after each iteration with the number of real images it showed D."""


# ---------------------------------------------------------------------------- DiffAugment
def _uniform(shape: tuple[int, ...], x: Tensor, rng: torch.Generator | None) -> Tensor:
    return torch.rand(shape, generator=rng, device=x.device, dtype=torch.float32).to(x.dtype)


def diff_brightness(x: Tensor, rng: torch.Generator | None) -> Tensor:
    """Add a per-image offset uniform in [-0.5, 0.5)."""
    return x + (_uniform((x.shape[0], 1, 1, 1), x, rng) - 0.5)


def diff_saturation(x: Tensor, rng: torch.Generator | None) -> Tensor:
    """Scale the deviation from the per-pixel channel mean by a factor uniform in [0, 2)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform((x.shape[0], 1, 1, 1), x, rng) * 2) + mean


def diff_contrast(x: Tensor, rng: torch.Generator | None) -> Tensor:
    """Scale the deviation from the image mean by a factor uniform in [0.5, 1.5)."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_uniform((x.shape[0], 1, 1, 1), x, rng) + 0.5) + mean


def diff_translation(x: Tensor, rng: torch.Generator | None, ratio: float = 0.125) -> Tensor:
    """Shift each image by integers in [-s, s] (s = ratio * side) in x and y, filling with zeros."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), generator=rng, device=x.device)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), generator=rng, device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gy = (gy + ty + 1).clamp(0, h + 1)  # +1: index into the zero-padded image
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[gb, gy, gx].permute(0, 3, 1, 2).contiguous()


def diff_cutout(x: Tensor, rng: torch.Generator | None, ratio: float = 0.5) -> Tensor:
    """Zero a square of side ``ratio * side`` at a uniformly random centre of each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=rng, device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=rng, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= oy - ch // 2) & (ys < oy - ch // 2 + ch) & (xs >= ox - cw // 2) & (xs < ox - cw // 2 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


class DiffAugment(Augment):
    """DiffAugment with a policy from ``color``, ``translation``, ``cutout``."""

    def __init__(self, policy: str | list[str] = "color,translation,cutout") -> None:
        super().__init__()
        names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else list(policy)
        check_arguments(DiffAugmentConfig, "augment.", policy=names)
        self.policy = names

    def forward(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        for name in self.policy:
            if name == "color":
                x = diff_contrast(diff_saturation(diff_brightness(x, rng), rng), rng)
            elif name == "translation":
                x = diff_translation(x, rng)
            else:
                x = diff_cutout(x, rng)
        return x

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy)}"


# ---------------------------------------------------------------------------- ADA
class AdaptiveAugment(Augment):
    """ADA's pipeline (see module docstring). Strengths follow ADA's defaults: translation up to
    0.125 of the side, scale ``2^N(0, 0.2)``, rotation uniform in [-180, 180) degrees, brightness
    ``N(0, 0.2)``, contrast ``2^N(0, 0.5)``, saturation ``2^N(0, 1)``."""

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        p: float = 0.0,
        adaptive: bool = True,
        xflip: bool = True,
        rotate90: bool = True,
        translate: bool = True,
        scale: bool = True,
        rotate: bool = True,
        brightness: bool = True,
        contrast: bool = True,
        saturation: bool = True,
        translate_max: float = 0.125,
        scale_std: float = 0.2,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        saturation_std: float = 1.0,
    ) -> None:
        super().__init__()
        check_arguments(AdaConfig, "augment.", target=target, interval=interval, kimg=kimg, p=p)
        self.target, self.interval, self.kimg, self.adaptive = (
            float(target),
            int(interval),
            float(kimg),
            adaptive,
        )
        self.ops = {
            "xflip": xflip,
            "rotate90": rotate90,
            "translate": translate,
            "scale": scale,
            "rotate": rotate,
            "brightness": brightness,
            "contrast": contrast,
            "saturation": saturation,
        }
        self.translate_max, self.scale_std = translate_max, scale_std
        self.brightness_std, self.contrast_std, self.saturation_std = (
            brightness_std,
            contrast_std,
            saturation_std,
        )
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("sign_sum", torch.zeros([]))
        self.register_buffer("sign_count", torch.zeros([]))
        self._p = float(p)  # host copy of p: reading the buffer would synchronise a GPU each step

    @property
    def probability(self) -> float:
        return self._p

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._p = float(self.p)

    # -- the heuristic
    def observe(self, real_logits: Tensor) -> None:
        if self.adaptive:
            self.sign_sum += real_logits.detach().float().sign().sum()
            self.sign_count += real_logits.numel()

    def update(self, iteration: int, batch_images: int) -> None:
        """Every ``interval`` iterations, move p towards E[sign(D(real))] = target."""
        if not self.adaptive or (iteration + 1) % self.interval:
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # every rank's logits count: sum the statistics over data-parallel ranks
            torch.distributed.all_reduce(self.sign_sum)
            torch.distributed.all_reduce(self.sign_count)
        if self.sign_count == 0:
            return
        r_t = self.sign_sum / self.sign_count
        step = batch_images * self.interval / (self.kimg * 1000)
        self.p.copy_((self.p + torch.sign(r_t - self.target) * step).clamp(0.0, 1.0))
        self._p = float(self.p)
        self.sign_sum.zero_()
        self.sign_count.zero_()

    # -- the pipeline
    def _chosen(self, n: int, x: Tensor, rng: torch.Generator | None) -> Tensor:
        """Per-image 0/1: whether an operation applies to that image (probability p)."""
        return (_uniform((n,), x, rng) < self.p.to(x.dtype)).to(torch.float32)

    def _geometric(self, x: Tensor, rng: torch.Generator | None) -> Tensor:
        n, _, h, w = x.shape
        dev = x.device
        m = torch.eye(3, device=dev).repeat(n, 1, 1)  # maps output coordinates to input coordinates

        def then(t: Tensor) -> None:
            nonlocal m
            m = m @ t

        def affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
            t = torch.zeros(n, 3, 3, device=dev)
            t[:, 0, 0], t[:, 0, 1], t[:, 0, 2] = a, b, tx
            t[:, 1, 0], t[:, 1, 1], t[:, 1, 2] = c, d, ty
            t[:, 2, 2] = 1
            return t

        one, zero = torch.ones(n, device=dev), torch.zeros(n, device=dev)
        if self.ops["xflip"]:
            flip = torch.randint(0, 2, (n,), generator=rng, device=dev).float() * self._chosen(n, x, rng)
            then(affine(1 - 2 * flip, zero, zero, one, zero, zero))
        if self.ops["rotate90"]:
            k = torch.randint(0, 4, (n,), generator=rng, device=dev).float() * self._chosen(n, x, rng)
            angle = k * (math.pi / 2)
            then(
                affine(
                    angle.cos().round(),
                    -angle.sin().round(),
                    angle.sin().round(),
                    angle.cos().round(),
                    zero,
                    zero,
                )
            )
        if self.ops["translate"]:
            shift = (_uniform((n, 2), x, rng).float() * 2 - 1) * self.translate_max
            shift = shift * self._chosen(n, x, rng)[:, None]
            # integer pixels; normalized coordinates span 2 units per side
            tx = torch.round(shift[:, 0] * w) * 2 / w
            ty = torch.round(shift[:, 1] * h) * 2 / h
            then(affine(one, zero, zero, one, tx, ty))
        if self.ops["scale"]:
            s = torch.exp2(
                torch.randn(n, generator=rng, device=dev) * self.scale_std * self._chosen(n, x, rng)
            )
            then(affine(1 / s, zero, zero, 1 / s, zero, zero))
        if self.ops["rotate"]:
            theta = (_uniform((n,), x, rng).float() * 2 - 1) * math.pi * self._chosen(n, x, rng)
            then(affine(theta.cos(), -theta.sin(), theta.sin(), theta.cos(), zero, zero))
        grid = F.affine_grid(m[:, :2, :].to(torch.float32), list(x.shape), align_corners=False)
        return F.grid_sample(
            x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False
        ).to(x.dtype)

    def _color(self, x: Tensor, rng: torch.Generator | None) -> Tensor:
        n, c = x.shape[:2]
        dev = x.device
        out = x.float()
        if self.ops["brightness"]:
            b = torch.randn(n, generator=rng, device=dev) * self.brightness_std * self._chosen(n, x, rng)
            out = out + b.view(n, 1, 1, 1)
        if self.ops["contrast"]:
            k = torch.exp2(
                torch.randn(n, generator=rng, device=dev) * self.contrast_std * self._chosen(n, x, rng)
            )
            out = out * k.view(n, 1, 1, 1)
        if self.ops["saturation"] and c == 3:
            s = torch.exp2(
                torch.randn(n, generator=rng, device=dev) * self.saturation_std * self._chosen(n, x, rng)
            )
            luma = out.mean(dim=1, keepdim=True)  # projection on the gray axis (1, 1, 1) / sqrt(3)
            out = luma + (out - luma) * s.view(n, 1, 1, 1)
        return out.to(x.dtype)

    def forward(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        if self._p <= 0:
            return x
        return self._color(self._geometric(x, rng), rng)

    def extra_repr(self) -> str:
        on = [k for k, v in self.ops.items() if v]
        return f"p={self._p:.3f}, target={self.target}, ops={','.join(on)}"

"""Differentiable augmentation of the discriminator's inputs.

The same pipeline transforms reals and fakes, before D, on the training device, with random
draws from the module's per-iteration generator (so a resumed run draws the same ones). Every
operation is differentiable with respect to the images, so G's gradients flow through it and R1
is taken through it.

* ``DiffAugment`` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): ``color`` (brightness, saturation, contrast), ``translation`` (integer shifts up to
  1/8 of the side, zero padding) and ``cutout`` (a zeroed square of half the side), all always on.
* ``AdaptiveAugment`` (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
  Data", ADA, appendix B): the ``bgc`` pipeline of StyleGAN2-ADA by default (pixel blitting,
  general geometric and colour transforms) and, as options, its image-space filtering, additive
  noise and cutout groups (``bgcfnc``). Each transform applies to each image independently with
  probability ``p`` times its multiplier; ``p`` follows the overfitting heuristic
  ``r_t = E[sign(D(x_real))]`` (the real logits of D's main step and of its R1 step): every
  ``interval`` iterations ``p += sign(r_t - target) * (B * interval) / (kimg * 1000)``, clamped to
  [0, 1], so it can go from 0 to 1 in ``kimg`` thousand images (``B``: real images of an iteration,
  all data-parallel ranks together, whose statistics are summed). ``p`` and the running statistic
  are buffers: they are logged, saved in checkpoints and resume where they were.

How ADA's pipeline is executed here (see ``AdaptiveAugment``): the blitting and geometric
transforms of an image are one composed 2D affine map, applied once: reflection padding, 2x
upsampling with the sym6 wavelet low-pass filter, bilinear resampling, 2x downsampling with the
same filter and a crop, so that the transforms do not alias ("leak") into the augmented images;
the colour transforms are one 4x4 matrix in homogeneous RGB (luma axis ``(1, 1, 1) / sqrt 3``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
# Low-pass (decomposition) filter of the Symlet wavelet with 6 vanishing moments, as PyWavelets
# publishes it (``pywt.Wavelet("sym6").dec_lo``): the least asymmetric of Daubechies' orthonormal
# 12-tap factorisations (Daubechies 1992, "Ten Lectures on Wavelets", 6.4 and 8.1.1).
# tests/test_augment.py derives it again from that definition.
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)
# The one with 2 vanishing moments (= db2), in closed form.
SYM2 = tuple(v / (4 * math.sqrt(2)) for v in (1 - 3**0.5, 3 - 3**0.5, 3 + 3**0.5, 1 + 3**0.5))
# Expected share of an image's power in each of the four bands (lowest first), for a power
# spectrum falling as 1/f: the filter gains are normalised to keep it (ADA, appendix B).
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def _polymul(a: list[float], b: list[float]) -> list[float]:
    out = [0.0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def _dilate(a: list[float]) -> list[float]:
    """``a(z) -> a(z^2)``: a zero between consecutive taps."""
    out = [0.0] * (2 * len(a) - 1)
    out[::2] = a
    return out


def band_filters(lowpass: tuple[float, ...] = SYM2) -> Tensor:
    """Four zero-phase 1D filters splitting a signal into octave bands, lowest first, that sum to
    a unit impulse: with the power-complementary halves ``lo = H(z) H(1/z) / 2`` and
    ``hi = H(-z) H(-1/z) / 2`` of an orthonormal low-pass ``H`` (``lo + hi = 1``), band 3 is
    ``hi(z)``, band 2 ``hi(z^2) lo(z)``, band 1 ``hi(z^4) lo(z^2) lo(z)`` and band 0
    ``lo(z^4) lo(z^2) lo(z)``. Returns [4, taps], centred (taps odd)."""
    h = list(lowpass)
    g = [v * (-1) ** k for k, v in enumerate(h)]  # H(-z)
    lo = [v / 2 for v in _polymul(h, h[::-1])]
    hi = [v / 2 for v in _polymul(g, g[::-1])]
    bands, low = [], [1.0]  # low: lo(z^(2^(k-1))) ... lo(z), built outwards
    for _ in range(3):
        bands.append(_polymul(hi, low) if not bands else _polymul(_dilate(bands[-1]), lo))
        low = _polymul(_dilate(low), lo)
    # bands: hi, hi(z^2) lo, hi(z^4) lo(z^2) lo; low: lo(z^4) lo(z^2) lo
    rows = [low, *bands[::-1]]
    taps = max(len(r) for r in rows)
    return torch.tensor([[0.0] * ((taps - len(r)) // 2) + r + [0.0] * ((taps - len(r)) // 2) for r in rows])


# Up to this side the separable filters run as products with banded matrices (a few large
# matrix products: far faster than single-channel convolutions on a CPU, cheap on a GPU at these
# sizes); beyond it, as convolutions (whose work grows with the side, not its square).
MATMUL_MAX_SIDE = 256


def _up_matrix(n: int, f: Tensor) -> Tensor:
    """[n, 2n]: ``M[k, j] = 2 f[j - 2k + T/2 - 1]``, 2x upsampling of a row ``x`` as ``x @ M``."""
    taps = f.numel()
    k = torch.arange(n, device=f.device)[:, None]
    j = torch.arange(2 * n, device=f.device)[None, :]
    index = j - 2 * k + taps // 2 - 1
    inside = (index >= 0) & (index < taps)
    return torch.where(inside, 2 * f[index.clamp(0, taps - 1)], f.new_zeros(()))


def _down_matrix(n: int, f: Tensor, crop: int) -> Tensor:
    """[n, m]: ``D[i, k] = f[i - crop - 2k]``, filtering and 2x decimation of a row as ``v @ D``."""
    taps = f.numel()
    m = (n - crop - taps) // 2 + 1
    index = torch.arange(n, device=f.device)[:, None] - crop - 2 * torch.arange(m, device=f.device)[None, :]
    inside = (index >= 0) & (index < taps)
    return torch.where(inside, f[index.clamp(0, taps - 1)], f.new_zeros(()))


def _upsample2(x: Tensor, f: Tensor) -> Tensor:
    """2x upsampling of [N, C, H, W] by zero insertion and the FIR ``2 f`` per axis
    (``u[j] = sum_k x[k] 2 f[j - 2k + T/2 - 1]``; T = len(f), even): [N, C, 2H, 2W]."""
    n, c, h, w = x.shape
    if max(h, w) <= MATMUL_MAX_SIDE:
        return _up_matrix(h, f).T @ (x @ _up_matrix(w, f))
    taps = f.numel()
    y = x.reshape(n * c, 1, h, w)  # channels folded into the batch: one plain (ungrouped) conv
    y = F.conv_transpose2d(y, (2 * f).view(1, 1, 1, taps), stride=(1, 2), padding=(0, taps // 2 - 1))
    y = F.conv_transpose2d(y, (2 * f).view(1, 1, taps, 1), stride=(2, 1), padding=(taps // 2 - 1, 0))
    return y.reshape(n, c, 2 * h, 2 * w)


def _downsample2(x: Tensor, f: Tensor, crop: int) -> Tensor:
    """The adjoint filtering of ``_upsample2`` and 2x decimation, after cropping ``crop`` samples
    at the start of each axis: ``d[m] = sum_t x[crop + 2m + t] f[t]``."""
    n, c, h, w = x.shape
    if max(h, w) <= 2 * MATMUL_MAX_SIDE:
        return _down_matrix(h, f, crop).T @ (x @ _down_matrix(w, f, crop))
    taps = f.numel()
    y = x.reshape(n * c, 1, h, w)[:, :, crop:, crop:]
    y = F.conv2d(y, f.view(1, 1, 1, taps), stride=(1, 2))
    y = F.conv2d(y, f.view(1, 1, taps, 1), stride=(2, 1))
    return y.reshape(n, c, y.shape[-2], y.shape[-1])


def _eye(n: int, size: int, device: torch.device | str | None) -> Tensor:
    return torch.eye(size, device=device).expand(n, size, size)


def _affine2d(a: Tensor, b: Tensor, tx: Tensor, c: Tensor, d: Tensor, ty: Tensor) -> Tensor:
    """[N, 3, 3] homogeneous 2D maps ``[[a, b, tx], [c, d, ty], [0, 0, 1]]``."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, tx, c, d, ty, zero, zero, one], dim=-1).view(-1, 3, 3)


def scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    zero = torch.zeros_like(sx)
    return _affine2d(sx, zero, zero, zero, sy, zero)


def rotate2d(theta: Tensor) -> Tensor:
    zero = torch.zeros_like(theta)
    return _affine2d(theta.cos(), -theta.sin(), zero, theta.sin(), theta.cos(), zero)


def translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    return _affine2d(one, zero, tx, zero, one, ty)


def _luma_outer(device: torch.device | str | None) -> Tensor:
    """``v v^T`` of the luma (grey) axis ``v = (1, 1, 1, 0) / sqrt 3``, homogeneous RGB; filled
    on the device (a tensor copied from the host would make a GPU wait)."""
    m = torch.zeros(4, 4, device=device)
    m[:3, :3] = 1 / 3
    return m


def brightness_matrix(b: Tensor) -> Tensor:
    """[N, 4, 4]: add ``b`` to every channel."""
    m = _eye(b.shape[0], 4, b.device).clone()
    m[:, :3, 3] = b[:, None]
    return m


def contrast_matrix(c: Tensor) -> Tensor:
    """[N, 4, 4]: multiply every channel by ``c`` (about 0, the middle of the [-1, 1] range)."""
    one = torch.ones_like(c)
    return torch.diag_embed(torch.stack([c, c, c, one], dim=-1))


def luma_flip_matrix(i: Tensor) -> Tensor:
    """[N, 4, 4]: the reflection ``I - 2 v v^T`` through the plane orthogonal to the luma axis
    ``v`` where ``i`` is 1 (luma inverted, chroma kept), the identity where it is 0."""
    return _eye(i.shape[0], 4, i.device) - 2 * _luma_outer(i.device) * i.view(-1, 1, 1)


def hue_rotation_matrix(theta: Tensor) -> Tensor:
    """[N, 4, 4]: rotation by ``theta`` about the luma axis (Rodrigues' formula): luma kept, the
    chroma vector turned by ``theta`` (2 pi / 3 cycles R -> G -> B)."""
    k = 1 / math.sqrt(3)
    zero = torch.zeros_like(theta)
    cross = torch.stack(  # [v]_x, the cross-product matrix of v
        [zero, -k + zero, k + zero, k + zero, zero, -k + zero, -k + zero, k + zero, zero], dim=-1
    ).view(-1, 3, 3)
    vv = _luma_outer(theta.device)[:3, :3]
    cos, sin = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    m = _eye(theta.shape[0], 4, theta.device).clone()
    m[:, :3, :3] = vv + cos * (torch.eye(3, device=theta.device) - vv) + sin * cross
    return m


def saturation_matrix(s: Tensor) -> Tensor:
    """[N, 4, 4]: scale the chroma (the part orthogonal to the luma axis) by ``s``; 0 makes the
    image grey (every channel its luma, the mean of R, G, B)."""
    vv = _luma_outer(s.device)
    return vv + (torch.eye(4, device=s.device) - vv) * s.view(-1, 1, 1)


@dataclass
class AdaDraw:
    """The random transforms of one call, per image, as ``AdaptiveAugment.apply`` uses them.

    ``geometry``: [N, 3, 3] maps output pixel coordinates to input pixel coordinates
    (homogeneous; x to the right, y down, origin at the image centre, unit one pixel):
    ``out(q) = in(geometry @ q)``, the inverse of the composed blit and geometric transforms.
    ``color``: [N, 4, 4] maps ``(r, g, b, 1)`` to the output colour. ``filter_gains``: [N, 4]
    gains of the frequency bands, lowest first. ``noise_std``: [N] standard deviation of the
    additive noise. ``cutout``: [N, 3] centre x, centre y (fractions of the sides) and size
    (fraction of the side; 0: nothing cut). A group that is off is None.
    """

    geometry: Tensor | None = None
    color: Tensor | None = None
    filter_gains: Tensor | None = None
    noise_std: Tensor | None = None
    cutout: Tensor | None = None


# columns of the uniform and normal draws of one call (all are drawn whatever is on, so that
# turning one transform on or off leaves the draws of the others as they were)
_U = dict(
    xflip=0, rotate90=2, translate=4, scale=7, rotate_pre=8, aniso=10, rotate_post=11, xfrac=13,
    brightness=14, contrast=15, lumaflip=16, hue=18, saturation=20, imgfilter=21, noise=25, cutout=26,
)  # fmt: skip
_NUM_U, _NUM_Z = 29, 12
_Z = dict(scale=0, aniso=1, xfrac=2, brightness=4, contrast=5, saturation=6, imgfilter=7, noise=11)

_MULTIPLIERS = {
    "blit": ("xflip", "rotate90", "translate"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}


class AdaptiveAugment(Augment):
    """ADA's augmentation pipeline (Karras et al. 2020, appendix B) and its adaptive ``p``.

    Groups (the letters of StyleGAN2-ADA's ``--augpipe``; ``bgc`` is the default) and, within
    them, each transform's probability multiplier (0 turns it off; the transform applies to an
    image with probability ``p * multiplier``, each image and transform drawn independently):

    * ``blit``: ``xflip`` (mirror x), ``rotate90`` (a uniform number of quarter turns),
      ``translate`` (integer shift, uniform in ``+-translate_max`` of the side per axis; ADA's
      ``xint``). Lossless up to the resampling filter's slight asymmetry (see below).
    * ``geom``: ``scale`` (isotropic, ``2^N(0, scale_std)``), ``rotate`` (uniform angle in
      ``+-rotate_max`` of a half turn, before and after the anisotropic scaling, each with
      probability ``1 - sqrt(1 - p * rotate)`` so that one or both happen with ``p * rotate``),
      ``aniso`` (``2^N(0, aniso_std)`` along x and its inverse along y), ``xfrac`` (fractional
      shift, ``N(0, xfrac_std)`` of the side per axis).
    * ``color``: ``brightness`` (add ``N(0, brightness_std)``), ``contrast`` (multiply by
      ``2^N(0, contrast_std)``), ``lumaflip`` (invert luma, keep chroma, half of the chosen
      images), ``hue`` (rotate about the luma axis by a uniform angle in ``+-hue_max`` of a half
      turn), ``saturation`` (scale chroma by ``2^N(0, saturation_std)``).
    * ``imgfilter`` (off): amplify each of four octave bands (sym2 wavelet bank) by
      ``2^N(0, imgfilter_std)`` with probability ``p * imgfilter_bands[i]``, the gains normalised
      to keep the power of a 1/f spectrum.
    * ``noise`` (off): add Gaussian noise of standard deviation ``|N(0, noise_std)|``.
    * ``cutout`` (off): zero a square of ``cutout_size`` of the side at a uniform centre.

    Execution: the blit and geometric transforms of an image form one affine map, applied once
    with reflection padding (see ``_padding``: on a GPU a fixed ``side - 1`` on every side, so
    that nothing is read back from the device), 2x upsampling with the sym6 low-pass, bilinear
    resampling, 2x downsampling with the same filter and a crop. Images none of whose transforms
    were chosen come back unchanged up to float rounding (the filter is orthonormal), and so do
    integer shifts; flips and quarter turns go through the filter mirrored, which shifts and
    blurs them by a fraction of a pixel (sym6 is nearly, not exactly, symmetric), as in
    StyleGAN2-ADA. No draw or transform reads a value back from a GPU. Colour is one 4x4
    matrix per image. One-channel images: brightness, contrast and luma flip act on the channel
    as luma (the colour matrix applied to ``(x, x, x)`` and its output averaged, as ADA does);
    hue and saturation, which need chroma, are skipped. Computed in float32 (autocast off), the
    result in the input's dtype; p = 0 returns the input itself.

    ``draw`` returns a call's random transforms (``AdaDraw``) and ``apply`` executes them;
    ``last_draw`` holds the latest call's, for tests and inspection.
    """

    def __init__(
        self,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        p: float = 0.0,
        adaptive: bool = True,
        blit: bool = True,
        geom: bool = True,
        color: bool = True,
        imgfilter: bool = False,
        noise: bool = False,
        cutout: bool = False,
        xflip: float = 1.0,
        rotate90: float = 1.0,
        translate: float = 1.0,
        scale: float = 1.0,
        rotate: float = 1.0,
        aniso: float = 1.0,
        xfrac: float = 1.0,
        brightness: float = 1.0,
        contrast: float = 1.0,
        lumaflip: float = 1.0,
        hue: float = 1.0,
        saturation: float = 1.0,
        translate_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_max: float = 1.0,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1.0,
        saturation_std: float = 1.0,
        imgfilter_bands: tuple[float, ...] | list[float] = (1.0, 1.0, 1.0, 1.0),
        imgfilter_std: float = 1.0,
        noise_std: float = 0.1,
        cutout_size: float = 0.5,
    ) -> None:
        super().__init__()
        # a multiplier given as a flag (Python's True/False) means 1/0
        mult = {
            k: float(v) if isinstance(v, bool) else v
            for k, v in dict(
                xflip=xflip, rotate90=rotate90, translate=translate, scale=scale, rotate=rotate,
                aniso=aniso, xfrac=xfrac, brightness=brightness, contrast=contrast,
                lumaflip=lumaflip, hue=hue, saturation=saturation,
            ).items()
        }  # fmt: skip
        strengths = dict(
            translate_max=translate_max, scale_std=scale_std, rotate_max=rotate_max,
            aniso_std=aniso_std, xfrac_std=xfrac_std, brightness_std=brightness_std,
            contrast_std=contrast_std, hue_max=hue_max, saturation_std=saturation_std,
            imgfilter_std=imgfilter_std, noise_std=noise_std, cutout_size=cutout_size,
        )  # fmt: skip
        bands = list(imgfilter_bands)
        check_arguments(
            AdaConfig, "augment.", target=target, interval=interval, kimg=kimg, p=p,
            imgfilter_bands=bands, **mult, **strengths,
        )  # fmt: skip
        self.target, self.interval, self.kimg, self.adaptive = (
            float(target),
            int(interval),
            float(kimg),
            adaptive,
        )
        self.groups = {
            "blit": bool(blit),
            "geom": bool(geom),
            "color": bool(color),
            "imgfilter": bool(imgfilter),
            "noise": bool(noise),
            "cutout": bool(cutout),
        }
        # effective multipliers: 0 where the transform or its group is off
        self.multipliers = {
            name: float(mult[name]) if self.groups[group] else 0.0
            for group, names in _MULTIPLIERS.items()
            for name in names
        }
        self.imgfilter_bands = [float(b) if self.groups["imgfilter"] else 0.0 for b in bands]
        self.strengths = {k: float(v) for k, v in strengths.items()}
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("sign_sum", torch.zeros([]))
        self.register_buffer("sign_count", torch.zeros([]))
        # filters: buffers that follow the module's device, not saved (derived from constants)
        self.register_buffer("geom_filter", torch.tensor(SYM6) / sum(SYM6), persistent=False)
        self.register_buffer("filter_bank", band_filters(SYM2), persistent=False)
        self._p = float(p)  # host copy of p: reading the buffer would synchronise a GPU each step
        self.last_draw: AdaDraw | None = None

    @property
    def probability(self) -> float:
        return self._p

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._p = float(self.p)

    # -- the heuristic
    def observe(self, real_logits: Tensor) -> None:
        """Add D's logits on (augmented) reals to ``E[sign(D(x))]``: the main D step's and, as in
        StyleGAN2-ADA, the R1 step's."""
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
    @property
    def active(self) -> bool:
        """Whether any transform can apply (at p > 0)."""
        return (
            any(v > 0 for v in self.multipliers.values())
            or any(b > 0 for b in self.imgfilter_bands)
            or self.groups["noise"]
            or self.groups["cutout"]
        )

    def draw(
        self,
        n: int,
        channels: int,
        height: int,
        width: int,
        device: torch.device | str | None = None,
        rng: torch.Generator | None = None,
    ) -> AdaDraw:
        """The random transforms of ``n`` images at the current ``p`` (see ``AdaDraw``)."""
        p, m, s = self._p, self.multipliers, self.strengths
        u = torch.rand((n, _NUM_U), generator=rng, device=device)
        z = torch.randn((n, _NUM_Z), generator=rng, device=device)

        def chosen(name: str, multiplier: float, offset: int = 0) -> Tensor:
            """1 where the transform applies to the image (probability p * multiplier), else 0."""
            return (u[:, _U[name] + offset] < p * multiplier).float()

        def uniform(name: str, k: int = 1) -> Tensor:  # the value column(s) after the choice's
            return u[:, _U[name] + 1 : _U[name] + 1 + k].squeeze(1)

        out = AdaDraw()
        geometry = None
        if m["xflip"] > 0:
            i = torch.floor(uniform("xflip") * 2) * chosen("xflip", m["xflip"])
            geometry = scale2d(1 - 2 * i, torch.ones_like(i))
        if m["rotate90"] > 0:  # the inverse of k quarter turns, entries exactly 0 or +-1
            k = torch.floor(uniform("rotate90") * 4) * chosen("rotate90", m["rotate90"])
            quarter = -k * (math.pi / 2)
            g = _affine2d(
                quarter.cos().round(), -quarter.sin().round(), torch.zeros_like(k),
                quarter.sin().round(), quarter.cos().round(), torch.zeros_like(k),
            )  # fmt: skip
            geometry = g if geometry is None else geometry @ g
        if m["translate"] > 0:
            t = (uniform("translate", 2) * 2 - 1) * s["translate_max"]
            t = t * chosen("translate", m["translate"])[:, None]
            g = translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
            geometry = g if geometry is None else geometry @ g
        if m["scale"] > 0:
            k = torch.exp2(z[:, _Z["scale"]] * s["scale_std"] * chosen("scale", m["scale"]))
            g = scale2d(1 / k, 1 / k)
            geometry = g if geometry is None else geometry @ g
        # rotation before and after the anisotropic scaling: P(either) = p * rotate
        p_rot = 1 - math.sqrt(min(max(1 - p * m["rotate"], 0.0), 1.0))
        for name in ("rotate_pre", "aniso", "rotate_post"):
            if name == "aniso" and m["aniso"] > 0:
                k = torch.exp2(z[:, _Z["aniso"]] * s["aniso_std"] * chosen("aniso", m["aniso"]))
                g = scale2d(1 / k, k)
            elif name != "aniso" and m["rotate"] > 0:
                on = (u[:, _U[name]] < p_rot).float()
                theta = (uniform(name) * 2 - 1) * (math.pi * s["rotate_max"]) * on
                g = rotate2d(-theta)
            else:
                continue
            geometry = g if geometry is None else geometry @ g
        if m["xfrac"] > 0:
            t = z[:, _Z["xfrac"] : _Z["xfrac"] + 2] * s["xfrac_std"] * chosen("xfrac", m["xfrac"])[:, None]
            g = translate2d(-t[:, 0] * width, -t[:, 1] * height)
            geometry = g if geometry is None else geometry @ g
        out.geometry = geometry

        color = None

        def then(c: Tensor) -> None:
            nonlocal color
            color = c if color is None else c @ color

        if m["brightness"] > 0:
            then(
                brightness_matrix(
                    z[:, _Z["brightness"]] * s["brightness_std"] * chosen("brightness", m["brightness"])
                )
            )
        if m["contrast"] > 0:
            c = z[:, _Z["contrast"]] * s["contrast_std"] * chosen("contrast", m["contrast"])
            then(contrast_matrix(torch.exp2(c)))
        if m["lumaflip"] > 0:
            then(luma_flip_matrix(torch.floor(uniform("lumaflip") * 2) * chosen("lumaflip", m["lumaflip"])))
        if channels > 1 and m["hue"] > 0:
            theta = (uniform("hue") * 2 - 1) * (math.pi * s["hue_max"]) * chosen("hue", m["hue"])
            then(hue_rotation_matrix(theta))
        if channels > 1 and m["saturation"] > 0:
            c = z[:, _Z["saturation"]] * s["saturation_std"] * chosen("saturation", m["saturation"])
            then(saturation_matrix(torch.exp2(c)))
        out.color = color

        if any(b > 0 for b in self.imgfilter_bands):
            power = torch.full((4,), BAND_POWER[1], device=device)  # filled on the device
            power[0] = BAND_POWER[0]
            gains = torch.ones((n, 4), device=device)
            eye = torch.eye(4, device=device, dtype=torch.bool)
            for i, band in enumerate(self.imgfilter_bands):
                if band <= 0:
                    continue
                t_i = torch.exp2(
                    z[:, _Z["imgfilter"] + i] * s["imgfilter_std"] * chosen("imgfilter", band, i)
                )
                t = torch.where(eye[i], t_i[:, None], torch.ones_like(gains))  # band i's gain, others 1
                gains = gains * t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
            out.filter_gains = gains
        if self.groups["noise"]:
            out.noise_std = z[:, _Z["noise"]].abs() * s["noise_std"] * chosen("noise", 1.0)
        if self.groups["cutout"]:
            size = s["cutout_size"] * chosen("cutout", 1.0)
            out.cutout = torch.cat([u[:, _U["cutout"] + 1 : _U["cutout"] + 3], size[:, None]], dim=1)
        return out

    def apply(self, x: Tensor, draw: AdaDraw, rng: torch.Generator | None = None) -> Tensor:
        """Execute ``draw`` on ``x`` [N, C, H, W] (C 1 or 3); ``rng`` draws the additive noise."""
        n, c, h, w = x.shape
        if c not in (1, 3):
            raise ValueError(f"ADA transforms 1- or 3-channel images, got {c} channels")
        autocast = torch.amp.is_autocast_available(x.device.type)
        with torch.autocast(x.device.type, enabled=False) if autocast else _nothing():
            y = x.to(torch.promote_types(x.dtype, torch.float32))
            if draw.geometry is not None:
                y = self._resample(y, draw.geometry)
            if draw.color is not None:
                y = _apply_color(y, draw.color.to(y.dtype))
            if draw.filter_gains is not None:
                y = self._filter(y, draw.filter_gains.to(y.dtype))
            if draw.noise_std is not None:
                noise = torch.randn(y.shape, generator=rng, device=y.device, dtype=y.dtype)
                y = y + noise * draw.noise_std.to(y.dtype).view(n, 1, 1, 1)
            if draw.cutout is not None:
                cx, cy, size = draw.cutout.to(y.dtype).unbind(1)
                xs = (torch.arange(w, device=y.device, dtype=y.dtype) + 0.5) / w
                ys = (torch.arange(h, device=y.device, dtype=y.dtype) + 0.5) / h
                keep_x = (xs[None, :] - cx[:, None]).abs() >= size[:, None] / 2
                keep_y = (ys[None, :] - cy[:, None]).abs() >= size[:, None] / 2
                y = y * (keep_x[:, None, :] | keep_y[:, :, None]).unsqueeze(1).to(y.dtype)
        return y.to(x.dtype)

    def _resample(self, x: Tensor, geometry: Tensor) -> Tensor:
        """The affine map ``geometry`` (output to input pixels, see ``AdaDraw``) without aliasing:
        reflect-pad, upsample 2x, resample bilinearly, downsample 2x, crop."""
        n, c, h, w = x.shape
        f = self.geom_filter.to(x.device, x.dtype)
        taps = f.numel()
        margin = taps // 4  # output pixels the downsampling filter reads beyond each side
        geometry = geometry.to(x.dtype)
        x0, x1, y0, y1 = _padding(geometry, h, w, 2 * margin)
        u = _upsample2(F.pad(x, [x0, x1, y0, y1], mode="reflect"), f)
        # sample j of the upsampled image sits at (padded) input pixel j / 2, sample k of the
        # resampled one at output pixel k / 2 - margin: between pixel-centred coordinates and
        # grid_sample's normalised ones that is a scale, a quarter-pixel shift on each side, and
        # the shift of the centre by uneven padding
        one = torch.ones(1, device=x.device, dtype=x.dtype)
        to_out = scale2d(one * (w + 2 * margin) / 2, one * (h + 2 * margin) / 2)
        to_in = scale2d(one * 2 / (w + x0 + x1), one * 2 / (h + y0 + y1))
        quarter = one / 4
        into_padded = translate2d(one * (x0 - x1) / 2 - quarter, one * (y0 - y1) / 2 - quarter)
        theta = to_in @ into_padded @ geometry @ translate2d(quarter, quarter) @ to_out
        size = [n, c, 2 * (h + 2 * margin), 2 * (w + 2 * margin)]
        grid = F.affine_grid(theta[:, :2, :], size, align_corners=False)
        v = F.grid_sample(u, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return _downsample2(v, f, crop=2 * margin - (taps // 2 - 1))

    def _filter(self, x: Tensor, gains: Tensor) -> Tensor:
        """Per image, the separable filter ``sum_i gains[i] band_i`` along x and along y, with
        reflection padding; as shared convolutions over the bands, the channels in the batch."""
        n, c, h, w = x.shape
        bank = self.filter_bank.to(x.device, x.dtype)
        bands, taps = bank.shape
        k = taps // 2
        g = gains.repeat_interleave(c, dim=0).view(n * c, bands, 1, 1)
        y = F.pad(x.reshape(n * c, 1, h, w), [k, k, k, k], mode="reflect")
        y = (F.conv2d(y, bank.view(bands, 1, 1, taps)) * g).sum(dim=1, keepdim=True)
        y = (F.conv2d(y, bank.view(bands, 1, taps, 1)) * g).sum(dim=1, keepdim=True)
        return y.view(n, c, h, w)

    def forward(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        if self._p <= 0 or not self.active:
            return x
        n, c, h, w = x.shape
        self.last_draw = self.draw(n, c, h, w, x.device, rng)
        return self.apply(x, self.last_draw, rng)

    def extra_repr(self) -> str:
        on = [k for k, v in self.multipliers.items() if v > 0]
        on += [g for g in ("imgfilter", "noise", "cutout") if self.groups[g]]
        return f"p={self._p:.3f}, target={self.target}, transforms={','.join(on)}"


# On a CPU, pad only as far as the batch's transforms reach (reading that back costs nothing
# there); False: pad the most everywhere, as on a GPU (tests compare the two).
EXACT_PADDING_ON_CPU = True


def _padding(geometry: Tensor, h: int, w: int, reach: int) -> tuple[int, int, int, int]:
    """Reflection padding (left, right, top, bottom) for resampling by ``geometry``. On a GPU the
    most reflection allows, ``side - 1`` on every side, so that nothing is read back from the
    device; on a CPU only as far as the batch's transformed corners reach plus ``reach`` pixels
    for the filters (StyleGAN2-ADA's margin, which it reads back on a GPU too; 40-70% of the
    padded area at p = 0.2-0.8 for batches of 8-32), at most ``side - 1``. The results agree up
    to rounding: the samples the margin leaves out are those no output pixel reads."""
    if geometry.device.type != "cpu" or not EXACT_PADDING_ON_CPU:
        return w - 1, w - 1, h - 1, h - 1
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1.0] * 4], dtype=geometry.dtype)
    points = (geometry @ corners)[:, :2, :]  # [N, xy, corner]
    centre = torch.tensor([cx, cy], dtype=geometry.dtype)
    before = ((-points).amax(dim=(0, 2)) + reach - centre).ceil().tolist()
    after = (points.amax(dim=(0, 2)) + reach - centre).ceil().tolist()

    def clamp(v: float, side: int) -> int:
        return int(min(max(v, 0), side - 1))

    return clamp(before[0], w), clamp(after[0], w), clamp(before[1], h), clamp(after[1], h)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def _apply_color(x: Tensor, color: Tensor) -> Tensor:
    """``color`` [N, 4, 4] on homogeneous RGB; a 1-channel image is ``(x, x, x)`` and keeps the
    mean of the three outputs (its luma)."""
    n, c, h, w = x.shape
    if c == 3:
        y = torch.baddbmm(color[:, :3, 3:], color[:, :3, :3], x.reshape(n, 3, h * w))
        return y.view(n, 3, h, w)
    row = color[:, :3, :].mean(dim=1)  # [N, 4]
    return x * row[:, :3].sum(dim=1).view(n, 1, 1, 1) + row[:, 3].view(n, 1, 1, 1)

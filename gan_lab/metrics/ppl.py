"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks", section 4.1).

The mean, over random latent paths, of the perceptual distance between two images an
``epsilon`` apart on the path, scaled by ``1 / epsilon^2``:

    PPL_W = E[ d(g(lerp(w0, w1; t)), g(lerp(w0, w1; t + eps))) ] / eps^2,   w_i = f(z_i)
    PPL_Z = E[ d(G(slerp(z0, z1; t)), G(slerp(z0, z1; t + eps))) ] / eps^2

``z0, z1 ~ N(0, I)``; ``t = 0`` (``sampling=end``: the path's end points, StyleGAN2's PPL) or
``t ~ U(0, 1)`` (``sampling=full``, StyleGAN's). W space (``f`` the mapping network, ``g`` the
synthesis network, ``lerp`` linear interpolation of all ``num_ws`` copies) exists only for a
generator with a mapping network (StyleGAN); Z space interpolates spherically (``slerp`` of the
directions) and, so that a generator that reads ``z`` unnormalised (DCGAN) stays on its input
distribution, the radius is interpolated linearly between ``|z0|`` and ``|z1|`` (StyleGAN's
mapping normalises ``z`` first, so it does not see the radius). The two images of a pair share
their noise inputs (drawn once per pair) and their class label (conditional models: labels
balanced to the real histogram, as for FID). Before the distance, ``crop=true`` keeps the
central face region (rows 3/8 to 7/8, columns 2/8 to 6/8, the FFHQ crop of the StyleGAN paper)
and images of a generator above 256 pixels are averaged down by ``resolution // 256``.

``d``: LPIPS (``gan_lab/metrics/perceptual.py``, VGG16 with its learned linear heads, the
distance of the paper) or, as the CPU-feasible fallback, the squared Euclidean distance of the
domain classifier's features (``distance=domain``; its values are on another scale: compare
them only with each other). The per-pair values outside the 1st and 99th percentiles (lower and
upper order statistics) are dropped before the mean, as in the paper's code, to discard the
rare paths that cross a discontinuity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.aggregation import CatMetric

from gan_lab.errors import ConfigError

Distance = Callable[[Tensor, Tensor], Tensor]  # two image batches in [-1, 1] -> (N,) distances
LPIPS_SIDE = 256  # images above it are averaged down before the distance


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of ``a`` and ``b`` (rows), ``t`` (N, 1): unit
    vectors ``cos(t theta) a' + sin(t theta) b'`` with ``a'`` = a / |a| and ``b'`` the unit
    component of ``b`` orthogonal to ``a'``, ``theta`` the angle between ``a`` and ``b``."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    angle = t * torch.acos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def has_w_space(generator: nn.Module) -> bool:
    """Whether the generator has a mapping network and a synthesis network (StyleGAN)."""
    return isinstance(getattr(generator, "mapping", None), nn.Module) and isinstance(
        getattr(generator, "synthesis", None), nn.Module
    )


def resolve_space(space: str, generator: nn.Module) -> str:
    """``auto``: w for a generator with a mapping network, z otherwise; ``w`` without one is refused."""
    if space == "auto":
        return "w" if has_w_space(generator) else "z"
    if space == "w" and not has_w_space(generator):
        raise ConfigError(
            f"metrics.ppl_space=w needs a generator with a mapping network (StyleGAN); "
            f"{type(generator).__name__} has no w space: use metrics.ppl_space=z"
        )
    return space


def center_crop(images: Tensor) -> Tensor:
    """The StyleGAN paper's face crop of square images: rows 3/8 to 7/8, columns 2/8 to 6/8."""
    h, w = images.shape[-2:]
    if h != w or h < 8:
        raise ValueError(f"the PPL crop takes square images of 8 pixels or more, got {h}x{w}")
    e = h // 8
    return images[:, :, 3 * e : 7 * e, 2 * e : 6 * e]


class PathPairs:
    """Pairs of images at ``t`` and ``t + epsilon`` on random latent paths of one generator.

    ``generator``: a StyleGAN generator (``mapping`` and ``synthesis``) or any ``G(z, c)``;
    ``space``: ``w`` or ``z`` (see ``resolve_space``); ``sampling``: ``end`` or ``full``."""

    def __init__(self, generator: nn.Module, space: str, sampling: str, epsilon: float) -> None:
        if sampling not in ("end", "full"):
            raise ValueError(f"sampling={sampling!r} is not end or full")
        self.G, self.space = generator, resolve_space(space, generator)
        self.sampling, self.epsilon = sampling, float(epsilon)
        self.z_dim = int(generator.z_dim)

    def positions(self, n: int, rng: torch.Generator, device: torch.device) -> Tensor:
        if self.sampling == "end":
            return torch.zeros(n, 1, device=device)
        return torch.rand(n, 1, generator=rng, device=device)

    def latents(self, z0: Tensor, z1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """The two z of each pair in Z space: slerp directions, linearly interpolated radius."""
        r0, r1 = z0.norm(dim=-1, keepdim=True), z1.norm(dim=-1, keepdim=True)
        ends = [slerp(z0, z1, s) * torch.lerp(r0, r1, s) for s in (t, t + self.epsilon)]
        return ends[0], ends[1]

    def __call__(self, n: int, c: Tensor | None, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        device = next(self.G.parameters()).device
        z0 = torch.randn(n, self.z_dim, generator=rng, device=device)
        z1 = torch.randn(n, self.z_dim, generator=rng, device=device)
        t = self.positions(n, rng, device)
        if not has_w_space(self.G):  # Z space only (resolve_space refused W)
            a, b = self.latents(z0, z1, t)
            return self.G(a, c), self.G(b, c)
        mapping, synthesis = self.G.mapping, self.G.synthesis
        cc = None if c is None else torch.cat([c, c])
        if self.space == "w":
            w0, w1 = mapping(torch.cat([z0, z1]), cc, update_w_avg=False).chunk(2)
            t3 = t.unsqueeze(-1)
            ws = (torch.lerp(w0, w1, t3), torch.lerp(w0, w1, t3 + self.epsilon))
        else:
            a, b = self.latents(z0, z1, t)
            ws = mapping(torch.cat([a, b]), cc, update_w_avg=False).chunk(2)
        fused = not self.G.training
        state = rng.get_state()  # the same noise for both images of a pair
        first = synthesis(ws[0], noise_mode="random", rng=rng, fused=fused)
        rng.set_state(state)
        return first, synthesis(ws[1], noise_mode="random", rng=rng, fused=fused)


def prepare_images(images: Tensor, crop: bool, resolution: int) -> Tensor:
    """The crop (optional) and the average-pooling of generators above 256 pixels."""
    images = images.float()
    if crop:
        images = center_crop(images)
    factor = resolution // LPIPS_SIDE
    if factor > 1:
        images = F.avg_pool2d(images, factor)
    return images


def filtered_mean(distances: Tensor, low: float = 0.01, high: float = 0.99) -> float:
    """The mean of the values between the ``low`` quantile (lower order statistic) and the
    ``high`` quantile (higher order statistic), both included."""
    d = distances.double().flatten()
    if d.numel() == 0:
        raise ValueError("no path lengths to average")
    lo = torch.quantile(d, low, interpolation="lower")
    hi = torch.quantile(d, high, interpolation="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())


def feature_distance(extractor: nn.Module) -> Distance:
    """``||f(a) - f(b)||^2`` of a feature extractor's (N, D) outputs: the domain PPL distance."""

    def distance(a: Tensor, b: Tensor) -> Tensor:
        return (extractor(a) - extractor(b)).square().sum(dim=1)

    return distance


class PerceptualPathLength:
    """PPL of a generator (see the module docstring): ``num_samples`` pairs over all ranks.

    ``distance``: ``(a, b) -> (N,)`` distances of images in [-1, 1]. ``score`` returns the
    filtered mean and the number of pairs; under data parallelism each rank draws its share and
    the per-pair values are gathered (torchmetrics' ``CatMetric``) before the percentiles."""

    def __init__(
        self,
        distance: Distance,
        num_samples: int = 10000,
        epsilon: float = 1e-4,
        space: str = "auto",
        sampling: str = "end",
        crop: bool = False,
    ) -> None:
        self.distance, self.num_samples, self.epsilon = distance, int(num_samples), float(epsilon)
        self.space, self.sampling, self.crop = space, sampling, bool(crop)
        self.values = CatMetric(nan_strategy="error")

    @torch.no_grad()
    def path_lengths(
        self,
        generator: nn.Module,
        n: int,
        batch_size: int,
        rng: torch.Generator,
        labels: Tensor | None = None,
    ) -> Tensor:
        """``n`` per-pair values ``d(x_t, x_{t+eps}) / eps^2`` of this process (labels: ``n`` or None)."""
        pairs = PathPairs(generator, self.space, self.sampling, self.epsilon)
        resolution = int(getattr(generator, "resolution", 0) or 0)
        out, done = [], 0
        while done < n:
            m = min(batch_size, n - done)
            c = None if labels is None else labels[done : done + m]
            a, b = pairs(m, c, rng)
            if resolution == 0:
                resolution = a.shape[-1]
            a, b = prepare_images(a, self.crop, resolution), prepare_images(b, self.crop, resolution)
            out.append(self.distance(a, b).float().reshape(m) / self.epsilon**2)
            done += m
        return torch.cat(out)

    def space_of(self, generator: nn.Module) -> str:
        return resolve_space(self.space, generator)

    @torch.no_grad()
    def score(
        self,
        generator: nn.Module,
        batch_size: int,
        rng: torch.Generator,
        labels: Tensor | None = None,
        world_size: int = 1,
    ) -> dict[str, Any]:
        """``{"ppl": filtered mean, "ppl_pairs": pairs}``; ``labels``: this rank's share of
        ``ceil(num_samples / world_size)`` labels, or None."""
        share = math.ceil(self.num_samples / world_size)
        values = self.path_lengths(generator, share, batch_size, rng, labels)
        self.values = self.values.to(values.device)
        self.values.reset()
        self.values.update(values)
        gathered = self.values.compute()
        if not torch.isfinite(gathered).all():
            raise ValueError("non-finite perceptual path lengths: the generator produced NaN or inf")
        return {"ppl": filtered_mean(gathered.cpu()), "ppl_pairs": int(gathered.numel())}

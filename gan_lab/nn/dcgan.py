"""DCGAN generator and discriminator (Radford, Metz & Chintala 2015, arXiv:1511.06434).

The paper's guidelines, as built here:

* no pooling: the generator upsamples with stride-2 transposed convolutions, the discriminator
  downsamples with stride-2 convolutions (kernel 4, padding 1, so each layer exactly doubles or
  halves the side);
* batch normalization in the generator (all layers but the output) and in the discriminator (all
  layers but the input and the output);
* ReLU in the generator with tanh at the output; LeakyReLU (slope 0.2) in the discriminator;
* weights drawn from N(0, 0.02) (batch-norm scales from N(1, 0.02)), biases zero.

Class-conditional variants (``num_classes > 0``):

* generator: conditional batch normalisation (de Vries et al. 2017, "Modulating early visual
  processing by language"; Miyato & Koyama 2018 pair it with the projection discriminator, as
  PyTorch-StudioGAN's cBN + PD does) with BigGAN's shared class embedding (Brock et al. 2019,
  section 3): a learned embedding ``e_y`` of ``embed_dim`` values (N(0, 1)) is projected by each
  batch norm to its scale and shift, ``(1 + W_g e_y) * BN(x) + W_b e_y`` (``W`` ~ N(0, 0.02), so
  the scales start near DCGAN's batch-norm scales of 1). Measured at the default run's budget
  (README, Conditional models): concatenating the embedding to ``z`` (Mirza & Osindero 2014)
  made samples of a class barely depend on ``z``, and per-class scale and shift parameters
  learned the classes too slowly;
* discriminator: a projection discriminator (Miyato & Koyama 2018, "cGANs with Projection
  Discriminator", eq. 3): ``D(x, y) = psi(phi(x)) + <v_y, sum_hw phi(x)>``, where ``phi(x)`` is
  the 4x4 feature map before the output convolution, ``psi`` the unconditional output layer
  and ``v_y`` a learned embedding of the class (one vector of the 4x4 width per class).

The 64x64 network of the paper generalises to any power-of-two resolution ``R >= 32``: the
generator projects ``z`` to a 4x4 map and doubles the side ``log2(R) - 2`` times. The width at
side ``s`` (for the hidden maps, ``4 <= s <= R/2``) is

    C(s) = min(width * (R/2) / s, max_width)

so ``width`` is the channel count next to the image and each halving of the side doubles it, as in
the paper's 1024-512-256-128 generator for 64x64 (``width=128``, ``max_width=1024``). The
discriminator mirrors the generator with its own ``width``.
"""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn

from gan_lab.nn.classes import check_labels, check_num_classes

MIN_RESOLUTION = 32


def check_resolution(resolution: int) -> int:
    """Return ``log2(resolution)`` or raise a ValueError naming the bad value."""
    if not isinstance(resolution, int) or resolution < MIN_RESOLUTION or resolution & (resolution - 1) != 0:
        raise ValueError(
            f"resolution={resolution!r} is not supported: DCGAN needs a power of two >= {MIN_RESOLUTION}"
        )
    return int(math.log2(resolution))


def hidden_widths(resolution: int, width: int, max_width: int) -> list[int]:
    """Channel counts of the hidden maps at sides 4, 8, ..., resolution/2 (see module docstring)."""
    log_res = check_resolution(resolution)
    if width < 1 or max_width < 1:
        raise ValueError(f"widths must be positive, got width={width}, max_width={max_width}")
    sides = [2**k for k in range(2, log_res)]
    return [min(width * (resolution // 2) // side, max_width) for side in sides]


class ConditionalBatchNorm2d(nn.Module):
    """``(1 + W_g e) * BN(x) + W_b e``: batch norm without affine parameters, then a scale and a
    shift projected from the class embedding ``e`` of each sample (de Vries et al. 2017; the
    shared-embedding form of BigGAN, Brock et al. 2019)."""

    def __init__(self, num_features: int, embed_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(embed_dim, num_features, bias=False)
        self.bias = nn.Linear(embed_dim, num_features, bias=False)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h = self.bn(x)
        gain, bias = self.gain(e).to(h.dtype), self.bias(e).to(h.dtype)
        return (1 + gain[:, :, None, None]) * h + bias[:, :, None, None]


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):  # a learned class code, like z ~ N(0, I)
            nn.init.normal_(m.weight, 0.0, 1.0)


class DCGANGenerator(nn.Module):
    """(z (B, z_dim), labels c (B,) or None) -> image (B, channels, R, R) in [-1, 1].

    Layers: ConvT(z_dim -> C(4), k4 s1 p0) maps the latent, seen as a 1x1 map, to 4x4; then for
    each side doubling ConvT(k4 s2 p1) + BN + ReLU; the last ConvT(k4 s2 p1) goes to the image
    channels, then tanh. Conditional (``num_classes > 0``): each BN is a class-conditional one.
    """

    def __init__(
        self,
        z_dim: int = 100,
        resolution: int = 64,
        channels: int = 3,
        width: int = 64,
        max_width: int = 512,
        num_classes: int = 0,
        embed_dim: int = 32,
    ) -> None:
        super().__init__()
        if z_dim < 1 or channels < 1:
            raise ValueError(f"z_dim and channels must be positive, got z_dim={z_dim}, channels={channels}")
        if embed_dim < 1:
            raise ValueError(f"embed_dim={embed_dim} must be >= 1")
        self.z_dim = z_dim
        self.resolution = resolution
        self.channels = channels
        self.num_classes = check_num_classes(num_classes)
        widths = hidden_widths(resolution, width, max_width)

        def norm(c: int) -> nn.Module:
            return ConditionalBatchNorm2d(c, embed_dim) if num_classes else nn.BatchNorm2d(c)

        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
            norm(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                norm(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None  # e_y, shared
        init_dcgan_weights(self)

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        c = check_labels(c, self.num_classes, z.shape[0], "DCGANGenerator")
        x = z.view(z.shape[0], self.z_dim, 1, 1)
        if c is None or self.embed is None:
            return self.net(x)
        e = self.embed(c)
        for layer in self.net:
            x = layer(x, e) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


class DCGANDiscriminator(nn.Module):
    """(image (B, channels, R, R), labels c (B,) or None) -> one real/fake logit per image, (B,).

    Layers: Conv(channels -> C(R/2), k4 s2 p1) + LeakyReLU(0.2) (no normalisation on the input
    layer); for each further halving Conv(k4 s2 p1) + norm + LeakyReLU(0.2) down to 4x4; then
    Conv(C(4) -> 1, k4 s1 p0) gives the logit. No sigmoid: the losses take logits, which is
    numerically stable and safe under mixed precision.

    ``norm="batch"`` is the paper's choice; ``norm="none"`` drops it, which gradient-penalty losses
    need (the penalty is defined per sample, and batch norm couples the samples of a batch).

    ``num_classes > 0`` adds the projection term (module docstring) to the logit.
    """

    NORMS = ("batch", "none")

    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        width: int = 64,
        max_width: int = 512,
        norm: str = "batch",
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if norm not in self.NORMS:
            raise ValueError(f"norm={norm!r} is not one of {self.NORMS}")
        num_classes = check_num_classes(num_classes)
        self.resolution = resolution
        self.channels = channels
        self.num_classes = int(num_classes)
        widths = hidden_widths(resolution, width, max_width)[::-1]  # sides R/2 ... 4

        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for c_in, c_out in itertools.pairwise(widths):
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*layers)  # phi(x): the 4x4 map
        self.out = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=True)  # psi
        self.embed = nn.Embedding(num_classes, widths[-1]) if num_classes else None  # v_y
        init_dcgan_weights(self)
        if self.embed is not None:  # v_y ~ N(0, 0.02) as psi's weights: both terms start on one scale
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        c = check_labels(c, self.num_classes, x.shape[0], "DCGANDiscriminator")
        h = self.features(x)
        logits = self.out(h).flatten()
        if self.embed is not None:  # projection: <v_y, sum_hw phi(x)>
            logits = logits + (self.embed(c).to(h.dtype) * h.sum(dim=(2, 3))).sum(dim=1)
        return logits


__all__ = [
    "ConditionalBatchNorm2d",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "check_resolution",
    "hidden_widths",
    "init_dcgan_weights",
]

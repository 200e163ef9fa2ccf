"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN"; configurations "E/F" with the conventions of StyleGAN2-ADA).

Generator ``G(z) = synthesis(mapping(z))``:

* mapping: ``z`` pixel-normalised, ``map_layers`` fully connected layers of width ``w_dim``
  (learning-rate multiplier 0.01, leaky ReLU with gain sqrt(2)), broadcast to ``num_ws`` copies
  of ``w``; a running mean ``w_avg`` (beta 0.995, training only) serves truncation:
  ``w' = w_avg + psi * (w - w_avg)`` on the first ``cutoff`` ws;
* synthesis ("skip" architecture): a learned 4x4 constant, then per resolution two modulated 3x3
  convolutions (the first upsamples by 2 with the [1,3,3,1] filter) and a toRGB whose images are
  upsampled and summed. ``num_ws = 2 * log2(R) - 2``: one w per convolution plus the last toRGB
  (each toRGB shares the w of the next block's first convolution).

Discriminator, StyleGAN2-ADA's three ``architecture`` choices (its ``DiscriminatorBlock``):

* ``resnet`` (the default, config E/F): fromRGB at full resolution, per resolution two 3x3
  convolutions (the second downsamples by 2) with a 1x1 downsampling skip, both scaled by
  sqrt(1/2);
* ``orig`` (no residual skips; StyleGAN2-ADA's ``--cfg=cifar``): fromRGB at full resolution, then
  the two 3x3 convolutions per resolution, unscaled;
* ``skip``: the image itself is downsampled with the [1,3,3,1] filter from block to block and
  every block (and the epilogue) adds a fromRGB of it to its input features;

at 4x4 the epilogue: minibatch standard deviation, 3x3 convolution, fully connected layer and
the output logit.

Class conditioning (``num_classes > 0``; StyleGAN2-ADA's ``--cond``, Karras et al. 2020,
"Training Generative Adversarial Networks with Limited Data", its ``networks.py``): labels ``c``
are int64 class indices of shape (N,), one-hot encoded inside the networks.

* G's mapping embeds the label, ``e = FC(one_hot(c))`` (``w_dim`` features, linear, learning rate
  1), and maps ``[norm(z), norm(e)]`` (``norm`` = ``normalize_2nd_moment``) to ``w``;
* D maps the label alone through its own mapping network (embedding and ``8`` FC layers,
  learning-rate multiplier 0.01) to ``cmap`` (``cmap_dim`` values, default the channels at 4x4);
  its epilogue's last layer outputs ``cmap_dim`` features ``phi(x)`` and the logit is the
  projection ``phi(x) . cmap / sqrt(cmap_dim)`` (Miyato & Koyama 2018, "cGANs with Projection
  Discriminator", eq. 3, with the label embedding given by the mapping network and without the
  separate unconditional term ``psi(phi(x))``).

An unconditional network (``num_classes=0``) ignores ``c``; a conditional one refuses
``c=None``. Unconditional networks are built exactly as before conditioning existed (same
state-dict keys).

Channels at resolution r: ``min(channel_base // r, channel_max)`` (StyleGAN2-ADA), so one
setting serves every resolution: ``channel_base=32768, channel_max=512`` is the paper's
configuration, ``16384`` StyleGAN2-ADA's for resolutions below 512.
"""

from __future__ import annotations

import itertools
import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.config import check_arguments
from gan_lab.config.schema import StyleGANDiscriminatorConfig
from gan_lab.nn.classes import check_labels, check_num_classes
from gan_lab.nn.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStd,
    ModulatedConv2d,
    ToRGB,
    downsample2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

MIN_RESOLUTION = 8
D_ARCHITECTURES = StyleGANDiscriminatorConfig.ARCHITECTURES  # "orig", "skip", "resnet"


def check_resolution(resolution: int) -> int:
    """Return ``log2(resolution)`` or raise a ValueError naming the bad value."""
    if not isinstance(resolution, int) or resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise ValueError(
            f"resolution={resolution!r} is not supported: StyleGAN needs a power of two >= {MIN_RESOLUTION}"
        )
    return int(math.log2(resolution))


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN2-ADA's width rule: ``min(channel_base // resolution, channel_max)``."""
    return max(min(channel_base // resolution, channel_max), 1)


def num_ws_for(resolution: int) -> int:
    return 2 * check_resolution(resolution) - 2


class MappingNetwork(nn.Module):
    """z (and the class label) -> w (see module docstring).

    ``w_avg`` is a buffer: it travels with checkpoints and the EMA.

    Conditional (``num_classes > 0``; Karras et al. 2020, "Training Generative Adversarial Networks
    with Limited Data", the conditioning of its code: ``MappingNetwork`` with ``c_dim > 0``): the
    label is embedded, ``e = FC(one_hot(c))`` with ``w_dim`` features (``embed``, linear, learning
    rate 1), and the first layer maps ``[norm(z), norm(e)]`` (``z_dim + w_dim`` inputs), ``norm``
    the second-moment normalisation ``x / sqrt(mean(x^2) + 1e-8)``. ``z_dim=0`` maps the label
    alone (the discriminator's mapping); ``num_ws=None`` returns ``w`` (N, w_dim) unbroadcast and
    tracks no average.

    Truncation of a conditional network, ``w' = a + psi * (w - a)`` with ``a = w_avg_class[c]``: it lerps
    towards the average of the sample's own class, ``w_avg_class[c]`` (a (num_classes, w_dim)
    buffer: in training, for each class present in the batch, its batch mean of ``w`` with the
    same beta as ``w_avg``; absent classes keep their value). The reference lerps towards the
    global ``w_avg`` (which is still tracked, as there), whose images drift towards the
    dataset-wide mean and out of their class as psi shrinks; the class average keeps truncated
    samples inside their class (psi = 0 gives each class's "mean" image). With psi = 1 nothing
    changes: the outputs equal the reference's.
    """

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        num_ws: int | None = 14,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        w_avg_beta: float | None = 0.995,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"map_layers={num_layers} must be >= 1")
        num_classes = check_num_classes(num_classes)
        if z_dim == 0 and num_classes == 0:
            raise ValueError("a mapping network needs z (z_dim > 0) or labels (num_classes > 0)")
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.num_classes = num_classes
        self.w_avg_beta = w_avg_beta
        if num_classes > 0:
            self.embed = EqualizedLinear(num_classes, w_dim)
        features = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *(
                EqualizedLinear(i, o, lr_mul=lr_mul, activation="lrelu")
                for i, o in itertools.pairwise(features)
            )
        )
        if num_ws is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))
            if num_classes > 0:
                self.register_buffer("w_avg_class", torch.zeros(num_classes, w_dim))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> Tensor:
        """ws of shape (N, num_ws, w_dim) (w of shape (N, w_dim) if ``num_ws`` is None)."""
        batch = z.shape[0] if z is not None and self.z_dim > 0 else None
        c = check_labels(c, self.num_classes, batch, type(self).__name__)
        parts = []
        if self.z_dim > 0:
            if z is None:
                raise ValueError(f"{type(self).__name__}: z_dim={self.z_dim} needs z, got None")
            parts.append(normalize_2nd_moment(z.float()))
        onehot = None
        if c is not None:
            onehot = F.one_hot(c, self.num_classes).float()
            parts.append(normalize_2nd_moment(self.embed(onehot)))
        w = self.layers(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
        if self.num_ws is None:
            return w
        if self.training and update_w_avg and self.w_avg_beta is not None:
            self._update_w_avg(w.detach().float(), onehot)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            center = self.w_avg if c is None else self.w_avg_class[c].unsqueeze(1)
            truncated = center.to(ws.dtype).lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws

    def _update_w_avg(self, w: Tensor, onehot: Tensor | None) -> None:
        """``avg <- mean + beta (avg - mean)``: the global average and, per class present in the batch,
        the class average (written without data-dependent indexing: no GPU synchronisation)."""
        beta = self.w_avg_beta
        self.w_avg.copy_(w.mean(dim=0).lerp(self.w_avg, beta))
        if onehot is None:
            return
        with torch.autocast(device_type=w.device.type, enabled=False):
            sums = onehot.t() @ w  # (num_classes, w_dim)
        counts = onehot.sum(dim=0).unsqueeze(1)
        means = sums / counts.clamp(min=1)
        self.w_avg_class.copy_(torch.where(counts > 0, means.lerp(self.w_avg_class, beta), self.w_avg_class))


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [const | upsampling conv] -> conv -> toRGB."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = ModulatedConv2d(
                in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp
            )
        self.conv1 = ModulatedConv2d(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        noise_mode: str = "random",
        rng: torch.Generator | None = None,
        fused: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """``ws``: (N, num_conv + 1, w_dim), the last one for toRGB."""
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)
            i = 0
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, rng, fused)
            i = 1
        x = self.conv1(x, ws[:, i], noise_mode, rng, fused)
        y = self.torgb(x, ws[:, i + 1], fused)
        img = y if img is None else upsample2d(img, self.resample_filter).to(y.dtype) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, R, R)."""

    def __init__(
        self,
        w_dim: int,
        resolution: int,
        img_channels: int,
        channel_base: int = 16384,
        channel_max: int = 512,
        conv_clamp: float | None = 256,
    ) -> None:
        super().__init__()
        log_res = check_resolution(resolution)
        self.w_dim, self.resolution, self.img_channels = w_dim, resolution, img_channels
        self.resolutions = [2**i for i in range(2, log_res + 1)]
        blocks = []
        for res in self.resolutions:
            c_in = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            c_out = channels_at(res, channel_base, channel_max)
            blocks.append(SynthesisBlock(c_in, c_out, w_dim, res, img_channels, conv_clamp))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1

    def forward(
        self, ws: Tensor, noise_mode: str = "random", rng: torch.Generator | None = None, fused: bool = False
    ) -> Tensor:
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws of shape {tuple(ws.shape)}, expected (N, {self.num_ws}, {self.w_dim})")
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], noise_mode, rng, fused)
            i += block.num_conv
        return img


class StyleGANGenerator(nn.Module):
    """z (N, z_dim) [and labels c (N,)] -> image (N, channels, R, R), roughly in [-1, 1] (no squashing).

    ``num_classes > 0`` makes it class-conditional (see ``MappingNetwork``): ``G(z, c)``.
    """

    def __init__(
        self,
        resolution: int = 256,
        channels: int = 3,
        z_dim: int = 512,
        w_dim: int = 512,
        map_layers: int = 8,
        channel_base: int = 16384,
        channel_max: int = 512,
        conv_clamp: float | None = 256,
        mapping_lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.resolution, self.channels = z_dim, w_dim, resolution, channels
        self.num_classes = check_num_classes(num_classes)
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, channel_base, channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, w_dim, self.num_ws, map_layers, mapping_lr_mul, w_avg_beta, self.num_classes
        )

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        rng: torch.Generator | None = None,
        fused: bool | None = None,
    ) -> Tensor:
        c = check_labels(c, self.num_classes, z.shape[0], type(self).__name__)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        fused = (not self.training and inference_fused(z.device)) if fused is None else fused
        return self.synthesis(ws, noise_mode, rng, fused)


def inference_fused(device: torch.device) -> bool:
    """Whether inference on ``device`` uses per-sample kernels (StyleGAN2-ADA's inference path;
    training scales the activations). On the CPU the fused grouped convolution measured 2.6x
    slower (512 channels, batch 16), so inference there scales the activations too (the same
    linear map, within 1e-5); on CUDA it stays fused, as the reference."""
    return device.type == "cuda"


def check_architecture(architecture: str) -> str:
    check_arguments(StyleGANDiscriminatorConfig, "model.discriminator.", architecture=architecture)
    return architecture


class DiscriminatorBlock(nn.Module):
    """One resolution of D: [fromRGB] -> conv 3x3 -> conv 3x3 down 2 (module docstring).

    ``resnet``: plus a 1x1 down-2 skip, the sum scaled by sqrt(1/2); ``orig``: no skip; ``skip``:
    a fromRGB of the image at this resolution added to ``x`` (every block), and the image passed on
    downsampled. fromRGB exists in the first block (``in_channels == 0``) and in every ``skip`` one.
    """

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        img_channels: int,
        conv_clamp: float | None = None,
        architecture: str = "resnet",
    ) -> None:
        super().__init__()
        self.in_channels, self.architecture = in_channels, check_architecture(architecture)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = EqualizedConv2d(
                img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp
            )
        self.conv0 = EqualizedConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(
            tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp
        )
        if architecture == "resnet":
            self.skip = EqualizedConv2d(tmp_channels, out_channels, 1, bias=False, down=2)
        if architecture == "skip":
            self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``(x, img)`` of the next resolution (``img`` None unless ``skip``)."""
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5)), img
        return self.conv1(self.conv0(x)), img


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch std -> conv 3x3 -> fully connected -> logit.

    Conditional (``cmap_dim > 0``): the last layer outputs ``cmap_dim`` features ``phi(x)`` and the
    logit is their projection on the mapped label, ``phi(x) . cmap / sqrt(cmap_dim)`` (StyleGAN2-ADA;
    the projection discriminator of Miyato & Koyama 2018, eq. 3, without its unconditional term;
    the ``1 / sqrt(cmap_dim)`` keeps the logit's scale independent of ``cmap_dim``).
    """

    def __init__(
        self,
        in_channels: int,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = None,
        cmap_dim: int = 0,
        architecture: str = "resnet",
        img_channels: int = 3,
    ) -> None:
        super().__init__()
        self.cmap_dim, self.architecture = cmap_dim, check_architecture(architecture)
        if architecture == "skip":  # the last fromRGB, of the 4x4 image (no clamp: StyleGAN2-ADA)
            self.fromrgb = EqualizedConv2d(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd = MinibatchStd(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualizedConv2d(
            in_channels + mbstd_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp
        )
        self.fc = EqualizedLinear(in_channels * 16, in_channels, activation="lrelu")
        self.out = EqualizedLinear(in_channels, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x: Tensor, cmap: Tensor | None = None, img: Tensor | None = None) -> Tensor:
        """Logits of shape (N, 1); ``img``: the 4x4 image (``skip`` only)."""
        if self.architecture == "skip":
            if img is None:
                raise ValueError("the skip epilogue needs the 4x4 image")
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            if cmap is None or cmap.shape != (x.shape[0], self.cmap_dim):
                got = None if cmap is None else tuple(cmap.shape)
                raise ValueError(f"cmap of shape {got}, expected ({x.shape[0]}, {self.cmap_dim})")
            x = (x * cmap.to(x.dtype)).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


D_MAPPING_LAYERS = 8  # StyleGAN2-ADA: D's label mapping keeps MappingNetwork's defaults (train.py sets none)
D_MAPPING_LR_MUL = 0.01


class StyleGANDiscriminator(nn.Module):
    """image (N, channels, R, R) [and labels c (N,)] -> one logit per image, shape (N,).

    ``num_classes > 0`` makes it class-conditional, ``D(img, c)``: a mapping network from the label
    alone (``MappingNetwork(z_dim=0, w_dim=cmap_dim, num_ws=None)``: embedding, 8 FC layers with
    learning-rate multiplier 0.01, no average tracking; StyleGAN2-ADA's ``Discriminator``) gives
    ``cmap`` (``cmap_dim`` values, None = the channels at 4x4), and the epilogue projects on it
    (see ``DiscriminatorEpilogue``). ``cmap_dim`` is ignored when unconditional.

    ``architecture``: ``resnet`` (default), ``orig`` or ``skip`` (module docstring; StyleGAN2-ADA's
    ``Discriminator(architecture=...)``, the same parameters under the same names).
    """

    def __init__(
        self,
        resolution: int = 256,
        channels: int = 3,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = 256,
        num_classes: int = 0,
        cmap_dim: int | None = None,
        architecture: str = "resnet",
    ) -> None:
        super().__init__()
        log_res = check_resolution(resolution)
        self.resolution, self.channels = resolution, channels
        self.architecture = check_architecture(architecture)
        self.num_classes = check_num_classes(num_classes)
        resolutions = [2**i for i in range(log_res, 2, -1)]  # R, R/2, ..., 8

        def ch(r: int) -> int:
            return channels_at(r, channel_base, channel_max)

        self.blocks = nn.ModuleList(
            DiscriminatorBlock(
                ch(r) if r < resolution else 0, ch(r), ch(r // 2), channels, conv_clamp, architecture
            )
            for r in resolutions
        )
        if cmap_dim is not None and (
            isinstance(cmap_dim, bool) or not isinstance(cmap_dim, numbers.Integral) or cmap_dim < 1
        ):
            raise ValueError(
                f"cmap_dim={cmap_dim!r} must be a positive integer or None (the channels at 4x4)"
            )
        self.cmap_dim = 0 if self.num_classes == 0 else int(cmap_dim or ch(4))
        if self.num_classes > 0:
            self.mapping = MappingNetwork(
                z_dim=0,
                w_dim=self.cmap_dim,
                num_ws=None,
                num_layers=D_MAPPING_LAYERS,
                lr_mul=D_MAPPING_LR_MUL,
                w_avg_beta=None,
                num_classes=self.num_classes,
            )
        self.epilogue = DiscriminatorEpilogue(
            ch(4), mbstd_group, mbstd_channels, conv_clamp, self.cmap_dim, architecture, channels
        )

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        c = check_labels(c, self.num_classes, img.shape[0], type(self).__name__)
        x = None
        for block in self.blocks:
            x, img = block(x, img)
        cmap = self.mapping(None, c) if c is not None else None
        return self.epilogue(x, cmap, img).flatten()

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

Discriminator ("resnet" architecture): fromRGB at full resolution, per resolution two 3x3
convolutions (the second downsamples by 2) with a 1x1 downsampling skip, both scaled by sqrt(1/2);
at 4x4 the epilogue: minibatch standard deviation, 3x3 convolution, fully connected layer and
the output logit.

Channels at resolution r: ``min(channel_base // r, channel_max)`` (StyleGAN2-ADA), so one
setting serves every resolution: ``channel_base=32768, channel_max=512`` is the paper's
configuration, ``16384`` StyleGAN2-ADA's for resolutions below 512.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from gan_lab.nn.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStd,
    ModulatedConv2d,
    ToRGB,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

MIN_RESOLUTION = 8


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
    """z -> w (see module docstring). ``w_avg`` is a buffer: it travels with checkpoints and the EMA."""

    def __init__(
        self,
        z_dim: int = 512,
        w_dim: int = 512,
        num_ws: int = 14,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        w_avg_beta: float = 0.995,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"map_layers={num_layers} must be >= 1")
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(
            *(
                EqualizedLinear(i, o, lr_mul=lr_mul, activation="lrelu")
                for i, o in itertools.pairwise(features)
            )
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = True,
    ) -> Tensor:
        """ws of shape (N, num_ws, w_dim)."""
        w = self.layers(normalize_2nd_moment(z.float()))
        if self.training and update_w_avg and self.w_avg_beta is not None:
            self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            truncated = self.w_avg.to(ws.dtype).lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([truncated, ws[:, cutoff:]], dim=1)
        return ws


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
    """z (N, z_dim) -> image (N, channels, R, R), roughly in [-1, 1] (no output squashing)."""

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
    ) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.resolution, self.channels = z_dim, w_dim, resolution, channels
        self.synthesis = SynthesisNetwork(w_dim, resolution, channels, channel_base, channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, map_layers, mapping_lr_mul, w_avg_beta)

    def forward(
        self,
        z: Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        rng: torch.Generator | None = None,
        fused: bool | None = None,
    ) -> Tensor:
        ws = self.mapping(z, truncation_psi, truncation_cutoff)
        # StyleGAN2-ADA: per-sample kernels (fused) for inference, activation scaling for training
        fused = (not self.training) if fused is None else fused
        return self.synthesis(ws, noise_mode, rng, fused)


class DiscriminatorBlock(nn.Module):
    """Residual block: conv 3x3 -> conv 3x3 down 2, plus a 1x1 down-2 skip; sum scaled by sqrt(1/2)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        img_channels: int,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        if in_channels == 0:
            self.fromrgb = EqualizedConv2d(
                img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp
            )
        self.conv0 = EqualizedConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(
            tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp
        )
        self.skip = EqualizedConv2d(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch std -> conv 3x3 -> fully connected -> logit."""

    def __init__(
        self, in_channels: int, mbstd_group: int = 4, mbstd_channels: int = 1, conv_clamp: float | None = None
    ) -> None:
        super().__init__()
        self.mbstd = MinibatchStd(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = EqualizedConv2d(
            in_channels + mbstd_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp
        )
        self.fc = EqualizedLinear(in_channels * 16, in_channels, activation="lrelu")
        self.out = EqualizedLinear(in_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        return self.out(self.fc(x.flatten(1)))


class StyleGANDiscriminator(nn.Module):
    """image (N, channels, R, R) -> one logit per image, shape (N,)."""

    def __init__(
        self,
        resolution: int = 256,
        channels: int = 3,
        channel_base: int = 16384,
        channel_max: int = 512,
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = 256,
    ) -> None:
        super().__init__()
        log_res = check_resolution(resolution)
        self.resolution, self.channels = resolution, channels
        resolutions = [2**i for i in range(log_res, 2, -1)]  # R, R/2, ..., 8

        def ch(r: int) -> int:
            return channels_at(r, channel_base, channel_max)

        self.blocks = nn.ModuleList(
            DiscriminatorBlock(ch(r) if r < resolution else 0, ch(r), ch(r // 2), channels, conv_clamp)
            for r in resolutions
        )
        self.epilogue = DiscriminatorEpilogue(ch(4), mbstd_group, mbstd_channels, conv_clamp)

    def forward(self, img: Tensor) -> Tensor:
        x = None
        for block in self.blocks:
            x = block(x, img)
        return self.epilogue(x).flatten()

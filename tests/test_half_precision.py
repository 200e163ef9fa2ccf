"""The modulated convolution in float16 (16-mixed): StyleGAN2-ADA's pre-normalisation keeps the
sum before demodulation in float16's range (Karras et al. 2020, StyleGAN2-ADA, mixed precision)."""

from __future__ import annotations

import pytest
import torch

from gan_lab.nn import layers
from gan_lab.nn.layers import modulated_conv2d

FLOAT16_MAX = torch.finfo(torch.float16).max


def large_layer_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 512-channel 3x3 layer with positive activations up to conv_clamp-like 200, aligned (all
    positive) weights and styles around 100: the sums over 512 x 3 x 3 taps add up."""
    g = torch.Generator().manual_seed(seed)
    x = 200 * torch.rand(2, 512, 8, 8, generator=g)
    weight = torch.randn(512, 512, 3, 3, generator=g).abs()
    styles = 100 + torch.randn(2, 512, generator=g)
    return x, weight, styles


@pytest.mark.parametrize("fused", [False, True])
def test_float16_modulated_conv_of_a_512_channel_layer_stays_finite(fused: bool) -> None:
    x, weight, styles = large_layer_inputs()
    expected = modulated_conv2d(x, weight, styles, demodulate=True, fused=fused)  # float32
    assert expected.abs().max() < FLOAT16_MAX / 4  # the result itself fits float16 comfortably
    y = modulated_conv2d(x.half(), weight, styles, demodulate=True, fused=fused)
    assert y.dtype == torch.float16
    assert torch.isfinite(y).all()
    assert torch.allclose(y.float(), expected, rtol=1e-2, atol=1e-2 * expected.abs().max().item())


def test_float16_sum_before_demodulation_matches_stylegan2_ada() -> None:
    """For unit styles the unfused path's convolution output (before demodulation) is as large
    as the reference's, where the kernel is pre-scaled to max |w| = 1 / sqrt(in * k * k)."""
    torch.manual_seed(0)
    x, weight, styles = torch.randn(2, 512, 8, 8), torch.randn(512, 512, 3, 3), torch.ones(2, 512)
    seen: list[float] = []
    conv = layers.conv2d_resample

    def recording(*args, **kwargs):
        out = conv(*args, **kwargs)
        seen.append(out.float().abs().max().item())
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(layers, "conv2d_resample", recording)
        modulated_conv2d(x.half(), weight, styles, demodulate=True)
    # the reference's pre-normalised sum: conv(x * s / max|s|, w / sqrt(in k k) / max|w|)
    w_ref = weight / (512 * 9) ** 0.5 / weight.abs().amax(dim=[1, 2, 3], keepdim=True)
    reference = torch.nn.functional.conv2d(x, w_ref, padding=1).abs().max().item()
    assert seen[0] == pytest.approx(reference, rel=1e-2)

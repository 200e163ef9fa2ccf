"""Augmentations of D's inputs: shape, range, gradients, identity at p = 0; ADA's pipeline (each
transform's effect, its statistics and probabilities, its filters) and its heuristic."""

from __future__ import annotations

import itertools
import math
from math import comb
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_lab.augment import (
    SYM2,
    SYM6,
    AdaDraw,
    AdaptiveAugment,
    DiffAugment,
    band_filters,
    diff_cutout,
    diff_translation,
    hue_rotation_matrix,
    saturation_matrix,
)
from gan_lab.modules import GANModule


def images(n: int = 8, c: int = 3, side: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return (torch.rand(n, c, side, side) * 2 - 1).requires_grad_(True)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_shape_gradient_and_change(policy: str) -> None:
    x = images()
    y = DiffAugment(policy)(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_by_whole_pixels_and_pads_with_zeros() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    y = diff_translation(x, torch.Generator().manual_seed(0), ratio=0.25)  # shifts in [-1, 1]
    values = set(x.flatten().tolist()) | {0.0}
    assert set(y.flatten().tolist()) <= values  # no interpolation: only original values or padding
    assert y.amax() <= x.amax() and y.amin() >= 0


def test_cutout_zeroes_a_square_of_half_the_side() -> None:
    x = torch.ones(16, 1, 8, 8)
    y = diff_cutout(x, torch.Generator().manual_seed(0), ratio=0.5)
    zeros = (y == 0).flatten(1).sum(dim=1)
    assert (zeros <= 16).all() and (zeros > 0).all()  # a 4x4 square, partly outside near borders


def test_unknown_policy_is_named() -> None:
    with pytest.raises(ValueError, match="blur"):
        DiffAugment("color,blur")


# ---------------------------------------------------------------------------- ADA
TRANSFORMS = (
    *("xflip", "rotate90", "translate"),
    *("scale", "rotate", "aniso", "xfrac"),
    *("brightness", "contrast", "lumaflip", "hue", "saturation"),
)


def only(*names: str, p: float = 1.0, **kwargs) -> AdaptiveAugment:
    """ADA with the named transforms' multipliers at 1 (or ``kwargs``'), the others' at 0."""
    multipliers = {k: 1.0 if k in names else 0.0 for k in TRANSFORMS}
    return AdaptiveAugment(p=p, **{**multipliers, **kwargs})


def smooth(n: int = 8, c: int = 3, side: int = 32, seed: int = 0) -> torch.Tensor:
    """Images of low spatial frequencies (cosines up to 1.5 cycles per side), about [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    coef = torch.randn(n, c, 4, 4, generator=g)
    t = (torch.arange(side) + 0.5) / side
    basis = torch.stack([torch.cos(math.pi * k * t) for k in range(4)])
    return torch.einsum("ncij,ih,jw->nchw", coef, basis, basis) / 4


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def draw(ada: AdaptiveAugment, n: int = 512, c: int = 3, side: int = 32, seed: int = 0) -> AdaDraw:
    return ada.draw(n, c, side, side, "cpu", rng(seed))


# -- the filters
def test_sym6_is_the_least_asymmetric_orthonormal_daubechies_filter_with_6_vanishing_moments() -> None:
    h = np.array(SYM6)
    assert h.sum() == pytest.approx(math.sqrt(2), abs=1e-11)  # published to ~1e-12
    for lag in range(6):  # orthonormal to its even shifts
        assert np.dot(h[: 12 - 2 * lag], h[2 * lag :]) == pytest.approx(float(lag == 0), abs=1e-11)
    g = h[::-1] * (-1) ** np.arange(12)  # the high-pass has 6 vanishing moments
    for m in range(6):
        assert abs((g * np.arange(12) ** m).sum()) < 1e-9 * 12**m
    # derived again: Daubechies' polynomial P(y) = sum_k C(5 + k, k) y^k, y = (2 - z - 1/z) / 4; each
    # root y gives a reciprocal pair of z; choosing one of each (conjugates together) gives a 12-tap
    # orthonormal filter; sym6 is the choice whose phase is nearest to linear
    ys = np.roots([comb(5 + k, k) for k in range(6)][::-1])
    pairs = [np.roots([1, -(2 - 4 * y), 1]) for y in ys]
    groups, seen = [], set()
    for i in range(5):
        if i in seen:
            continue
        mate = [j for j in range(5) if j != i and j not in seen and abs(ys[j] - np.conj(ys[i])) < 1e-9]
        group = (i, mate[0]) if mate and abs(ys[i].imag) > 1e-9 else (i,)
        seen.update(group)
        groups.append(group)
    w = np.linspace(0, np.pi, 256)[1:-1]
    best = None
    for choice in itertools.product([0, 1], repeat=len(groups)):
        poly = np.array([1.0 + 0j])
        for group, outside in zip(groups, choice, strict=True):
            for i in group:
                z = pairs[i][np.argmax(abs(pairs[i]))] if outside else pairs[i][np.argmin(abs(pairs[i]))]
                poly = np.convolve(poly, [1, -z])
        for _ in range(6):
            poly = np.convolve(poly, [1, 1])
        f = np.real(poly) / np.real(poly).sum() * math.sqrt(2)
        phase = np.unwrap(np.angle(np.exp(-1j * np.outer(w, np.arange(12))) @ f))
        fit = np.polyfit(w, phase, 1)
        nonlinearity = np.abs(phase - np.polyval(fit, w)).max()
        if best is None or nonlinearity < best[0] - 1e-9:
            best = (nonlinearity, f)
    f = best[1]
    assert min(np.abs(f - h).max(), np.abs(f[::-1] - h).max()) < 1e-10  # PyWavelets' dec_lo order


def test_sym2_in_closed_form() -> None:
    published = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
    assert pytest.approx(published, abs=1e-12) == list(SYM2)  # the tables: ~1e-13


def test_filter_bank_is_four_zero_phase_octave_bands_summing_to_an_impulse() -> None:
    bank = band_filters().double()
    assert bank.shape == (4, 43)
    assert torch.allclose(bank, bank.flip(1), atol=1e-12)  # symmetric: zero phase
    impulse = torch.zeros(43, dtype=torch.float64)
    impulse[21] = 1
    assert torch.allclose(bank.sum(0), impulse, atol=1e-12)
    assert bank[0].sum() == pytest.approx(1) and bank[1:].sum(1).abs().max() < 1e-12  # DC in band 0
    # each band peaks in its own octave (band 3: the top, [pi/2, pi])
    w = torch.linspace(0, math.pi, 257, dtype=torch.float64)
    response = (torch.cos(torch.outer(w, torch.arange(-21, 22, dtype=torch.float64))) @ bank.T).abs()
    peaks = w[response.argmax(0)] / math.pi
    assert peaks[0] < 1 / 16 and 1 / 16 < peaks[1] < 1 / 4 and 1 / 8 < peaks[2] < 1 / 2 and peaks[3] > 1 / 2


# -- p = 0, identity, exactness of the resampling
@pytest.mark.parametrize("c", [1, 3])
def test_ada_is_identity_at_p_zero_bit_exact(c: int) -> None:
    x = images(c=c)
    ada = AdaptiveAugment(p=0.0, imgfilter=True, noise=True, cutout=True)
    assert ada(x, rng()) is x
    x2 = x.detach().clone()
    assert torch.equal(AdaptiveAugment(p=1.0, blit=False, geom=False, color=False)(x2, rng()), x2)


@pytest.mark.parametrize("side", [32, 64])
def test_resampling_returns_untransformed_images_and_integer_shifts_exactly(side: int) -> None:
    """The 2x sym6 upsampling, resampling and downsampling is the identity for the identity map
    (the filter is orthonormal), and an integer shift with reflection padding for a shift."""
    ada = AdaptiveAugment(p=1.0)
    x = images(n=4, side=side).detach()
    same = ada.apply(x, AdaDraw(geometry=torch.eye(3).expand(4, 3, 3)))
    assert (same - x).abs().max() < 3e-5  # float32 rounding of the filters
    g = torch.eye(3).repeat(4, 1, 1)
    g[:, 0, 2], g[:, 1, 2] = 3, -2  # out(q) = in(q + (3, -2)): out[i, j] = in[i - 2, j + 3]
    padded = F.pad(x, [5, 5, 5, 5], mode="reflect")
    shifted = padded[:, :, 3 : 3 + side, 8 : 8 + side]
    assert (ada.apply(x, AdaDraw(geometry=g)) - shifted).abs().max() < 3e-5


def test_the_convolution_and_fixed_padding_paths_agree_with_the_default_ones(monkeypatch) -> None:
    """Large images filter with convolutions instead of banded matrix products, and a GPU pads the
    most reflection allows instead of what the batch's transforms reach: the same results."""
    import gan_lab.augment as augment

    ada = AdaptiveAugment(p=1.0)
    x = smooth(n=6)
    d = ada.draw(*x.shape, "cpu", rng(7))
    default = ada.apply(x, d)
    monkeypatch.setattr(augment, "MATMUL_MAX_SIDE", 0)
    assert (ada.apply(x, d) - default).abs().max() < 3e-5
    monkeypatch.setattr(augment, "EXACT_PADDING_ON_CPU", False)
    assert (ada.apply(x, d) - default).abs().max() < 3e-5


def test_forward_applies_the_transforms_it_draws() -> None:
    ada = AdaptiveAugment(p=0.7, imgfilter=True, cutout=True)
    x = images().detach()
    y = ada(x, rng(5))
    again = ada.apply(x, ada.draw(*x.shape, "cpu", rng(5)))
    assert torch.equal(y, again)
    assert ada.last_draw is not None and ada.last_draw.geometry.shape == (8, 3, 3)
    assert ada.last_draw.color.shape == (8, 4, 4) and ada.last_draw.filter_gains.shape == (8, 4)


# -- each transform on a known image (p = 1, the others off)
def test_xflip_mirrors_half_of_the_images() -> None:
    x = smooth(n=32)
    y = only("xflip")(x, rng(3))
    flipped = [(y[i] - x[i].flip(-1)).abs().max() < 0.1 for i in range(32)]  # sym6: nearly symmetric
    kept = [(y[i] - x[i]).abs().max() < 3e-5 for i in range(32)]  # exact up to rounding
    assert all(f ^ k for f, k in zip(flipped, kept, strict=True))
    assert 8 <= sum(flipped) <= 24


def test_rotate90_turns_by_quarter_turns() -> None:
    x = smooth(n=32)
    ada = only("rotate90")
    y = ada(x, rng(1))
    turns = []
    for i in range(32):
        errors = [(y[i] - torch.rot90(x[i], k, dims=(1, 2))).abs().max() for k in range(4)]
        assert min(errors) < 0.1 and sorted(errors)[1] > 0.5
        turns.append(int(np.argmin(errors)))
    assert set(turns) == {0, 1, 2, 3}
    g = ada.last_draw.geometry
    assert set(g[:, :2, :2].flatten().tolist()) <= {-1.0, 0.0, 1.0}


def test_integer_translation_shifts_with_reflection_padding() -> None:
    x = images(n=16).detach()
    ada = only("translate")
    y = ada(x, rng(2))
    g = ada.last_draw.geometry
    shift = g[:, :2, 2]  # out(q) = in(q + shift)
    assert torch.equal(shift, shift.round()) and shift.abs().max() <= 4  # 0.125 * 32
    assert (shift != 0).any()
    padded = F.pad(x, [4, 4, 4, 4], mode="reflect")
    for i in range(16):
        dx, dy = (int(v) for v in shift[i])
        assert (y[i] - padded[i, :, 4 + dy : 4 + dy + 32, 4 + dx : 4 + dx + 32]).abs().max() < 3e-5


def test_brightness_and_contrast_offset_and_scale_every_channel() -> None:
    x = images().detach()
    ada = only("brightness")
    y = ada(x, rng())
    b = ada.last_draw.color[:, 0, 3]
    assert torch.allclose(y, x + b.view(-1, 1, 1, 1), atol=1e-6)
    ada = only("contrast")
    y = ada(x, rng())
    k = ada.last_draw.color[:, 0, 0]
    assert torch.allclose(y, x * k.view(-1, 1, 1, 1), atol=1e-6)


@pytest.mark.parametrize("c", [1, 3])
def test_luma_flip_inverts_luma_and_keeps_chroma(c: int) -> None:
    x = images(n=16, c=c).detach()
    y = only("lumaflip")(x, rng(4))
    luma_x, luma_y = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
    assert torch.allclose(y - luma_y, x - luma_x, atol=1e-5)  # chroma kept (0 for one channel)
    flipped = [torch.allclose(luma_y[i], -luma_x[i], atol=1e-5) for i in range(16)]
    kept = [torch.allclose(y[i], x[i], atol=1e-6) for i in range(16)]
    assert all(f ^ k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_hue_rotation_by_a_third_turn_cycles_the_channels() -> None:
    x = images(n=2).detach()
    ada = AdaptiveAugment(p=1.0)
    turn = hue_rotation_matrix(torch.full((2,), 2 * math.pi / 3))
    y = ada.apply(x, AdaDraw(color=turn))
    assert torch.allclose(y, x[:, [2, 0, 1]], atol=1e-5)  # R -> G -> B -> R
    # drawn: rotations about the luma axis by a uniform angle, which keep luma and chroma's norm
    ada = only("hue")
    y = ada(x, rng())
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-5)
    assert torch.allclose((y - y.mean(1, True)).norm(dim=1), (x - x.mean(1, True)).norm(dim=1), atol=1e-4)
    m = draw(ada, n=2048).color[:, :3, :3]
    assert torch.allclose(m @ m.transpose(1, 2), torch.eye(3).expand(2048, 3, 3), atol=1e-5)
    angle = torch.acos(((m.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1))  # |theta|
    assert angle.mean() == pytest.approx(math.pi / 2, abs=0.05)  # uniform on [0, pi]
    assert angle.std() == pytest.approx(math.pi / math.sqrt(12), abs=0.05)


def test_saturation_zero_makes_grey_and_the_drawn_factor_scales_chroma() -> None:
    x = images(n=4).detach()
    ada = AdaptiveAugment(p=1.0)
    y = ada.apply(x, AdaDraw(color=saturation_matrix(torch.zeros(4))))
    assert torch.allclose(y, x.mean(1, keepdim=True).expand_as(x), atol=1e-6)
    ada = only("saturation")
    y = ada(x, rng())
    s = (ada.last_draw.color[:, 0, 0] - 1 / 3) * 1.5
    chroma = x - x.mean(1, keepdim=True)
    assert torch.allclose(y, x.mean(1, keepdim=True) + chroma * s.view(-1, 1, 1, 1), atol=1e-5)


def test_one_channel_images_skip_hue_and_saturation() -> None:
    ada = only("hue", "saturation")
    x = images(c=1).detach()
    assert torch.allclose(ada(x, rng()), x, atol=1e-6)
    assert ada.last_draw.color is None


def test_image_filter_noise_and_cutout() -> None:
    x = images().detach()
    # gains of 1 (std 0): the bands sum back to the image
    ada = AdaptiveAugment(p=1.0, blit=False, geom=False, color=False, imgfilter=True, imgfilter_std=0.0)
    assert (ada(x, rng()) - x).abs().max() < 1e-5
    # a constant image keeps only band 0, filtered along x and y: scaled by gain_0 ** 2
    ada = AdaptiveAugment(p=1.0, blit=False, geom=False, color=False, imgfilter=True)
    y = ada(torch.ones(8, 3, 32, 32), rng())
    g0 = ada.last_draw.filter_gains[:, 0]
    assert torch.allclose(y, (g0**2).view(-1, 1, 1, 1).expand_as(y), atol=1e-5)
    assert not torch.allclose(ada.last_draw.filter_gains, torch.ones(8, 4))
    ada = AdaptiveAugment(p=1.0, blit=False, geom=False, color=False, noise=True, noise_std=0.5)
    residual = (ada(torch.zeros(64, 3, 32, 32), rng()) - 0).flatten(1).std(1)
    assert torch.allclose(residual, ada.last_draw.noise_std, rtol=0.1, atol=1e-6)
    ada = AdaptiveAugment(p=1.0, blit=False, geom=False, color=False, cutout=True)
    y = ada(torch.ones(64, 1, 32, 32), rng())
    zeros = (y == 0).flatten(1).sum(1)
    cx, cy, size = ada.last_draw.cutout.unbind(1)
    inside = ((cx - 0.25) >= 0) & ((cx + 0.25) <= 1) & ((cy - 0.25) >= 0) & ((cy + 0.25) <= 1)
    assert (zeros[inside] == 256).all() and (zeros <= 256).all() and (size == 0.5).all()


# -- statistics at p = 1 and the probabilities
def test_geometric_draws_have_adas_distributions() -> None:
    g = draw(only("scale")).geometry
    assert (-torch.log2(g[:, 0, 0])).std() == pytest.approx(0.2, abs=0.02)
    assert torch.equal(g[:, 0, 0], g[:, 1, 1])
    g = draw(only("aniso")).geometry
    assert torch.log2(g[:, 1, 1]).std() == pytest.approx(0.2, abs=0.02)
    assert torch.allclose(g[:, 0, 0] * g[:, 1, 1], torch.ones(512))
    g = draw(only("xfrac")).geometry
    assert (g[:, :2, 2] / 32).std() == pytest.approx(0.125, abs=0.01)
    g = draw(only("translate"), n=2048).geometry
    assert set(g[:, :2, 2].unique().tolist()) == set(range(-4, 5))
    # two rotations of uniform angles: the total is uniform on the circle
    g = draw(only("rotate"), n=4096).geometry
    angle = torch.atan2(g[:, 1, 0], g[:, 0, 0])
    assert angle.cos().mean().abs() < 0.04 and angle.sin().mean().abs() < 0.04
    assert angle.abs().mean() == pytest.approx(math.pi / 2, abs=0.05)
    histogram = torch.histc(angle, bins=8, min=-math.pi, max=math.pi) / 4096
    assert (histogram - 1 / 8).abs().max() < 0.02
    # half a turn at most
    g = draw(only("rotate", rotate_max=0.25), n=4096).geometry
    assert torch.atan2(g[:, 1, 0], g[:, 0, 0]).abs().max() <= math.pi / 2 + 1e-5


def test_colour_draws_have_adas_distributions() -> None:
    c = draw(only("brightness")).color
    assert c[:, 0, 3].std() == pytest.approx(0.2, abs=0.02)
    c = draw(only("contrast")).color
    assert torch.log2(c[:, 0, 0]).std() == pytest.approx(0.5, abs=0.05)
    c = draw(only("saturation")).color
    assert torch.log2((c[:, 0, 0] - 1 / 3) * 1.5).std() == pytest.approx(1.0, abs=0.1)


def test_each_transform_applies_with_probability_p_times_its_multiplier() -> None:
    n = 8192
    ada = only("scale", "rotate", "xflip", "lumaflip", p=0.4, scale=0.5)
    d = draw(ada, n=n)
    g = d.geometry
    scaled = ((g[:, 0, 0] ** 2 + g[:, 0, 1] ** 2) - 1).abs() > 1e-6  # a rotation keeps the row's norm
    assert scaled.float().mean() == pytest.approx(0.4 * 0.5, abs=0.015)
    flipped = torch.linalg.det(g[:, :2, :2]) < 0
    assert flipped.float().mean() == pytest.approx(0.4 / 2, abs=0.015)  # chosen, then one of two
    rotated = (g[:, 0, 1].abs() > 1e-6) | (g[:, 0, 0] < 0) & ~flipped
    assert rotated.float().mean() == pytest.approx(0.4, abs=0.02)  # pre or post rotation: p
    lumaflipped = d.color[:, 0, 0] < 0.9
    assert lumaflipped.float().mean() == pytest.approx(0.4 / 2, abs=0.015)
    # p changes the draws without any change of the module: the host copy of p is read each call
    ada.p.fill_(1.0)
    ada._p = 1.0
    assert (((draw(ada, n=n).geometry[:, 0, 0] ** 2) - 1).abs() > 1e-6).float().mean() > 0.4


def test_multipliers_and_groups() -> None:
    ada = AdaptiveAugment(xflip=False, geom=False, imgfilter=True, imgfilter_bands=[0, 1, 0, 0])
    assert ada.multipliers["xflip"] == 0 and ada.multipliers["rotate90"] == 1
    assert all(ada.multipliers[k] == 0 for k in ("scale", "rotate", "aniso", "xfrac"))
    assert ada.imgfilter_bands == [0.0, 1.0, 0.0, 0.0]
    assert AdaptiveAugment().imgfilter_bands == [0.0] * 4  # the group is off by default
    with pytest.raises(Exception, match=r"augment\.hue=-1"):
        AdaptiveAugment(hue=-1)


# -- differentiable, dtypes, sizes
@pytest.mark.parametrize(("c", "side"), [(1, 32), (3, 64)])
def test_ada_passes_first_and_second_order_gradients(c: int, side: int) -> None:
    ada = AdaptiveAugment(p=0.8, imgfilter=True, noise=True, cutout=True)
    x = images(n=4, c=c, side=side)
    y = ada(x, rng())
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)
    (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)  # R1 through ADA
    assert grad.abs().sum() > 0
    grad.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ada_keeps_bfloat16_and_matches_float32() -> None:
    ada = AdaptiveAugment(p=1.0)
    x = smooth(n=4)
    y32 = ada(x, rng())
    y16 = ada(x.bfloat16(), rng())
    assert y16.dtype == torch.bfloat16
    assert (y16.float() - y32).abs().max() < 0.05 * y32.abs().max()


# -- the heuristic
def test_ada_probability_rises_when_d_overfits_and_falls_otherwise() -> None:
    ada = AdaptiveAugment(target=0.6, interval=4, kimg=1.0)  # fast, for the test: 0 -> 1 in 1 kimg
    confident = torch.full((64,), 5.0)  # D sure that every real is real: E[sign] = 1 > 0.6
    for iteration in range(8):
        ada.observe(confident)
        ada.update(iteration, batch_images=64)
    # two adjustments of +64 * 4 / 1000 each
    assert ada.probability == pytest.approx(2 * 0.256)
    unsure = torch.tensor([1.0, -1.0] * 32)  # E[sign] = 0 < 0.6
    for iteration in range(8, 16):
        ada.observe(unsure)
        ada.update(iteration, batch_images=64)
    assert ada.probability == pytest.approx(0.0)  # two steps down, clamped at 0
    assert float(ada.p) == ada.probability


def test_r1_phase_logits_count_towards_the_heuristic() -> None:
    """``GANModule.d_regularization`` hands R1's real logits to ``observe`` (not R2's fakes'); run
    on a stand-in for the module (a one-layer D), which keeps the test fast."""
    ada = AdaptiveAugment(p=0.5)
    module = SimpleNamespace(
        augment=ada, r1_gamma=1.0, r2_gamma=1.0, reg_interval_d=16, rng=rng(), conv=torch.nn.Conv2d(3, 1, 32)
    )
    module.D = lambda images, c=None: module.conv(images)
    module.discriminate = lambda images, c=None: GANModule.discriminate(module, images, c).flatten()
    module.grad_scale = lambda: 1.0
    module.draw_latents = lambda n, generator: torch.randn(n, 4, generator=generator)
    module.generate = lambda z, c=None: torch.tanh(z.mean(1)).view(-1, 1, 1, 1).expand(-1, 3, 32, 32)
    loss, logs = GANModule.d_regularization(module, images(n=6), None)
    assert float(ada.sign_count) == 6 and "reg/r1" in logs and "reg/r2" in logs  # R1's reals only
    loss.backward()
    # main-step logits alone below the target, with R1's above it: p rises
    ada = AdaptiveAugment(target=0.6, interval=1, kimg=1.0)
    ada.observe(torch.tensor([1.0, -1.0] * 4))  # E[sign] = 0
    ada.observe(torch.ones(24))  # the R1 step's: together E[sign] = 0.75
    ada.update(0, batch_images=8)
    assert ada.probability == pytest.approx(0.008)


def test_ada_state_travels_with_the_state_dict() -> None:
    ada = AdaptiveAugment(kimg=1.0)
    ada.observe(torch.ones(10))
    for it in range(4):
        ada.update(it, 100)
    restored = AdaptiveAugment()
    restored.load_state_dict(ada.state_dict())
    assert restored.probability == ada.probability > 0
    assert set(ada.state_dict()) == {"p", "sign_sum", "sign_count"}  # the filters are constants

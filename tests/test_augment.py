"""Augmentations of D's inputs: shape, range, gradients, identity at p = 0, ADA's heuristic."""

from __future__ import annotations

import pytest
import torch

from gan_lab.augment import AdaptiveAugment, DiffAugment, diff_cutout, diff_translation


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


def test_ada_is_identity_at_p_zero() -> None:
    x = images()
    assert torch.equal(AdaptiveAugment(p=0.0)(x, torch.Generator().manual_seed(0)), x)


def test_ada_geometry_keeps_range_and_passes_gradients() -> None:
    ada = AdaptiveAugment(p=1.0, brightness=False, contrast=False, saturation=False)
    x = images(c=1)
    y = ada(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    # bilinear resampling with reflection padding stays within the input's range
    assert y.min() >= x.min() - 1e-5 and y.max() <= x.max() + 1e-5
    assert not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad.abs().sum() > 0


def test_ada_xflip_alone_flips_or_keeps_each_image() -> None:
    only_flip = {
        k: False for k in ("rotate90", "translate", "scale", "rotate", "brightness", "contrast", "saturation")
    }
    ada = AdaptiveAugment(p=1.0, **only_flip)
    x = images(n=16).detach()
    y = ada(x, torch.Generator().manual_seed(3))
    flipped = [torch.allclose(y[i], x[i].flip(-1), atol=1e-5) for i in range(16)]
    kept = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(16)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_ada_color_changes_values_and_passes_gradients() -> None:
    geometric_off = {k: False for k in ("xflip", "rotate90", "translate", "scale", "rotate")}
    ada = AdaptiveAugment(p=1.0, **geometric_off)
    x = images()
    y = ada(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad.abs().sum() > 0


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


def test_ada_state_travels_with_the_state_dict() -> None:
    ada = AdaptiveAugment(kimg=1.0)
    ada.observe(torch.ones(10))
    for it in range(4):
        ada.update(it, 100)
    restored = AdaptiveAugment()
    restored.load_state_dict(ada.state_dict())
    assert restored.probability == ada.probability > 0

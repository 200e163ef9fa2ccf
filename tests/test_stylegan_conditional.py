"""Class-conditional StyleGAN2 (StyleGAN2-ADA's ``--cond``): parity with NVIDIA's reference through a
stored golden file, and the lab's own additions (per-class truncation, label checks).

The golden file ``tests/data/stylegan2_reference_golden.pt`` was written by
``scripts/check_stylegan_reference.py --write-golden`` from stylegan2-ada-pytorch (commit d72cc7d):
tiny unconditional and conditional G and D with the reference's (perturbed) weights under the lab's
names, their inputs and the reference's outputs. With ``GAN_LAB_REFERENCE=/path/to/checkout`` the
script's full comparison against the live reference runs too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from gan_lab.nn.stylegan import MappingNetwork, StyleGANDiscriminator, StyleGANGenerator

from .conftest import REPO

GOLDEN_PATH = REPO / "tests" / "data" / "stylegan2_reference_golden.pt"
ATOL = RTOL = 1e-4
SMALL = {"channel_base": 128, "channel_max": 16}


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return torch.load(GOLDEN_PATH, weights_only=True)


def build(case: dict[str, Any]) -> tuple[StyleGANGenerator, StyleGANDiscriminator]:
    G = StyleGANGenerator(**case["g_kwargs"])
    D = StyleGANDiscriminator(**case["d_kwargs"])
    G.load_state_dict(case["g_state"], strict=True)
    D.load_state_dict(case["d_state"], strict=True)
    return G.eval(), D.eval()


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, atol=ATOL, rtol=RTOL)


# ---------------------------------------------------------------------------- parity (golden)
def test_golden_file_comes_from_the_reference_and_is_small(golden: dict[str, Any]) -> None:
    assert golden["format"] == 1 and golden["reference"] == "NVlabs/stylegan2-ada-pytorch"
    assert golden["reference_commit"].startswith("d72cc7d")
    assert set(golden["cases"]) == {"uncond", "cond"}
    assert GOLDEN_PATH.stat().st_size < 300 * 1024


@pytest.mark.parametrize("name", ["uncond", "cond"])
@torch.no_grad()
def test_outputs_equal_the_references(golden: dict[str, Any], name: str) -> None:
    case = golden["cases"][name]
    ref = case["reference"]
    G, D = build(case)
    z, c = case["z"], case["c"]
    assert (c is None) == (name == "uncond")
    assert sum(p.numel() for p in G.parameters()) == case["g_params"]
    assert sum(p.numel() for p in D.parameters()) == case["d_params"]

    close(G.mapping(z, c), ref["ws"])
    close(G(z, c, noise_mode="const", fused=True), ref["images_fused"])
    close(G(z, c, noise_mode="const", fused=False), ref["images_unfused"])
    # truncation: the golden G's class averages all equal its global w_avg (the reference's)
    close(G.mapping(z, c, truncation_psi=0.7), ref["ws_psi0.7_cutoffNone"])
    close(G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=4), ref["ws_psi0.7_cutoff4"])
    close(
        G(z, c, truncation_psi=0.7, truncation_cutoff=4, noise_mode="const", fused=True),
        ref["images_psi0.7_cutoff4"],
    )
    close(D(ref["images_fused"], c), ref["d_logits_fakes"])
    if c is not None:
        close(D(ref["images_fused"], ref["c_other"]), ref["d_logits_fakes_c_other"])

    G.mapping.train()
    G.mapping(z, c)
    close(G.mapping.w_avg, ref["w_avg_after_step"])


@torch.no_grad()
def test_the_conditional_discriminator_uses_the_label(golden: dict[str, Any]) -> None:
    case = golden["cases"]["cond"]
    ref = case["reference"]
    # the reference's logits move with the label, so a D that ignores c cannot match both
    assert (ref["d_logits_fakes"] - ref["d_logits_fakes_c_other"]).abs().max() > 100 * ATOL
    _, D = build(case)
    images = ref["images_fused"]
    assert not torch.allclose(D(images, case["c"]), D(images, ref["c_other"]), atol=100 * ATOL)
    # a freshly initialised one too, each class its own logit
    torch.manual_seed(0)
    fresh = StyleGANDiscriminator(16, 3, mbstd_group=2, num_classes=4, **SMALL).eval()
    x = torch.randn(1, 3, 16, 16).expand(4, -1, -1, -1)
    logits = fresh(x, torch.arange(4))
    assert torch.unique(logits.round(decimals=4)).numel() == 4


# ---------------------------------------------------------------------------- structure
def test_conditional_layers_follow_the_reference() -> None:
    G = StyleGANGenerator(16, 3, z_dim=24, w_dim=32, map_layers=2, num_classes=5, **SMALL)
    assert G.num_classes == G.mapping.num_classes == 5
    assert (G.mapping.embed.in_features, G.mapping.embed.out_features) == (5, 32)
    assert G.mapping.embed.weight_gain == pytest.approx(1 / 5**0.5)  # learning rate 1
    assert G.mapping.layers[0].in_features == 24 + 32  # [norm(z), norm(embed(c))]
    assert G.mapping.w_avg_class.shape == (5, 32)

    D = StyleGANDiscriminator(16, 3, num_classes=5, **SMALL)
    assert D.cmap_dim == 16  # the channels at 4x4: min(128 // 4, 16)
    assert D.epilogue.out.out_features == 16
    assert len(D.mapping.layers) == 8 and D.mapping.z_dim == 0 and D.mapping.num_ws is None
    assert all(layer.weight_gain == pytest.approx(0.01 / 16**0.5) for layer in D.mapping.layers)
    assert not any("w_avg" in key for key in D.state_dict())  # D's mapping tracks no average
    D48 = StyleGANDiscriminator(16, 3, num_classes=5, cmap_dim=48, **SMALL)
    assert D48.epilogue.out.out_features == 48 and D48.mapping.layers[-1].out_features == 48


def test_unconditional_networks_are_unchanged(golden: dict[str, Any]) -> None:
    case = golden["cases"]["uncond"]
    G = StyleGANGenerator(**case["g_kwargs"])
    D = StyleGANDiscriminator(**{**case["d_kwargs"], "cmap_dim": 48})  # ignored when unconditional
    assert G.num_classes == D.num_classes == 0 and D.cmap_dim == 0
    assert list(G.state_dict()) == list(case["g_state"])  # keys (and order) as the reference's map
    assert list(D.state_dict()) == list(case["d_state"])
    assert not any("embed" in k or "w_avg_class" in k for k in G.state_dict())
    assert not any(k.startswith("mapping.") for k in D.state_dict())
    assert D.epilogue.out.out_features == 1
    # an unconditional network ignores labels
    G.eval()
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        a = G(z, noise_mode="const")
        b = G(z, torch.tensor([0, 7]), noise_mode="const")
        assert torch.equal(a, b)
        assert torch.equal(D(a), D(a, torch.tensor([1, 2])))


# ---------------------------------------------------------------------------- refusals
def test_bad_conditions_are_refused() -> None:
    torch.manual_seed(0)
    G = StyleGANGenerator(16, 1, z_dim=16, w_dim=16, map_layers=1, num_classes=3, **SMALL)
    D = StyleGANDiscriminator(16, 1, mbstd_group=2, num_classes=3, **SMALL)
    z, img = torch.randn(2, 16), torch.randn(2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"conditional \(num_classes=3\).*c=None"):
        G(z)
    with pytest.raises(ValueError, match=r"conditional \(num_classes=3\).*c=None"):
        G.mapping(z)
    with pytest.raises(ValueError, match=r"conditional \(num_classes=3\).*c=None"):
        D(img)
    for bad in (torch.tensor([0, 3]), torch.tensor([-1, 0])):
        with pytest.raises(ValueError, match="out of range: num_classes=3"):
            G(z, bad)
        with pytest.raises(ValueError, match="out of range: num_classes=3"):
            D(img, bad)
    with pytest.raises(ValueError, match="integer class labels"):
        G(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        G(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(2, 1\)"):
        D(img, torch.tensor([[0], [1]]))
    # the old positional call G.mapping(z, psi, cutoff) is refused, not silently misread
    uncond = StyleGANGenerator(16, 1, z_dim=16, w_dim=16, map_layers=1, **SMALL)
    with pytest.raises(TypeError, match="keyword arguments"):
        uncond.mapping(z, 0.7, None)
    assert G(z, torch.tensor([2, 0]), noise_mode="const").shape == (2, 1, 16, 16)


@pytest.mark.parametrize("num_classes", [-1, 2.5, True, None])
def test_num_classes_must_be_a_count(num_classes: Any) -> None:
    with pytest.raises(ValueError, match=r"num_classes=.* must be an integer >= 0"):
        StyleGANGenerator(16, 1, z_dim=8, w_dim=8, num_classes=num_classes, **SMALL)
    with pytest.raises(ValueError, match=r"num_classes=.* must be an integer >= 0"):
        StyleGANDiscriminator(16, 1, num_classes=num_classes, **SMALL)


@pytest.mark.parametrize("cmap_dim", [0, -4, 2.0])
def test_cmap_dim_must_be_positive(cmap_dim: Any) -> None:
    with pytest.raises(ValueError, match=r"cmap_dim=.* must be a positive integer or None"):
        StyleGANDiscriminator(16, 1, num_classes=3, cmap_dim=cmap_dim, **SMALL)


# ---------------------------------------------------------------------------- per-class truncation
def test_class_averages_update_only_for_present_classes() -> None:
    torch.manual_seed(0)
    mapping = MappingNetwork(16, 16, num_ws=4, num_layers=2, num_classes=5)
    with torch.no_grad():
        mapping.w_avg_class.normal_()
    before = mapping.w_avg_class.clone()
    z, c = torch.randn(5, 16), torch.tensor([0, 2, 0, 2, 2])
    mapping.eval()
    mapping(z, c)
    assert torch.equal(mapping.w_avg_class, before)  # eval: no update
    mapping.train()
    mapping(z, c, update_w_avg=False)
    assert torch.equal(mapping.w_avg_class, before)
    w = mapping(z, c)[:, 0].detach()
    beta = mapping.w_avg_beta
    for k, rows in ((0, [0, 2]), (2, [1, 3, 4])):  # per class: its batch mean, one step of beta
        expected = w[rows].mean(0).lerp(before[k], beta)
        torch.testing.assert_close(mapping.w_avg_class[k], expected, atol=1e-6, rtol=1e-5)
    for k in (1, 3, 4):  # absent classes keep their averages
        assert torch.equal(mapping.w_avg_class[k], before[k])
    torch.testing.assert_close(mapping.w_avg, (1 - beta) * w.mean(0), atol=1e-6, rtol=1e-5)  # global too


@torch.no_grad()
def test_truncation_pulls_towards_the_class_average() -> None:
    torch.manual_seed(0)
    G = StyleGANGenerator(16, 1, z_dim=16, w_dim=16, map_layers=2, num_classes=3, **SMALL).eval()
    G.mapping.w_avg_class.normal_(std=3)
    G.mapping.w_avg.normal_(std=3)
    z, c = torch.randn(6, 16), torch.tensor([0, 1, 2, 2, 1, 0])
    centers = G.mapping.w_avg_class[c].unsqueeze(1)
    ws = G.mapping(z, c)
    # psi = 0: every sample at its own class's average, not the global one
    torch.testing.assert_close(G.mapping(z, c, truncation_psi=0.0), centers.expand_as(ws))
    # psi = 0.5: halfway from w to the class average, on the first `cutoff` ws only
    half = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
    torch.testing.assert_close(half[:, :2], centers + 0.5 * (ws[:, :2] - centers))
    assert torch.equal(half[:, 2:], ws[:, 2:])
    assert torch.equal(G.mapping(z, c, truncation_psi=1.0), ws)
    # images of one class agree at psi = 0 (constant noise), images of different classes do not
    images = G(z, c, truncation_psi=0.0, noise_mode="const")
    torch.testing.assert_close(images[2], images[3])
    assert not torch.allclose(images[0], images[1], atol=1e-3)


# ---------------------------------------------------------------------------- live reference
@pytest.mark.skipif(not os.environ.get("GAN_LAB_REFERENCE"), reason="GAN_LAB_REFERENCE is not set")
def test_against_a_reference_checkout() -> None:
    reference = Path(os.environ["GAN_LAB_REFERENCE"])
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "check_stylegan_reference.py"),
            "--reference",
            str(reference),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "all checks passed" in done.stdout

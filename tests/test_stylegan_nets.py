"""StyleGAN2 layers and networks: the equations, not just the shapes."""

import math
from pathlib import Path

import pytest
import torch

from gan_lab.config import validate
from gan_lab.errors import ConfigError
from gan_lab.nn.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStd,
    ModulatedConv2d,
    downsample2d,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)
from gan_lab.nn.stylegan import (
    D_ARCHITECTURES,
    MappingNetwork,
    StyleGANDiscriminator,
    StyleGANGenerator,
    channels_at,
)

SMALL = {"channel_base": 256, "channel_max": 32}


@pytest.mark.parametrize("style_scale", [0.01, 1.0, 30.0])
def test_demodulation_keeps_unit_variance_for_any_style(style_scale: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 64, 16, 16)
    weight = torch.randn(32, 64, 3, 3)
    styles = torch.exp(torch.randn(8, 64)) * style_scale  # very uneven per-channel styles
    y = modulated_conv2d(x, weight, styles, demodulate=True)
    inner = y[:, :, 1:-1, 1:-1]  # away from the zero padding
    assert inner.var().item() == pytest.approx(1.0, abs=0.1)
    # per sample too: demodulation is per sample and output channel
    assert all(abs(v - 1) < 0.2 for v in inner.var(dim=[1, 2, 3]).tolist())


def test_without_demodulation_the_style_scales_the_output() -> None:
    torch.manual_seed(0)
    x, weight = torch.randn(4, 16, 8, 8), torch.randn(8, 16, 1, 1)
    y1 = modulated_conv2d(x, weight, torch.ones(4, 16), demodulate=False)
    y3 = modulated_conv2d(x, weight, torch.full((4, 16), 3.0), demodulate=False)
    assert torch.allclose(y3, 3 * y1, atol=1e-5)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_and_unfused_modulated_conv_agree(up: int, demodulate: bool) -> None:
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 8, 8, 8), torch.randn(5, 8, 3, 3), torch.randn(3, 8)
    f = setup_filter()
    a = modulated_conv2d(x, weight, styles, demodulate, up, f, fused=True)
    b = modulated_conv2d(x, weight, styles, demodulate, up, f, fused=False)
    assert a.shape == (3, 5, 8 * up, 8 * up)
    assert torch.allclose(a, b, atol=1e-4)


def test_equalized_linear_storage_and_effective_scale() -> None:
    torch.manual_seed(0)
    layer = EqualizedLinear(512, 512, lr_mul=0.01, bias_init=0.5)
    assert layer.weight.std().item() == pytest.approx(1 / 0.01, rel=0.02)  # stored N(0, 1) / lr_mul
    effective = layer.weight * layer.weight_gain
    assert effective.std().item() == pytest.approx(1 / math.sqrt(512), rel=0.02)  # He scale at run time
    assert torch.allclose(layer.bias * layer.bias_gain, torch.full([512], 0.5))
    # the effective weight is what the layer applies
    x = torch.randn(4, 512)
    assert torch.allclose(layer(x), x @ effective.T + 0.5, atol=1e-4)


def test_equalized_conv_scale_and_gain() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 64, 3, activation="lrelu")
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.03)
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))
    # He init + gain sqrt(2) after leaky ReLU keeps the second moment of unit inputs near 1
    y = conv(torch.randn(16, 64, 16, 16))[:, :, 1:-1, 1:-1]
    assert y.square().mean().item() == pytest.approx(1.0, abs=0.15)


def test_fir_resampling_preserves_a_constant_image() -> None:
    f = setup_filter((1, 3, 3, 1))
    assert f.sum().item() == pytest.approx(1.0)
    x = torch.full((1, 2, 8, 8), 0.7)
    up = upsample2d(x, f)
    down = downsample2d(x, f)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7), atol=1e-6)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7), atol=1e-6)


def test_noise_strength_starts_at_zero_and_noise_modes() -> None:
    torch.manual_seed(0)
    layer = ModulatedConv2d(8, 8, w_dim=16, resolution=8)
    x, w = torch.randn(2, 8, 8, 8), torch.randn(2, 16)
    assert layer.noise_strength.item() == 0.0
    with torch.no_grad():
        layer.noise_strength.fill_(1.0)
    g = torch.Generator().manual_seed(1)
    a = layer(x, w, "random", g)
    b = layer(x, w, "random", g)
    assert not torch.allclose(a, b)  # fresh noise
    assert torch.equal(layer(x, w, "const"), layer(x, w, "const"))
    with pytest.raises(ValueError, match="noise_mode='loud'"):
        layer(x, w, "loud")


def test_minibatch_std_appends_the_group_deviation() -> None:
    x = torch.zeros(4, 3, 2, 2)
    x[2:] = 2.0  # groups of 2 with stride 2: (0, 2) and (1, 3), each {0, 2}: std 1
    y = MinibatchStd(group_size=2, num_channels=1)(x)
    assert y.shape == (4, 4, 2, 2)
    assert torch.allclose(y[:, 3], torch.ones(4, 2, 2), atol=1e-4)
    with pytest.raises(ValueError, match="batch of 6 is not divisible by the group size 4"):
        MinibatchStd(4)(torch.zeros(6, 3, 2, 2))


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_num_ws(resolution: int, channels: int) -> None:
    torch.manual_seed(0)
    g = StyleGANGenerator(resolution, channels, z_dim=32, w_dim=32, map_layers=2, **SMALL)
    d = StyleGANDiscriminator(resolution, channels, mbstd_group=2, **SMALL)
    assert g.num_ws == 2 * int(math.log2(resolution)) - 2
    images = g(torch.randn(2, 32))
    assert images.shape == (2, channels, resolution, resolution)
    assert torch.isfinite(images).all()
    assert d(images).shape == (2,)


def test_channel_rule() -> None:
    # StyleGAN2-ADA's fmaps=0.5 (channel_base 16384): 512 channels up to 32x32, then 256 at 64x64
    assert [channels_at(r, 16384, 512) for r in (4, 32, 64, 128, 256)] == [512, 512, 256, 128, 64]


def test_truncation() -> None:
    torch.manual_seed(0)
    g = StyleGANGenerator(32, 1, z_dim=16, w_dim=16, map_layers=2, **SMALL).eval()
    with torch.no_grad():
        g.mapping.w_avg.normal_()
    z = torch.randn(4, 16)
    ws = g.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws, g.mapping.w_avg.expand_as(ws))  # psi = 0: every z maps to w_avg
    assert torch.equal(g.mapping(z, truncation_psi=1.0), g.mapping(z))  # psi = 1 changes nothing
    cut = g.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], ws[:, :2]) and torch.equal(cut[:, 2:], g.mapping(z)[:, 2:])
    # images of different z agree with noise fixed, and differ only by noise otherwise
    with torch.no_grad():
        for block in g.synthesis.blocks:
            for layer in (getattr(block, "conv0", None), block.conv1):
                if layer is not None:
                    layer.noise_strength.fill_(0.5)
    const = g(z, truncation_psi=0.0, noise_mode="const")
    assert torch.allclose(const, const[:1].expand_as(const), atol=1e-5)
    noisy = g(z, truncation_psi=0.0, noise_mode="random", rng=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy, noisy[:1].expand_as(noisy), atol=1e-3)


def test_w_avg_tracks_w_in_training_only() -> None:
    torch.manual_seed(0)
    mapping = MappingNetwork(16, 16, num_ws=4, num_layers=2)
    z = torch.randn(64, 16)
    mapping.eval()
    mapping(z)
    assert torch.equal(mapping.w_avg, torch.zeros(16))
    mapping.train()
    w = mapping(z)[:, 0].detach()
    assert torch.allclose(mapping.w_avg, (1 - 0.995) * w.mean(0), atol=1e-6)  # one step of beta 0.995
    before = mapping.w_avg.clone()
    mapping(z, update_w_avg=False)
    assert torch.equal(mapping.w_avg, before)


def test_mapping_layers_follow_the_paper() -> None:
    mapping = MappingNetwork(512, 512, num_ws=14, num_layers=8)
    assert len(mapping.layers) == 8
    assert all(layer.weight_gain == pytest.approx(0.01 / math.sqrt(512)) for layer in mapping.layers)
    assert all(layer.activation == "lrelu" for layer in mapping.layers)


# ---------------------------------------------------------------------------- D architectures
D_GOLDEN_PATH = Path(__file__).parent / "data" / "stylegan2_reference_d_architectures.pt"


def conv_params(i: int, o: int, k: int, bias: bool = True) -> int:
    return i * o * k * k + (o if bias else 0)


def test_discriminator_architectures_parameter_counts_by_hand() -> None:
    """16 px RGB, channel_base 128, channel_max 16: 8 channels at 16x16, 16 at 8x8 and 4x4."""
    b16 = conv_params(3, 8, 1) + conv_params(8, 8, 3) + conv_params(8, 16, 3)  # fromRGB, conv0, conv1
    b8 = conv_params(16, 16, 3) + conv_params(16, 16, 3)
    epilogue = conv_params(16 + 1, 16, 3) + (16 * 16 * 16 + 16) + (16 + 1)  # mbstd conv, fc, out
    orig = b16 + b8 + epilogue
    expected = {
        "orig": orig,  # no residual skips: the plain chain
        "resnet": orig + conv_params(8, 16, 1, bias=False) + conv_params(16, 16, 1, bias=False),
        "skip": orig + conv_params(3, 16, 1) + conv_params(3, 16, 1),  # fromRGB at 8x8 and at 4x4
    }
    assert expected == {"orig": 13_017, "resnet": 13_401, "skip": 13_145}
    for architecture, count in expected.items():
        d = StyleGANDiscriminator(16, 3, channel_base=128, channel_max=16, architecture=architecture)
        assert sum(p.numel() for p in d.parameters()) == count, architecture


def test_discriminator_architectures_layers() -> None:
    torch.manual_seed(0)
    nets = {a: StyleGANDiscriminator(32, 3, mbstd_group=2, architecture=a, **SMALL) for a in D_ARCHITECTURES}
    keys = {a: {k.rsplit(".", 1)[0] for k in d.state_dict()} for a, d in nets.items()}
    n = len(nets["orig"].blocks)
    assert {k for k in keys["orig"] if "fromrgb" in k} == {"blocks.0.fromrgb"}
    assert not any(".skip" in k for k in keys["orig"] | keys["skip"])
    assert {f"blocks.{i}.skip" for i in range(n)} <= keys["resnet"]
    assert {k for k in keys["skip"] if "fromrgb" in k} == {f"blocks.{i}.fromrgb" for i in range(n)} | {
        "epilogue.fromrgb"
    }
    img = torch.randn(2, 3, 32, 32)
    block = nets["orig"].blocks[0]
    x, rest = block(None, img)
    assert rest is None and torch.equal(x, block.conv1(block.conv0(block.fromrgb(img))))  # gain 1
    block = nets["skip"].blocks[1]
    x_in = torch.randn(2, block.conv0.in_channels, 16, 16)
    img16 = torch.randn(2, 3, 16, 16)
    x, img8 = block(x_in, img16)
    assert torch.equal(x, block.conv1(block.conv0(x_in + block.fromrgb(img16))))
    assert torch.equal(img8, downsample2d(img16, setup_filter()))
    assert all(d(img).shape == (2,) for d in nets.values())


@pytest.mark.parametrize("name", ["orig", "skip", "orig-cond"])
@torch.no_grad()
def test_discriminator_architectures_equal_the_reference(name: str) -> None:
    """Golden logits of stylegan2-ada-pytorch's Discriminator(architecture=...) (d72cc7d, perturbed
    weights; scripts/check_stylegan_reference.py --write-golden-d)."""
    golden = torch.load(D_GOLDEN_PATH, weights_only=True)
    assert golden["reference_commit"].startswith("d72cc7d") and D_GOLDEN_PATH.stat().st_size < 150 * 1024
    case = golden["cases"][name]
    d = StyleGANDiscriminator(**case["d_kwargs"]).eval()
    d.load_state_dict(case["d_state"], strict=True)
    assert d.architecture == case["d_kwargs"]["architecture"]
    assert sum(p.numel() for p in d.parameters()) == case["d_params"]
    torch.testing.assert_close(d(case["images"], case["c"]), case["logits"], atol=1e-5, rtol=1e-4)


def test_unknown_architecture_is_refused(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"model.discriminator.architecture='dense'.*orig, skip, resnet"):
        StyleGANDiscriminator(32, 3, architecture="dense", **SMALL)
    with pytest.raises(ConfigError, match=r"model.discriminator.architecture"):
        validate(compose_cfg("model=stylegan", "model.discriminator.architecture=dense"))
    validate(compose_cfg("model=stylegan", "model.discriminator.architecture=orig"))


def test_inference_on_the_cpu_takes_the_faster_unfused_path() -> None:
    """Per-sample kernels (StyleGAN2-ADA's inference path) measured 2.6x slower on the CPU, so an
    eval-mode generator there scales the activations instead; fused stays selectable."""
    torch.manual_seed(0)
    G = StyleGANGenerator(32, 1, channel_base=256, channel_max=32, z_dim=16, w_dim=16).eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        default = G(z, noise_mode="const")
        assert torch.equal(default, G(z, noise_mode="const", fused=False))
        torch.testing.assert_close(default, G(z, noise_mode="const", fused=True), atol=1e-5, rtol=1e-5)

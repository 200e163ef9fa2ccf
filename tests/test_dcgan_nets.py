import math

import pytest
import torch
from torch import nn

from gan_lab.nn.dcgan import DCGANDiscriminator, DCGANGenerator, hidden_widths


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_ranges(resolution: int, channels: int) -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=16, resolution=resolution, channels=channels, width=8, max_width=64)
    d = DCGANDiscriminator(resolution=resolution, channels=channels, width=8, max_width=64)
    images = g(torch.randn(4, 16))
    assert images.shape == (4, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0.01  # not a constant image
    logits = d(images)
    assert logits.shape == (4,)
    assert torch.isfinite(logits).all()


def test_paper_widths_for_64x64() -> None:
    # Radford et al.'s 64x64 generator: 1024 -> 512 -> 256 -> 128 channels at sides 4, 8, 16, 32
    assert hidden_widths(64, width=128, max_width=1024) == [1024, 512, 256, 128]
    # the cap applies at high resolution
    assert hidden_widths(256, width=64, max_width=512) == [512, 512, 512, 256, 128, 64]


def test_number_of_upsampling_layers_follows_resolution() -> None:
    for resolution in (32, 64, 256):
        g = DCGANGenerator(resolution=resolution, channels=1, width=4, max_width=16)
        strided = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)]
        assert len(strided) == int(math.log2(resolution)) - 2


@pytest.mark.parametrize("bad", [16, 48, 100, 0, -32])
def test_bad_resolution_is_named(bad: int) -> None:
    with pytest.raises(ValueError, match=f"resolution={bad}"):
        DCGANGenerator(resolution=bad)
    with pytest.raises(ValueError, match=f"resolution={bad}"):
        DCGANDiscriminator(resolution=bad)


def test_paper_initialisation() -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(resolution=64, channels=3, width=64)
    convs = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(convs.std().item() - 0.02) < 0.001 and abs(convs.mean().item()) < 0.001
    bn = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.01 and abs(bn.std().item() - 0.02) < 0.005


def test_normalisation_layout() -> None:
    g = DCGANGenerator(resolution=32, channels=1, width=8)
    d = DCGANDiscriminator(resolution=32, channels=1, width=8)
    # G: batch norm after every transposed conv but the output one; D: none on input and output
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 2
    assert isinstance(d.features[1], nn.LeakyReLU) and d.features[1].negative_slope == 0.2
    plain = DCGANDiscriminator(resolution=32, channels=1, width=8, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    with pytest.raises(ValueError, match="norm='layer'"):
        DCGANDiscriminator(resolution=32, norm="layer")


def test_gradients_reach_every_generator_parameter() -> None:
    g = DCGANGenerator(resolution=32, channels=3, width=8)
    d = DCGANDiscriminator(resolution=32, channels=3, width=8)
    d(g(torch.randn(4, 100))).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())

"""R1 and path length on hand-made cases: value, zero where it should be, double backward."""

import math

import pytest
import torch

from gan_lab.losses import path_lengths, r1_penalty


def test_r1_of_a_linear_discriminator_is_its_squared_weight_norm() -> None:
    a = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)  # D(x) = sum(a * x)
    x = torch.randn(5, 1, 2, 2, requires_grad=True)
    logits = (x * a).sum(dim=[1, 2, 3])
    penalty = r1_penalty(logits, x)
    expected = (a.detach() ** 2).sum()  # 1 + 4 + 0.25 + 9
    assert torch.allclose(penalty, expected.expand(5))
    penalty.mean().backward()  # double backward reaches D's parameters: d||a||^2/da = 2a
    assert torch.allclose(a.grad, 2 * a.detach())


def test_r1_of_a_quadratic_discriminator() -> None:
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    logits = 0.5 * x.square().sum(dim=[1, 2, 3])  # grad = x
    assert torch.allclose(r1_penalty(logits, x), x.detach().square().sum(dim=[1, 2, 3]))


def test_r1_is_zero_when_d_ignores_its_input() -> None:
    x = torch.randn(4, 1, 2, 2, requires_grad=True)
    bias = torch.tensor(3.0, requires_grad=True)
    logits = x.sum(dim=[1, 2, 3]) * 0 + bias
    assert torch.equal(r1_penalty(logits, x), torch.zeros(4))


def test_r1_with_a_loss_scale_gives_the_same_value() -> None:
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    logits = 0.5 * x.square().sum(dim=[1, 2, 3])
    assert torch.allclose(r1_penalty(logits, x, grad_scale=1024.0), x.detach().square().sum(dim=[1, 2, 3]))


def test_path_length_of_a_linear_generator() -> None:
    torch.manual_seed(0)
    n, num_ws, w_dim, h = 3, 4, 5, 2
    m = torch.randn(w_dim, h * h, requires_grad=True)  # G(ws) = (sum over ws) @ M, an h x h image
    ws = torch.randn(n, num_ws, w_dim, requires_grad=True)
    images = (ws.sum(dim=1) @ m).view(n, 1, h, h)
    noise = torch.randn(n, 1, h, h)
    lengths = path_lengths(images, ws, noise)
    # by hand: d(sum(G * y))/dw_l = M y for every copy l, y = noise / sqrt(h*h)
    y = noise.view(n, h * h) / math.sqrt(h * h)
    expected = (y @ m.detach().T).norm(dim=1)  # sqrt(mean over the identical copies of |M y|^2)
    assert torch.allclose(lengths, expected, atol=1e-6)
    ((lengths - 1.0) ** 2).mean().backward()  # double backward reaches G's parameters
    assert m.grad is not None and m.grad.abs().sum() > 0


def test_path_length_is_zero_when_images_ignore_w() -> None:
    ws = torch.randn(2, 3, 4, requires_grad=True)
    images = torch.ones(2, 1, 2, 2) + ws.sum() * 0
    assert torch.equal(path_lengths(images, ws, torch.randn(2, 1, 2, 2)), torch.zeros(2))


@pytest.mark.parametrize("scale", [1.0, 2.0**16])
def test_path_length_with_a_loss_scale(scale: float) -> None:
    ws = torch.randn(2, 1, 3, requires_grad=True)
    images = (ws[:, 0] * 2).view(2, 1, 1, 3)
    noise = torch.ones(2, 1, 1, 3)
    # y = 1/sqrt(3) per pixel, gradient 2y per component: |g| = sqrt(3 * 4/3) = 2
    assert torch.allclose(path_lengths(images, ws, noise, grad_scale=scale), torch.full((2,), 2.0))

import math

import pytest
import torch

from gan_lab.losses import (
    HingeLoss,
    LSGANLoss,
    NonSaturatingLoss,
    WGANGPLoss,
    gradient_penalty,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    r1_penalty,
)


def test_nonsaturating_at_zero_logits() -> None:
    zero = torch.zeros(5)
    # D(x) = 0 means probability 1/2: each term is -log(1/2)
    assert math.isclose(nonsaturating_d_loss(zero, zero).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(nonsaturating_g_loss(zero).item(), math.log(2), rel_tol=1e-6)


def test_nonsaturating_hand_computed() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])

    def sig(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    expected_d = (-math.log(sig(2.0)) - math.log(sig(-1.0))) / 2 + (
        -math.log(1 - sig(0.5)) - math.log(1 - sig(-3.0))
    ) / 2
    expected_g = (-math.log(sig(0.5)) - math.log(sig(-3.0))) / 2
    loss = NonSaturatingLoss()
    assert math.isclose(loss.discriminator(real, fake).item(), expected_d, rel_tol=1e-6)
    assert math.isclose(loss.generator(fake).item(), expected_g, rel_tol=1e-6)


def test_nonsaturating_is_stable_for_confident_logits() -> None:
    logits = torch.tensor([100.0, -100.0])
    # one real and one fake scored right with certainty (0 each), one of each wrong (100 each)
    assert math.isclose(nonsaturating_d_loss(logits, -logits).item(), 100.0, rel_tol=1e-6)
    fake = torch.tensor([100.0, -100.0], requires_grad=True)
    g = nonsaturating_g_loss(fake)
    g.backward()
    # a fake rejected with logit -100 costs 100 (mean with the accepted one: 50), and its
    # gradient does not vanish: d/dx softplus(-x) / 2 = -sigmoid(-x) / 2 = -0.5
    assert math.isclose(g.item(), 50.0, rel_tol=1e-6)
    assert math.isclose(fake.grad[1].item(), -0.5, rel_tol=1e-6)
    assert abs(fake.grad[0].item()) < 1e-30


# ---------------------------------------------------------------- hinge, least squares, WGAN-GP


def test_hinge_hand_computed() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.25])
    # D: mean(max(0, 1 - [2, .5, -1])) = (0 + .5 + 2) / 3; mean(max(0, 1 + [-3, 0, .25])) = (0 + 1 + 1.25) / 3
    assert math.isclose(HingeLoss().discriminator(real, fake).item(), 2.5 / 3 + 2.25 / 3, rel_tol=1e-6)
    assert math.isclose(HingeLoss().generator(fake).item(), -(-3.0 + 0.0 + 0.25) / 3, rel_tol=1e-6)


def test_lsgan_hand_computed() -> None:
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    # D: 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G(z))^2) = 1/2 * (0 + 4)/2 + 1/2 * (0 + 4)/2 = 2
    assert math.isclose(LSGANLoss().discriminator(real, fake).item(), 2.0, rel_tol=1e-6)
    # G: 1/2 mean((D(G(z)) - 1)^2) = 1/2 * (1 + 9)/2 = 2.5
    assert math.isclose(LSGANLoss().generator(fake).item(), 2.5, rel_tol=1e-6)


def test_wasserstein_hand_computed() -> None:
    loss = WGANGPLoss()
    real, fake = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 4.0])
    assert math.isclose(loss.discriminator(real, fake).item(), 1.5 - 1.5)
    assert math.isclose(loss.generator(fake).item(), -1.5)
    assert loss.gradient_penalty == 10.0
    with pytest.raises(ValueError, match="gp_lambda=-1"):
        WGANGPLoss(gp_lambda=-1)


def test_gradient_penalty_of_a_linear_critic_is_its_closed_form() -> None:
    a = torch.tensor([[[3.0, 4.0]]], requires_grad=True)  # D(x) = <a, x>, ||grad|| = ||a|| = 5
    x_hat = torch.randn(6, 1, 1, 2, requires_grad=True)
    logits = (x_hat * a).sum(dim=[1, 2, 3])
    penalty = gradient_penalty(logits, x_hat)
    assert torch.allclose(penalty, torch.full((6,), (5.0 - 1.0) ** 2))
    penalty.mean().backward()  # d/da (||a|| - 1)^2 = 2 (||a|| - 1) a / ||a||
    assert torch.allclose(a.grad, 2 * 4.0 * a.detach() / 5.0)


def test_r2_is_r1_on_fakes() -> None:
    fake = torch.randn(3, 1, 2, 2, requires_grad=True)
    logits = 0.5 * fake.square().sum(dim=[1, 2, 3])
    assert torch.allclose(r1_penalty(logits, fake), fake.detach().square().sum(dim=[1, 2, 3]))

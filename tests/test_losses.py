import math

import torch

from gan_lab.losses import NonSaturatingLoss, nonsaturating_d_loss, nonsaturating_g_loss


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

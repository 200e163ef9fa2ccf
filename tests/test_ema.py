import math

import pytest
import torch
from torch import nn

from gan_lab.nn.ema import ema_beta, update_ema


def test_half_life_in_kimg() -> None:
    # after ema_kimg thousand images at constant batch size, the old weights count half
    beta = ema_beta(batch_images=32, ema_kimg=10.0, images_seen=10**9)
    assert math.isclose(beta ** (10_000 / 32), 0.5, rel_tol=1e-9)


def test_rampup_caps_the_half_life_early() -> None:
    # 2,000 images seen, ramp-up 0.05 -> half-life of 100 images, not 10,000
    assert math.isclose(ema_beta(100, 10.0, images_seen=2000, rampup=0.05), 0.5, rel_tol=1e-9)
    assert ema_beta(100, 10.0, images_seen=0, rampup=0.05) == 0.0  # first update copies
    assert ema_beta(100, 0.0, images_seen=10**6) == 0.0  # ema off: copy


def test_update_moves_parameters_and_copies_buffers() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
        for p in ema.parameters():
            p.fill_(0.0)
    model[1].running_mean.fill_(7.0)
    update_ema(ema, model, beta=0.75)
    for p in ema.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.25))
    assert torch.equal(ema[1].running_mean, model[1].running_mean)


def test_update_rejects_mismatched_models() -> None:
    with pytest.raises(ValueError):
        update_ema(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 0.5)

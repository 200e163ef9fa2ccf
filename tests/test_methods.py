"""Losses, regularizers and augmentation as config choices, through the training entry point."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from gan_lab.modules import GANModule
from gan_lab.training import build_module, run

from .test_training import assert_same_training_state, state

LOSSES = ["nonsaturating", "hinge", "lsgan", "wgan_gp"]
AUGMENTS = ["none", "diffaug", "ada"]


def logged_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("model", ["dcgan", "stylegan"])
@pytest.mark.parametrize("augment", AUGMENTS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_combination_trains(compose_cfg, tmp_path: Path, model: str, loss: str, augment: str) -> None:
    out = tmp_path / "run"
    extra = ["augment.p=0.5"] if augment == "ada" else []
    run(
        compose_cfg(
            f"model={model}",
            f"loss={loss}",
            f"augment={augment}",
            *extra,
            "model.d_steps=2" if loss == "wgan_gp" else "seed=0",
            "trainer.max_steps=2",
            "trainer.log_every_n_steps=1",
            run_dir=out,
        )
    )
    rows = logged_rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    for key in ("loss/d", "loss/g", "logits/real", "logits/fake", "logits/sign_real"):
        assert all(torch.isfinite(torch.tensor(float(r[key]))) for r in rows), key
    if loss == "wgan_gp":
        assert all(float(r["reg/gp"]) >= 0 for r in rows)
    if augment == "ada":
        assert all(r["augment/p"] for r in rows)
    final = state(out / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(v).all() for v in final["state_dict"].values() if v.is_floating_point())


def test_d_steps_step_d_on_its_own_batches(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(compose_cfg("loss=wgan_gp", "model.d_steps=3", "trainer.max_steps=4", run_dir=out))
    last = state(out / "checkpoints" / "last.ckpt")
    d_steps, g_steps = (float(s["state"][0]["step"]) for s in last["optimizer_states"])
    assert (d_steps, g_steps) == (12.0, 4.0)
    assert last["images_seen"] == 4 * 3 * 16  # each critic step saw its own 16 reals
    # WGAN-GP needs a per-sample critic: DCGAN's discriminator config dropped batch norm
    assert not any(".running_mean" in k and k.startswith("D.") for k in last["state_dict"])


def test_r1_and_r2_are_lazy_and_logged(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(
        compose_cfg(
            "model.r1_gamma=1.0",
            "model.r2_gamma=0.5",
            "model.d_reg_interval=2",
            "trainer.max_steps=4",
            "trainer.log_every_n_steps=1",
            run_dir=out,
        )
    )
    last = state(out / "checkpoints" / "last.ckpt")
    assert float(last["optimizer_states"][0]["state"][0]["step"]) == 4 + 2  # reg steps at 0 and 2
    rows = logged_rows(out)
    assert all(float(r["reg/r1"]) > 0 and float(r["reg/r2"]) > 0 for r in rows)


def test_lazy_d_regularization_corrects_adam(compose_cfg) -> None:
    model: GANModule = build_module(compose_cfg("model.r1_gamma=1.0", "model.d_reg_interval=4"))
    opt_d, opt_g = model.configure_optimizers()
    assert opt_d.defaults["lr"] == pytest.approx(2e-4 * 4 / 5)
    assert opt_d.defaults["betas"] == pytest.approx((0.5 ** (4 / 5), 0.999 ** (4 / 5)))
    assert opt_g.defaults["lr"] == 2e-4  # G has no lazy regularizer in DCGAN


def test_ada_probability_is_saved_and_resumes_exactly(compose_cfg, tmp_path: Path) -> None:
    common = (
        "augment=ada",
        "augment.p=0.5",
        "augment.kimg=1",
        "augment.interval=2",
        "callbacks.checkpoint.every_n_train_steps=4",
    )
    straight, first, resumed = tmp_path / "straight", tmp_path / "first", tmp_path / "resumed"
    run(compose_cfg(*common, "trainer.max_steps=8", run_dir=straight))
    run(compose_cfg(*common, "trainer.max_steps=4", run_dir=first))
    p_at_4 = float(state(first / "checkpoints" / "last.ckpt")["state_dict"]["augment.p"])
    # two adjustments (after iterations 1 and 3) of 16 images * 2 iterations / 1000 each, up or down
    assert p_at_4 in (pytest.approx(0.5 + 0.064), pytest.approx(0.5), pytest.approx(0.5 - 0.064))
    ckpt = first / "checkpoints" / "last.ckpt"
    run(compose_cfg("trainer.max_steps=8", f"ckpt_path={ckpt}", run_dir=resumed, bare=True))
    a, b = state(straight / "checkpoints" / "last.ckpt"), state(resumed / "checkpoints" / "last.ckpt")
    assert_same_training_state(a, b)  # includes augment.p and the sign statistics
    assert "augment.p" in a["state_dict"]


def test_channels_last_trains(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(compose_cfg("model.channels_last=true", "trainer.max_steps=2", run_dir=out))
    assert state(out / "checkpoints" / "last.ckpt")["global_step"] == 2


def test_compile_is_refused_with_double_backward_penalties(compose_cfg) -> None:
    from gan_lab.config import validate
    from gan_lab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.compile=true cannot be combined with model.r1_gamma"):
        validate(compose_cfg("model.compile=true", "model.r1_gamma=1"))
    with pytest.raises(ConfigError, match=r"model.pl_weight"):
        validate(compose_cfg("model=stylegan", "model.compile=true", "model.r1_gamma=0"))
    validate(compose_cfg("model.compile=true"))  # DCGAN without penalties: allowed

"""Class-conditional training: labels reach G and D through every hook of the loop, the networks
use them, and data without classes is refused before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_lab.config import validate
from gan_lab.errors import ConfigError
from gan_lab.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator
from gan_lab.training import run

from .datasets_on_disk import face_like
from .test_methods import LOSSES, logged_rows
from .test_training import state

COND = "data.conditional=true"


# ---------------------------------------------------------------------------- networks
def _nets() -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    torch.manual_seed(0)
    small = {"channel_base": 128, "channel_max": 16}
    return [
        (
            DCGANGenerator(16, 32, 1, width=8, num_classes=10).eval(),
            DCGANDiscriminator(32, 1, width=8, num_classes=10).eval(),
        ),
        (
            StyleGANGenerator(32, 1, z_dim=16, w_dim=16, map_layers=1, num_classes=10, **small).eval(),
            StyleGANDiscriminator(32, 1, mbstd_group=2, num_classes=10, **small).eval(),
        ),
    ]


@pytest.mark.parametrize("pair", [0, 1], ids=["dcgan", "stylegan"])
def test_conditional_networks_use_their_labels(pair: int) -> None:
    """The same z (image) with another label gives another image (logit): G and D use c."""
    G, D = _nets()[pair]
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        a, b = G(z, torch.tensor([0, 1, 2, 3])), G(z, torch.tensor([4, 5, 6, 7]))
        assert a.shape == (4, 1, 32, 32) and (a - b).abs().amax() > 0.05 * a.abs().amax()
        if pair == 0:  # the projection term starts at zero for StyleGAN only by chance; not DCGAN's
            D.embed.weight.normal_()
        x = torch.randn(4, 1, 32, 32)
        logits = [D(x, torch.full((4,), k)) for k in range(3)]
    assert logits[0].shape == (4,)
    assert (logits[0] - logits[1]).abs().amax() > 1e-4 and (logits[1] - logits[2]).abs().amax() > 1e-4
    with pytest.raises(ValueError, match="is conditional"):
        G(z)
    with pytest.raises(ValueError, match="is conditional"):
        D(x)
    with pytest.raises(ValueError, match=r"label 10 is out of range: num_classes=10"):
        G(z, torch.tensor([0, 1, 2, 10]))


def test_conditional_batch_norm_scales_and_shifts_by_class() -> None:
    """(1 + W_g e_y) * BN(x) + W_b e_y, e_y the generator's shared class embedding."""
    from gan_lab.nn.dcgan import ConditionalBatchNorm2d

    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, embed_dim=5)
    x, e = torch.randn(6, 3, 4, 4), torch.randn(6, 5)
    normed = torch.nn.functional.batch_norm(x, None, None, training=True)
    gain, bias = e @ cbn.gain.weight.T, e @ cbn.bias.weight.T
    expected = (1 + gain[:, :, None, None]) * normed + bias[:, :, None, None]
    assert torch.allclose(cbn(x, e), expected, atol=1e-5)
    G = DCGANGenerator(16, 32, 1, width=8, num_classes=2, embed_dim=5)
    assert sum(isinstance(m, ConditionalBatchNorm2d) for m in G.modules()) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in G.modules())
    assert G.embed.weight.shape == (2, 5)


def test_projection_discriminator_is_the_unconditional_logit_plus_the_projection() -> None:
    """Miyato & Koyama 2018, eq. 3: D(x, y) = psi(phi(x)) + <v_y, sum_hw phi(x)>."""
    torch.manual_seed(1)
    D = DCGANDiscriminator(32, 1, width=8, num_classes=3, norm="none").eval()
    torch.nn.init.normal_(D.embed.weight)
    x, y = torch.randn(5, 1, 32, 32), torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        h = D.features(x)
        expected = D.out(h).flatten() + (D.embed.weight[y] * h.sum(dim=(2, 3))).sum(1)
        assert torch.allclose(D(x, y), expected, atol=1e-5)


# ---------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("model", ["dcgan", "stylegan"])
@pytest.mark.parametrize("loss", LOSSES)
def test_conditional_runs_train_with_every_loss(compose_cfg, tmp_path: Path, model: str, loss: str) -> None:
    out = tmp_path / "run"
    run(
        compose_cfg(
            f"model={model}",
            f"loss={loss}",
            COND,
            "model.d_steps=2" if loss == "wgan_gp" else "model.r1_gamma=0.5",
            "trainer.max_steps=2",
            "trainer.log_every_n_steps=1",
            run_dir=out,
        )
    )
    rows = logged_rows(out)
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(torch.isfinite(torch.tensor(float(r["loss/d"]))) for r in rows)
    last = state(out / "checkpoints" / "last.ckpt")
    assert last["gan_lab"]["config"]["data"]["num_classes"] == 10  # from the dataset, stored resolved
    weights = last["state_dict"]
    embed = "G.embed.weight" if model == "dcgan" else "G.mapping.embed.weight"
    assert embed in weights and all(
        torch.isfinite(v).all() for v in weights.values() if v.is_floating_point()
    )
    assert weights["sample_c"].unique().tolist() == list(range(10))  # one grid row per class


def test_labels_reach_every_g_and_d_call(
    compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every D call of the loop (D loss, R1, R2, the gradient penalty) and every G call gets the
    batch's labels; an unconditional run passes None."""
    seen: dict[str, list] = {"G": [], "D": []}
    g_forward, d_forward = DCGANGenerator.forward, DCGANDiscriminator.forward

    def g_spy(self, z, c=None):
        seen["G"].append(c)
        return g_forward(self, z, c)

    def d_spy(self, x, c=None):
        seen["D"].append(c)
        return d_forward(self, x, c)

    monkeypatch.setattr(DCGANGenerator, "forward", g_spy)
    monkeypatch.setattr(DCGANDiscriminator, "forward", d_spy)
    overrides = ("loss=wgan_gp", "model.r1_gamma=1", "model.r2_gamma=1", "model.d_steps=2")
    run(compose_cfg(COND, *overrides, "trainer.max_steps=1", "metrics=none", run_dir=tmp_path / "c"))
    # iteration 0: 2 critic steps (real, fake, interpolates), then R1 and R2, then the G step
    assert len(seen["D"]) == 2 * 3 + 2 + 1
    assert all(c is not None and c.dtype == torch.int64 and c.shape == (16,) for c in seen["D"])
    assert all(c is not None for c in seen["G"]) and len(seen["G"]) >= 4
    # the tests' Fashion-MNIST labels are i % 10: every batch of 16 holds several classes
    assert all(len(c.unique()) > 1 for c in seen["D"])
    seen["G"].clear(), seen["D"].clear()
    run(compose_cfg(*overrides, "trainer.max_steps=1", run_dir=tmp_path / "u"))
    assert seen["D"] and all(c is None for c in seen["D"] + seen["G"])


def test_a_conditional_run_resumes(compose_cfg, tmp_path: Path) -> None:
    first = tmp_path / "first"
    run(compose_cfg(COND, "trainer.max_steps=2", run_dir=first))
    ckpt = first / "checkpoints" / "last.ckpt"
    run(compose_cfg(f"ckpt_path={ckpt}", "trainer.max_steps=3", run_dir=tmp_path / "again", bare=True))
    assert state(tmp_path / "again" / "checkpoints" / "last.ckpt")["global_step"] == 3


# ---------------------------------------------------------------------------- refusals
def test_data_without_classes_is_refused_before_training(compose_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data.conditional=true needs a dataset with classes, but Cel"):
        validate(compose_cfg("data=celeba", COND, f"data.root={tmp_path}"))
    single = tmp_path / "one_folder"
    (single / "faces").mkdir(parents=True)
    for i in range(20):
        face_like(i, (40, 40)).save(single / "faces" / f"{i}.png")
    out = tmp_path / "run"
    folder = ("data=image_folder", f"data.root={single}", "data.resolution=32", f"data.cache_dir={tmp_path}")
    with pytest.raises(
        ConfigError, match=r"has a single class \(an image folder's classes are its top-level"
    ):
        run(compose_cfg(*folder, COND, "trainer.max_steps=1", run_dir=out))
    assert not (out / "checkpoints").exists()
    with pytest.raises(ConfigError, match=r"data.num_classes=3 does not match the 10 classes"):
        run(compose_cfg(COND, "data.num_classes=3", "trainer.max_steps=1", run_dir=out))


def test_image_folder_classes_are_its_subfolders(compose_cfg, tmp_path: Path) -> None:
    root = tmp_path / "pets"
    for k, name in enumerate(("cats", "dogs", "owls")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            face_like(10 * k + i, (40, 40)).save(root / name / f"{i}.png")
    out = tmp_path / "run"
    folder = ("data=image_folder", f"data.root={root}", "data.resolution=32", f"data.cache_dir={tmp_path}")
    run(compose_cfg(*folder, COND, "data.batch_size=6", "trainer.max_steps=1", run_dir=out))
    last = state(out / "checkpoints" / "last.ckpt")
    assert last["gan_lab"]["config"]["data"]["num_classes"] == 3
    assert last["state_dict"]["G.embed.weight"].shape[0] == 3

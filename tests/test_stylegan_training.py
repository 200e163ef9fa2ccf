"""StyleGAN2 training on the GAN base: lazy schedule, optimizer corrections, mixing, resume, bf16."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pytest
import torch

from gan_lab.errors import CheckpointError
from gan_lab.modules import GANModule, StyleGAN
from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator
from gan_lab.training import build_module, run

from .test_training import assert_same_training_state, state

SG = "model=stylegan"


def tiny_stylegan(lr: float = 0.0025, num_classes: int = 0, **kwargs) -> StyleGAN:
    """A small StyleGAN module built from Python, as a notebook user would."""
    sizes = dict(resolution=32, channels=1, channel_base=64, channel_max=8, num_classes=num_classes)
    G = StyleGANGenerator(z_dim=16, w_dim=16, map_layers=2, **sizes)
    D = StyleGANDiscriminator(**sizes)
    adam = functools.partial(torch.optim.Adam, lr=lr, betas=(0.0, 0.99), eps=1e-8)
    return StyleGAN(G, D, adam, adam, **kwargs)


def test_config_defaults_follow_stylegan2_ada_auto(compose_cfg) -> None:
    cfg = compose_cfg(SG, "data.resolution=64", "data.batch_size=32", bare=True)
    m = cfg.model
    assert m.r1_gamma == pytest.approx(0.0002 * 64**2 / 32)
    assert m.ema_kimg == pytest.approx(10.0)
    assert (m.optimizer_g.lr, m.optimizer_d.lr, list(m.optimizer_g.betas)) == (0.0025, 0.0025, [0.0, 0.99])
    assert list(m.optimizer_d.betas) == [0.0, 0.99] and m.optimizer_d.eps == 1e-8
    assert (m.discriminator.mbstd_group, m.generator.map_layers, m.style_mixing_prob) == (4, 2, 0.9)
    assert (m.d_reg_interval, m.pl_interval, m.pl_weight, m.pl_decay, m.pl_batch_shrink) == (
        16,
        4,
        2.0,
        0.01,
        2,
    )
    big = compose_cfg(SG, "data.resolution=1024", "data.batch_size=4", "trainer.devices=8", bare=True).model
    assert big.generator.channel_base == big.discriminator.channel_base == 32768
    assert big.optimizer_g.lr == big.optimizer_d.lr == 0.002
    assert big.r1_gamma == pytest.approx(0.0002 * 1024**2 / 32)  # total batch 4 x 8 devices
    assert big.discriminator.mbstd_group == 4


def test_lazy_regularization_corrects_adam() -> None:
    model = tiny_stylegan(r1_gamma=1.0, lr=0.0025)
    opt_d, opt_g = model.configure_optimizers()
    c_d, c_g = 16 / 17, 4 / 5
    assert opt_d.defaults["lr"] == pytest.approx(0.0025 * c_d)
    assert opt_d.defaults["betas"] == pytest.approx((0.0, 0.99**c_d))
    assert opt_g.defaults["lr"] == pytest.approx(0.0025 * c_g)
    assert opt_g.defaults["betas"] == pytest.approx((0.0, 0.99**c_g))


@pytest.mark.parametrize(("r1_gamma", "pl_weight"), [(0.0, 0.0), (0.0, 2.0), (0.01, 0.0)])
def test_adam_correction_does_not_depend_on_the_regularizers(r1_gamma: float, pl_weight: float) -> None:
    """StyleGAN2-ADA's training_loop corrects both optimizers by ``k / (k + 1)`` whenever the
    interval is set, and its train.py always sets G_reg_interval=4, D_reg_interval=16, so a config
    with path length or R1 off (its ``--cfg=cifar``: pl_weight 0) still trains G at lr 0.0025 * 4/5
    = 0.002 with beta2 0.99**0.8, and D at 0.0025 * 16/17 with beta2 0.99**(16/17)."""
    model = tiny_stylegan(r1_gamma=r1_gamma, pl_weight=pl_weight, lr=0.0025)
    assert (model.g_reg_interval is None) == (pl_weight == 0)  # the schedule: no idle phases
    assert (model.d_reg_interval is None) == (r1_gamma == 0)
    opt_d, opt_g = model.configure_optimizers()
    assert opt_g.defaults["lr"] == pytest.approx(0.002)
    assert opt_g.defaults["betas"] == pytest.approx((0.0, 0.99**0.8))
    assert opt_d.defaults["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert opt_d.defaults["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    other = tiny_stylegan(r1_gamma=r1_gamma, pl_weight=pl_weight, pl_interval=2, d_reg_interval=8)
    opt_d, opt_g = other.configure_optimizers()  # the intervals, not the constants 4 and 16
    assert opt_g.defaults["lr"] == pytest.approx(0.0025 * 2 / 3)
    assert opt_d.defaults["lr"] == pytest.approx(0.0025 * 8 / 9)


def test_the_generic_gan_corrects_only_for_a_lazy_regularizer_that_runs() -> None:
    """GANModule (DCGAN) has no reference schedule: its optimizers are corrected only while a
    lazy regularizer takes its extra steps (R1/R2 for D; none for G)."""
    sizes = dict(resolution=32, channels=1, channel_base=64, channel_max=8)
    adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
    G, D = StyleGANGenerator(z_dim=16, w_dim=16, **sizes), StyleGANDiscriminator(**sizes)
    plain_d, plain_g = GANModule(G, D, adam, adam).configure_optimizers()
    assert plain_d.defaults["lr"] == plain_g.defaults["lr"] == 2e-4
    assert plain_d.defaults["betas"] == plain_g.defaults["betas"] == (0.5, 0.999)
    lazy_d, lazy_g = GANModule(G, D, adam, adam, r1_gamma=1.0).configure_optimizers()
    assert lazy_d.defaults["lr"] == pytest.approx(2e-4 * 16 / 17) and lazy_g.defaults["lr"] == 2e-4


def test_lazy_phases_run_on_their_intervals(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(
        compose_cfg(
            SG, "trainer.max_steps=17", "model.r1_gamma=1.0", "trainer.log_every_n_steps=1", run_dir=out
        )
    )
    last = state(out / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 17
    d_steps, g_steps = (float(s["state"][0]["step"]) for s in last["optimizer_states"])
    assert d_steps == 17 + 2  # R1 at iterations 0 and 16
    assert g_steps == 17 + 5  # path length at 0, 4, 8, 12, 16
    assert last["state_dict"]["pl_mean"] > 0
    assert last["state_dict"]["G.mapping.w_avg"].abs().sum() > 0
    assert torch.equal(last["state_dict"]["G_ema.mapping.w_avg"], last["state_dict"]["G.mapping.w_avg"])
    with open(out / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))

    def updated_at(key: str) -> list[int]:
        """Steps at which the logged value changes (Lightning repeats a value until it is logged again)."""
        values = [(int(r["step"]), r[key]) for r in rows]
        return [step for i, (step, v) in enumerate(values) if v and (i == 0 or v != values[i - 1][1])]

    # computed during iterations 0 and 16 (R1) and 0, 4, 8, ... (path length): logged at steps 1, 17, ...
    assert updated_at("reg/r1") == [1, 17]
    assert updated_at("reg/pl_penalty") == [1, 5, 9, 13, 17]


def test_style_mixing_takes_later_ws_from_a_second_latent() -> None:
    torch.manual_seed(0)
    model = tiny_stylegan(style_mixing_prob=1.0)
    z = torch.randn(4, 16)
    model.rng.manual_seed(123)
    ws = model.mixed_ws(z)
    # replay the module's draws: cutoff, mixing coin, second latent
    g = torch.Generator().manual_seed(123)
    cutoff = int(torch.randint(1, model.G.num_ws, (), generator=g))
    torch.rand((), generator=g)
    z2 = torch.randn(z.shape, generator=g)
    with torch.no_grad():
        ws1, ws2 = model.G.mapping(z, update_w_avg=False), model.G.mapping(z2, update_w_avg=False)
    assert 1 <= cutoff < model.G.num_ws
    assert torch.allclose(ws[:, :cutoff], ws1[:, :cutoff]) and torch.allclose(ws[:, cutoff:], ws2[:, cutoff:])
    never = tiny_stylegan(style_mixing_prob=0.0)
    assert torch.allclose(never.mixed_ws(z), never.G.mapping(z, update_w_avg=False))


def test_samples_use_the_ema_generator_with_truncation() -> None:
    torch.manual_seed(0)
    model = tiny_stylegan(num_samples=4)
    with torch.no_grad():
        model.G_ema.mapping.w_avg.normal_()
    images = model.sample(truncation_psi=0.0)
    assert images.shape == (4, 1, 32, 32)
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-5)  # psi 0, constant noise
    assert torch.equal(model.sample(), model.sample())  # reproducible grids


def test_sample_grids_are_rendered_a_chunk_at_a_time() -> None:
    """A 64-image grid at full width must not hold all 64 images' activations at once (at the
    reference's size it doubled the run's peak memory): G_ema sees at most SAMPLE_CHUNK latents
    per call, and the grid equals the one-batch render."""
    torch.manual_seed(0)
    model = tiny_stylegan(num_samples=40)
    seen: list[int] = []
    hook = model.G_ema.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    images = model.sample()
    hook.remove()
    assert images.shape[0] == 40 and max(seen) <= model.SAMPLE_CHUNK and sum(seen) == 40
    with torch.no_grad():
        whole = model.G_ema(model.sample_z, None, truncation_psi=model.sample_psi, noise_mode="const")
    torch.testing.assert_close(images, whole, atol=1e-5, rtol=1e-5)


def test_resume_is_exact(compose_cfg, tmp_path: Path) -> None:
    """9 + 9 iterations == 18 straight, across lazy R1 (0, 16) and path length (every 4)."""
    common = (SG, "model.r1_gamma=0.5", "callbacks.checkpoint.every_n_train_steps=9")
    straight, first, resumed = tmp_path / "straight", tmp_path / "first", tmp_path / "resumed"
    run(compose_cfg(*common, "trainer.max_steps=18", run_dir=straight))
    run(compose_cfg(*common, "trainer.max_steps=9", run_dir=first))
    ckpt = first / "checkpoints" / "last.ckpt"
    run(compose_cfg("trainer.max_steps=18", f"ckpt_path={ckpt}", run_dir=resumed, bare=True))
    assert_same_training_state(
        state(straight / "checkpoints" / "last.ckpt"), state(resumed / "checkpoints" / "last.ckpt")
    )
    assert (straight / "samples" / "iter_0000018.png").read_bytes() == (
        resumed / "samples" / "iter_0000018.png"
    ).read_bytes()


def test_bf16_mixed_precision_trains_without_nans(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(
        compose_cfg(
            SG,
            "trainer.precision=bf16-mixed",
            "trainer.max_steps=5",
            "model.r1_gamma=1.0",
            "trainer.log_every_n_steps=1",
            run_dir=out,
        )
    )
    last = state(out / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    with open(out / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    assert all(
        float(r["loss/d"]) == float(r["loss/d"]) and float(r["loss/g"]) == float(r["loss/g"]) for r in rows
    )


def test_checkpoint_of_the_other_model_is_refused(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "dcgan"
    run(compose_cfg("trainer.max_steps=1", run_dir=out))
    with pytest.raises(
        CheckpointError, match="holds a GANModule checkpoint, but this run's model is StyleGAN"
    ):
        run(compose_cfg(SG, f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", run_dir=tmp_path / "sg"))


def test_module_builds_from_the_composed_config(compose_cfg) -> None:
    model = build_module(compose_cfg(SG, "data.resolution=64", "data.channels=3"))
    assert isinstance(model, StyleGAN)
    assert model.G.num_ws == 10 and model.D.resolution == 64 and model.G.channels == 3


# StyleGAN2-ADA's networks for --cfg=cifar (32x32 RGB, channel_base 32768, map 2, D "orig"), counted
# once from stylegan2-ada-pytorch d72cc7d by scripts/check_stylegan_reference.py
CIFAR_REFERENCE_PARAMS = {0: (19_947_539, 20_720_641), 10: (20_215_315, 23_089_664)}


@pytest.mark.parametrize("num_classes", [10, 0])
def test_cifar10_experiment_is_the_references_cifar_config(
    compose_cfg, tmp_path: Path, num_classes: int
) -> None:
    overrides = [] if num_classes else ["data.conditional=false"]
    cfg = compose_cfg("experiment=stylegan2_cifar10", f"data.root={tmp_path}", *overrides, bare=True)
    assert cfg.data.conditional == (num_classes > 0)
    if num_classes:
        cfg.data.num_classes = num_classes  # as train.py reads it from the dataset
    model = build_module(cfg)
    assert isinstance(model, StyleGAN) and model.D.architecture == "orig"
    assert not any(".skip." in k for k in model.D.state_dict())
    g_params, d_params = (sum(p.numel() for p in net.parameters()) for net in (model.G, model.D))
    assert (g_params, d_params) == CIFAR_REFERENCE_PARAMS[num_classes]
    assert (model.pl_weight, model.style_mixing_prob, model.r1_gamma) == (0.0, 0.0, 0.01)
    assert (model.ema_kimg, model.ema_rampup, model.G.mapping.layers.__len__()) == (500.0, 0.05, 2)
    assert model.D.epilogue.mbstd.group_size == 32 and cfg.data.batch_size == 64
    assert cfg.trainer.max_steps * cfg.data.batch_size == 100_000 * 1000  # kimg 100000
    assert cfg.data.hflip and cfg.augment._target_.endswith("AdaptiveAugment")
    opt_d, opt_g = model.configure_optimizers()  # the reference's corrected Adam, path length off
    assert opt_g.defaults["lr"] == pytest.approx(0.002)
    assert opt_g.defaults["betas"] == pytest.approx((0.0, 0.99**0.8))
    assert opt_d.defaults["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert opt_d.defaults["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))

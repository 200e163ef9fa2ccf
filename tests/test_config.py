"""The composed config: defaults, composition of overrides, and one-line errors for bad values."""

import re

import pytest
from omegaconf import OmegaConf

from gan_lab.config import validate
from gan_lab.errors import ConfigError


def test_defaults(compose_cfg) -> None:
    cfg = compose_cfg()
    assert cfg.model._target_ == "gan_lab.modules.GANModule"
    assert cfg.data._target_ == "gan_lab.data.FashionMNISTDataModule"
    assert cfg.loss._target_ == "gan_lab.losses.NonSaturatingLoss"
    assert cfg.run_name == "dcgan_fashion_mnist"
    validate(cfg)


def test_default_logger_is_offline_wandb() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from gan_lab.train import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train")
    assert cfg.logger.wandb._target_.endswith("WandbLogger")
    assert cfg.logger.wandb.offline is True


def test_resolution_and_channels_flow_from_data_to_model(compose_cfg) -> None:
    cfg = compose_cfg("data.resolution=128", "data.channels=3")
    for net in (cfg.model.generator, cfg.model.discriminator):
        assert net.resolution == 128 and net.channels == 3


def test_d_steps_are_loop_configuration_read_by_the_data(compose_cfg) -> None:
    """WGAN-GP's config sets model.d_steps=5; the data layer serves that many batches through the
    config's interpolation (nothing copies it at run time)."""
    assert compose_cfg().data.batches_per_iteration == 1
    cfg = compose_cfg("loss=wgan_gp")
    assert cfg.model.d_steps == 5 and cfg.data.batches_per_iteration == 5
    assert compose_cfg("loss=wgan_gp", "model.d_steps=2").data.batches_per_iteration == 2
    assert compose_cfg("loss=hinge", "model.d_steps=3").data.batches_per_iteration == 3


def test_networks_and_optimizers_are_config_nodes(compose_cfg) -> None:
    """model.generator/discriminator are network nodes; the optimizers are partials a user swaps
    from the command line."""
    from gan_lab.training import build_module

    cfg = compose_cfg("model.optimizer_d._target_=torch.optim.AdamW", "model.optimizer_d.weight_decay=0.1")
    validate(cfg)
    module = build_module(cfg)
    assert type(module.G).__name__ == "DCGANGenerator" and type(module.D).__name__ == "DCGANDiscriminator"
    opt_d, opt_g = module.configure_optimizers()
    assert type(opt_d).__name__ == "AdamW" and opt_d.defaults["weight_decay"] == 0.1
    assert type(opt_g).__name__ == "Adam" and opt_g.defaults["lr"] == 2e-4
    sgd = build_module(compose_cfg("model.optimizer_g._target_=torch.optim.SGD", "~model.optimizer_g.betas"))
    assert type(sgd.configure_optimizers()[1]).__name__ == "SGD"


def test_overrides_compose(compose_cfg) -> None:
    cfg = compose_cfg(
        "seed=7",
        "data.batch_size=32",
        "model.optimizer_g.lr=1e-4",
        "model.optimizer_d.lr=4e-4",
        "trainer.max_steps=123",
        "logger=none",
    )
    assert (cfg.seed, cfg.data.batch_size, cfg.trainer.max_steps) == (7, 32, 123)
    assert (cfg.model.optimizer_g.lr, cfg.model.optimizer_d.lr) == (1e-4, 4e-4)
    assert cfg.model.seed == 7 and cfg.data.seed == 7
    assert not cfg.logger


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.resolution=48", "data.resolution=48"),
        ("data.resolution=16", "data.resolution=16"),
        ("data.channels=2", "data.channels=2"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("model.optimizer_g.lr=-0.001", "model.optimizer_g.lr=-0.001"),
        ("model.optimizer_d.lr=0", "model.optimizer_d.lr=0"),
        ("model.optimizer_d.betas=[0.5,1.5]", "model.optimizer_d.betas"),
        ("model.discriminator.norm=layer", "model.discriminator.norm='layer'"),
        ("model.generator._target_=os.system", "model.generator._target_='os.system'"),
        ("model.d_steps=0", "model.d_steps=0"),
        ("model.ema_kimg=-1", "model.ema_kimg=-1"),
        ("trainer.max_steps=0", "trainer.max_steps=0"),
        ("seed=-3", "seed=-3"),
        ("callbacks.samples.every_n_iters=0", "callbacks.samples.every_n_iters=0"),
        ("trainer.use_distributed_sampler=true", "trainer.use_distributed_sampler"),
    ],
)
def test_bad_values_are_named(compose_cfg, override: str, named: str) -> None:
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.style_mixing_prob=1.5", "model.style_mixing_prob=1.5"),
        ("model.r1_gamma=-1", "model.r1_gamma=-1"),
        ("model.pl_interval=0", "model.pl_interval=0"),
        (
            "model.discriminator.mbstd_group=5",
            "data.batch_size=16 is not divisible by model.discriminator.mbstd_group=5",
        ),
        ("model.generator.map_layers=0", "model.generator.map_layers=0"),
    ],
)
def test_bad_stylegan_values_are_named(compose_cfg, override: str, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        validate(compose_cfg("model=stylegan", override))


def test_stylegan_defaults_validate(compose_cfg) -> None:
    validate(compose_cfg("model=stylegan"))


@pytest.mark.parametrize(
    ("experiment", "resolution", "model"),
    [
        ("dcgan_fashion_mnist_64", 64, "GANModule"),
        ("stylegan_fashion_mnist_32", 32, "StyleGAN"),
        ("stylegan_celeba_64", 64, "StyleGAN"),
        ("stylegan_ffhq_256", 256, "StyleGAN"),
        ("stylegan2_cifar10", 32, "StyleGAN"),
    ],
)
def test_experiments_compose_and_build(
    compose_cfg, tmp_path, experiment: str, resolution: int, model: str
) -> None:
    from gan_lab.training import build_module

    cfg = compose_cfg(f"experiment={experiment}", f"data.root={tmp_path}", bare=True)
    validate(cfg)
    if cfg.data.conditional:  # train.py reads the classes from the dataset (CIFAR-10's 10)
        cfg.data.num_classes = 10
    module = build_module(cfg)
    assert type(module).__name__ == model
    assert module.G.resolution == resolution
    assert module.num_classes == (10 if cfg.data.conditional else 0)


def test_image_folder_needs_a_root(compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"data.root is required: data.root=DIR"):
        validate(compose_cfg("data=image_folder", bare=True))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["loss=wgan_gp", "loss.gp_lambda=-1"], "loss.gp_lambda=-1"),
        (["augment=ada", "augment.p=2"], "augment.p=2"),
        (["augment=ada", "augment.interval=0"], "augment.interval=0"),
        (["augment=diffaug", "augment.policy=[color,blur]"], "augment.policy=['color', 'blur']"),
        (["model.r2_gamma=-1"], "model.r2_gamma=-1"),
    ],
)
def test_bad_loss_and_augment_values_are_named(compose_cfg, overrides: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        validate(compose_cfg(*overrides))


def test_loss_and_augment_groups_compose(compose_cfg) -> None:
    cfg = compose_cfg("loss=wgan_gp", "augment=ada")
    assert cfg.loss._target_.endswith("WGANGPLoss") and cfg.model.d_steps == 5 and cfg.loss.gp_lambda == 10
    assert cfg.model.discriminator.norm == "none"  # the per-sample penalty: no batch norm in D
    assert compose_cfg().model.discriminator.norm == "batch"
    assert cfg.augment._target_.endswith("AdaptiveAugment") and cfg.augment.target == 0.6
    assert compose_cfg().augment is None  # augment=none
    validate(cfg)


@pytest.mark.parametrize(
    ("overrides", "sizes"),
    [
        (["model=dcgan"], {"generator.width": 8, "discriminator.width": 8, "num_samples": 16}),
        (
            ["model=stylegan"],
            {
                "generator.z_dim": 32,
                "generator.w_dim": 32,
                "generator.channel_base": 128,
                "discriminator.channel_base": 128,
                "generator.channel_max": 16,
                "num_samples": 16,
            },
        ),
        # the debug option applies after an experiment's settings
        (
            ["experiment=stylegan_fashion_mnist_32"],
            {"generator.channel_base": 128, "generator.channel_max": 16},
        ),
    ],
)
def test_debug_tiny_makes_any_model_small(compose_cfg, overrides: list[str], sizes: dict[str, int]) -> None:
    """`python train.py debug=tiny`: the selected model's tiny networks, CSV logger, no FID/KID,
    batches of 16 on the CPU; without it, the model keeps its own sizes."""
    cfg = compose_cfg(*overrides, "debug=tiny", bare=True)  # bare: not the tests' own small settings
    assert {k: OmegaConf.select(cfg.model, k) for k in sizes} == sizes
    assert list(cfg.logger) == ["csv"] and cfg.metrics is None
    assert cfg.data.batch_size == 16 and cfg.trainer.accelerator == "cpu"
    assert cfg.callbacks.model_summary is None and cfg.callbacks.progress.refresh_rate == 0
    validate(cfg)
    plain = compose_cfg(*overrides, bare=True)
    assert all(OmegaConf.select(plain.model, k) != v for k, v in sizes.items() if k != "num_samples")


def test_command_line_overrides_win_over_debug_tiny(compose_cfg) -> None:
    cfg = compose_cfg("debug=tiny", "logger=wandb", "metrics=default", "model.generator.width=16", bare=True)
    assert list(cfg.logger) == ["wandb"] and cfg.metrics is not None and cfg.model.generator.width == 16

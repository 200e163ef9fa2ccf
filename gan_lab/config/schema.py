# ruff: noqa: RUF009  (setting() returns dataclasses.field(...))
"""Typed structured configs: every user-facing key of every config group, its type and its rule.

One dataclass per group option (``conf/<group>/<option>.yaml``), chosen by the node's
``_target_``; each field has the type OmegaConf checks and, where a range or a set of choices
applies, one ``Rule`` (``gan_lab.config.rules``) as its metadata. The schemas are applied
inside the task by ``gan_lab.config.validate``, never at composition, so a bad value is one line
and exit status 2 (``refused`` in a sweep), not a Hydra composition error. (They are not put in
Hydra's ConfigStore: nothing composes them, and Hydra copies the whole store for every config
group it lists, which made ``python train.py --help`` 3-4 s slower.)

This module imports nothing else of the lab: the lab's classes import their choices from here.
"""

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import MISSING

from gan_lab.config.rules import (
    ANY_NUMBER,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    PENALTY,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    SEED,
    Rule,
    at_least,
    between,
    is_int,
    is_number,
    is_power_of_two,
    one_of,
    optional,
    subset_of,
)

# choices the lab's classes share with the schema (one list each)
DIFFAUG_POLICIES = ("color", "translation", "cutout")
D_NORMS = ("batch", "none")
FEATURES = ("auto", "domain", "inception")
MONITORS = ("fid", "kid")
EXTRA_METRICS = ("is", "pr", "ppl")  # Inception Score, precision/recall, perceptual path length
PPL_SPACES = ("auto", "w", "z")
PPL_SAMPLINGS = ("end", "full")
PPL_DISTANCES = ("auto", "lpips", "domain")
MNIST_SPLITS = ("train", "test")
CIFAR_SPLITS = ("train", "test")
CELEBA_SPLITS = ("train", "valid", "test", "all")
FOLDER_SPLITS = ("train",)
GENERATE_MODES = ("grid", "interpolate", "style_mix", "seeds")
NOISE = ("const", "random", "none")
EXPORT_FORMATS = ("torchscript", "export", "state_dict")
EXPORT_NOISE = ("const", "none")  # an exported file is deterministic
MIXES = ("coarse", "middle", "fine")
PROJECT_MODES = ("w", "wplus")
PROJECT_DISTANCES = ("auto", "lpips", "pixel")
CACHE_VERIFY = ("stat", "hash")
MIN_RESOLUTION = 32


def setting(
    default: Any = MISSING,
    rule: Rule | None = None,
    *,
    expected: str = "",
    nodes: dict[str, type["Schema"]] | None = None,
) -> Any:
    """A schema field: its default (MISSING: required), its rule, and what a wrong type is told;
    ``nodes``: the field holds a node checked by the schema of ``nodes`` with its ``_target_``."""
    metadata = {"rule": rule, "expected": expected or (rule.expected if rule else ""), "nodes": nodes}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


RESOLUTION = Rule(
    lambda v: is_power_of_two(v) and v >= MIN_RESOLUTION,
    f"a power of two >= {MIN_RESOLUTION} (32, 64, 128, 256, ...)",
)
CHANNELS = one_of(1, 3)
LR = POSITIVE
BETAS = Rule(
    lambda v: len(v) == 2 and all(is_number(b) and 0 <= b < 1 for b in v),
    "two numbers in [0, 1), e.g. [0.5, 0.999]",
)
EMA_KIMG = at_least(0, what="a number >= 0 (0 disables the EMA)")
EMA_RAMPUP = optional(POSITIVE)
AT_LEAST_TWO = at_least(2, integer=True, what="an integer >= 2")
DEVICE = Rule(
    lambda v: isinstance(v, str) and bool(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v)),
    "auto, cpu, cuda, cuda:N or mps",
)


def target(name: str) -> Any:
    return setting(name, one_of(name))


def splits(*choices: str) -> Any:
    return setting("train", one_of(*choices))


class Schema:
    """Base of the schemas. ``OPEN``: keys beyond the schema pass to the target when its
    constructor takes them (third-party classes with many options: Lightning, W&B)."""

    OPEN: ClassVar[bool] = False


# ---------------------------------------------------------------------------- top level, paths
@dataclass
class PathsConfig(Schema):
    data_dir: str = setting()
    log_dir: str = setting()
    output_dir: str = setting()
    cache_dir: str = setting()


@dataclass
class TrainTopConfig(Schema):
    """The top-level keys of ``conf/train.yaml`` (the groups have their own schemas)."""

    task_name: str = setting("train")
    run_name: str = setting(MISSING, Rule(lambda v: bool(v) and "/" not in v, "a non-empty name without '/'"))
    tags: list[str] = setting([], expected="a list of strings, e.g. [dcgan,baseline]")
    seed: int = setting(MISSING, SEED)
    ckpt_path: str | None = setting(None, expected="a checkpoint path or null")


# ---------------------------------------------------------------------------- data
FOLLOWS_D_STEPS = "a positive integer (it follows model.d_steps, the D steps per iteration)"


@dataclass
class DataConfig(Schema):
    _target_: str = setting()
    root: str = setting(MISSING, expected="DIR (the folder of the dataset)")
    resolution: int = setting(MISSING, RESOLUTION)
    channels: int = setting(MISSING, CHANNELS)
    batch_size: int = setting(MISSING, POSITIVE_INT)
    batches_per_iteration: int = setting(
        1,
        at_least(
            1, integer=True, what="a positive integer (it follows model.d_steps: D steps per iteration)"
        ),
    )
    conditional: bool = setting(False)
    num_classes: int | None = setting(
        None, optional(NON_NEGATIVE_INT), expected="null (train.py sets it from the dataset)"
    )
    split: str = splits("train")
    seed: int = setting(0, SEED)
    shuffle: bool = setting(True)
    hflip: bool = setting(False)

    SPLITS: ClassVar[tuple[str, ...]] = FOLDER_SPLITS
    CLASSES: ClassVar[bool] = True  # its labels are classes (data.conditional=true is possible)


@dataclass
class MNISTConfig(DataConfig):
    _target_: str = target("gan_lab.data.MNISTDataModule")
    split: str = splits(*MNIST_SPLITS)
    search_dirs: list[str] = setting([], expected="a list of folders")
    download: bool = setting(True)

    SPLITS: ClassVar[tuple[str, ...]] = MNIST_SPLITS


@dataclass
class FashionMNISTConfig(MNISTConfig):
    _target_: str = target("gan_lab.data.FashionMNISTDataModule")


@dataclass
class CIFAR10Config(DataConfig):
    _target_: str = target("gan_lab.data.CIFAR10DataModule")
    split: str = splits(*CIFAR_SPLITS)
    download: bool = setting(True)

    SPLITS: ClassVar[tuple[str, ...]] = CIFAR_SPLITS


IN_MEMORY = one_of("auto", True, False)


@dataclass
class FileDataConfig(DataConfig):
    in_memory: Any = setting("auto", IN_MEMORY)
    memory_budget_gb: float = setting(4.0, at_least(0, what="a number of GB >= 0"))
    cache_dir: str = setting("~/.cache/gan_lab/datasets")
    num_workers: int | None = setting(None, optional(NON_NEGATIVE_INT))
    cache_verify: str = setting("stat", one_of(*CACHE_VERIFY))


@dataclass
class ImageFolderConfig(FileDataConfig):
    _target_: str = target("gan_lab.data.ImageFolderDataModule")


@dataclass
class CelebAConfig(FileDataConfig):
    _target_: str = target("gan_lab.data.CelebADataModule")
    split: str = splits(*CELEBA_SPLITS)
    crop: int | None = setting(108, optional(POSITIVE_INT), expected="a positive number of pixels or null")
    download: bool = setting(True)

    SPLITS: ClassVar[tuple[str, ...]] = CELEBA_SPLITS
    CLASSES: ClassVar[bool] = False  # identities and attributes, not classes


# ---------------------------------------------------------------------------- networks, optimizers
@dataclass
class NetworkConfig(Schema):
    """Settings every network node of ``model.generator`` / ``model.discriminator`` has."""

    _target_: str = setting()
    resolution: int = setting(MISSING, RESOLUTION)
    channels: int = setting(MISSING, CHANNELS)
    num_classes: int | None = setting(
        None, optional(NON_NEGATIVE_INT), expected="a number of classes >= 0 (set from the dataset)"
    )


@dataclass
class DCGANGeneratorConfig(NetworkConfig):
    _target_: str = target("gan_lab.nn.dcgan.DCGANGenerator")
    z_dim: int = setting(100, POSITIVE_INT)
    width: int = setting(64, POSITIVE_INT)
    max_width: int = setting(512, POSITIVE_INT)
    embed_dim: int = setting(32, POSITIVE_INT)


@dataclass
class DCGANDiscriminatorConfig(NetworkConfig):
    _target_: str = target("gan_lab.nn.dcgan.DCGANDiscriminator")
    width: int = setting(64, POSITIVE_INT)
    max_width: int = setting(512, POSITIVE_INT)
    norm: str = setting("batch", one_of(*D_NORMS))


@dataclass
class StyleGANGeneratorConfig(NetworkConfig):
    _target_: str = target("gan_lab.nn.stylegan.StyleGANGenerator")
    z_dim: int = setting(512, POSITIVE_INT)
    w_dim: int = setting(512, POSITIVE_INT)
    map_layers: int = setting(2, POSITIVE_INT)
    channel_base: int = setting(16384, POSITIVE_INT)
    channel_max: int = setting(512, POSITIVE_INT)
    conv_clamp: float | None = setting(256.0, optional(POSITIVE))


@dataclass
class StyleGANDiscriminatorConfig(NetworkConfig):
    """``architecture``: StyleGAN2-ADA's D blocks, ``resnet`` (its default), ``orig`` (no residual
    skips: its ``--cfg=cifar``) or ``skip`` (a fromRGB of the downsampled image at every block)."""

    ARCHITECTURES: ClassVar[tuple[str, ...]] = ("orig", "skip", "resnet")

    _target_: str = target("gan_lab.nn.stylegan.StyleGANDiscriminator")
    architecture: str = setting("resnet", one_of(*ARCHITECTURES))
    channel_base: int = setting(16384, POSITIVE_INT)
    channel_max: int = setting(512, POSITIVE_INT)
    conv_clamp: float | None = setting(256.0, optional(POSITIVE))
    mbstd_group: int = setting(4, POSITIVE_INT)
    mbstd_channels: int = setting(1, NON_NEGATIVE_INT)
    cmap_dim: int | None = setting(None, optional(POSITIVE_INT))


@dataclass
class OptimizerConfig(Schema):
    """An optimizer node: ``_partial_: true`` (the module passes the parameters when it builds it).
    ``OPEN``: the optimizer's other constructor arguments pass through (checked by its signature)."""

    OPEN: ClassVar[bool] = True

    _target_: str = setting()
    _partial_: bool = setting(
        True, one_of(True), expected="true (the module passes its network's parameters)"
    )
    lr: float = setting(MISSING, LR)
    weight_decay: float = setting(0.0, NON_NEGATIVE)


@dataclass
class AdamConfig(OptimizerConfig):
    _target_: str = target("torch.optim.Adam")
    betas: list[float] = setting([0.9, 0.999], BETAS)
    eps: float = setting(1e-8, POSITIVE)
    fused: bool | None = setting(None)  # one fused kernel per step (null: PyTorch's choice)


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = target("torch.optim.AdamW")
    weight_decay: float = setting(0.01, NON_NEGATIVE)


@dataclass
class SGDConfig(OptimizerConfig):
    _target_: str = target("torch.optim.SGD")
    momentum: float = setting(0.0, between(0, 1, "a number in [0, 1)", open_high=True))
    fused: bool | None = setting(None)  # one fused kernel per step (null: PyTorch's choice)


@dataclass
class RMSpropConfig(OptimizerConfig):
    _target_: str = target("torch.optim.RMSprop")
    alpha: float = setting(0.99, between(0, 1, "a number in [0, 1)", open_high=True))
    eps: float = setting(1e-8, POSITIVE)


# nodes inside a group node, each chosen by its _target_ (a field's metadata names its table)
NETWORKS: dict[str, type[Schema]] = {
    "dcgan_generator": DCGANGeneratorConfig,
    "dcgan_discriminator": DCGANDiscriminatorConfig,
    "stylegan_generator": StyleGANGeneratorConfig,
    "stylegan_discriminator": StyleGANDiscriminatorConfig,
}
OPTIMIZERS: dict[str, type[Schema]] = {
    "adam": AdamConfig,
    "adamw": AdamWConfig,
    "sgd": SGDConfig,
    "rmsprop": RMSpropConfig,
}


def node(table: dict[str, type[Schema]], what: str) -> Any:
    """A required field holding a node whose schema is the one of ``table`` with its ``_target_``."""
    return setting(MISSING, expected=f"{what} node with a _target_", nodes=table)


# ---------------------------------------------------------------------------- model
@dataclass
class GANConfig(Schema):
    """Settings of the GAN loop (``gan_lab.modules.gan.GANModule``): the networks and optimizers
    as nodes, the loop's own settings as keys."""

    _target_: str = target("gan_lab.modules.GANModule")
    generator: Any = node(NETWORKS, "a generator")
    discriminator: Any = node(NETWORKS, "a discriminator")
    optimizer_g: Any = node(OPTIMIZERS, "an optimizer")
    optimizer_d: Any = node(OPTIMIZERS, "an optimizer")
    d_steps: int = setting(1, POSITIVE_INT)
    ema_kimg: float = setting(10.0, EMA_KIMG)
    ema_rampup: float | None = setting(0.05, EMA_RAMPUP)
    r1_gamma: float = setting(0.0, PENALTY)
    r2_gamma: float = setting(0.0, PENALTY)
    d_reg_interval: int = setting(16, POSITIVE_INT)
    num_samples: int = setting(64, POSITIVE_INT)
    seed: int = setting(0, SEED)
    channels_last: bool = setting(False)
    compile: bool = setting(False)


@dataclass
class StyleGANConfig(GANConfig):
    _target_: str = target("gan_lab.modules.StyleGAN")
    style_mixing_prob: float = setting(0.9, PROBABILITY)
    pl_weight: float = setting(2.0, PENALTY)
    pl_interval: int = setting(4, POSITIVE_INT)
    pl_decay: float = setting(0.01, between(0, 1, open_low=True))
    pl_batch_shrink: int = setting(2, POSITIVE_INT)
    sample_psi: float = setting(1.0, ANY_NUMBER, expected="a number (1 = no truncation)")


# ---------------------------------------------------------------------------- loss, augment
@dataclass
class NonSaturatingConfig(Schema):
    _target_: str = target("gan_lab.losses.NonSaturatingLoss")


@dataclass
class HingeConfig(Schema):
    _target_: str = target("gan_lab.losses.HingeLoss")


@dataclass
class LSGANConfig(Schema):
    _target_: str = target("gan_lab.losses.LSGANLoss")


@dataclass
class WGANGPConfig(Schema):
    _target_: str = target("gan_lab.losses.WGANGPLoss")
    gp_lambda: float = setting(10.0, NON_NEGATIVE)


@dataclass
class DiffAugmentConfig(Schema):
    _target_: str = target("gan_lab.augment.DiffAugment")
    policy: list[str] = setting(list(DIFFAUG_POLICIES), subset_of(DIFFAUG_POLICIES, "[color,translation]"))


@dataclass
class AdaConfig(Schema):
    MULTIPLIER: ClassVar[Rule] = at_least(0, what="a probability multiplier >= 0 (0 turns it off)")

    _target_: str = target("gan_lab.augment.AdaptiveAugment")
    target: float = setting(
        0.6, between(-1, 1, "a number in (-1, 1), e.g. 0.6", open_low=True, open_high=True)
    )
    interval: int = setting(4, POSITIVE_INT)
    kimg: float = setting(500.0, POSITIVE)
    p: float = setting(0.0, PROBABILITY)
    adaptive: bool = setting(True)
    # groups, the letters of StyleGAN2-ADA's --augpipe (bgc on, f n c off)
    blit: bool = setting(True)
    geom: bool = setting(True)
    color: bool = setting(True)
    imgfilter: bool = setting(False)
    noise: bool = setting(False)
    cutout: bool = setting(False)
    # probability multipliers: a transform applies to an image with probability p * multiplier
    xflip: float = setting(1.0, MULTIPLIER)
    rotate90: float = setting(1.0, MULTIPLIER)
    translate: float = setting(1.0, MULTIPLIER)
    scale: float = setting(1.0, MULTIPLIER)
    rotate: float = setting(1.0, MULTIPLIER)
    aniso: float = setting(1.0, MULTIPLIER)
    xfrac: float = setting(1.0, MULTIPLIER)
    brightness: float = setting(1.0, MULTIPLIER)
    contrast: float = setting(1.0, MULTIPLIER)
    lumaflip: float = setting(1.0, MULTIPLIER)
    hue: float = setting(1.0, MULTIPLIER)
    saturation: float = setting(1.0, MULTIPLIER)
    # strengths (StyleGAN2-ADA's defaults)
    translate_max: float = setting(0.125, between(0, 1, "a fraction of the side in [0, 1], e.g. 0.125"))
    scale_std: float = setting(0.2, NON_NEGATIVE)
    rotate_max: float = setting(1.0, between(0, 1, "a fraction of a half turn in [0, 1], e.g. 1"))
    aniso_std: float = setting(0.2, NON_NEGATIVE)
    xfrac_std: float = setting(0.125, NON_NEGATIVE)
    brightness_std: float = setting(0.2, NON_NEGATIVE)
    contrast_std: float = setting(0.5, NON_NEGATIVE)
    hue_max: float = setting(1.0, between(0, 1, "a fraction of a half turn in [0, 1], e.g. 1"))
    saturation_std: float = setting(1.0, NON_NEGATIVE)
    imgfilter_bands: list[float] = setting(
        [1.0, 1.0, 1.0, 1.0],
        Rule(
            lambda v: isinstance(v, list | tuple) and len(v) == 4 and all(is_number(b) and b >= 0 for b in v),
            "four probability multipliers >= 0, lowest band first, e.g. [1,1,1,1]",
        ),
    )
    imgfilter_std: float = setting(1.0, NON_NEGATIVE)
    noise_std: float = setting(0.1, NON_NEGATIVE)
    cutout_size: float = setting(0.5, between(0, 1, "a fraction of the side in [0, 1], e.g. 0.5"))


# ---------------------------------------------------------------------------- trainer
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")
# Lightning's float32 and mixed precisions (16 and bf16 are its aliases of the mixed ones). The
# "true" half and double precisions (64-true, 16-true, bf16-true) cast the networks but not the
# latents, labels and images the loop and its callbacks make, so they are refused, not a traceback.
PRECISIONS = ("32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16")


def _devices_ok(v: Any) -> bool:
    if is_int(v):
        return v > 0 or v == -1
    if isinstance(v, str):
        return v == "auto" or (bool(re.fullmatch(r"-1|\d+(,\d+)*,?", v)) and v != "0")
    return isinstance(v, list | tuple) and len(v) > 0 and all(is_int(d) and d >= 0 for d in v)


DEVICES = Rule(_devices_ok, "a positive number of devices, -1, auto or a list of indices")
PRECISION = Rule(
    lambda v: str(v) in PRECISIONS,
    "one of " + ", ".join(PRECISIONS) + " (the lab trains float32 networks, with optional mixed precision)",
)
MAX_STEPS = Rule(
    lambda v: is_int(v) and (v > 0 or v == -1), "a positive number of iterations (or -1 for no limit)"
)
SAVE_TOP_K = at_least(-1, integer=True, what="an integer >= -1 (-1 keeps every snapshot)")


@dataclass
class TrainerConfig(Schema):
    OPEN: ClassVar[bool] = True

    _target_: str = target("lightning.pytorch.Trainer")
    default_root_dir: str | None = setting(None)
    accelerator: str = setting("auto", one_of(*ACCELERATORS))
    devices: Any = setting(1, DEVICES)
    num_nodes: int = setting(1, POSITIVE_INT)
    strategy: str = setting("auto")
    precision: Any = setting("32-true", PRECISION)
    max_steps: int = setting(MISSING, MAX_STEPS)
    max_epochs: int | None = setting(-1, optional(at_least(-1, integer=True, what="an integer >= -1")))
    log_every_n_steps: int = setting(50, POSITIVE_INT)
    num_sanity_val_steps: int = setting(0, at_least(-1, integer=True, what="an integer >= -1"))
    deterministic: Any = setting(False, one_of(True, False, "warn"))
    use_distributed_sampler: bool = setting(
        False,
        one_of(False),
        expected="false (the datamodules shard each batch across devices themselves, in an order "
        "that resumes exactly)",
    )


# ---------------------------------------------------------------------------- callbacks
@dataclass
class IterationCheckpointConfig(Schema):
    OPEN: ClassVar[bool] = True

    _target_: str = target("gan_lab.callbacks.IterationCheckpoint")
    dirpath: str | None = setting(None)
    filename: str | None = setting(None)
    every_n_train_steps: int = setting(500, POSITIVE_INT)
    save_last: Any = setting(True, optional(one_of(True, False, "link")))
    monitor: str | None = setting(None)
    mode: str = setting("min", one_of("min", "max"))
    save_top_k: int = setting(1, SAVE_TOP_K)
    auto_insert_metric_name: bool = setting(True)


@dataclass
class SampleGridConfig(Schema):
    _target_: str = target("gan_lab.callbacks.SampleGrid")
    dirpath: str = setting()
    every_n_iters: int = setting(500, POSITIVE_INT)
    nrow: int | None = setting(None, optional(POSITIVE_INT))


@dataclass
class ProgressConfig(Schema):
    _target_: str = target("gan_lab.callbacks.GANProgressBar")
    refresh_rate: int = setting(10, at_least(0, integer=True, what="an integer >= 0 (0 hides the bar)"))
    leave: bool = setting(True)


@dataclass
class IterationLogConfig(Schema):
    _target_: str = target("gan_lab.callbacks.IterationLog")
    every_n_iters: int = setting(100, POSITIVE_INT)


@dataclass
class DivergenceConfig(Schema):
    _target_: str = target("gan_lab.callbacks.DivergenceGuard")
    check_every_n_iters: int = setting(10, POSITIVE_INT)


@dataclass
class ReplicaCheckConfig(Schema):
    _target_: str = target("gan_lab.callbacks.ReplicaCheck")
    every_n_iters: int = setting(0, at_least(0, integer=True, what="an integer >= 0 (0: only at the end)"))
    rtol: float = setting(1e-9, NON_NEGATIVE)


@dataclass
class RichModelSummaryConfig(Schema):
    OPEN: ClassVar[bool] = True

    _target_: str = target("lightning.pytorch.callbacks.RichModelSummary")
    max_depth: int = setting(1, at_least(-1, integer=True, what="an integer >= -1 (-1: all layers)"))


# ---------------------------------------------------------------------------- metrics
@dataclass
class QualityConfig(Schema):
    _target_: str = target("gan_lab.callbacks.QualityCallback")
    features: str = setting("auto", one_of(*FEATURES))
    every_n_iters: int = setting(1000, POSITIVE_INT)
    num_real: int = setting(10000, AT_LEAST_TWO)
    num_fake: int = setting(10000, AT_LEAST_TWO)
    batch_size: int = setting(100, AT_LEAST_TWO)
    split: str = setting("train", expected="a split of the dataset")
    monitor: str = setting("fid", one_of(*MONITORS))
    kid_subsets: int = setting(100, POSITIVE_INT)
    kid_subset_size: int = setting(1000, AT_LEAST_TWO)
    floor: bool = setting(True)
    inception_weights: str | None = setting(None, expected="a path to the Inception weights or null")
    download_weights: bool = setting(True)
    cache_dir: str = setting("~/.cache/gan_lab")
    dirpath: str = setting(".")
    seed: int = setting(0, SEED)
    # conditional models: also the intra-class FID (a second pass of fakes, one FID per class)
    per_class: bool = setting(False, Rule(lambda v: isinstance(v, bool), "true or false"))
    # more of the standard set (gan_lab/metrics/extra.py, ppl.py): any of is, pr, ppl
    extra: list[str] = setting([], subset_of(EXTRA_METRICS, "[is,pr,ppl]"))
    is_splits: int = setting(10, POSITIVE_INT)
    pr_k: int = setting(3, POSITIVE_INT)
    ppl_num_samples: int = setting(2000, AT_LEAST_TWO)
    ppl_space: str = setting("auto", one_of(*PPL_SPACES))
    ppl_sampling: str = setting("end", one_of(*PPL_SAMPLINGS))
    ppl_epsilon: float = setting(1e-4, between(0, 0.1, "a number in (0, 0.1]", open_low=True))
    ppl_crop: bool = setting(False, Rule(lambda v: isinstance(v, bool), "true or false"))
    ppl_distance: str = setting("auto", one_of(*PPL_DISTANCES))
    vgg16_weights: str | None = setting(None, expected="a path to torchvision's vgg16-397923af.pth or null")


# ---------------------------------------------------------------------------- loggers
@dataclass
class WandbConfig(Schema):
    OPEN: ClassVar[bool] = True

    _target_: str = target("lightning.pytorch.loggers.WandbLogger")
    project: str | None = setting(None)
    name: str | None = setting(None)
    save_dir: str = setting(".")
    offline: bool = setting(True)
    log_model: Any = setting(False, one_of(True, False, "all"))
    tags: list[str] | None = setting(None, expected="a list of strings")
    job_type: str | None = setting(None)
    entity: str | None = setting(None)
    group: str | None = setting(None)
    notes: str | None = setting(None)
    id: str | None = setting(None)
    resume: str | None = setting(None)


@dataclass
class FolderLoggerConfig(Schema):
    """Lightning loggers that write files in ``<save_dir>/<name>/<version>`` (CSV, TensorBoard)."""

    OPEN: ClassVar[bool] = True

    save_dir: str = setting()
    name: str | None = setting("lightning_logs")
    version: str | None = setting(None)


@dataclass
class CSVConfig(FolderLoggerConfig):
    _target_: str = target("lightning.pytorch.loggers.CSVLogger")


@dataclass
class TensorBoardConfig(FolderLoggerConfig):
    """``conf/logger/tensorboard.yaml``: event files in ``<save_dir>/<name>/<version>``."""

    _target_: str = target("lightning.pytorch.loggers.TensorBoardLogger")
    default_hp_metric: bool = setting(True)
    log_graph: bool = setting(False)
    prefix: str = setting("")
    sub_dir: str | None = setting(None)


# ---------------------------------------------------------------------------- generate, evaluate
@dataclass
class GenerateConfig(Schema):
    """``conf/generate.yaml``."""

    task_name: str = setting("generate")
    ckpt: str = setting(MISSING, expected="PATH (a checkpoint of this lab)")
    mode: str = setting("grid", one_of(*GENERATE_MODES))
    seed: int = setting(0, SEED)
    num: int = setting(64, POSITIVE_INT)
    nrow: int | None = setting(None, optional(POSITIVE_INT))
    # the config key ``class`` (a Python keyword, so no field name): read through KEYS
    class_: int | None = setting(
        None, optional(NON_NEGATIVE_INT), expected="a class label (an integer >= 0) or null"
    )
    classes: list[int] | None = setting(
        None,
        Rule(
            lambda v: v is None or (len(v) > 0 and all(is_int(k) and k >= 0 for k in v)),
            "a non-empty list of class labels (integers >= 0), e.g. [0,1,2], or null",
        ),
        expected="a list of class labels (integers >= 0), e.g. [0,1,2], or null",
    )
    seeds: list[int] | None = setting(
        None,
        Rule(
            lambda v: v is None or (len(v) > 0 and all(is_int(s) and 0 <= s < 2**64 for s in v)),
            "a non-empty list of seeds (integers from 0 to 2^64 - 1), e.g. [1,2,3], or null",
        ),
    )
    psi: float = setting(1.0, ANY_NUMBER, expected="a number (1 = no truncation)")
    cutoff: int | None = setting(None, optional(NON_NEGATIVE_INT))
    noise: str = setting("const", one_of(*NOISE))
    keyframes: int = setting(4, AT_LEAST_TWO)
    steps: int = setting(12, POSITIVE_INT)
    fps: float = setting(12.0, POSITIVE)
    rows: int = setting(5, POSITIVE_INT)
    cols: int = setting(5, POSITIVE_INT)
    mix: str = setting("coarse", one_of(*MIXES))
    upscale: int = setting(1, POSITIVE_INT)
    device: str = setting("auto", DEVICE)
    paths: PathsConfig = field(default_factory=PathsConfig)

    KEYS: ClassVar[dict[str, str]] = {"class": "class_"}  # config key -> field, for keywords


@dataclass
class EvaluateConfig(Schema):
    """``conf/evaluate.yaml`` (``metrics`` follows ``conf/metrics/``)."""

    task_name: str = setting("evaluate")
    ckpt: str = setting(MISSING, expected="PATH (a checkpoint of this lab)")
    data_root: str | None = setting(None, expected="a folder or null")
    device: str = setting("auto", DEVICE)
    paths: PathsConfig = field(default_factory=PathsConfig)
    metrics: QualityConfig | None = None


@dataclass
class ExportConfig(Schema):
    """``conf/export.yaml``: a checkpoint's EMA generator as a file plain PyTorch loads
    (``scripts/export.py``, ``gan_lab/api.py``)."""

    task_name: str = setting("export")
    ckpt: str = setting(MISSING, expected="PATH (a checkpoint of this lab)")
    format: str = setting("torchscript", one_of(*EXPORT_FORMATS))
    out: str | None = setting(None, expected="a file path or null (the run folder)")
    psi: float = setting(1.0, ANY_NUMBER, expected="a number (1 = no truncation)")
    cutoff: int | None = setting(None, optional(NON_NEGATIVE_INT))
    noise: str = setting("const", one_of(*EXPORT_NOISE))
    device: str = setting("cpu", DEVICE)
    paths: PathsConfig = field(default_factory=PathsConfig)


@dataclass
class ProjectConfig(Schema):
    """``conf/project.yaml``: projection of an image into a StyleGAN checkpoint's w space
    (Karras et al. 2020, StyleGAN2, section 5; ``gan_lab/project.py``)."""

    task_name: str = setting("project")
    ckpt: str = setting(MISSING, expected="PATH (a StyleGAN checkpoint of this lab)")
    target: str = setting(MISSING, expected="PATH (an image file)")
    mode: str = setting("w", one_of(*PROJECT_MODES))
    steps: int = setting(1000, POSITIVE_INT)
    w_avg_samples: int = setting(10000, between(2, 1_000_000, "an integer from 2 to 1000000"))
    lr: float = setting(0.1, POSITIVE)
    lr_rampup: float = setting(0.05, between(0, 1))
    lr_rampdown: float = setting(0.25, between(0, 1))
    w_noise: float = setting(0.05, NON_NEGATIVE)
    w_noise_ramp: float = setting(0.75, between(0, 1, open_low=True))
    noise_reg: float = setting(1e5, PENALTY)
    # the loss; not named ``loss``, which is the training loss's config group (Hydra would take
    # ``loss=pixel`` for a choice of that group)
    distance: str = setting("auto", one_of(*PROJECT_DISTANCES))
    lpips_weights: str | None = setting(None, expected="PATH (VGG16 weights) or null")
    domain_weight: float = setting(0.1, PENALTY)
    # the config key ``class`` (a Python keyword, so no field name): read through KEYS
    class_: int | None = setting(
        None, optional(NON_NEGATIVE_INT), expected="a class label (an integer >= 0) or null"
    )
    gif_every: int = setting(10, NON_NEGATIVE_INT)
    fps: float = setting(10.0, POSITIVE)
    log_every: int = setting(100, POSITIVE_INT)
    seed: int = setting(0, SEED)
    device: str = setting("auto", DEVICE)
    paths: PathsConfig = field(default_factory=PathsConfig)

    KEYS: ClassVar[dict[str, str]] = {"class": "class_"}  # config key -> field, for keywords


# ---------------------------------------------------------------------------- the groups
# group -> option (conf/<group>/<option>.yaml) -> schema; a node's schema is found by its _target_
GROUPS: dict[str, dict[str, type[Schema]]] = {
    "data": {
        "fashion_mnist": FashionMNISTConfig,
        "mnist": MNISTConfig,
        "cifar10": CIFAR10Config,
        "celeba": CelebAConfig,
        "image_folder": ImageFolderConfig,
    },
    "model": {"dcgan": GANConfig, "stylegan": StyleGANConfig},
    "loss": {
        "nonsaturating": NonSaturatingConfig,
        "hinge": HingeConfig,
        "lsgan": LSGANConfig,
        "wgan_gp": WGANGPConfig,
    },
    "augment": {"diffaug": DiffAugmentConfig, "ada": AdaConfig},
    "trainer": {"default": TrainerConfig},
    "metrics": {"default": QualityConfig},
}
# groups whose entries are named nodes, each with its own _target_ (a user may add others)
ENTRIES: dict[str, dict[str, type[Schema]]] = {
    "callbacks": {
        "checkpoint": IterationCheckpointConfig,
        "samples": SampleGridConfig,
        "progress": ProgressConfig,
        "iteration_log": IterationLogConfig,
        "divergence": DivergenceConfig,
        "replica_check": ReplicaCheckConfig,
        "model_summary": RichModelSummaryConfig,
    },
    "logger": {"wandb": WandbConfig, "csv": CSVConfig, "tensorboard": TensorBoardConfig},
}
OPTIONAL_GROUPS = ("augment", "metrics", "logger", "callbacks")  # `none` options set them to null
# the tables of nodes inside group nodes (model.generator, model.optimizer_d, ...)
NODES: dict[str, dict[str, type[Schema]]] = {"networks": NETWORKS, "optimizers": OPTIMIZERS}


def target_of(schema: type[Schema]) -> str:
    return schema.__dataclass_fields__["_target_"].default

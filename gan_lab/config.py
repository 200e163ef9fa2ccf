"""Checks of the composed config, run before anything is built.

Each failed check raises ``ConfigError`` with one line that names the key, the bad value and
what is allowed. Hydra itself reports unknown group options and unknown keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gan_lab.augment import DIFFAUG_POLICIES
from gan_lab.errors import ConfigError

MIN_RESOLUTION = 32
_MISSING = object()


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=_MISSING)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_power_of_two(value: Any) -> bool:
    return _is_int(value) and value > 0 and value & (value - 1) == 0


def check(
    cfg: DictConfig, key: str, ok: Callable[[Any], bool], expected: str, required: bool = False
) -> None:
    value = _get(cfg, key)
    if value is _MISSING:
        if required:
            raise ConfigError(f"{key} is missing; expected {expected}")
        return
    if not ok(value):
        raise ConfigError(f"{key}={value!r} is invalid: expected {expected}")


def positive_int(cfg: DictConfig, *keys: str, required: bool = False) -> None:
    for key in keys:
        check(cfg, key, lambda v: _is_int(v) and v > 0, "a positive integer", required)


def positive_number(cfg: DictConfig, *keys: str, required: bool = False) -> None:
    for key in keys:
        check(cfg, key, lambda v: _is_number(v) and v > 0, "a positive number", required)


def one_of(cfg: DictConfig, key: str, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    check(cfg, key, lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for the first out-of-range or unknown value of a training config."""
    check(cfg, "seed", lambda v: _is_int(v) and v >= 0, "a non-negative integer", required=True)

    check(
        cfg,
        "data.resolution",
        lambda v: is_power_of_two(v) and v >= MIN_RESOLUTION,
        f"a power of two >= {MIN_RESOLUTION} (32, 64, 128, 256, ...)",
        required=True,
    )
    one_of(cfg, "data.channels", (1, 3))
    positive_int(cfg, "data.batch_size", required=True)
    if "data" in cfg and OmegaConf.is_missing(cfg.data, "root"):
        raise ConfigError("data.root is required: data.root=DIR (the folder of the dataset)")
    one_of(cfg, "data.in_memory", ("auto", True, False))
    check(cfg, "data.memory_budget_gb", lambda v: _is_number(v) and v >= 0, "a number of GB >= 0")
    check(cfg, "data.num_workers", lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0 or null")
    check(
        cfg, "data.crop", lambda v: v is None or (_is_int(v) and v > 0), "a positive number of pixels or null"
    )

    positive_number(cfg, "model.lr_g", "model.lr_d", required=True)
    check(
        cfg,
        "model.betas",
        lambda v: len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v),
        "two numbers in [0, 1), e.g. [0.5, 0.999]",
    )
    positive_int(cfg, "model.z_dim", "model.g_width", "model.d_width", "model.max_width", "model.num_samples")
    one_of(cfg, "model.d_norm", ("auto", "batch", "none"))
    check(cfg, "model.ema_kimg", lambda v: _is_number(v) and v >= 0, "a number >= 0 (0 disables the EMA)")
    check(
        cfg, "model.ema_rampup", lambda v: v is None or (_is_number(v) and v > 0), "a positive number or null"
    )

    # StyleGAN (checked when present)
    positive_int(
        cfg, "model.w_dim", "model.map_layers", "model.channel_base", "model.channel_max", "model.mbstd_group"
    )
    positive_int(cfg, "model.d_reg_interval", "model.pl_interval", "model.pl_batch_shrink")
    for key in ("model.r1_gamma", "model.r2_gamma", "model.pl_weight"):
        check(cfg, key, lambda v: _is_number(v) and v >= 0, "a number >= 0 (0 disables it)")
    check(cfg, "model.style_mixing_prob", lambda v: _is_number(v) and 0 <= v <= 1, "a probability in [0, 1]")
    check(cfg, "model.pl_decay", lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]")
    check(
        cfg, "model.conv_clamp", lambda v: v is None or (_is_number(v) and v > 0), "a positive number or null"
    )
    check(cfg, "model.sample_psi", _is_number, "a number (1 = no truncation)")
    group, batch = _get(cfg, "model.mbstd_group"), _get(cfg, "data.batch_size")
    if _is_int(group) and _is_int(batch) and group > 0 and batch % min(group, batch):
        raise ConfigError(
            f"data.batch_size={batch} is not divisible by model.mbstd_group={group} "
            "(the minibatch standard deviation layer splits each batch into groups of that size)"
        )

    # loss and augmentation
    positive_int(cfg, "loss.n_critic")
    check(cfg, "loss.gp_lambda", lambda v: _is_number(v) and v >= 0, "a number >= 0")
    check(cfg, "augment.p", lambda v: _is_number(v) and 0 <= v <= 1, "a probability in [0, 1]")
    check(cfg, "augment.target", lambda v: _is_number(v) and -1 < v < 1, "a number in (-1, 1), e.g. 0.6")
    positive_int(cfg, "augment.interval")
    positive_number(cfg, "augment.kimg")
    check(
        cfg,
        "augment.policy",
        lambda v: all(p.strip() in DIFFAUG_POLICIES for p in (v.split(",") if isinstance(v, str) else v)),
        "a list from " + ", ".join(DIFFAUG_POLICIES),
    )

    if _get(cfg, "model.compile") is True:
        double_backward = [
            key
            for key in ("model.r1_gamma", "model.r2_gamma", "model.pl_weight", "loss.gp_lambda")
            if _is_number(_get(cfg, key)) and _get(cfg, key) > 0
        ]
        if double_backward:
            raise ConfigError(
                f"model.compile=true cannot be combined with {', '.join(double_backward)} > 0: those "
                "penalties need double backward, which torch.compile does not support"
            )

    check(
        cfg,
        "trainer.max_steps",
        lambda v: _is_int(v) and (v > 0 or v == -1),
        "a positive number of iterations (or -1 for no limit)",
        required=True,
    )
    positive_int(cfg, "trainer.log_every_n_steps")
    if _get(cfg, "trainer.use_distributed_sampler") is True:
        raise ConfigError(
            "trainer.use_distributed_sampler=True is not supported: the datamodules shard each batch "
            "across devices themselves, in an order that resumes exactly"
        )
    positive_int(cfg, "callbacks.checkpoint.every_n_train_steps", "callbacks.samples.every_n_iters")
    check(
        cfg,
        "callbacks.checkpoint.save_top_k",
        lambda v: _is_int(v) and v >= -1,
        "an integer >= -1 (-1 keeps every snapshot)",
    )

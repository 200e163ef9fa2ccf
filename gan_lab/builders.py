"""Objects from the composed config: the module, the callbacks, the loggers, the FID/KID callback.
Shared by training, evaluation and generation (which rebuild a model from a checkpoint's config)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from gan_lab.callbacks.quality import QualityCallback
from gan_lab.errors import ConfigError


def build_module(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule of ``cfg.model`` (its networks and optimizers are nodes of it) with the
    loss of ``cfg.loss`` and the augmentation of ``cfg.augment``.

    ``data.num_classes`` is the dataset's (``train.py`` sets it); left unset (null), an
    unconditional config builds unconditional networks and a conditional one is refused."""
    if OmegaConf.select(cfg, "data.num_classes") is None and "data" in cfg:
        if OmegaConf.select(cfg, "data.conditional"):
            raise ConfigError("data.conditional=true: data.num_classes must be read from the dataset first")
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.data.num_classes = 0
    augment = cfg.get("augment") or None
    return instantiate(cfg.model, loss=cfg.loss, augment=augment, _convert_="all")


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def build_loggers(cfg: DictConfig) -> list[pl.loggers.Logger]:
    """The loggers of ``cfg.logger``; W&B's with the lab's wiring (``gan_lab/loggers/wandb.py``)."""
    from gan_lab.loggers.wandb import build_logger

    return [build_logger(c) for c in (cfg.get("logger") or {}).values() if c is not None]


def parameter_counts(module: pl.LightningModule) -> dict[str, int]:
    """``model/params/<net>``: the number of parameters of G, D and G_ema (those the module has)."""
    nets = {name: getattr(module, name, None) for name in ("G", "D", "G_ema")}
    return {
        f"model/params/{name}": sum(p.numel() for p in net.parameters())
        for name, net in nets.items()
        if isinstance(net, torch.nn.Module)
    }


def build_quality(cfg: DictConfig, datamodule: Any) -> QualityCallback | None:
    """The FID/KID callback of ``cfg.metrics``, its feature extractor built now: missing weights
    or an unsupported dataset fail here, before training."""
    if not cfg.get("metrics"):
        return None
    quality: QualityCallback = instantiate(cfg.metrics)
    quality.prepare(datamodule)
    return quality

"""What a lab checkpoint carries besides Lightning's state, and how a run resumes from one.

Every checkpoint gets a ``"gan_lab"`` entry (written by the ``RunMetadata`` callback):

* ``format``: version of this entry;
* ``module``: class name of the LightningModule (``DCGAN``, ...), to refuse a checkpoint of
  another model with a clear message;
* ``overrides``: the Hydra overrides that composed the run (without ``ckpt_path``);
* ``config``: the resolved config, so tools can rebuild the model without the run folder;
* ``wandb_id``: the W&B run id, so a resumed run continues the same W&B run.

Everything in a checkpoint is plain data and tensors, so ``torch.load(weights_only=True)`` reads
it: loading a checkpoint never runs code from it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger

from gan_lab.errors import CheckpointError

log = logging.getLogger(__name__)

KEY = "gan_lab"
FORMAT = 1


class RunMetadata(pl.Callback):
    """Adds the ``"gan_lab"`` entry to every checkpoint the trainer writes."""

    def __init__(self, cfg: DictConfig, overrides: list[str]) -> None:
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.overrides = [o for o in overrides if _key(o) != "ckpt_path"]

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        wandb_ids = [lg.version for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        checkpoint[KEY] = {
            "format": FORMAT,
            "module": type(pl_module).__name__,
            "overrides": list(self.overrides),
            "config": self.config,
            "wandb_id": wandb_ids[0] if wandb_ids else None,
        }


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a lab checkpoint on the CPU (memory-mapped, ``weights_only``), or raise CheckpointError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"ckpt_path={path} does not exist")
    if not p.is_file():
        raise CheckpointError(f"ckpt_path={path} is not a file (expected e.g. RUN/checkpoints/last.ckpt)")
    try:
        checkpoint = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"ckpt_path={path} is not a readable checkpoint ({reason})") from e
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(KEY), dict):
        raise CheckpointError(f"ckpt_path={path} is not a gan_lab checkpoint (it has no '{KEY}' entry)")
    return checkpoint


def check_module(meta: dict[str, Any], module_class: type, path: str | Path) -> None:
    """Refuse a checkpoint written by another model class."""
    stored = meta.get("module")
    if stored != module_class.__name__:
        raise CheckpointError(
            f"ckpt_path={path} holds a {stored} checkpoint, but this run's model is {module_class.__name__}; "
            f"drop the model= override to resume it as it was trained"
        )


def _key(override: str) -> str:
    parsed = OverridesParser.create().parse_override(override)
    return parsed.key_or_group + (f"@{parsed.package}" if parsed.package else "")


def merge_overrides(stored: list[str], current: list[str]) -> list[str]:
    """The run's stored overrides with the current ones on top (the last value of a key wins)."""
    merged: dict[str, str] = {}
    for override in [*stored, *current]:
        key = _key(override)
        merged.pop(key, None)  # re-insert so the order follows the last occurrence
        merged[key] = override
    return list(merged.values())


def check_state_matches(module: torch.nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Refuse to resume into networks of another shape, naming the model settings that changed."""
    stored = checkpoint.get("state_dict", {})
    current = module.state_dict()
    mismatched = [
        f"{k} {tuple(stored[k].shape)} -> {tuple(v.shape)}"
        for k, v in current.items()
        if k in stored and tuple(stored[k].shape) != tuple(v.shape)
    ]
    missing = sorted(set(current) ^ set(stored))
    if not mismatched and not missing:
        return
    stored_model = (checkpoint.get(KEY, {}).get("config") or {}).get("model", {})
    changed = [
        f"model.{k}: {stored_model[k]} -> {v}"
        for k, v in (getattr(module, "hparams", {}) or {}).items()
        if k in stored_model and stored_model[k] != v
    ]
    detail = "; ".join(mismatched[:3] + [f"{k} only in one of them" for k in missing[:3]])
    because = f" (changed: {', '.join(changed)})" if changed else ""
    raise CheckpointError(f"ckpt_path={path} does not fit the configured networks{because}: {detail}")


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """A lab checkpoint's LightningModule, rebuilt from the config stored in it, with its weights
    loaded (``weights_only``), in eval mode on the CPU; and what else the checkpoint says
    (``config``, ``iteration``, ``kimg``)."""
    from omegaconf import OmegaConf

    from gan_lab.builders import build_module
    from gan_lab.resolvers import register

    register()
    checkpoint = load_checkpoint(path)
    config = checkpoint[KEY].get("config")
    if not config:
        raise CheckpointError(f"ckpt_path={path} has no stored config to rebuild its model from")
    module = build_module(OmegaConf.create(config))
    check_state_matches(module, checkpoint, path)
    module.load_state_dict(checkpoint["state_dict"])
    module.images_seen = int(checkpoint.get("images_seen", 0))
    info = {"config": config, "iteration": int(checkpoint.get("global_step", 0)), "kimg": module.kimg}
    return module.eval(), info

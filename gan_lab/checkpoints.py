"""What a lab checkpoint carries besides Lightning's state, and how a run resumes from one.

Every checkpoint gets a ``"gan_lab"`` entry (written by the ``RunMetadata`` callback):

* ``format``: version of this entry;
* ``module``: class name of the LightningModule (``DCGAN``, ...), to refuse a checkpoint of
  another model with a clear message;
* ``overrides``: the Hydra overrides that composed the run (without ``ckpt_path``);
* ``config``: the resolved config, so tools can rebuild the model without the run folder;
* ``wandb_id``: the W&B run id, so a resumed online run continues the same W&B run (offline, a
  new run in the same group: ``gan_lab/loggers/wandb.py``);
* ``weights_only`` (only in a checkpoint made by ``scripts/import_stylegan2.py``): the checkpoint
  carries networks and no training state (iteration 0, no optimizer states); ``train.py
  ckpt_path=`` then starts a new run from its G, D and G_ema (fine-tuning) instead of resuming.
  It names the networks' ``resolution``, ``channels`` and ``num_classes`` and their ``source``.

Everything in a checkpoint is plain data and tensors, so ``torch.load(weights_only=True)`` reads
it: loading a checkpoint never runs code from it. What is rebuilt from its stored config and
overrides is checked by ``gan_lab.allowlist`` first (only the lab's own classes), and a stored
override that would move the new run's outputs (``paths.output_dir``, a ``dirpath``, ...) is
not re-applied: a resumed run writes to its own folder.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from gan_lab.allowlist import check_stored_config, check_stored_overrides
from gan_lab.errors import CheckpointError

log = logging.getLogger(__name__)

KEY = "gan_lab"
FORMAT = 1
WEIGHTS_ONLY = "weights_only"  # networks only: ckpt_path= fine-tunes from them (an imported model)
NETWORKS = ("G.", "D.", "G_ema.")  # the state-dict entries of the networks
# W&B run ids are short alphanumeric strings; anything else in a checkpoint is refused
_WANDB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# stored overrides of where a run writes are not re-applied on a resume (its folder is new)
_OUTPUT_KEYS = ("paths.output_dir", "paths.log_dir")
_OUTPUT_SUFFIXES = ("dirpath", "save_dir", "default_root_dir")


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


def load_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Load a lab checkpoint on the CPU (memory-mapped, ``weights_only``), or raise CheckpointError
    naming the entry point's option ``key`` (``ckpt_path`` for train.py, ``ckpt`` for the others)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"{key}={path} does not exist")
    if not p.is_file():
        raise CheckpointError(f"{key}={path} is not a file (expected e.g. RUN/checkpoints/last.ckpt)")
    if not zipfile.is_zipfile(p):  # torch.save writes zip archives; anything else is not ours
        what = "an empty file" if p.stat().st_size == 0 else "not a PyTorch checkpoint (no zip archive)"
        raise CheckpointError(f"{key}={path} is not a checkpoint: {what}")
    try:
        checkpoint = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{key}={path} is not a readable checkpoint ({reason})") from e
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(KEY), dict):
        raise CheckpointError(f"{key}={path} is not a gan_lab checkpoint (it has no '{KEY}' entry)")
    return checkpoint


def stored_overrides(meta: dict[str, Any], path: str | Path) -> list[str]:
    """The checkpoint's overrides that a resume re-applies: checked (``gan_lab.allowlist``), without
    Hydra's own settings and without the output locations of the old run."""
    kept = []
    for override in check_stored_overrides(meta.get("overrides", []), f"ckpt_path={path}"):
        try:
            key = _key(override)
        except Exception as e:  # Hydra's parser errors: a damaged or crafted override
            raise CheckpointError(f"ckpt_path={path}: its stored override {override!r} does not parse") from e
        if key.startswith(("hydra.", "hydra/")) or key in _OUTPUT_KEYS or key.endswith(_OUTPUT_SUFFIXES):
            log.info(
                "not re-applying the checkpoint's override %s (the resumed run has its own folder)", override
            )
            continue
        kept.append(override)
    return kept


def stored_wandb_id(meta: dict[str, Any], path: str | Path) -> str | None:
    """The W&B run id recorded in a checkpoint (None when it has none)."""
    wandb_id = meta.get("wandb_id")
    if wandb_id is None:
        return None
    if not isinstance(wandb_id, str) or not _WANDB_ID.match(wandb_id):
        raise CheckpointError(f"ckpt_path={path}: its stored W&B id {wandb_id!r} is not a W&B run id")
    return wandb_id


def check_module(meta: dict[str, Any], module_class: type, path: str | Path, key: str = "ckpt_path") -> None:
    """Refuse a checkpoint written by another model class."""
    stored = meta.get("module")
    if stored != module_class.__name__:
        raise CheckpointError(
            f"{key}={path} holds a {stored} checkpoint, but this run's model is {module_class.__name__}; "
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


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"generator.width": 8, ...}`` of a nested model config."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def check_state_matches(
    module: torch.nn.Module,
    checkpoint: dict[str, Any],
    path: str | Path,
    key: str = "ckpt_path",
    model_config: dict[str, Any] | None = None,
    prefixes: tuple[str, ...] = (),
) -> None:
    """Refuse to resume into networks of another shape, naming the model settings that changed
    (``model_config``: the configured model node, resolved; else the module's hyperparameters;
    ``prefixes``: compare only the entries that start with one of them)."""
    stored = checkpoint.get("state_dict", {})
    current = module.state_dict()
    if prefixes:
        stored = {k: v for k, v in stored.items() if k.startswith(prefixes)}
        current = {k: v for k, v in current.items() if k.startswith(prefixes)}
    mismatched = [
        f"{k} {tuple(stored[k].shape)} -> {tuple(v.shape)}"
        for k, v in current.items()
        if k in stored and tuple(stored[k].shape) != tuple(v.shape)
    ]
    missing = sorted(set(current) ^ set(stored))
    if not mismatched and not missing:
        return
    stored_model = _flat((checkpoint.get(KEY, {}).get("config") or {}).get("model", {}))
    hparams = dict(getattr(module, "hparams", {}) or {})
    current_model = _flat(model_config if model_config is not None else hparams)
    changed = [
        f"model.{k}: {stored_model[k]} -> {v}"
        for k, v in current_model.items()
        if k in stored_model and stored_model[k] != v
    ]
    detail = "; ".join(mismatched[:3] + [f"{k} only in one of them" for k in missing[:3]])
    because = f" (changed: {', '.join(changed)})" if changed else ""
    raise CheckpointError(f"{key}={path} does not fit the configured networks{because}: {detail}")


def weights_only_start(
    meta: dict[str, Any], path: str | Path, key: str = "ckpt_path"
) -> dict[str, Any] | None:
    """The ``weights_only`` marker of a checkpoint's ``"gan_lab"`` entry (None for a run's own
    checkpoint), checked: the networks' ``resolution``, ``channels`` and ``num_classes`` as integers."""
    marker = meta.get(WEIGHTS_ONLY)
    if marker is None:
        return None
    sizes = ("resolution", "channels", "num_classes")
    if not isinstance(marker, dict) or not all(
        isinstance(marker.get(k), int) and not isinstance(marker.get(k), bool) for k in sizes
    ):
        raise CheckpointError(f"{key}={path}: its '{WEIGHTS_ONLY}' entry is damaged (it names no sizes)")
    return marker


def load_network_weights(
    module: torch.nn.Module, checkpoint: dict[str, Any], path: str | Path, model_config: dict[str, Any]
) -> None:
    """Load only the networks (G, D, G_ema) of ``checkpoint`` into ``module``: a new run starting from
    them keeps its own sample latents, augmentation state and path-length mean (fine-tuning)."""
    check_state_matches(module, checkpoint, path, model_config=model_config, prefixes=NETWORKS)
    state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(NETWORKS)}
    module.load_state_dict(state, strict=False)


def load_model(path: str | Path, key: str = "ckpt") -> tuple[Any, dict[str, Any]]:
    """A lab checkpoint's LightningModule, rebuilt from the config stored in it (only the lab's own
    classes: ``gan_lab.allowlist``), with its weights loaded (``weights_only``), in eval mode on
    the CPU; and what else the checkpoint says (``config``, ``iteration``, ``kimg``)."""
    from omegaconf import OmegaConf

    from gan_lab.builders import build_module
    from gan_lab.resolvers import register

    register()
    checkpoint = load_checkpoint(path, key)
    config = checkpoint[KEY].get("config")
    if not config:
        raise CheckpointError(f"{key}={path} has no stored config to rebuild its model from")
    check_stored_config(config, f"{key}={path}")
    module = build_module(OmegaConf.create(config))
    check_state_matches(module, checkpoint, path, key)
    module.load_state_dict(checkpoint["state_dict"])
    module.images_seen = int(checkpoint.get("images_seen", 0))
    info = {"config": config, "iteration": int(checkpoint.get("global_step", 0)), "kimg": module.kimg}
    return module.eval(), info

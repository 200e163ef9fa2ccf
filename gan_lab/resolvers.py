"""OmegaConf resolvers for defaults that depend on other settings (used in ``conf/``).

StyleGAN2-ADA's "auto" configuration (``train.py``, ``cfg_specs['auto']``) scales its
hyperparameters with the resolution ``R`` and the total batch ``B`` (per-device batch x devices):

* ``r1_gamma = 0.0002 * R^2 / B``                 (its "heuristic formula")
* ``ema_kimg = B * 10 / 32``
* ``channel_base = 32768 if R >= 512 else 16384`` (fmaps 1 or 0.5)
* ``lr = 0.002 if R >= 1024 else 0.0025``
* ``mbstd_group = min(per-device batch, 4)``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def _devices(devices: Any) -> int:
    """``trainer.devices`` as a count (``auto``, lists and strings count what they can)."""
    if isinstance(devices, int) and devices > 0:
        return devices
    if isinstance(devices, list | tuple):
        return max(len(devices), 1)
    if isinstance(devices, str) and devices.isdigit():
        return max(int(devices), 1)
    return 1


def sg2_r1_gamma(resolution: int, batch_size: int, devices: Any = 1) -> float:
    return 0.0002 * resolution**2 / (batch_size * _devices(devices))


def sg2_ema_kimg(batch_size: int, devices: Any = 1) -> float:
    return batch_size * _devices(devices) * 10 / 32


def sg2_channel_base(resolution: int) -> int:
    return 32768 if resolution >= 512 else 16384


def sg2_lr(resolution: int) -> float:
    return 0.002 if resolution >= 1024 else 0.0025


def sg2_mbstd_group(batch_size: int) -> int:
    return min(batch_size, 4)


def ensure_dir(path: str) -> str:
    """The folder ``path``, created if missing (for files that need their folder before Hydra makes it,
    such as the Optuna study's SQLite database in the sweep folder)."""
    Path(path).expanduser().mkdir(parents=True, exist_ok=True)
    return str(path)


RESOLVERS = {
    "ensure_dir": ensure_dir,
    "sg2_r1_gamma": sg2_r1_gamma,
    "sg2_ema_kimg": sg2_ema_kimg,
    "sg2_channel_base": sg2_channel_base,
    "sg2_lr": sg2_lr,
    "sg2_mbstd_group": sg2_mbstd_group,
}


def register() -> None:
    for name, fn in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)

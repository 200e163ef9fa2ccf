"""OmegaConf resolvers for defaults that depend on other settings (used in ``conf/``).

StyleGAN2-ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"),
whose "auto" configuration (``train.py``, ``cfg_specs['auto']``) scales its hyperparameters with
the resolution ``R`` and the global batch ``B`` (the batch of one iteration over all GPUs of the
job: per-device batch x devices per node x nodes, ``global_batch`` below):

* ``r1_gamma = 0.0002 * R^2 / B``                 (its "heuristic formula")
* ``ema_kimg = B * 10 / 32``                      (EMA half-life in thousands of images)
* ``channel_base = 32768 if R >= 512 else 16384`` (fmaps 1 or 0.5)
* ``lr = 0.002 if R >= 1024 else 0.0025``
* ``mbstd_group = min(per-device batch, 4)``      (groups never span devices)

``trainer.devices`` counts as Lightning counts it (``device_count``): a number is that many
devices, a list or a comma-separated string of ids that many ids; ``auto`` and ``-1`` mean every
device of the accelerator, which is one process on CPU (``accelerator=cpu``, or ``auto`` on a
machine without CUDA) and ``torch.cuda.device_count()`` (the GPUs visible to this process) on
GPUs. They are resolved where the config is resolved, that is, on the training machine itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import ListConfig, OmegaConf

CPU_ACCELERATORS = ("cpu",)
GPU_ACCELERATORS = ("gpu", "cuda", "auto")


def _all_devices(accelerator: str) -> int:
    """How many devices ``devices=auto`` or ``-1`` selects on ``accelerator`` (at least 1)."""
    import torch  # here, not at import: the command line's start-up (python train.py --help) stays light

    if str(accelerator).lower() in GPU_ACCELERATORS and torch.cuda.is_available():
        return max(torch.cuda.device_count(), 1)
    return 1


def device_count(devices: Any, accelerator: Any = "auto") -> int:
    """``trainer.devices`` as the number of processes per node Lightning will run.

    ``4`` or ``"4"``: 4; ``[0, 2]`` or ``"0,2"`` (device ids): 2; ``"auto"``, ``-1`` or ``"-1"``:
    every device of ``accelerator`` (see the module docstring); anything else counts as 1."""
    if isinstance(devices, list | tuple | ListConfig):
        return max(len(devices), 1)
    if isinstance(devices, str):
        text = devices.strip().lower()
        if "," in text:
            return max(len([d for d in text.split(",") if d.strip()]), 1)
        if text in ("auto", "-1"):
            return _all_devices(accelerator)
        return max(int(text), 1) if text.isdigit() else 1
    if isinstance(devices, int) and not isinstance(devices, bool):
        return devices if devices > 0 else _all_devices(accelerator) if devices == -1 else 1
    return 1


def global_batch(batch_size: int, devices: Any = 1, num_nodes: Any = 1, accelerator: Any = "auto") -> int:
    """Images in one iteration over the whole job: ``batch_size x devices x num_nodes``."""
    nodes = int(num_nodes) if num_nodes is not None else 1
    return int(batch_size) * device_count(devices, accelerator) * max(nodes, 1)


def sg2_r1_gamma(
    resolution: int, batch_size: int, devices: Any = 1, num_nodes: Any = 1, accelerator: Any = "auto"
) -> float:
    """StyleGAN2-ADA's R1 weight ``0.0002 R^2 / B``, ``B`` the global batch (``global_batch``)."""
    return 0.0002 * resolution**2 / global_batch(batch_size, devices, num_nodes, accelerator)


def sg2_ema_kimg(batch_size: int, devices: Any = 1, num_nodes: Any = 1, accelerator: Any = "auto") -> float:
    """StyleGAN2-ADA's EMA half-life ``B * 10 / 32`` kimg, ``B`` the global batch (``global_batch``)."""
    return global_batch(batch_size, devices, num_nodes, accelerator) * 10 / 32


def sg2_channel_base(resolution: int) -> int:
    return 32768 if resolution >= 512 else 16384


def sg2_lr(resolution: int) -> float:
    return 0.002 if resolution >= 1024 else 0.0025


def sg2_mbstd_group(batch_size: int) -> int:
    return min(batch_size, 4)


def dcgan_d_norm(gp_lambda: Any) -> str:
    """DCGAN's discriminator normalisation: the paper's batch norm, none with a gradient penalty
    (WGAN-GP's penalty is per sample; batch norm couples the samples of a batch)."""
    try:
        return "none" if float(gp_lambda or 0) > 0 else "batch"
    except (TypeError, ValueError):
        return "batch"  # a bad loss.gp_lambda is reported by the loss's own check


def ensure_dir(path: str) -> str:
    """The folder ``path``, created if missing (for files that need their folder before Hydra makes it,
    such as the Optuna study's SQLite database in the sweep folder)."""
    Path(path).expanduser().mkdir(parents=True, exist_ok=True)
    return str(path)


def rank_suffix() -> str:
    """``""`` for the process that owns the run folder, ``_rank<N>`` for the other ranks of a job.

    Under torchrun or SLURM (``srun``, submitit with several tasks) every rank runs ``train.py``
    and Hydra from the start, into the same run folder: without a suffix they all wrote ``.hydra/``
    and the same ``train.log`` (rank 1's lines twice among rank 0's). The rank comes from the
    launcher's environment: ``RANK`` (torchrun), ``SLURM_PROCID``, or ``NODE_RANK``/``LOCAL_RANK``
    (Lightning's own launcher for its child processes).
    """
    for key in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(key, "")
        if value.isdigit():
            return f"_rank{int(value)}" if int(value) else ""
    local, node = os.environ.get("LOCAL_RANK", "0"), os.environ.get("NODE_RANK", "0")
    if not (local.isdigit() and node.isdigit()) or int(local) == int(node) == 0:
        return ""
    return f"_rank{int(local)}" if int(node) == 0 else f"_node{int(node)}_rank{int(local)}"


RESOLVERS = {
    "ensure_dir": ensure_dir,
    "rank_suffix": rank_suffix,
    "global_batch": global_batch,
    "sg2_r1_gamma": sg2_r1_gamma,
    "sg2_ema_kimg": sg2_ema_kimg,
    "sg2_channel_base": sg2_channel_base,
    "sg2_lr": sg2_lr,
    "sg2_mbstd_group": sg2_mbstd_group,
    "dcgan_d_norm": dcgan_d_norm,
}


def register() -> None:
    for name, fn in RESOLVERS.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)

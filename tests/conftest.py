"""Shared fixtures: a small Fashion-MNIST written in its real on-disk format, and a helper that
composes the real Hydra config (conf/train.yaml) the way `python train.py` does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from gan_lab.data.idx import write_idx
from gan_lab.train import CONFIG_DIR

os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parent.parent

# Test runs are small: conf/debug/tiny.yaml (tiny networks of the selected model, CSV logger, no
# FID/KID, batches of 16 on the CPU). TINY_METRICS and HERMETIC_DATA stay here: they are about the
# tests' fake datasets (a handful of images, nothing downloaded), not about quick runs.
SMALL = ["debug=tiny"]

# FID/KID every 2 iterations on a handful of images (add "metrics=default" to turn them on)
TINY_METRICS = (
    "metrics.every_n_iters=2",
    "metrics.num_real=64",
    "metrics.num_fake=32",
    "metrics.batch_size=16",
    "metrics.kid_subsets=5",
    "metrics.kid_subset_size=16",
)

# no downloads, no system folders, no worker processes
HERMETIC_DATA = {
    "fashion_mnist": ["data.search_dirs=[]", "data.download=false"],
    "mnist": ["data.search_dirs=[]", "data.download=false"],
    "cifar10": ["data.download=false"],
    "celeba": ["data.download=false", "data.num_workers=0"],
    "image_folder": ["data.num_workers=0"],
}


def refused_in_one_line(script: str, *overrides: str) -> str:
    """Run ``python <script> overrides...`` (a root tool) and return the one line it refuses with
    (asserting exit status 2 and that nothing else was printed)."""
    done = subprocess.run(
        [sys.executable, str(REPO / script), *overrides], capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "ERROR" in lines[0], output
    return lines[0]


def _choice(overrides: tuple[str, ...] | list[str], group: str, default: str) -> str:
    return next((o.split("=", 1)[1] for o in overrides if o.startswith(f"{group}=")), default)


def small_overrides(overrides: tuple[str, ...] | list[str]) -> list[str]:
    """``debug=tiny`` plus the hermetic-data overrides of the selected data (``metrics=default`` in
    ``overrides`` turns FID/KID back on: command-line choices win over the debug option's)."""
    data = _choice(overrides, "data", "fashion_mnist")
    return [*SMALL, *HERMETIC_DATA.get(data, [])]


def garment_like_images(n: int, seed: int) -> np.ndarray:
    """n 28x28 uint8 images: filled rectangles of random size and brightness on black."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        h, w = rng.integers(8, 24, size=2)
        top, left = rng.integers(0, 28 - h), rng.integers(0, 28 - w)
        images[i, top : top + h, left : left + w] = rng.integers(80, 256)
    return images


def write_fashion_mnist(folder: Path, n_train: int = 256, n_test: int = 64) -> Path:
    """IDX files (gzip, as torchvision and Debian ship them) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", garment_like_images(n, seed))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)
    return folder


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with ROOT/FashionMNIST/raw/*.gz (torchvision's layout)."""
    root = tmp_path_factory.mktemp("data")
    write_fashion_mnist(root / "FashionMNIST" / "raw")
    return root


def compose_tool(name: str, out: Path, *overrides: str) -> DictConfig:
    """conf/<name>.yaml (generate, evaluate) composed as the script does, with Hydra's runtime
    output folder ``out``."""
    GlobalHydra.instance().clear()
    initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name=name)
    cfg = compose(config_name=name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


ComposeFn = Callable[..., DictConfig]


@pytest.fixture
def compose_cfg(tmp_path: Path, fashion_root: Path) -> ComposeFn:
    """compose_cfg(*overrides, run_dir=None, bare=False) -> the composed training config, with Hydra's
    runtime set up as in a real run (so ``${hydra:...}`` interpolations resolve)."""

    def _compose(*overrides: str, run_dir: Path | None = None, bare: bool = False) -> DictConfig:
        GlobalHydra.instance().clear()
        initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="train")
        # bare: only the given overrides, as a user resuming with `ckpt_path=...` alone would type
        small = small_overrides(overrides)
        all_overrides = list(overrides) if bare else [*small, f"data.root={fashion_root}", *overrides]
        cfg = compose(config_name="train", overrides=all_overrides, return_hydra_config=True)
        out = run_dir or tmp_path / "run"
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(out)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):  # as in @hydra.main, the task sees its config without the hydra node
            del cfg["hydra"]
        return cfg

    yield _compose
    GlobalHydra.instance().clear()

"""Training entry point: ``python train.py [overrides]`` (Hydra main, config ``conf/train.yaml``).

This module is the command line only: the config folder, Hydra's main and how a refused job
ends. The run itself (compose/resume -> validate -> build -> fit) is ``gan_lab.training``,
imported when a run starts, so that ``python train.py --help`` and ``--cfg job`` do not pay for
importing Lightning, torch and the metrics stack (README: start-up).
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gan_lab.errors import GanLabError
from gan_lab.resolvers import register as register_resolvers
from gan_lab.utils.sweep import ERROR_FILE

log = logging.getLogger("gan_lab.train")
register_resolvers()
# our conf/hydra/launcher/submitit_slurm.yaml extends the plugin's schema of the same name on purpose
warnings.filterwarnings("ignore", message=".*is validated against ConfigStore schema with the same name")


def config_dir() -> str:
    """The Hydra config folder: the package's ``conf/`` (``gan_lab/conf``), which is a symlink to the
    repository's top-level ``conf/`` in a checkout and real files in an installed wheel
    (``pyproject.toml`` ships them as package data), else the checkout's ``conf/`` itself (a
    checkout made without symlinks)."""
    package = Path(__file__).resolve().parent / "conf"
    if (package / "train.yaml").is_file():
        return str(package.resolve())
    return str(Path(__file__).resolve().parent.parent / "conf")


CONFIG_DIR = config_dir()


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the best monitored metric (for Hydra sweepers), None without metrics.

    A refused job (bad value, missing data) exits with status 2 on its own; in a multirun it
    returns an infinite objective instead and leaves ``error.txt`` in its folder, so the other
    jobs still run and the sweep summary shows why.
    """
    try:
        from gan_lab.training import run  # the heavy imports, once a run starts

        return run(cfg).get("best")
    except GanLabError as e:
        log.error("%s", e)
        if not in_multirun():
            sys.exit(2)
        folder = Path(HydraConfig.get().runtime.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ERROR_FILE).write_text(f"{e}\n")
        return math.inf
    except KeyboardInterrupt:  # Ctrl-C before training started (after, StopOnSignal saves and exits)
        log.error("interrupted before training started: nothing to save")
        sys.exit(128 + signal.SIGINT)


if __name__ == "__main__":
    main()

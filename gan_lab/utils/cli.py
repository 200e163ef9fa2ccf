"""The Hydra main of a tool (``generate.py``, ``evaluate.py``, ``project.py``,
``scripts/export.py``): one place for how a tool refuses bad input."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from gan_lab.config.guards import one_line_build_errors
from gan_lab.errors import GanLabError
from gan_lab.train import CONFIG_DIR


def tool_main(config_name: str, task: Callable[[DictConfig], Any], log: logging.Logger) -> Callable[..., Any]:
    """A Hydra main composing ``conf/<config_name>.yaml`` and running ``task`` on it.

    A refusal (``GanLabError``, also one raised inside ``instantiate``) is one line on ``log`` and
    exit status 2, never a traceback. Hydra names the job after ``task``'s module (its log file,
    ``generate.log``, ...), as it would had the main been written there."""

    def main(cfg: DictConfig) -> Any:
        try:
            with one_line_build_errors():  # a refusal inside instantiate: one line naming the node
                return task(cfg)
        except GanLabError as e:
            log.error("%s", e)
            sys.exit(2)

    main.__doc__ = task.__doc__
    main.__wrapped__ = task  # type: ignore[attr-defined]  # Hydra names the job from the unwrapped task
    return hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(main)

"""Safety nets around the config check: the run folder and the building step.

* ``RunDirCheck``: a Hydra callback that refuses an unusable ``hydra.run.dir`` (or, for a
  multirun, ``hydra.sweep.dir``) with one line and exit status 2, before Hydra tries to create it
  (which would end in a traceback).
* ``one_line_build_errors``: turns a lab class's refusal raised inside Hydra's ``instantiate``
  (Hydra wraps it in a multi-line ``InstantiationException``) into one ``ConfigError`` line that
  names the config node, so the entry points report it like any bad value (exit 2, ``refused``
  in a sweep).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gan_lab.errors import ConfigError, GanLabError


def unusable_folder(path: Path) -> str | None:
    """Why ``path`` cannot be (created and) written as a folder, or None when it can."""
    path = path.expanduser().absolute()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


class RunDirCheck(Callback):
    """Refuses a run (or sweep) folder that cannot be created, before Hydra creates it."""

    def _check(self, config: DictConfig, key: str) -> None:
        HydraConfig.instance().set_config(config)  # ${hydra:...} in the folder's name
        try:
            folder = OmegaConf.select(config, key)
        except Exception as e:  # the folder's name does not resolve
            self._refuse(f"{key} could not be computed: {' '.join(str(e).split())}")
            return
        reason = unusable_folder(Path(str(folder)))
        if reason:
            self._refuse(f"{key}={folder} cannot be used as the run folder: {reason}")

    @staticmethod
    def _refuse(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")


_TARGET = re.compile(r"Error in call to target '([^']+)'")
_FULL_KEY = re.compile(r"full_key: (\S+)")


def _user_error(e: BaseException) -> bool:
    if isinstance(e, GanLabError | ValueError | TypeError):
        return True
    return type(e).__name__ == "MisconfigurationException"  # Lightning's refusal of a setting


def build_error(e: InstantiationException) -> ConfigError | None:
    """One line for a refusal inside ``instantiate`` (None: not a refusal of a setting)."""
    cause = e.__cause__
    if cause is None or not _user_error(cause):
        return None
    target = _TARGET.search(str(e))
    key = _FULL_KEY.search(str(e))
    node = key.group(1) if key else "config"
    name = target.group(1) if target else "?"
    detail = " ".join(str(cause).split())
    if not isinstance(cause, GanLabError):
        detail = f"{type(cause).__name__}: {detail}"
    return ConfigError(f"{node} ({name}) refused its settings: {detail}")


@contextmanager
def one_line_build_errors() -> Iterator[None]:
    """Re-raise a lab class's refusal inside ``instantiate`` as a one-line ``ConfigError``."""
    try:
        yield
    except InstantiationException as e:
        error = build_error(e)
        if error is None:
            raise
        raise error from e

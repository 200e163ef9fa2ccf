"""Pretrained weights the metrics need (Inception for FID/KID/IS, VGG16 for LPIPS): a path option,
else torch hub's cache, downloaded there when the network allows, else one line saying what to do.

The files are never downloaded on machines without internet (the development and CI machines):
they are given by path, and the tests write small files in their format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gan_lab.errors import ConfigError


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file: ``what`` it is (for messages), its ``file`` name and ``url``,
    and the config ``option`` that gives its path."""

    what: str
    file: str
    url: str
    option: str

    def default_path(self) -> Path:
        """Where the libraries' own downloads put it: torch hub's checkpoints folder."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.file

    def missing_message(self, path: Path, option: str | None = None, hint: str = "") -> str:
        return (
            f"{self.what} ({self.file}) are not at {path} and cannot be downloaded here. "
            f"Download {self.url} on a machine with internet and put it at {self.default_path()} "
            f"or pass {option or self.option}=PATH{hint}"
        )

    def locate(
        self, path: str | Path | None, download: bool = True, option: str | None = None, hint: str = ""
    ) -> Path:
        """``path`` if given (it must exist), else the cache, downloaded there first when
        ``download`` and the network allow. ``option`` names the setting in messages (default
        ``self.option``); ``hint`` (e.g. "; or use ...") ends the missing-file message."""
        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                raise ConfigError(f"{option or self.option}={path} does not exist")
            return p
        p = self.default_path()
        if not p.is_file() and download:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(self.url, str(p), progress=False)
            except Exception:  # no network: the message says what to do
                p.unlink(missing_ok=True)
        if not p.is_file():
            raise ConfigError(self.missing_message(p, option, hint))
        return p

"""gan_lab: GAN experiments as Lightning modules composed by Hydra.

``from gan_lab import load_generator`` gives a checkpoint's EMA generator (``gan_lab.api``). The
names below are imported on first use, so ``import gan_lab`` itself loads neither torch nor
Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gan_lab.api import Generator, export_generator, load_generator

_API = ("Generator", "export_generator", "load_generator")
__all__ = ["Generator", "__version__", "export_generator", "load_generator"]


def __getattr__(name: str) -> object:
    """PEP 562: the Python API, imported when first asked for."""
    if name in _API:
        from gan_lab import api

        return getattr(api, name)
    raise AttributeError(f"module 'gan_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API} - {"TYPE_CHECKING", "annotations"})

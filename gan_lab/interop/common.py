"""What every importer returns (``Imported``), its refusals, and the channel rule of the lab's networks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from gan_lab.errors import CheckpointError


class ImportRefused(CheckpointError):
    """A foreign model file the lab cannot read or represent (one line, exit status 2)."""


@dataclass
class Imported:
    """Networks read from another project's file, in the lab's terms.

    ``generator`` / ``discriminator``: the keyword arguments of ``StyleGANGenerator`` /
    ``StyleGANDiscriminator`` that rebuild them; ``G``, ``D``, ``G_ema``: their states under the
    lab's names (``D`` None: the file has none); ``w_avg``: how ``mapping.w_avg`` was obtained;
    ``dataset``: what the file says about its training data (``root``, ``hflip``); ``notes``:
    settings of the source that were read but have no effect on the lab's networks.
    """

    source: str
    path: Path
    generator: dict[str, Any]
    discriminator: dict[str, Any]
    G: dict[str, Tensor]
    D: dict[str, Tensor] | None
    G_ema: dict[str, Tensor]
    w_avg: str
    dataset: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def channel_rule(channels: dict[int, int], what: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // r, channel_max) == channels[r]`` at every
    resolution ``r`` (StyleGAN2-ADA's width rule, the lab's), or ImportRefused naming the widths.

    ``channel_max`` is the widest layer; each narrower resolution bounds ``channel_base`` to
    ``[c r, c r + r - 1]`` and each full-width one to ``>= channel_max * r``; the smallest value of
    the intersection is returned.
    """
    widest = max(channels.values())
    low, high = 1, None
    for r, c in channels.items():
        if c == widest:
            low = max(low, widest * r)
        else:
            low = max(low, c * r)
            high = c * r + r - 1 if high is None else min(high, c * r + r - 1)
    if high is not None and low > high:
        listed = ", ".join(f"{r}px: {c}" for r, c in sorted(channels.items()))
        raise ImportRefused(
            f"{what}: its channels per resolution ({listed}) do not follow the lab's rule "
            "min(channel_base / resolution, channel_max)"
        )
    return low, widest


def load_failure(e: BaseException) -> str:
    """The line of a ``torch.load(weights_only=True)`` failure that says what was refused (its first
    line is a generic notice), else the error's first line."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    named = [line for line in lines if "unsupported" in line.lower()]
    return (named or lines or [type(e).__name__])[0]

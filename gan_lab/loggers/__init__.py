"""Helpers that send what the lab draws to every experiment logger of a run."""

from gan_lab.loggers.images import log_image

__all__ = ["log_image"]

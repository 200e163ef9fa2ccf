"""Training callbacks: checkpoints, sample grids, progress, FID/KID, divergence and replica checks."""

from gan_lab.callbacks.checkpoint import IterationCheckpoint
from gan_lab.callbacks.divergence import DivergenceGuard
from gan_lab.callbacks.progress import GANProgressBar, IterationLog
from gan_lab.callbacks.quality import QualityCallback
from gan_lab.callbacks.replicas import ReplicaCheck
from gan_lab.callbacks.samples import SampleGrid

__all__ = [
    "DivergenceGuard",
    "GANProgressBar",
    "IterationCheckpoint",
    "IterationLog",
    "QualityCallback",
    "ReplicaCheck",
    "SampleGrid",
]

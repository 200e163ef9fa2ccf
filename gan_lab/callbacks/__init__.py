"""Training callbacks: checkpoints, sample grids and the iteration progress bar."""

from gan_lab.callbacks.checkpoint import IterationCheckpoint
from gan_lab.callbacks.progress import GANProgressBar, IterationLog
from gan_lab.callbacks.quality import QualityCallback
from gan_lab.callbacks.samples import SampleGrid

__all__ = ["GANProgressBar", "IterationCheckpoint", "IterationLog", "QualityCallback", "SampleGrid"]

"""gan_lab: GAN experiments as Lightning modules composed by Hydra."""

__version__ = "0.1.0"

"""LightningModules, one per training algorithm: ``GANModule`` (the adversarial loop, e.g. for
DCGAN's networks) and ``StyleGAN`` (StyleGAN2's phase schedule on that loop). The networks and
optimizers are arguments, built from the config (``model.generator``, ``model.optimizer_g``...)."""

from gan_lab.modules.gan import GANModule
from gan_lab.modules.stylegan import StyleGAN

__all__ = ["GANModule", "StyleGAN"]

"""LightningModules: the GAN base with the adversarial loop, and one module per architecture."""

from gan_lab.modules.dcgan import DCGAN
from gan_lab.modules.gan import GANModule
from gan_lab.modules.stylegan import StyleGAN

__all__ = ["DCGAN", "GANModule", "StyleGAN"]

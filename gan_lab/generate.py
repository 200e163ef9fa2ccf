"""``python generate.py ckpt=PATH``: pictures from a checkpoint's EMA generator.

* ``mode=grid``: ``num`` samples from latents seeded by ``seed``, one PNG;
* ``mode=interpolate``: a latent walk through ``keyframes`` seeded latents and back to the first,
  ``steps`` frames apart (spherical interpolation of z for DCGAN; linear interpolation of w for
  StyleGAN, as the StyleGAN papers walk), as a PNG strip (one row per leg) and an animated GIF;
* ``mode=style_mix`` (StyleGAN): the style-mixing grid of Karras et al. 2019 (figure 3): the top
  row shows the column sources, the left column the row sources, and each cell takes the
  ``mix`` styles (coarse: 4-8 px, middle: 16-32 px, fine: 64 px and up) from its row source and
  the others from its column source.

StyleGAN options: ``psi``/``cutoff`` (truncation), ``noise`` (const, random or none).
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor
from torchvision.utils import make_grid

from gan_lab.checkpoints import load_model
from gan_lab.config import validate_generate
from gan_lab.data.transforms import to_uint8
from gan_lab.errors import ConfigError, GanLabError
from gan_lab.evaluate import pick_device
from gan_lab.modules.stylegan import StyleGAN
from gan_lab.train import CONFIG_DIR

log = logging.getLogger("gan_lab.generate")


def seeded_latents(module: Any, n: int, seed: int) -> Tensor:
    return torch.randn(n, module.G.z_dim, generator=torch.Generator().manual_seed(seed)).to(module.device)


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation (White 2016), for Gaussian latents."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


class Renderer:
    """Images from latents or ws with the generation options of ``cfg``."""

    def __init__(self, module: Any, cfg: DictConfig) -> None:
        self.module, self.cfg = module, cfg
        self.stylegan = isinstance(module, StyleGAN)
        self.noise_rng = torch.Generator(device=module.device).manual_seed(int(cfg.seed))

    def ws(self, z: Tensor) -> Tensor:
        return self.module.G_ema.mapping(z, self.cfg.psi, self.cfg.cutoff)

    @torch.no_grad()
    def from_ws(self, ws: Tensor) -> Tensor:
        return self.module.G_ema.synthesis(ws, noise_mode=self.cfg.noise, rng=self.noise_rng, fused=True)

    @torch.no_grad()
    def from_z(self, z: Tensor) -> Tensor:
        return self.from_ws(self.ws(z)) if self.stylegan else self.module.G_ema(z)


def save_grid(images: Tensor, path: Path, nrow: int) -> Path:
    grid = make_grid(to_uint8(images.float()).cpu(), nrow=nrow, padding=1)
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(path)
    return path


def grid(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    z = seeded_latents(renderer.module, cfg.num, cfg.seed)
    images = torch.cat([renderer.from_z(chunk) for chunk in z.split(64)])
    nrow = cfg.nrow or math.ceil(math.sqrt(cfg.num))
    return [save_grid(images, out / f"grid-seed{cfg.seed}.png", nrow)]


def interpolate(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    z = seeded_latents(renderer.module, cfg.keyframes, cfg.seed)
    points = renderer.ws(z) if renderer.stylegan else z
    frames = []
    for k in range(cfg.keyframes):
        a, b = points[k : k + 1], points[(k + 1) % cfg.keyframes : (k + 1) % cfg.keyframes + 1]
        for s in range(cfg.steps):
            t = s / cfg.steps
            p = torch.lerp(a, b, t) if renderer.stylegan else slerp(a, b, t)
            frames.append(renderer.from_ws(p) if renderer.stylegan else renderer.module.G_ema(p))
    images = torch.cat(frames)
    strip = save_grid(images, out / f"interpolate-seed{cfg.seed}.png", cfg.steps)
    pictures = [
        Image.fromarray(to_uint8(f.float())[0].permute(1, 2, 0).squeeze(-1).cpu().numpy()) for f in frames
    ]
    gif = out / f"interpolate-seed{cfg.seed}.gif"
    pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=round(1000 / cfg.fps), loop=0)
    return [strip, gif]


def mixed_layers(num_ws: int, mix: str) -> range:
    """ws indices of a style range: coarse (4-8 px: ws 0-3), middle (16-32 px: 4-7), fine (8 on)."""
    ranges = {
        "coarse": range(0, min(4, num_ws)),
        "middle": range(4, min(8, num_ws)),
        "fine": range(8, num_ws),
    }
    if not ranges.get(mix):  # mix is one of them (gan_lab.config.schema.MIXES)
        raise ConfigError(f"mix={mix} selects no layer at this resolution ({num_ws} ws)")
    return ranges[mix]


def style_mix(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    if not renderer.stylegan:
        raise ConfigError(
            f"mode=style_mix needs a StyleGAN checkpoint; {cfg.ckpt} is a {type(renderer.module).__name__}"
        )
    row_ws = renderer.ws(seeded_latents(renderer.module, cfg.rows, cfg.seed))
    col_ws = renderer.ws(seeded_latents(renderer.module, cfg.cols, cfg.seed + 1))
    layers = list(mixed_layers(row_ws.shape[1], cfg.mix))
    row_images, col_images = renderer.from_ws(row_ws), renderer.from_ws(col_ws)
    blank = torch.ones_like(col_images[:1])  # white corner
    cells = [blank, col_images]
    for r in range(cfg.rows):
        mixed = col_ws.clone()
        mixed[:, layers] = row_ws[r : r + 1, layers]
        cells += [row_images[r : r + 1], renderer.from_ws(mixed)]
    return [save_grid(torch.cat(cells), out / f"style_mix-{cfg.mix}-seed{cfg.seed}.png", cfg.cols + 1)]


def generate(cfg: DictConfig) -> list[Path]:
    validate_generate(cfg)  # every option, before the checkpoint is loaded
    module, _ = load_model(cfg.ckpt)
    module.to(pick_device(cfg.device))
    out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"grid": grid, "interpolate": interpolate, "style_mix": style_mix}[cfg.mode](
        Renderer(module, cfg), cfg, out
    )
    for p in paths:
        print(p)
    return paths


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
def main(cfg: DictConfig) -> None:
    try:
        generate(cfg)
    except GanLabError as e:
        log.error("%s", e)
        sys.exit(2)


if __name__ == "__main__":
    main()

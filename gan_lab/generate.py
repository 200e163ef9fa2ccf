"""``python generate.py ckpt=PATH``: pictures from a checkpoint's EMA generator.

* ``mode=grid``: ``num`` samples from latents seeded by ``seed``, one PNG; with ``seeds=[...]``,
  one image per listed seed instead (each drawn as ``mode=seeds`` draws it);
* ``mode=seeds``: one PNG per seed of ``seeds=[...]`` (``seed0001.png``, as stylegan2-ada-pytorch's
  ``generate.py --seeds`` names them). The image of seed s is exactly ``mode=grid seed=s num=1``:
  the latent ``seeded_latents(module, 1, s)`` and, for StyleGAN's ``noise=random``, noise drawn
  from a generator seeded by s, whatever the other seeds listed; so a tile of ``mode=grid
  seeds=[...]`` is, to the pixel, the PNG of its seed;
* ``mode=interpolate``: a latent walk through ``keyframes`` seeded latents and back to the first,
  ``steps`` frames apart (spherical interpolation of z for DCGAN; linear interpolation of w for
  StyleGAN, as the StyleGAN papers walk), as a PNG strip (one row per leg) and an animated GIF;
* ``mode=style_mix`` (StyleGAN): the style-mixing grid of Karras et al. 2019 (figure 3): the top
  row shows the column sources, the left column the row sources, and each cell takes the
  ``mix`` styles (coarse: 4-8 px, middle: 16-32 px, fine: 64 px and up) from its row source and
  the others from its column source.

StyleGAN options: ``psi``/``cutoff`` (truncation), ``noise`` (const, random or none).

``upscale=K`` (a positive integer, default 1) enlarges every written picture K times, nearest
neighbour (each pixel a K x K block): grids, seed PNGs, walk strips and GIF frames, style-mixing
grids; one that PIL would refuse to open again (over ``2 * PIL.Image.MAX_IMAGE_PIXELS`` pixels) is
refused before it is written.

Class-conditional checkpoints (``num_classes`` > 0) take ``class=K`` or ``classes=[K,...]``:

* ``mode=grid``: ``class=K``: all ``num`` images of class K; ``classes=[...]``: one row per listed
  class, ``nrow`` (default ``num // len(classes)``) images a row; neither: one row per class
  (``gan_lab.utils.classes.grid_classes``: all classes up to 10, else 10 evenly spaced ones). In a
  grid of classes each column keeps one latent, so a column shows one latent in every class;
* ``mode=interpolate``: the walk stays in one class (``class=K``, default 0): the same label for
  every frame, the latents (StyleGAN: the ws of that class) interpolated; ``classes=[...]``: one
  walk per listed class, the same latents;
* ``mode=style_mix``: the row and column sources are of the given class (default 0); with
  ``classes=[...]`` row r and column j are of ``classes[r % n]`` and ``classes[j % n]``;
* ``mode=seeds``: each seed's PNG in the given class (default 0), one per listed class
  (``seed0001-class3.png``); ``mode=grid seeds=[...]``: as the grids above, a column per seed.

File names then carry the classes (``grid-seed0-class3.png``, ``grid-seed0-classes0-1-2.png``);
each PNG says what its classes are in a ``classes`` text chunk, and the log says it too. A label
out of the checkpoint's range, both keys, or either for an unconditional checkpoint, is one line
and exit status 2.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from PIL import Image, PngImagePlugin
from torch import Tensor
from torchvision.utils import make_grid

from gan_lab.checkpoints import load_model
from gan_lab.config import validate_generate
from gan_lab.data.transforms import to_uint8
from gan_lab.errors import ConfigError
from gan_lab.evaluate import pick_device
from gan_lab.nn.stylegan import inference_fused
from gan_lab.utils.classes import check_classes, describe_rows, num_classes_of, row_classes
from gan_lab.utils.cli import tool_main

log = logging.getLogger("gan_lab.generate")


def seeded_latents(module: Any, n: int, seed: int) -> Tensor:
    """``n`` latents z ~ N(0, I) drawn on the CPU by a generator seeded with ``seed`` (the same on any
    device). Latent i depends on ``n`` (torch draws normals in blocks), so a seed's own image is
    drawn with ``n = 1`` (``Renderer.of_seed``)."""
    return torch.randn(n, module.G.z_dim, generator=torch.Generator().manual_seed(seed)).to(module.device)


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation (White 2016), for Gaussian latents."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


class Renderer:
    """Images from latents (and labels, for a conditional model) or ws with the options of ``cfg``.

    ``classes``: the labels ``class=``/``classes=`` chose (checked against the checkpoint), None
    when neither is given; ``single``: whether it was ``class=`` (one class for every image)."""

    def __init__(self, module: Any, cfg: DictConfig) -> None:
        self.module, self.cfg = module, cfg
        self.stylegan = all(hasattr(module.G_ema, part) for part in ("mapping", "synthesis"))  # z -> w -> x
        self.noise_rng = torch.Generator(device=module.device).manual_seed(int(cfg.seed))
        self.num_classes = num_classes_of(module)
        self.classes = check_classes(cfg.get("class"), cfg.get("classes"), self.num_classes)
        self.single = cfg.get("class") is not None

    def labels(self, classes: list[int] | Tensor) -> Tensor:
        return torch.as_tensor(classes, dtype=torch.int64).to(self.module.device)

    def ws(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        truncation = {"truncation_psi": self.cfg.psi, "truncation_cutoff": self.cfg.cutoff}
        mapping = self.module.G_ema.mapping
        return mapping(z, **truncation) if c is None else mapping(z, c, **truncation)

    @torch.no_grad()
    def from_ws(self, ws: Tensor, rng: torch.Generator | None = None) -> Tensor:
        """StyleGAN's synthesis of ``ws``; ``noise=random`` draws from ``rng`` (default: the
        renderer's generator, seeded by ``seed`` and advanced by every picture)."""
        rng = self.noise_rng if rng is None else rng
        fused = inference_fused(ws.device)  # as G_ema's own inference
        return self.module.G_ema.synthesis(ws, noise_mode=self.cfg.noise, rng=rng, fused=fused)

    @torch.no_grad()
    def from_points(self, p: Tensor, c: Tensor | None = None, rng: torch.Generator | None = None) -> Tensor:
        """Images from ws (StyleGAN: the labels are already in them) or from latents and labels."""
        if self.stylegan:
            return self.from_ws(p, rng)
        return self.module.G_ema(p) if c is None else self.module.G_ema(p, c)

    @torch.no_grad()
    def from_z(self, z: Tensor, c: Tensor | None = None, rng: torch.Generator | None = None) -> Tensor:
        return self.from_ws(self.ws(z, c), rng) if self.stylegan else self.from_points(z, c)

    def of_seed(self, seed: int, label: int | None = None) -> Tensor:
        """The image (a batch of one) of ``seed`` in class ``label`` (None: unconditional): the
        latent ``seeded_latents(module, 1, seed)`` and StyleGAN noise from a generator seeded by
        ``seed``, exactly what ``mode=grid seed=SEED num=1`` draws."""
        z = seeded_latents(self.module, 1, seed)
        c = None if label is None else self.labels([label])
        return self.from_z(z, c, torch.Generator(device=self.module.device).manual_seed(seed))

    def batched(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        """``from_z`` 64 images at a time."""
        if c is None:
            return torch.cat([self.from_z(chunk) for chunk in z.split(64)])
        return torch.cat([self.from_z(zs, cs) for zs, cs in zip(z.split(64), c.split(64), strict=True)])

    def walk_classes(self) -> list[int | None]:
        """The class of each walk or style-mixing grid: None (unconditional), else the chosen
        classes or class 0."""
        if self.num_classes == 0:
            return [None]
        return self.classes or [0]


def class_suffix(classes: list[int] | None, single: bool = False) -> str:
    """What a file name says of its classes: ``-class3``, ``-classes0-1-2`` (``-12classes`` for
    more than 10); nothing when unconditional."""
    if classes is None:
        return ""
    if single:
        return f"-class{classes[0]}"
    return f"-classes{'-'.join(map(str, classes))}" if len(classes) <= 10 else f"-{len(classes)}classes"


def seeds_suffix(seeds: list[int]) -> str:
    """What a grid's file name says of its seeds: ``-seeds1-2-3`` (``-12seeds`` for more than 10)."""
    return f"-seeds{'-'.join(map(str, seeds))}" if len(seeds) <= 10 else f"-{len(seeds)}seeds"


def upscaled(picture: Image.Image, factor: int, name: str) -> Image.Image:
    """``picture`` enlarged ``factor`` times, nearest neighbour (each pixel a factor x factor block).
    Refused (``ConfigError``) when the result is more than PIL opens (``2 * MAX_IMAGE_PIXELS``,
    where it raises ``DecompressionBombError``)."""
    if factor == 1:
        return picture
    width, height = picture.width * factor, picture.height * factor
    limit = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
    if limit is not None and width * height > limit:
        raise ConfigError(
            f"upscale={factor} would make {name} {width:,} x {height:,} px, more than the {limit:,} "
            "pixels PIL opens; choose a smaller upscale"
        )
    return picture.resize((width, height), Image.Resampling.NEAREST)


def to_picture(pixels: Tensor, upscale: int, name: str) -> Image.Image:
    """uint8 ``pixels`` (C x H x W; one channel: a gray picture) as a PIL image, enlarged ``upscale``
    times."""
    array = pixels.permute(1, 2, 0).cpu().numpy()
    array = np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)
    return upscaled(Image.fromarray(array), upscale, name)


def save_png(pixels: Tensor, path: Path, upscale: int = 1, text: dict[str, str] | None = None) -> Path:
    """A PNG of uint8 ``pixels`` (C x H x W), ``upscale`` times enlarged; ``text``: the PNG's text
    chunks (what the classes or seeds of its images are), also said in the log."""
    picture = to_picture(pixels, upscale, path.name)
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        log.info("%s: %s", path.name, "; ".join(text.values()))
    picture.save(path, pnginfo=info)
    return path


def save_grid(
    images: Tensor,
    path: Path,
    nrow: int,
    classes: str | None = None,
    upscale: int = 1,
    seeds: str | None = None,
) -> Path:
    """A PNG of ``images``, ``nrow`` a row (1 px padding), ``upscale`` times enlarged; ``classes``
    and ``seeds``: what the classes and seeds of the images are (said in the PNG's ``classes`` and
    ``seeds`` text chunks and in the log)."""
    grid = make_grid(to_uint8(images.float()).cpu(), nrow=nrow, padding=1)
    text = {key: value for key, value in (("classes", classes), ("seeds", seeds)) if value is not None}
    return save_png(grid, path, upscale, text)


def upscale_of(cfg: DictConfig) -> int:
    return int(cfg.get("upscale") or 1)


def grid(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    if cfg.get("seeds") is not None:
        return seeds_grid(renderer, cfg, out)
    module, classes, upscale = renderer.module, renderer.classes, upscale_of(cfg)
    if renderer.num_classes == 0 or renderer.single:  # a square grid, of one class if conditional
        z = seeded_latents(module, cfg.num, cfg.seed)
        c = None if classes is None else renderer.labels(classes * cfg.num)
        nrow = cfg.nrow or math.ceil(math.sqrt(cfg.num))
        name = f"grid-seed{cfg.seed}{class_suffix(classes, single=True)}.png"
        said = None if classes is None else f"class {classes[0]} (every image)"
        return [save_grid(renderer.batched(z, c), out / name, nrow, said, upscale)]
    # one row per class (by default the rows of grid_classes(num, num_classes)); each column keeps
    # one latent through the rows, so that it shows that latent in every class
    rows = classes if classes is not None else row_classes(renderer.num_classes)
    cols = cfg.nrow or max(cfg.num // len(rows), 1)
    z = seeded_latents(module, cols, cfg.seed).repeat(len(rows), 1)
    c = renderer.labels(torch.tensor(rows).repeat_interleave(cols))
    name = f"grid-seed{cfg.seed}{class_suffix(rows)}.png"
    return [save_grid(renderer.batched(z, c), out / name, cols, describe_rows(rows), upscale)]


def seeds_grid(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    """``mode=grid seeds=[...]``: one image per seed, each ``Renderer.of_seed`` (the PNG
    ``mode=seeds`` writes for it). Unconditional or ``class=K``: a square grid (``nrow``) in the
    order of the seeds; else one row per class, one column per seed."""
    seeds, upscale = [int(s) for s in cfg.seeds], upscale_of(cfg)
    listed = ", ".join(map(str, seeds))
    if renderer.num_classes == 0 or renderer.single:
        label = None if renderer.classes is None else renderer.classes[0]
        images = torch.cat([renderer.of_seed(s, label) for s in seeds])
        nrow = cfg.nrow or math.ceil(math.sqrt(len(seeds)))
        name = f"grid{seeds_suffix(seeds)}{class_suffix(renderer.classes, single=True)}.png"
        said = None if label is None else f"class {label} (every image)"
        return [save_grid(images, out / name, nrow, said, upscale, f"seeds {listed}")]
    rows = renderer.classes if renderer.classes is not None else row_classes(renderer.num_classes)
    images = torch.cat([renderer.of_seed(s, k) for k in rows for s in seeds])
    name = f"grid{seeds_suffix(seeds)}{class_suffix(rows)}.png"
    return [
        save_grid(images, out / name, len(seeds), describe_rows(rows), upscale, f"columns: seeds {listed}")
    ]


def seed_images(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    """``mode=seeds``: ``seed0001.png``, ... (``seed0001-class3.png`` for a conditional checkpoint:
    one per seed and class of ``Renderer.walk_classes``), each ``Renderer.of_seed``."""
    paths = []
    for seed in dict.fromkeys(int(s) for s in cfg.seeds):  # a seed listed twice is one file
        for label in renderer.walk_classes():
            pixels = to_uint8(renderer.of_seed(seed, label).float())[0]
            name = f"seed{seed:04d}{'' if label is None else f'-class{label}'}.png"
            text = None if label is None else {"classes": f"class {label}"}
            paths.append(save_png(pixels, out / name, upscale_of(cfg), text))
    return paths


def interpolate(renderer: Renderer, cfg: DictConfig, out: Path) -> list[Path]:
    z = seeded_latents(renderer.module, cfg.keyframes, cfg.seed)
    paths = []
    for label in renderer.walk_classes():
        c = None if label is None else renderer.labels([label] * cfg.keyframes)
        paths += walk(renderer, cfg, out, z, c, "" if label is None else f"-class{label}")
    return paths


def walk(
    renderer: Renderer, cfg: DictConfig, out: Path, z: Tensor, c: Tensor | None, suffix: str
) -> list[Path]:
    """The walk through the keyframe latents ``z``, every frame of the label ``c[0]`` (or none)."""
    points = renderer.ws(z, c) if renderer.stylegan else z
    frames = []
    for k in range(cfg.keyframes):
        a, b = points[k : k + 1], points[(k + 1) % cfg.keyframes : (k + 1) % cfg.keyframes + 1]
        for s in range(cfg.steps):
            t = s / cfg.steps
            p = torch.lerp(a, b, t) if renderer.stylegan else slerp(a, b, t)
            frames.append(renderer.from_points(p, None if c is None else c[:1]))
    images = torch.cat(frames)
    said = None if c is None else f"class {int(c[0])} (every frame)"
    upscale = upscale_of(cfg)
    strip = save_grid(images, out / f"interpolate-seed{cfg.seed}{suffix}.png", cfg.steps, said, upscale)
    gif = out / f"interpolate-seed{cfg.seed}{suffix}.gif"
    pictures = [to_picture(to_uint8(f.float())[0], upscale, gif.name) for f in frames]
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
        generator = type(renderer.module.G_ema).__name__
        raise ConfigError(f"mode=style_mix needs a StyleGAN checkpoint; {cfg.ckpt} has a {generator}")
    labels = renderer.walk_classes()
    row_c = col_c = None
    if labels != [None]:
        row_c = renderer.labels([labels[r % len(labels)] for r in range(cfg.rows)])
        col_c = renderer.labels([labels[j % len(labels)] for j in range(cfg.cols)])
    row_ws = renderer.ws(seeded_latents(renderer.module, cfg.rows, cfg.seed), row_c)
    col_ws = renderer.ws(seeded_latents(renderer.module, cfg.cols, cfg.seed + 1), col_c)
    layers = list(mixed_layers(row_ws.shape[1], cfg.mix))
    row_images, col_images = renderer.from_ws(row_ws), renderer.from_ws(col_ws)
    blank = torch.ones_like(col_images[:1])  # white corner
    cells = [blank, col_images]
    for r in range(cfg.rows):
        mixed = col_ws.clone()
        mixed[:, layers] = row_ws[r : r + 1, layers]
        cells += [row_images[r : r + 1], renderer.from_ws(mixed)]
    suffix, said = "", None
    if row_c is not None:
        suffix = class_suffix(labels, single=len(labels) == 1)
        said = f"row sources: classes {row_c.tolist()}, column sources: classes {col_c.tolist()}"
    path = out / f"style_mix-{cfg.mix}-seed{cfg.seed}{suffix}.png"
    return [save_grid(torch.cat(cells), path, cfg.cols + 1, said, upscale_of(cfg))]


def generate(cfg: DictConfig) -> list[Path]:
    validate_generate(cfg)  # every option, before the checkpoint is loaded
    module, _ = load_model(cfg.ckpt)
    module.to(pick_device(cfg.device))
    out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    modes = {"grid": grid, "seeds": seed_images, "interpolate": interpolate, "style_mix": style_mix}
    paths = modes[cfg.mode](Renderer(module, cfg), cfg, out)
    for p in paths:
        print(p)
    return paths


main = tool_main("generate", generate, log)


if __name__ == "__main__":
    main()

"""``python project.py ckpt=PATH target=IMG``: projection of an image into a StyleGAN checkpoint's
latent space (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
section 5 and appendix D; the schedule of StyleGAN2-ADA's projector).

It looks for the w and the per-layer noise maps ``n_i`` whose image ``g(w, n)`` from the EMA
generator's synthesis network best matches the target ``x``:

    min_{w, n}  D(g(w + sigma(t) eps, n), x) + alpha * L_n(n),        eps ~ N(0, I)

* ``mode=w`` (the reference's): one w broadcast to every layer; ``mode=wplus``: one w per layer
  (the "W+" space of Abdal et al. 2019, "Image2StyleGAN"), more expressive, less regular;
* start: ``w = mean_j f(z_j)`` over ``w_avg_samples`` mapped latents (of class ``c`` for a
  conditional generator), ``sigma_w = sqrt(sum_j ||f(z_j) - w||^2 / N)`` their spread; the noise
  maps start as N(0, 1) images;
* Adam (betas 0.9, 0.999) on w and the noise maps for ``steps`` steps; at ``t = step / steps``
  the learning rate is ``lr * min(1, t / lr_rampup) * (1 - cos(pi * min(1, (1 - t) / lr_rampdown))) / 2``
  (linear warm-up, cosine ramp-down) and the w noise ``sigma(t) = sigma_w * w_noise *
  max(0, 1 - t / w_noise_ramp)^2`` (exploration early, none at the end);
* ``L_n`` (weight ``alpha = noise_reg``, 1e5) keeps the noise maps from carrying the image: for
  every map and every level of its pyramid (2x2 average pooling down to 8x8), the squared mean
  autocorrelation at a one-pixel shift horizontally and vertically,
  ``L_n = sum_{i,j} (mean_xy n_ij(x, y) n_ij(x - 1, y))^2 + (mean_xy n_ij(x, y) n_ij(x, y - 1))^2``
  (circular shifts); after every step each map is renormalised to zero mean and unit variance;
* ``D``: LPIPS with VGG16 (Zhang et al. 2018; ``gan_lab.metrics.perceptual``) when its weights are
  there (``distance=auto`` or ``lpips``), images above 256 pixels area-downsampled to 256 as the
  reference does; else (``distance=auto`` without the weights, or ``pixel``) the mean squared error of
  the pixels plus, where the lab's domain classifier of the checkpoint's dataset is cached
  (MNIST, Fashion-MNIST: ``gan_lab.metrics.domain``), ``domain_weight`` times the mean squared
  difference of its 128 features (each of unit spread on the data). The log and the summary say
  which distance ran. (The option is ``distance``, not ``loss``: ``loss`` is the training loss's
  config group, and Hydra takes ``loss=...`` for a choice of that group.)

The target is read with PIL (any size and mode), center-cropped to a square, resized to the
model's resolution (Lanczos) and converted to its channels (gray: ITU-R 601 luma). Writes into
the run folder: ``target.png`` (that preprocessed target), ``proj.png`` (the projection),
``projected_w.npz`` (``w``: the ws, shape (1, num_ws, w_dim), as the reference's file; ``noise.<layer>``:
the noise maps; ``mode``, ``class``), ``proj.gif`` (target | projection every ``gif_every`` steps)
and ``projection.json`` (the distance used, its final value, the PSNR against the target).

Refused in one line with exit status 2, before any optimisation: a bad option, a target that is
missing or no image, a checkpoint without a w space (DCGAN), a conditional checkpoint without
``class=``, ``distance=lpips`` without the VGG16 weights.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor, nn

from gan_lab.checkpoints import load_model
from gan_lab.config import validate_project
from gan_lab.config.schema import GROUPS, target_of
from gan_lab.data.transforms import to_uint8
from gan_lab.errors import ConfigError
from gan_lab.evaluate import pick_device
from gan_lab.nn.stylegan import inference_fused
from gan_lab.utils.classes import check_classes, label_range, num_classes_of
from gan_lab.utils.cli import tool_main

log = logging.getLogger("gan_lab.project")

LPIPS_MAX_SIZE = 256  # the reference area-downsamples larger images before VGG16
W_SAMPLES_BATCH = 1000


# ---------------------------------------------------------------------------- the schedule
@dataclass(frozen=True)
class Schedule:
    """The reference projector's schedule (module docstring): learning rate and w noise at a step."""

    steps: int = 1000
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    w_noise: float = 0.05
    w_noise_ramp: float = 0.75

    def learning_rate(self, step: int) -> float:
        """``lr * min(1, t / rampup) * (1 - cos(pi * min(1, (1 - t) / rampdown))) / 2``, t = step / steps
        (a ramp of length 0 is no ramp)."""
        t = step / self.steps
        up = min(1.0, t / self.lr_rampup) if self.lr_rampup > 0 else 1.0
        down = min(1.0, (1.0 - t) / self.lr_rampdown) if self.lr_rampdown > 0 else 1.0
        return self.lr * up * (0.5 - 0.5 * math.cos(down * math.pi))

    def noise_scale(self, step: int, w_std: float) -> float:
        """``sigma(t) = w_std * w_noise * max(0, 1 - t / w_noise_ramp)^2``."""
        t = step / self.steps
        return w_std * self.w_noise * max(0.0, 1.0 - t / self.w_noise_ramp) ** 2


def noise_regularization(maps: list[Tensor], min_size: int = 8) -> Tensor:
    """``L_n``: over every map and every level of its 2x2-average pyramid down to ``min_size``, the
    squared mean products of the map with itself shifted by one pixel (circularly) along x and y."""
    total = maps[0].new_zeros([])
    for n in maps:
        level = n.reshape(1, 1, *n.shape[-2:])
        while True:
            total = total + (level * torch.roll(level, shifts=1, dims=3)).mean().square()
            total = total + (level * torch.roll(level, shifts=1, dims=2)).mean().square()
            if level.shape[-1] <= min_size:
                break
            level = F.avg_pool2d(level, kernel_size=2)
    return total


@torch.no_grad()
def normalize_noise_(maps: list[Tensor]) -> None:
    """Each map to zero mean and unit variance, in place."""
    for n in maps:
        n -= n.mean()
        n *= n.square().mean().rsqrt()


@torch.no_grad()
def w_statistics(
    mapping: nn.Module, num: int, c: int | None, seed: int, device: torch.device
) -> tuple[Tensor, float]:
    """``(w_avg (1, w_dim), w_std)`` of ``num`` mapped latents (of class ``c``), without truncation:
    the mean and ``sqrt(sum_j ||w_j - w_avg||^2 / num)``."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(num, mapping.z_dim, generator=gen)
    ws = []
    for chunk in z.split(W_SAMPLES_BATCH):
        labels = None if c is None else torch.full((len(chunk),), c, dtype=torch.int64, device=device)
        ws.append(mapping(chunk.to(device), labels)[:, 0].float())
    w = torch.cat(ws)
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / num).sqrt())
    return w_avg, w_std


# ---------------------------------------------------------------------------- the target image
def read_target(path: str) -> Image.Image:
    """The target file as a PIL image (EXIF orientation applied), or a one-line ConfigError."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"target={path} does not exist")
    if not p.is_file():
        raise ConfigError(f"target={path} is not a file (expected an image: PNG, JPEG, ...)")
    try:
        with Image.open(p) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"target={path} is not an image PIL can read ({reason})") from None


def to_8bit(image: Image.Image, channels: int) -> Image.Image:
    """``image`` as 8-bit gray (``channels=1``) or RGB: 16-bit and float gray are rescaled from
    their range (PIL's own conversion would clip them at 255); transparency is composed on white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, dtype=np.float64)
        # 16-bit modes: their full range, whatever the image holds; 32-bit "I": 16-bit data when above 8 bits
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        if image.mode == "F":
            top = 1.0 if values.max() <= 1.0 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert("L" if channels == 1 else "RGB")


def prepare_target(image: Image.Image, resolution: int, channels: int) -> Image.Image:
    """Center-cropped to a square, resized to ``resolution`` (Lanczos), ``channels`` 8-bit channels."""
    image = to_8bit(image, channels)
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return image


def to_tensor(image: Image.Image) -> Tensor:
    """A PIL image -> (1, C, H, W) float in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32)
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1.0


def to_pil(image: Tensor) -> Image.Image:
    """(1, C, H, W) in [-1, 1] -> an 8-bit PIL image (gray or RGB)."""
    array = to_uint8(image.detach().float())[0].permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio of two 8-bit images, ``10 log10(255^2 / MSE)`` in dB
    (torchmetrics; inf for equal images)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    x = torch.from_numpy(np.asarray(a, dtype=np.float64))
    y = torch.from_numpy(np.asarray(b, dtype=np.float64))
    return float(peak_signal_noise_ratio(x, y, data_range=255.0))


# ---------------------------------------------------------------------------- the losses
class ImageLoss(nn.Module):
    """``D(synth, target)``: per-sample distances of images in [-1, 1], differentiable in ``synth``.
    ``name``: lpips or pixel; ``description``: what it is, for the log and the summary."""

    name = "loss"
    description = ""


class LPIPSLoss(ImageLoss):
    """LPIPS (VGG16); images above 256 pixels are area-downsampled to 256 first (the reference's)."""

    name = "lpips"

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from gan_lab.metrics.perceptual import LPIPS

        self.lpips = LPIPS(weights)
        self.description = f"lpips (VGG16 LPIPS, weights {weights})"

    def forward(self, synth: Tensor, target: Tensor) -> Tensor:
        if synth.shape[-1] > LPIPS_MAX_SIZE:
            synth = F.interpolate(synth, size=(LPIPS_MAX_SIZE, LPIPS_MAX_SIZE), mode="area")
            target = F.interpolate(target, size=(LPIPS_MAX_SIZE, LPIPS_MAX_SIZE), mode="area")
        return self.lpips(synth, target)


class PixelLoss(ImageLoss):
    """``mean (synth - target)^2 + domain_weight * mean (phi(synth) - phi(target))^2``, ``phi`` the
    domain classifier's features (``DomainFeatures``; none: the pixel term alone)."""

    name = "pixel"

    def __init__(self, domain: Any | None = None, domain_weight: float = 0.0, what: str = "") -> None:
        super().__init__()
        self.domain = domain if domain_weight > 0 else None
        self.domain_weight = domain_weight
        self.description = "pixel (mean squared error)"
        if self.domain is not None:
            self.name = "pixel+domain"
            self.description += f" + {domain_weight:g} x domain-classifier features ({what})"

    def features(self, images: Tensor) -> Tensor:
        return self.domain.classifier.features(self.domain.framed(images))

    def forward(self, synth: Tensor, target: Tensor) -> Tensor:
        loss = (synth - target).square().flatten(1).mean(1)
        if self.domain is not None:
            diff = self.features(synth) - self.features(target)
            loss = loss + self.domain_weight * diff.square().mean(1)
        return loss


def dataset_name(config: dict[str, Any]) -> str | None:
    """The data option (``fashion_mnist``, ...) of a checkpoint's stored config, by its target."""
    target = (config.get("data") or {}).get("_target_")
    return next((name for name, s in GROUPS["data"].items() if target_of(s) == target), None)


def cached_domain_features(config: dict[str, Any], cache_dir: str) -> tuple[Any, str] | None:
    """The lab's domain classifier of the checkpoint's dataset when it is cached (never trained
    here), and where it is; None otherwise."""
    from gan_lab.metrics.domain import SUPPORTED, classifier_path, load_or_train

    name = dataset_name(config)
    if name not in SUPPORTED:
        return None
    path = classifier_path(cache_dir, name)
    if not (path.is_file() and path.with_suffix(".json").is_file()):
        return None
    extractor, _ = load_or_train(name, cache_dir, {})
    return extractor, f"{name} classifier, {path}"


def choose_loss(cfg: DictConfig, config: dict[str, Any]) -> ImageLoss:
    """``distance=lpips``: LPIPS or the offline error; ``pixel``: pixels (+ domain features where
    cached); ``auto``: LPIPS when the weights are there, else as ``pixel``."""
    from gan_lab.metrics.perceptual import default_vgg16_path, locate_vgg16_weights

    if cfg.distance in ("lpips", "auto"):
        weights = None
        try:
            weights = locate_vgg16_weights(cfg.lpips_weights, option="lpips_weights")
        except ConfigError:
            if cfg.distance == "lpips" or cfg.lpips_weights:  # asked for, or a path that is not there
                raise
            log.info(
                "distance=auto: no LPIPS VGG16 weights at %s (lpips_weights=PATH names them); pixel distance",
                default_vgg16_path(),
            )
        if weights is not None:  # a file that is there but no VGG16 is refused, not skipped
            return LPIPSLoss(weights)
    domain = cached_domain_features(config, cfg.paths.cache_dir) if cfg.domain_weight > 0 else None
    if domain is None:
        return PixelLoss()
    extractor, what = domain
    return PixelLoss(extractor, cfg.domain_weight, what)


# ---------------------------------------------------------------------------- the projection
@dataclass
class Projection:
    """What ``project`` found: ``ws`` (1, num_ws, w_dim), the noise maps by layer, the image, the
    final image distance (without w noise) and noise regulariser, and the GIF frames."""

    ws: Tensor
    noise: dict[str, Tensor]
    image: Tensor
    distance: float
    noise_reg: float
    start_image: Tensor
    frames: list[Tensor] = field(default_factory=list)


def noise_maps(synthesis: nn.Module) -> dict[str, Tensor]:
    """The synthesis layers' stored noise images (``noise_mode="const"``), by layer name."""
    return {
        name.removesuffix(".noise_const"): buf
        for name, buf in synthesis.named_buffers()
        if name.endswith("noise_const")
    }


def project(
    G: nn.Module,
    target: Tensor,
    loss: ImageLoss,
    schedule: Schedule,
    *,
    c: int | None = None,
    mode: str = "w",
    w_avg_samples: int = 10000,
    noise_reg: float = 1e5,
    seed: int = 0,
    frame_every: int = 0,
    log_every: int = 100,
    progress: Callable[[int, float, float], None] | None = None,
) -> Projection:
    """Optimise w (``mode=w``) or w+ (``wplus``) and the noise maps of a copy of the StyleGAN
    generator ``G`` so that its image matches ``target`` (1, C, R, R) in [-1, 1] (module
    docstring). ``frame_every`` > 0 keeps the image at step 0 and every that many steps."""
    device = target.device
    G = _frozen_copy(G, device)
    synthesis, num_ws = G.synthesis, G.num_ws
    w_avg, w_std = w_statistics(G.mapping, w_avg_samples, c, seed, device)
    gen = torch.Generator().manual_seed(seed + 1)
    maps = list(noise_maps(synthesis).values())
    for n in maps:
        n.copy_(torch.randn(n.shape, generator=gen)).requires_grad_(True)
    w_opt = w_avg.unsqueeze(1).repeat(1, 1 if mode == "w" else num_ws, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *maps], lr=schedule.lr, betas=(0.9, 0.999))

    def render(w: Tensor) -> Tensor:
        return synthesis(w.expand(-1, num_ws, -1), noise_mode="const", fused=inference_fused(w.device))

    with torch.no_grad():
        start = render(w_opt)
    frames = [start.cpu()] if frame_every else []
    for step in range(schedule.steps):
        for group in optimizer.param_groups:
            group["lr"] = schedule.learning_rate(step)
        sigma = schedule.noise_scale(step, w_std)
        w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * sigma
        distance = loss(render(w_opt + w_noise), target).sum()  # one image: its distance
        reg = noise_regularization(maps)
        optimizer.zero_grad(set_to_none=True)
        (distance + noise_reg * reg).backward()
        optimizer.step()
        normalize_noise_(maps)
        done = step + 1
        if frame_every and (done % frame_every == 0 or done == schedule.steps):
            with torch.no_grad():
                frames.append(render(w_opt).cpu())
        if progress is not None and (done % log_every == 0 or done == schedule.steps):
            progress(done, distance.item(), reg.item())
    with torch.no_grad():
        ws = w_opt.detach().expand(-1, num_ws, -1).clone()
        image = render(ws)
        final = float(loss(image, target).sum())
        reg = float(noise_regularization(maps))
    noise = {name: buf.detach().cpu().clone() for name, buf in noise_maps(synthesis).items()}
    return Projection(ws.cpu(), noise, image.cpu(), final, reg, start.cpu(), frames)


def _frozen_copy(G: nn.Module, device: torch.device) -> nn.Module:
    import copy

    return copy.deepcopy(G).eval().requires_grad_(False).to(device)


# ---------------------------------------------------------------------------- the tool
def check_stylegan(module: Any, ckpt: str) -> nn.Module:
    """The checkpoint's EMA generator if it has a w space (mapping and synthesis networks)."""
    G = module.G_ema
    if not all(hasattr(G, part) for part in ("mapping", "synthesis")):
        raise ConfigError(
            f"project.py needs a StyleGAN checkpoint (an image is projected into its w space); "
            f"{ckpt} has a {type(G).__name__}, which has none"
        )
    return G


def class_of(module: Any, class_: int | None) -> int | None:
    """The class to project into: required for a conditional checkpoint, refused otherwise."""
    num_classes = num_classes_of(module)
    chosen = check_classes(class_, None, num_classes)
    if num_classes and chosen is None:
        raise ConfigError(
            f"this checkpoint is class-conditional ({label_range(num_classes)}): "
            "choose the class to project into with class=K"
        )
    return None if chosen is None else chosen[0]


def save_gif(frames: list[Tensor], target: Image.Image, path: Path, fps: float) -> Path:
    """An animated GIF of ``target | frame`` pictures."""
    pictures = []
    for frame in frames:
        picture = to_pil(frame)
        both = Image.new(picture.mode, (picture.width * 2, picture.height))
        both.paste(target, (0, 0))
        both.paste(picture, (picture.width, 0))
        pictures.append(both)
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=round(1000 / fps), loop=0)
    return path


def save_npz(projection: Projection, path: Path, mode: str, c: int | None) -> Path:
    arrays: dict[str, Any] = {"w": projection.ws.float().numpy(), "mode": np.array(mode)}
    arrays |= {f"noise.{name}": n.float().numpy() for name, n in projection.noise.items()}
    if c is not None:
        arrays["class"] = np.array(c, dtype=np.int64)
    np.savez(path, **arrays)
    return path


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def run(cfg: DictConfig) -> dict[str, Any]:
    """Everything ``project.py`` does; returns the summary (also written to ``projection.json``)."""
    validate_project(cfg)  # every option, before the target and the checkpoint are read
    image = read_target(cfg.target)
    module, info = load_model(cfg.ckpt)
    G = check_stylegan(module, cfg.ckpt)
    c = class_of(module, cfg.get("class"))
    loss = choose_loss(cfg, info["config"])
    device = pick_device(cfg.device)
    out = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    target_image = prepare_target(image, G.synthesis.resolution, G.synthesis.img_channels)
    target_image.save(out / "target.png")
    log.info("distance: %s", loss.description)
    schedule = Schedule(cfg.steps, cfg.lr, cfg.lr_rampup, cfg.lr_rampdown, cfg.w_noise, cfg.w_noise_ramp)

    def progress(step: int, distance: float, reg: float) -> None:
        log.info("step %d/%d: %s %.5g, noise reg %.3g", step, cfg.steps, loss.name, distance, reg)

    began = time.monotonic()
    result = project(
        G,
        to_tensor(target_image).to(device),
        loss.to(device),
        schedule,
        c=c,
        mode=cfg.mode,
        w_avg_samples=cfg.w_avg_samples,
        noise_reg=cfg.noise_reg,
        seed=cfg.seed,
        frame_every=cfg.gif_every,
        log_every=cfg.log_every,
        progress=progress,
    )
    seconds = time.monotonic() - began
    proj_image = to_pil(result.image)
    files = {
        "target": out / "target.png",
        "projection": out / "proj.png",
        "w": save_npz(result, out / "projected_w.npz", cfg.mode, c),
    }
    proj_image.save(files["projection"])
    if cfg.gif_every:
        files["gif"] = save_gif(result.frames, target_image, out / "proj.gif", cfg.fps)
    summary = {
        "ckpt": str(cfg.ckpt),
        "target": str(cfg.target),
        "mode": cfg.mode,
        "class": c,
        "steps": cfg.steps,
        "seed": cfg.seed,
        "distance": loss.name,
        "distance_description": loss.description,
        "final_distance": result.distance,
        "final_noise_reg": result.noise_reg,
        "psnr_db": finite(psnr(proj_image, target_image)),
        "start_psnr_db": finite(psnr(to_pil(result.start_image), target_image)),
        "seconds": round(seconds, 2),
        "files": {k: str(v) for k, v in files.items()},
    }
    (out / "projection.json").write_text(json.dumps(summary, indent=2) + "\n")
    say = f"{summary['psnr_db']:.2f} dB" if summary["psnr_db"] is not None else "inf (identical)"
    print(f"distance: {loss.description}; final {loss.name} {result.distance:.5g}; PSNR vs target {say}")
    for p in [*files.values(), out / "projection.json"]:
        print(p)
    return summary


_main = tool_main("project", run, log)


def main() -> None:
    """``python project.py ...``; ``loss=...`` (which Hydra would take for the training loss's config
    group, with a composition error) is one line naming ``distance=``."""
    typed = next((a for a in sys.argv[1:] if a.split("=", 1)[0].lstrip("+~") == "loss"), None)
    if typed is not None:
        print(
            f"error: project.py has no option loss ({typed}): choose the image distance with "
            "distance=auto|lpips|pixel",
            file=sys.stderr,
        )
        sys.exit(2)
    _main()


if __name__ == "__main__":
    main()

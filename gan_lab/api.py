"""A checkpoint's EMA generator from Python, and files that run it without the lab.

    from gan_lab import load_generator

    G = load_generator("outputs/runs/<run>/checkpoints/last.ckpt")   # device="cuda" to move it
    images = G.sample(16, seed=0)             # generate.py's grid of seed 0: (16, C, R, R), [-1, 1]
    G.to_pil(images)[0].save("first.png")
    images = G(torch.randn(8, G.z_dim), c=3, psi=0.7)   # latents of your own, class 3, truncated

``load_generator`` goes through the lab's safe checkpoint path (``gan_lab.checkpoints.load_model``:
``torch.load(weights_only=True)``, the stored config checked against ``gan_lab.allowlist``), and
wraps ``module.G_ema`` in ``Generator``, a small ``nn.Module`` that carries what a notebook needs
to know (``kind``, ``resolution``, ``channels``, ``z_dim``, ``w_dim``, ``num_classes``,
``class_names``, ``checkpoint``, ``iteration``, ``kimg``) and checks its inputs with one-line
errors.

Truncation (StyleGAN only; the "truncation trick in W", Karras et al. 2019, "A Style-Based
Generator Architecture for Generative Adversarial Networks", appendix B):

    w' = w_avg + psi * (w - w_avg)

on the first ``cutoff`` ws (all by default), where ``w_avg`` is the generator's running mean of
``w``; a class-conditional lab generator truncates towards the mean of the sample's own class,
``w_avg_class[c]`` (``gan_lab.nn.stylegan.MappingNetwork``). ``psi = 1`` changes nothing, ``psi
= 0`` gives the average image (of the class). DCGAN has no ``w``: it refuses ``psi != 1``.

``export_generator`` (``Generator.export``; ``scripts/export.py`` on the command line) writes a
file that plain PyTorch loads, without the lab installed:

* ``torchscript``: ``torch.jit.load(path)``, a traced ``(z[, c]) -> images`` (also from C++);
* ``export``: ``torch.export.load(path).module()``, the same callable as a ``torch.export``
  program (a .pt2 file);
* ``state_dict``: ``torch.load(path, weights_only=True)`` gives ``{"state_dict": tensors,
  "metadata": dict}``, the generator's weights (``w_avg`` included) for another codebase.

The two runnable formats bake in the truncation (``psi``, ``cutoff``) and the noise (``const`` or
``none``) given at export, take any batch size (traced with the modulation as activation scaling,
``fused=False``, the same linear map as the per-sample kernels ``Generator`` uses on CUDA, and
faster on a CPU, where ``Generator`` uses it too), keep the device they were traced on, and are
checked after writing: the file is loaded back and must reproduce ``Generator``'s images at two
other batch sizes. Every file carries the same JSON metadata (``gan_lab.json``: sizes, classes,
psi, noise, the checkpoint it came from).
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor, nn

from gan_lab.config import check_arguments, check_export_options
from gan_lab.config.schema import EXPORT_FORMATS, ExportConfig, GenerateConfig
from gan_lab.errors import ConfigError
from gan_lab.nn.stylegan import inference_fused

__all__ = ["FORMATS", "Generator", "export_generator", "load_generator", "read_metadata"]

FORMATS = EXPORT_FORMATS
SUFFIXES = {"torchscript": ".pt", "export": ".pt2", "state_dict": ".pt"}
METADATA_FILE = "gan_lab.json"  # the extra file of TorchScript and torch.export archives
METADATA_FORMAT = 1
GRID_BATCH = 64  # generate.py renders 64 images at a time (its noise_rng follows that order)

# class names of the lab's datasets with named classes (by the stored data config's _target_);
# an image folder's classes are its subfolders, which a checkpoint does not record
CIFAR10_CLASSES = (  # the order of CIFAR-10's batches.meta
    *("airplane", "automobile", "bird", "cat", "deer"),
    *("dog", "frog", "horse", "ship", "truck"),
)


def _class_names(data_target: str | None, num_classes: int) -> list[str] | None:
    """The names of the classes of the dataset a checkpoint was trained on, when they are known."""
    if not num_classes or data_target is None:
        return None
    from torchvision import datasets

    known: dict[str, Sequence[str]] = {
        "gan_lab.data.FashionMNISTDataModule": datasets.FashionMNIST.classes,
        "gan_lab.data.MNISTDataModule": datasets.MNIST.classes,
        "gan_lab.data.CIFAR10DataModule": CIFAR10_CLASSES,
    }
    names = known.get(data_target)
    return list(names) if names is not None and len(names) == num_classes else None


def is_stylegan(net: nn.Module) -> bool:
    """Whether ``net`` maps z -> w -> image (``mapping`` and ``synthesis``), as generate.py asks."""
    return all(hasattr(net, part) for part in ("mapping", "synthesis"))


class Generator(nn.Module):
    """A lab checkpoint's EMA generator, in eval mode: ``G(z, c=None, psi=1.0)`` -> images.

    Attributes: ``kind`` (``"stylegan"`` or ``"dcgan"``), ``resolution``, ``channels``,
    ``z_dim``, ``w_dim`` and ``num_ws`` (StyleGAN; None for DCGAN), ``num_classes`` (0:
    unconditional), ``class_names`` (None when the dataset's are not known), ``checkpoint`` (its
    path), ``iteration`` and ``kimg`` (how far it was trained), ``net`` (the lab's network).

    Images are float32 ``(N, channels, resolution, resolution)`` on the [-1, 1] scale of the
    training data. DCGAN's end in tanh; StyleGAN's are not squashed (as in StyleGAN2), so a few
    values fall slightly outside: ``to_uint8`` and ``to_pil`` clamp.

    It stays in eval mode (``.train()`` leaves it there): training mode would update DCGAN's
    batch-norm statistics and StyleGAN's ``w_avg``. Its weights do not require gradients; the
    forward pass is differentiable in ``z`` (e.g. to invert an image).
    """

    def __init__(
        self,
        net: nn.Module,
        checkpoint: str = "",
        class_names: list[str] | None = None,
        iteration: int = 0,
        kimg: float = 0.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        stylegan = is_stylegan(net)
        self.kind = "stylegan" if stylegan else "dcgan" if type(net).__name__ == "DCGANGenerator" else "other"
        self.resolution, self.channels = int(net.resolution), int(net.channels)
        self.z_dim = int(net.z_dim)
        self.w_dim = int(net.w_dim) if stylegan else None
        self.num_ws = int(net.num_ws) if stylegan else None
        self.num_classes = int(getattr(net, "num_classes", 0) or 0)
        self.class_names = class_names
        self.checkpoint, self.iteration, self.kimg = str(checkpoint), int(iteration), float(kimg)
        self.config = config  # the stored config's model.generator node (plain data)
        self.train(False)

    # ------------------------------------------------------------------ what it is
    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def stylegan(self) -> bool:
        return self.kind == "stylegan"

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def train(self, mode: bool = True) -> Generator:
        """Stays in eval mode (class docstring)."""
        return super().train(False)

    def extra_repr(self) -> str:
        size = f"{self.resolution}x{self.resolution}x{self.channels}"
        dims = f"z_dim={self.z_dim}" + (f", w_dim={self.w_dim}" if self.w_dim else "")
        classes = f", {self.num_classes} classes" if self.num_classes else ""
        return f"kind={self.kind}, {size}, {dims}{classes}, checkpoint={self.checkpoint!r}"

    def metadata(self) -> dict[str, Any]:
        """What the generator is, as plain JSON-able data (what every exported file carries)."""
        return {
            "metadata_format": METADATA_FORMAT,
            "kind": self.kind,
            "network": type(self.net).__name__,
            "resolution": self.resolution,
            "channels": self.channels,
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "checkpoint": self.checkpoint,
            "iteration": self.iteration,
            "kimg": self.kimg,
            "config": self.config,
            "torch": str(torch.__version__),
        }

    # ------------------------------------------------------------------ inputs
    def latents(self, z: Any) -> Tensor:
        """``z`` checked: a float tensor (N, z_dim), N >= 1; returned float32 on the generator's device."""
        if not isinstance(z, Tensor):
            raise TypeError(f"z must be a tensor of shape (N, {self.z_dim}), got {type(z).__name__}")
        if not z.is_floating_point() or z.ndim != 2 or z.shape[0] < 1 or z.shape[1] != self.z_dim:
            raise ValueError(
                f"z must be a float tensor of shape (N, {self.z_dim}), "
                f"got {z.dtype} of shape {tuple(z.shape)}"
            )
        return z.to(self.device, torch.float32)

    def labels(self, c: Any, n: int) -> Tensor | None:
        """The class labels of ``n`` images as int64 (N,) on the generator's device (None when
        unconditional). ``c``: an int (every image), a list or tuple of ints, or an integer tensor
        (a scalar, or one label per image)."""
        if not self.conditional:
            if c is not None:
                raise ValueError(f"this generator is unconditional: call it without c (got c={c!r})")
            return None
        last = self.num_classes - 1
        if c is None:
            raise ValueError(
                f"this generator is conditional ({self.num_classes} classes): pass c, a class label "
                f"0 to {last} for every image or one per image"
            )
        labels = self._as_labels(c)
        if labels.ndim == 0 or labels.numel() == 1:
            labels = labels.reshape(1).expand(n)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"c has {labels.numel()} labels for {n} images: give one label or one per image")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high > last:
            bad = low if low < 0 else high
            raise ValueError(
                f"class label {bad} is out of range: {self.num_classes} classes, labels 0 to {last}"
            )
        return labels.to(self.device)

    def _as_labels(self, c: Any) -> Tensor:
        if isinstance(c, Tensor):
            if c.is_floating_point() or c.is_complex() or c.dtype == torch.bool:
                raise ValueError(f"c must hold integer class labels, got a tensor of {c.dtype}")
            return c.long().cpu()
        values = c if isinstance(c, Sequence) and not isinstance(c, str) else [c]
        if not values or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in values):
            raise ValueError(
                f"c={c!r} is not a class label: expected an int, a list of ints or an int tensor"
            )
        return torch.tensor([int(k) for k in values], dtype=torch.int64)

    def check_options(
        self, psi: float = 1.0, cutoff: int | None = None, noise: str = "const", schema: type = GenerateConfig
    ) -> None:
        """Refuse (``ConfigError``, a ValueError, one line) values out of range (the rules of
        generate.py's keys, or of ``schema``'s) and truncation or noise this generator does not have."""
        check_arguments(schema, "", psi=psi, cutoff=cutoff, noise=noise)
        if self.stylegan:
            return
        given = [f"psi={psi}" if psi != 1 else "", f"cutoff={cutoff}" if cutoff is not None else ""]
        given.append(f"noise={noise}" if noise != "const" else "")
        if any(given):
            raise ConfigError(
                f"{', '.join(g for g in given if g)}: truncation and noise are StyleGAN's; this "
                f"generator is a {type(self.net).__name__} (leave psi=1, no cutoff, noise=const)"
            )

    # ------------------------------------------------------------------ images
    def forward(
        self, z: Tensor, c: Any = None, psi: float = 1.0, *, cutoff: int | None = None, noise: str = "const"
    ) -> Tensor:
        """Images ``(N, channels, resolution, resolution)`` of the latents ``z`` (N, z_dim).

        ``c``: class labels (conditional generators need them, others refuse them); ``psi``,
        ``cutoff``: truncation (module docstring); ``noise``: StyleGAN's per-pixel noise, ``const``
        (the noise images stored with the weights: the same z gives the same image), ``random``
        (fresh noise from torch's global generator) or ``none``."""
        z = self.latents(z)
        labels = self.labels(c, z.shape[0])
        self.check_options(psi, cutoff, noise)
        return self._images(z, labels, psi, cutoff, noise)

    def _images(
        self,
        z: Tensor,
        c: Tensor | None,
        psi: float,
        cutoff: int | None,
        noise: str,
        rng: torch.Generator | None = None,
    ) -> Tensor:
        """What generate.py's ``Renderer.from_z`` computes (the modulation of inference)."""
        if not self.stylegan:
            return self.net(z) if c is None else self.net(z, c)
        ws = self.net.mapping(z, c, truncation_psi=float(psi), truncation_cutoff=cutoff)
        return self.net.synthesis(ws, noise_mode=noise, rng=rng, fused=inference_fused(ws.device))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int = 0,
        c: Any = None,
        psi: float = 1.0,
        *,
        cutoff: int | None = None,
        noise: str = "const",
    ) -> Tensor:
        """``n`` images from latents seeded by ``seed``: the images of ``python generate.py
        ckpt=PATH num=n seed=seed [class=c] [psi=... cutoff=... noise=...]`` (its ``mode=grid``,
        in the same order; for a conditional generator ``c`` is one class for all of them or one
        label per image). ``noise=random`` draws the noise from a generator seeded by ``seed`` too,
        as generate.py does."""
        from gan_lab.generate import seeded_latents  # generate.py's own seeding: the same latents

        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n={n!r} is invalid: expected a number of images >= 1")
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed={seed!r} is invalid: expected an integer >= 0")
        labels = self.labels(c, int(n))
        self.check_options(psi, cutoff, noise)
        z = seeded_latents(SimpleNamespace(G=self.net, device=self.device), int(n), int(seed))
        rng = torch.Generator(device=self.device).manual_seed(int(seed))
        chunks = z.split(GRID_BATCH)
        cs = [None] * len(chunks) if labels is None else labels.split(GRID_BATCH)
        return torch.cat(
            [self._images(zs, cc, psi, cutoff, noise, rng) for zs, cc in zip(chunks, cs, strict=True)]
        )

    @staticmethod
    def to_uint8(images: Tensor) -> Tensor:
        """[-1, 1] -> uint8 [0, 255] (clamped, rounded; the conversion of generate.py's PNGs), on the CPU."""
        from gan_lab.data.transforms import to_uint8

        return to_uint8(images.detach().float()).cpu()

    @classmethod
    def to_pil(cls, images: Tensor) -> list[Any]:
        """One ``PIL.Image`` per image (mode ``L`` for one channel, ``RGB`` for three)."""
        from PIL import Image

        pixels = cls.to_uint8(images).permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]

    def export(self, path: str | os.PathLike[str], format: str = "torchscript", **options: Any) -> Path:
        """``export_generator(self, path, format, **options)``."""
        return export_generator(self, path, format, **options)


def load_generator(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", *, key: str = "path"
) -> Generator:
    """The EMA generator of the lab checkpoint ``path``, in eval mode on ``device`` (``"cpu"``,
    ``"cuda"``, ``"auto"``: CUDA when available). A missing, foreign or crafted file raises
    ``gan_lab.errors.CheckpointError`` (a ValueError) with one line naming it ``key=PATH``;
    nothing in it runs."""
    from gan_lab.checkpoints import load_model

    target = _device(device)
    module, info = load_model(path, key=key)
    config = info["config"]
    num_classes = int(getattr(module.G_ema, "num_classes", 0) or 0)
    data_target = (config.get("data") or {}).get("_target_")
    generator = Generator(
        module.G_ema,
        checkpoint=str(path),
        class_names=_class_names(data_target, num_classes),
        iteration=info["iteration"],
        kimg=info["kimg"],
        config=(config.get("model") or {}).get("generator"),
    )
    return generator.to(target)


def _device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r} is not a device: expected cpu, cuda, cuda:N, mps or auto") from e
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device} but no CUDA device is available")
    return target


# ---------------------------------------------------------------------------- exported files
@dataclass(frozen=True)
class Baked:
    """What a runnable exported file fixes: the truncation (``psi``, ``cutoff``) and the noise."""

    psi: float = 1.0
    cutoff: int | None = None
    noise: str = "const"


class Sampler(nn.Module):
    """What a runnable exported file computes: ``(z[, c]) -> images`` with the truncation and the
    noise chosen at export, the modulation as activation scaling (batch-size independent)."""

    def __init__(self, net: nn.Module, baked: Baked) -> None:
        super().__init__()
        self.net, self.stylegan = net, is_stylegan(net)
        self.psi, self.cutoff, self.noise = float(baked.psi), baked.cutoff, baked.noise

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        if not self.stylegan:
            return self.net(z) if c is None else self.net(z, c)
        ws = self.net.mapping(z, c, truncation_psi=self.psi, truncation_cutoff=self.cutoff)
        return self.net.synthesis(ws, noise_mode=self.noise, fused=False)


def export_generator(
    generator: Generator,
    path: str | os.PathLike[str],
    format: str = "torchscript",
    psi: float = 1.0,
    cutoff: int | None = None,
    noise: str = "const",
    check: bool = True,
) -> Path:
    """Write ``generator`` to ``path`` as ``format`` (module docstring); returns the path.

    ``psi``, ``cutoff`` and ``noise`` (``const`` or ``none``) are baked into the runnable formats;
    a ``state_dict`` file holds the weights only and refuses them. ``check``: load the written file
    back first (the runnable ones must reproduce the generator's images at batch sizes 1 and 3, a
    state_dict its tensors); a file that fails is not left at ``path``."""
    check_arguments(ExportConfig, "", format=format)
    generator.check_options(psi, cutoff, noise, schema=ExportConfig)
    check_export_options(format, psi, cutoff, noise)
    path = Path(path).expanduser()
    check_out(path, format)
    baked = Baked(float(psi), cutoff, noise)
    metadata = generator.metadata() | {
        "file_format": format,
        "inputs": ["z", "c"] if generator.conditional else ["z"],
        "psi": baked.psi,
        "cutoff": cutoff,
        "noise": noise if generator.stylegan else None,
        "output": "float32 images (N, channels, resolution, resolution) on the [-1, 1] scale",
    }
    metadata = json.loads(json.dumps(metadata))  # plain data only (torch.load(weights_only=True) reads it)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # torch.export wants its .pt2
    try:
        _WRITERS[format](generator, partial, metadata, baked)
        if check:
            _check_file(generator, partial, format, baked)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def check_out(path: Path, format: str) -> None:
    """Refuse (``ConfigError``) an output path that is a folder, or a torch.export file not named
    .pt2 (``torch.export.load`` expects the suffix)."""
    if path.is_dir():
        example = path / f"generator{SUFFIXES[format]}"
        raise ConfigError(f"out={path} is a folder: give the file to write, e.g. {example}")
    if format == "export" and path.suffix != ".pt2":
        raise ConfigError(f"out={path}: a torch.export file is named *.pt2 (torch.export.load expects it)")
    try:  # before the checkpoint is loaded and traced: a folder that cannot be made is one line
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"out={path}: cannot create its folder ({e.strerror or e})") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"out={path}: its folder {path.parent} is not writable")


def read_metadata(path: str | os.PathLike[str], format: str) -> dict[str, Any]:
    """The metadata of an exported file (what ``export_generator`` wrote), read with plain PyTorch."""
    if format == "state_dict":
        return torch.load(path, map_location="cpu", weights_only=True)["metadata"]
    extra = {METADATA_FILE: ""}
    _load_runnable(path, format, "cpu", extra)
    return json.loads(extra[METADATA_FILE])


def _load_runnable(path: str | os.PathLike[str], format: str, device: Any, extra: dict[str, Any]) -> Any:
    """The callable of a TorchScript or torch.export file (``extra``: its extra files, filled in)."""
    if format == "torchscript":
        with _quiet_torchscript():
            return torch.jit.load(str(path), map_location=device, _extra_files=extra)
    return torch.export.load(path, extra_files=extra).module()


def _inputs(generator: Generator, n: int, seed: int) -> tuple[Tensor, ...]:
    """Example inputs of batch ``n``: seeded latents and, when conditional, labels cycling
    through the classes."""
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed)).to(generator.device)
    if not generator.conditional:
        return (z,)
    return z, (torch.arange(n) % generator.num_classes).to(generator.device)


def _check_file(generator: Generator, path: Path, format: str, baked: Baked) -> None:
    """The written file, loaded back, must hold the generator's tensors (state_dict) or reproduce
    its images (per-sample kernels, as generate.py) at batch sizes it was not traced with."""
    if format == "state_dict":
        stored = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        tensors = generator.net.state_dict()
        if stored.keys() != tensors.keys() or not all(
            torch.equal(stored[k], v.cpu()) for k, v in tensors.items()
        ):
            raise RuntimeError(f"the state_dict file {path} does not hold the generator's tensors")
        return
    run = _load_runnable(path, format, generator.device, {})
    for n in (1, 3):
        z, *c = _inputs(generator, n, seed=n)
        with torch.no_grad():
            expected = generator(z, c[0] if c else None, baked.psi, cutoff=baked.cutoff, noise=baked.noise)
            got = run(z, *c)
        worst = (got - expected).abs().max().item() if got.shape == expected.shape else math.inf
        if not worst <= 1e-4 * (1 + expected.abs().max().item()):
            raise RuntimeError(
                f"the {format} file does not reproduce the generator at batch {n} "
                f"(largest difference {worst:.3g})"
            )


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    """Tracing warns for every shape read as a Python number, and TorchScript that it is
    deprecated; the written file is checked at other batch sizes instead (``_check_file``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated")
        yield


class _NoAutogradContext:
    """Stands in for the context of an autograd Function whose forward runs as plain ops."""

    needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *tensors: Tensor) -> None:
        pass


def _lab_functions(base: type = torch.autograd.Function) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        if sub.__module__.startswith("gan_lab."):
            found.append(sub)
        found += _lab_functions(sub)
    return found


@contextlib.contextmanager
def _functions_as_plain_ops() -> Iterator[None]:
    """While tracing: the lab's custom autograd Functions (FIR resampling, bias and activation:
    ``gan_lab/nn/fir.py``, ``gan_lab/nn/layers.py``) run their forward's tensor ops directly. A
    traced Function is a Python call that TorchScript cannot save; its forward ops are the same
    computation (only the hand-written backward, which an inference file has no use for, is lost)."""
    functions = _lab_functions()
    for function in functions:
        function.apply = classmethod(lambda cls, *args: cls.forward(_NoAutogradContext(), *args))
    try:
        yield
    finally:
        for function in functions:
            del function.apply  # Function.apply again


def _write_torchscript(generator: Generator, path: Path, metadata: dict[str, Any], baked: Baked) -> None:
    sampler = Sampler(generator.net, baked).eval()
    with _quiet_torchscript():
        with _functions_as_plain_ops(), torch.no_grad():
            traced = torch.jit.trace(sampler, _inputs(generator, 2, seed=0), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def _write_export(generator: Generator, path: Path, metadata: dict[str, Any], baked: Baked) -> None:
    """A torch.export program whose batch size is a dynamic dimension (``Dim("batch")``)."""
    sampler = Sampler(generator.net, baked).eval()
    batch = torch.export.Dim("batch", min=1)
    dynamic = {"z": {0: batch}} | ({"c": {0: batch}} if generator.conditional else {})
    with torch.no_grad():
        program = torch.export.export(sampler, _inputs(generator, 2, seed=0), dynamic_shapes=dynamic)
    torch.export.save(program, path, extra_files={METADATA_FILE: json.dumps(metadata)})


def _write_state_dict(generator: Generator, path: Path, metadata: dict[str, Any], baked: Baked) -> None:
    """``{"state_dict": the network's tensors (its own key names), "metadata": plain data}``."""
    tensors = {k: v.detach().cpu().clone() for k, v in generator.net.state_dict().items()}
    torch.save({"state_dict": tensors, "metadata": metadata}, path)


_WRITERS = {"torchscript": _write_torchscript, "export": _write_export, "state_dict": _write_state_dict}

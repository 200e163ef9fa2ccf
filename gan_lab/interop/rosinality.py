"""rosinality's stylegan2-pytorch checkpoints (``checkpoint/*.pt`` of its ``train.py``, or the
``*.pt`` its ``convert_weight.py`` makes of NVIDIA's TensorFlow models).

The file is a ``torch.save`` dict: ``g``, ``d``, ``g_ema`` (state dicts), ``g_optim``, ``d_optim``,
``args`` (an ``argparse.Namespace``), ``ada_aug_p``; a converted model holds ``g_ema`` and
``latent_avg`` (and ``g`` / ``d`` when asked for). It is read with ``torch.load(weights_only=True)``,
``argparse.Namespace`` being the only class allowed beyond tensors and containers.

Its networks are StyleGAN2 config F (Karras et al. 2020) written independently of NVIDIA's code,
and compute what the lab's compute, with these differences in layout, each handled here:

* no class conditioning, 3 image channels in its code (read from the shapes here), ``z_dim ==
  w_dim`` (``style_dim``), mapping learning-rate multiplier 0.01 (its ``lr_mlp`` default; its
  ``train.py`` never changes it), no activation clamping (``conv_clamp=None`` in the lab);
* channels per resolution from a table (512 up to 32 px, then ``channel_multiplier`` times 256,
  128, ...): read from the weights' shapes and turned into the lab's ``min(channel_base / r,
  channel_max)``; a table that rule cannot express (``channel_multiplier`` 4) is refused;
* weights of the modulated convolutions stored as (1, O, I, k, k), the constant input as
  (1, C, 4, 4), noise strengths as (1,), toRGB biases as (1, 3, 1, 1): reshaped;
* noise images in ``noises.noise_{i}`` (one per convolution) instead of in each layer;
* its FIR filters are stored buffers (``kernel``): checked to be [1, 3, 3, 1] (with the gain 4 of
  upsampling) and dropped, since the lab's are constants;
* its discriminator is StyleGAN2's residual one with minibatch-std groups of 4 and 1 feature;
* ``w_avg``: ``latent_avg`` when the file has it (converted models), else the mean of the mapped
  ``w`` of 10,000 seeded latents (what its ``generate.py`` computes for truncation, with 4,096).

The up- and downsampling paddings (rosinality: ``Blur`` pads (1, 1) after the stride-2 transposed
convolution, (2, 2) before a strided 3x3 convolution, (1, 1) before the 1x1 skip; ``Upsample``
(2, 1) for the toRGB skips) equal the lab's and StyleGAN2-ADA's; ``python
scripts/check_stylegan_reference.py --rosinality PATH`` checks the outputs against its code.
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_lab.interop.common import Imported, ImportRefused, channel_rule, load_failure
from gan_lab.interop.keys import KERNEL, rosinality_discriminator_key, rosinality_generator_key
from gan_lab.nn.layers import setup_filter

SOURCE = "rosinality/stylegan2-pytorch"
MBSTD_GROUP = 4  # its Discriminator's stddev_group and stddev_feat
MBSTD_CHANNELS = 1
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # torch.save before zip archives (torch < 1.6)


def is_torch_file(path: Path) -> bool:
    """A ``torch.save`` file (zip archive, or the legacy format's magic number)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(len(LEGACY_MAGIC)) == LEGACY_MAGIC


def load(path: Path, what: str) -> dict[str, Any]:
    """The checkpoint dict, read with ``weights_only=True`` (``argparse.Namespace`` allowed)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ImportRefused(f"{what} cannot be read as data ({load_failure(e)})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema"), dict):
        raise ImportRefused(f"{what}: no 'g_ema' state dict (not a rosinality stylegan2-pytorch checkpoint)")
    return ckpt


# ---------------------------------------------------------------------------- sizes from shapes
def _shape(state: dict[str, Tensor], key: str, what: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, Tensor):
        raise ImportRefused(f"{what}: no {key} (not a rosinality StyleGAN2 network)")
    return tuple(value.shape)


def _indices(state: dict[str, Tensor], pattern: str) -> list[int]:
    return sorted({int(m[1]) for k in state if (m := re.match(pattern, k))})


def generator_sizes(state: dict[str, Tensor], what: str) -> dict[str, Any]:
    """The lab's ``StyleGANGenerator`` arguments of a rosinality ``Generator`` state dict."""
    layers = _indices(state, r"style\.(\d+)\.weight$")
    if not layers or layers != list(range(1, len(layers) + 1)):
        raise ImportRefused(f"{what}: its mapping layers style.N are not 1..{len(layers)}")
    out_dim, w_dim = _shape(state, "style.1.weight", what)
    if out_dim != w_dim:
        raise ImportRefused(f"{what}: style.1.weight is {out_dim}x{w_dim}, expected square (style_dim)")
    convs = _indices(state, r"convs\.(\d+)\.")
    if len(convs) % 2 or convs != list(range(len(convs))):
        raise ImportRefused(f"{what}: its convolutions convs.N are not pairs per resolution")
    resolution = 2 ** (len(convs) // 2 + 2)
    channels = {4: _shape(state, "input.input", what)[1]}
    for k in range(len(convs) // 2):
        channels[2 ** (k + 3)] = _shape(state, f"convs.{2 * k}.conv.weight", what)[1]
    base, widest = channel_rule(channels, what)
    return dict(
        resolution=resolution,
        channels=_shape(state, "to_rgb1.conv.weight", what)[1],
        z_dim=w_dim,
        w_dim=w_dim,
        map_layers=len(layers),
        channel_base=base,
        channel_max=widest,
        conv_clamp=None,
        num_classes=0,
    )


def discriminator_sizes(state: dict[str, Tensor], what: str) -> dict[str, Any]:
    """The lab's ``StyleGANDiscriminator`` arguments of a rosinality ``Discriminator`` state dict."""
    blocks = _indices(state, r"convs\.(\d+)\.")
    if not blocks or blocks != list(range(len(blocks))):
        raise ImportRefused(f"{what}: its blocks convs.N are not 0..{len(blocks) - 1}")
    resolution = 2 ** (len(blocks) + 1)
    first, img_channels = _shape(state, "convs.0.0.weight", what)[:2]
    channels = {resolution: first}
    for j in range(1, len(blocks)):
        channels[resolution >> j] = _shape(state, f"convs.{j}.conv2.1.weight", what)[0]
    out, inputs = _shape(state, "final_conv.0.weight", what)[:2]
    channels[4] = out
    if inputs != out + MBSTD_CHANNELS:
        raise ImportRefused(f"{what}: final_conv takes {inputs} channels, expected {out} + 1 (minibatch std)")
    base, widest = channel_rule(channels, what)
    return dict(
        resolution=resolution,
        channels=img_channels,
        channel_base=base,
        channel_max=widest,
        mbstd_group=MBSTD_GROUP,
        mbstd_channels=MBSTD_CHANNELS,
        conv_clamp=None,
        num_classes=0,
        cmap_dim=None,
        architecture="resnet",
    )


# ---------------------------------------------------------------------------- state
def _expected_kernel(upsampling: bool) -> Tensor:
    f = setup_filter()
    return torch.outer(f, f) * (4.0 if upsampling else 1.0)


def convert_state(
    state: dict[str, Tensor], net: str, lab_shapes: dict[str, torch.Size], what: str
) -> dict[str, Tensor]:
    """A rosinality state dict under the lab's names and shapes; refuses a key or shape StyleGAN2
    does not have, and FIR filters other than [1, 3, 3, 1]."""
    rename = rosinality_generator_key if net == "G" else rosinality_discriminator_key
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise ImportRefused(f"{what}: {key} is a {type(value).__name__}, not a tensor")
        try:
            new = rename(key)
        except KeyError:
            raise ImportRefused(
                f"{what}: {key} is not a layer of StyleGAN2's {net} (another architecture?)"
            ) from None
        if new is None:
            if key.endswith(KERNEL) and not torch.allclose(value.float(), _expected_kernel(net == "G")):
                raise ImportRefused(f"{what}: {key} is not the [1,3,3,1] filter (another blur_kernel)")
            continue
        shape = lab_shapes.get(new)
        if shape is None:
            raise ImportRefused(f"{what}: {key} has no place in the lab's {net} of these sizes")
        if [d for d in value.shape if d != 1] != [d for d in shape if d != 1]:
            raise ImportRefused(f"{what}: {key} has shape {tuple(value.shape)}, expected {tuple(shape)}")
        out[new] = value.reshape(shape)
    return out


def read(path: str | Path, what: str | None = None, fresh_d: bool = False) -> Imported:
    """The networks of a rosinality checkpoint, in the lab's terms (see the module docstring)."""
    from gan_lab.nn.stylegan import StyleGANDiscriminator, StyleGANGenerator

    path = Path(path)
    what = what or str(path)
    ckpt = load(path, what)
    args = ckpt.get("args")
    arch = getattr(args, "arch", "stylegan2") if isinstance(args, argparse.Namespace) else "stylegan2"
    if arch != "stylegan2":
        raise ImportRefused(f"{what}: args.arch={arch!r} cannot be imported: only StyleGAN2 networks")
    g_sizes = generator_sizes(ckpt["g_ema"], f"{what} g_ema")
    g_shapes = {k: v.shape for k, v in StyleGANGenerator(**g_sizes).state_dict().items()}
    notes = []
    states = {"G_ema": convert_state(ckpt["g_ema"], "G", g_shapes, f"{what} g_ema")}
    if isinstance(ckpt.get("g"), dict):
        if generator_sizes(ckpt["g"], f"{what} g") != g_sizes:
            raise ImportRefused(f"{what}: g and g_ema have different sizes")
        states["G"] = convert_state(ckpt["g"], "G", g_shapes, f"{what} g")
    else:
        states["G"] = {k: v.clone() for k, v in states["G_ema"].items()}
        notes.append("no 'g' in the file: G starts as a copy of g_ema")
    d_sizes = {**g_sizes, "mbstd_group": MBSTD_GROUP, "mbstd_channels": MBSTD_CHANNELS}
    d_state = None
    if isinstance(ckpt.get("d"), dict):
        d_sizes = discriminator_sizes(ckpt["d"], f"{what} d")
        if (d_sizes["resolution"], d_sizes["channels"]) != (g_sizes["resolution"], g_sizes["channels"]):
            raise ImportRefused(f"{what}: d and g_ema have different resolutions or channels")
        d_shapes = {k: v.shape for k, v in StyleGANDiscriminator(**d_sizes).state_dict().items()}
        d_state = convert_state(ckpt["d"], "D", d_shapes, f"{what} d")
    elif fresh_d:
        d_sizes = {
            k: g_sizes[k] for k in ("resolution", "channels", "channel_base", "channel_max", "conv_clamp")
        }
        d_sizes |= dict(mbstd_group=MBSTD_GROUP, mbstd_channels=MBSTD_CHANNELS, num_classes=0, cmap_dim=None)
        d_sizes["architecture"] = "resnet"
        notes.append("no 'd' in the file: D is freshly initialised (--fresh-d)")
    else:
        raise ImportRefused(
            f"{what} has no discriminator ('d'; convert_weight.py without --disc?): add --fresh-d to start "
            "a new one (fine for generate.py and evaluate.py, a cold start for fine-tuning)"
        )
    w_avg = "mean of the mapped w of 10,000 seeded latents"
    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, Tensor):
        if latent_avg.numel() != g_sizes["w_dim"]:
            raise ImportRefused(
                f"{what}: latent_avg has {latent_avg.numel()} values, expected {g_sizes['w_dim']}"
            )
        states["G_ema"]["mapping.w_avg"] = latent_avg.reshape(-1).float()
        w_avg = "the file's latent_avg (G_ema); G's: " + w_avg
    dataset = {}
    if isinstance(args, argparse.Namespace) and isinstance(getattr(args, "path", None), str):
        dataset["root"] = args.path  # its LMDB folder: the lab reads image folders
    return Imported(
        source=SOURCE,
        path=path,
        generator=g_sizes,
        discriminator=d_sizes,
        G=states["G"],
        D=d_state,
        G_ema=states["G_ema"],
        w_avg=w_avg,
        dataset=dataset,
        notes=notes,
    )

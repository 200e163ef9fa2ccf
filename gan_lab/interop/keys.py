"""State-dict names of StyleGAN2 networks in other projects, and the lab's name for each.

The lab's networks (``gan_lab.nn.stylegan``) keep StyleGAN2-ADA's layer names inside each block;
only the containers differ. rosinality's stylegan2-pytorch names its layers by position
(``convs.3``, ``to_rgbs.1``, ``noises.noise_5``) and splits some of them differently (the bias
and activation of a convolution are a separate module, ``activate``); ``rosinality_key`` maps
each of its names onto the lab's, ``None`` for its constant FIR filters (``kernel`` buffers,
constants of the lab's layers, not state).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from torch import Tensor


# ---------------------------------------------------------------------------- stylegan2-ada-pytorch
def lab_key(ref_key: str, net: str, resolution: int) -> str | None:
    """The lab's state-dict key for a stylegan2-ada-pytorch key (None: a buffer the lab does not store).

    G: ``mapping.fc{i}`` -> ``mapping.layers.{i}``, ``synthesis.b{res}`` ->
    ``synthesis.blocks.{log2 res - 2}``. D: ``b{res}`` -> ``blocks.{log2 R - log2 res}``, ``b4`` ->
    ``epilogue``, ``mapping.fc{i}`` -> ``mapping.layers.{i}``. ``embed``, ``w_avg`` and the layers'
    own names are the same. The FIR filters (``resample_filter``) are constants, not state, in the lab.
    """
    if ref_key.endswith("resample_filter"):
        return None
    key = re.sub(r"^mapping\.fc(\d+)\.", r"mapping.layers.\1.", ref_key)
    if net == "G":
        return re.sub(
            r"^synthesis\.b(\d+)\.", lambda m: f"synthesis.blocks.{int(math.log2(int(m[1]))) - 2}.", key
        )
    if key.startswith("b4."):
        return "epilogue." + key[3:]
    log_r = int(math.log2(resolution))
    return re.sub(r"^b(\d+)\.", lambda m: f"blocks.{log_r - int(math.log2(int(m[1])))}.", key)


def map_state(state: Mapping[str, Tensor], net: str, resolution: int) -> dict[str, Tensor]:
    """A stylegan2-ada-pytorch state dict under the lab's names (constant filters dropped)."""
    mapped = {}
    for key, value in state.items():
        new = lab_key(key, net, resolution)
        if new is not None:
            mapped[new] = value
    return mapped


# ---------------------------------------------------------------------------- rosinality
# its modulated convolution (StyledConv: conv.weight, conv.modulation, noise.weight, activate.bias)
_STYLED = {
    "conv.weight": "weight",
    "conv.modulation.weight": "affine.weight",
    "conv.modulation.bias": "affine.bias",
    "noise.weight": "noise_strength",
    "activate.bias": "bias",
}
_TORGB = {
    "conv.weight": "weight",
    "conv.modulation.weight": "affine.weight",
    "conv.modulation.bias": "affine.bias",
    "bias": "bias",
}
# its discriminator: ConvLayer = [Blur,] EqualConv2d, FusedLeakyReLU (the bias)
_RESBLOCK = {
    "conv1.0.weight": "conv0.weight",
    "conv1.1.bias": "conv0.bias",
    "conv2.1.weight": "conv1.weight",
    "conv2.2.bias": "conv1.bias",
    "skip.1.weight": "skip.weight",
}
_EPILOGUE = {
    "final_conv.0.weight": "epilogue.conv.weight",
    "final_conv.1.bias": "epilogue.conv.bias",
    "final_linear.0.weight": "epilogue.fc.weight",
    "final_linear.0.bias": "epilogue.fc.bias",
    "final_linear.1.weight": "epilogue.out.weight",
    "final_linear.1.bias": "epilogue.out.bias",
}
KERNEL = "kernel"  # rosinality's FIR filter buffers: Blur, Upsample


def _noise_block(index: int) -> str:
    """``noises.noise_{i}``: layer 0 is the 4x4 convolution, then two per resolution (up, same)."""
    if index == 0:
        return "synthesis.blocks.0.conv1"
    return f"synthesis.blocks.{(index + 1) // 2}.conv{(index + 1) % 2}"


def rosinality_generator_key(key: str) -> str | None:
    """The lab's key of a rosinality ``Generator`` key; None for a FIR ``kernel`` buffer.

    ``style.{i}`` (``i >= 1``; 0 is the pixel norm) -> ``mapping.layers.{i-1}``; ``input.input`` ->
    ``synthesis.blocks.0.const``; ``conv1`` / ``to_rgb1`` -> block 0's ``conv1`` / ``torgb``;
    ``convs.{2k}`` / ``convs.{2k+1}`` / ``to_rgbs.{k}`` -> block ``k+1``'s ``conv0`` / ``conv1`` /
    ``torgb``; ``noises.noise_{i}`` -> the ``noise_const`` of the i-th convolution. Raises KeyError
    for a name StyleGAN2's generator does not have.
    """
    if key.endswith("." + KERNEL):
        return None
    if m := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
        if int(m[1]) == 0:
            raise KeyError(key)
        return f"mapping.layers.{int(m[1]) - 1}.{m[2]}"
    if key == "input.input":
        return "synthesis.blocks.0.const"
    if m := re.fullmatch(r"noises\.noise_(\d+)", key):
        return f"{_noise_block(int(m[1]))}.noise_const"
    if m := re.fullmatch(r"conv1\.(.+)", key):
        return f"synthesis.blocks.0.conv1.{_STYLED[m[1]]}"
    if m := re.fullmatch(r"to_rgb1\.(.+)", key):
        return f"synthesis.blocks.0.torgb.{_TORGB[m[1]]}"
    if m := re.fullmatch(r"convs\.(\d+)\.(.+)", key):
        i = int(m[1])
        return f"synthesis.blocks.{i // 2 + 1}.conv{i % 2}.{_STYLED[m[2]]}"
    if m := re.fullmatch(r"to_rgbs\.(\d+)\.(.+)", key):
        return f"synthesis.blocks.{int(m[1]) + 1}.torgb.{_TORGB[m[2]]}"
    raise KeyError(key)


def rosinality_discriminator_key(key: str) -> str | None:
    """The lab's key of a rosinality ``Discriminator`` key; None for a FIR ``kernel`` buffer.

    ``convs.0`` (fromRGB: ``0.weight``, ``1.bias``) -> ``blocks.0.fromrgb``; ``convs.{j}`` (ResBlock
    ``j >= 1``) -> ``blocks.{j-1}`` (``conv1`` -> ``conv0``, ``conv2`` -> ``conv1``, ``skip``);
    ``final_conv`` / ``final_linear.0`` / ``final_linear.1`` -> ``epilogue.conv`` / ``fc`` / ``out``.
    Raises KeyError for a name StyleGAN2's residual discriminator does not have.
    """
    if key.endswith("." + KERNEL):
        return None
    if key in _EPILOGUE:
        return _EPILOGUE[key]
    if m := re.fullmatch(r"convs\.0\.([01])\.(weight|bias)", key):
        if (m[1], m[2]) == ("0", "weight"):
            return "blocks.0.fromrgb.weight"
        if (m[1], m[2]) == ("1", "bias"):
            return "blocks.0.fromrgb.bias"
        raise KeyError(key)
    if m := re.fullmatch(r"convs\.(\d+)\.(.+)", key):
        return f"blocks.{int(m[1]) - 1}.{_RESBLOCK[m[2]]}"
    raise KeyError(key)

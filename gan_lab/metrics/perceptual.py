"""LPIPS, the learned perceptual image patch similarity (Zhang et al. 2018), VGG16 variant.

    d(x, y) = sum_l 1 / (H_l W_l) sum_{h,w} || w_l * (f^l_hw(x) - f^l_hw(y)) ||_2^2

where ``f^l`` are the VGG16 activations relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, each
unit-normalised over its channels at every position, and ``w_l`` the per-channel linear weights
learned on the BAPPS human judgements ("lin" version 0.1). The network is torchmetrics' own
(``torchmetrics.functional.image.lpips._LPIPS``: the input scaling layer, the VGG16 slices, the
normalisation and the spatial average); the lab builds it with a random backbone and loads:

* the backbone from torchvision's ImageNet VGG16 file (``vgg16-397923af.pth``, the one
  ``torchvision.models.vgg16(weights="IMAGENET1K_V1")`` downloads), through a path option, as
  plain tensors (``weights_only``); only its ``features.*`` convolutions are used;
* the linear heads shipped inside torchmetrics (``lpips_models/vgg.pth``), also as plain tensors.

The distance is differentiable in its inputs (the weights are frozen), so it serves as a loss
(projection of an image into a generator's latent space) as well as a metric (perceptual path
length, ``gan_lab/metrics/ppl.py``). Inputs are images in [-1, 1]; gray images are repeated to
three channels, and images under 16 pixels on a side (where relu5_3, after four 2x2 poolings,
would be empty) are upsampled bilinearly to 16 first.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.data.transforms import match_channels
from gan_lab.errors import ConfigError
from gan_lab.interop.common import load_failure
from gan_lab.metrics.weights import WeightsFile

VGG16_FILE = "vgg16-397923af.pth"
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
MIN_SIZE = 16  # relu5_3 of VGG16 follows four 2x2 max-poolings


VGG16 = WeightsFile("the LPIPS VGG16 weights", VGG16_FILE, VGG16_URL, "metrics.vgg16_weights")


def default_vgg16_path() -> Path:
    """Where torchvision caches its ImageNet VGG16 weights (torch hub's checkpoints folder)."""
    return VGG16.default_path()


def locate_vgg16_weights(
    path: str | Path | None,
    download: bool = False,
    option: str = "metrics.vgg16_weights",
    hint: str = "",
) -> Path:
    """The VGG16 weights file: ``path`` if given, else torchvision's cache (downloaded there first
    when ``download`` and the network allow). ``option`` names the setting in the error message,
    ``hint`` (e.g. "; or use ...") ends it."""
    return VGG16.locate(path, download, option, hint)


def _torchmetrics_lpips_class() -> type[nn.Module]:
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    return _NoTrainLpips


def _linear_heads_path() -> Path:
    """torchmetrics' copy of the LPIPS v0.1 VGG linear weights."""
    from torchmetrics.functional.image import lpips

    return Path(inspect.getfile(lpips)).parent / "lpips_models" / "vgg.pth"


def _load_tensors(path: Path, what: str) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"{path} is not a weights file of {what} ({load_failure(e)})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"{path} is not a state dict of {what} (a mapping of names to tensors)")
    return state


def backbone_state(vgg_state: dict[str, Tensor], slices: nn.Module) -> dict[str, Tensor]:
    """torchvision's ``features.<i>.<p>`` tensors renamed to torchmetrics' ``slice<k>.<i>.<p>``
    (its slices keep torchvision's layer indices), checked against the slices' shapes."""
    index = {name.split(".", 1)[1]: name for name in slices.state_dict()}  # "<i>.<p>" -> "slice<k>.<i>.<p>"
    expected = slices.state_dict()
    out: dict[str, Tensor] = {}
    for short, full in index.items():
        key = f"features.{short}"
        if key not in vgg_state:
            raise ConfigError(f"the VGG16 weights lack {key}: not torchvision's vgg16 state dict")
        if vgg_state[key].shape != expected[full].shape:
            raise ConfigError(
                f"the VGG16 weights' {key} has shape {tuple(vgg_state[key].shape)}, "
                f"not {tuple(expected[full].shape)}: not torchvision's vgg16 state dict"
            )
        out[full] = vgg_state[key]
    return out


class LPIPS(nn.Module):
    """The VGG16 LPIPS distance (see the module docstring); frozen, always in inference mode.

    ``weights``: torchvision's VGG16 file (None: torchvision's cache, see ``locate_vgg16_weights``).
    ``forward(a, b)``: images in [-1, 1], ``(N, C, H, W)`` with 1 or 3 channels, to the ``(N,)``
    distances; differentiable in ``a`` and ``b``."""

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        path = locate_vgg16_weights(weights)
        net = _torchmetrics_lpips_class()(pretrained=False, net="vgg", pnet_rand=True)
        net.net.load_state_dict(backbone_state(_load_tensors(path, "torchvision's VGG16"), net.net))
        heads = _load_tensors(_linear_heads_path(), "the LPIPS linear heads")
        wanted = {k for k in net.state_dict() if k.startswith("lin") and not k.startswith("lins.")}
        if not wanted <= heads.keys():  # lins.<i> are the same modules as lin<i>
            raise ConfigError(
                f"torchmetrics' LPIPS heads ({_linear_heads_path()}) lack {sorted(wanted - heads.keys())}"
            )
        net.load_state_dict({k: heads[k] for k in wanted}, strict=False)
        self.net = net.requires_grad_(False).eval()
        self.weights_path = path
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def prepare(self, images: Tensor) -> Tensor:
        x = match_channels(images.float(), 3)
        if min(x.shape[-2:]) < MIN_SIZE:
            scale = MIN_SIZE / min(x.shape[-2:])
            size = (max(MIN_SIZE, round(x.shape[-2] * scale)), max(MIN_SIZE, round(x.shape[-1] * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if a.ndim != 4 or a.shape != b.shape:
            raise ValueError(
                "LPIPS takes two image batches of one shape (N, C, H, W), "
                f"got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        return self.net(self.prepare(a), self.prepare(b)).reshape(a.shape[0])

"""Feature extractors for FID and KID: images in [-1, 1] -> one feature vector per image.

* ``InceptionFeatures``: the standard FID network, torch-fidelity's ``FeatureExtractorInceptionV3``
  ("inception-v3-compat", the TF 2015-12-05 graph converted to PyTorch; the same weights file
  as pytorch-fid and StudioGAN: ``weights-inception-2015-12-05-6726825d.pth``), 2048-d pool
  features. Images go in as uint8 RGB (1-channel images repeated to 3) and are resized to
  299x299 *inside* torch-fidelity's forward by its TF1-exact bilinear interpolation, without
  antialiasing, as the original TF FID code did. torchmetrics' own ``NoTrainInceptionV3``
  antialiases by default; calling torch-fidelity's forward keeps parity with torch-fidelity and
  the published numbers. The same instance feeds torchmetrics' FID and KID (KID takes no
  weights path of its own).
* ``DomainFeatures``: the penultimate layer (128-d, before its ReLU) of a small classifier
  trained on the dataset itself (``gan_lab/metrics/domain.py``), for MNIST and Fashion-MNIST:
  images are reduced to gray and resized to the dataset's 32x32 frame. Its ``has_logits``: the
  same pass also gives the classifier's 10 class logits (``features_and_logits``), which score
  the class fidelity of a conditional generator (``class_acc``). Inception has no such head
  here (its 1008 ImageNet logits say nothing about a dataset's own classes).

The Inception Score (``gan_lab/metrics/extra.py``) takes the logits of the same pass
(``outputs``): Inception's 1008 ``logits_unbiased`` (torch-fidelity computes them after the pool
features, in the same forward), or the domain classifier's class logits ("domain IS").

A 2-D input (already features) passes through unchanged. FID and KID never run an extractor
themselves: ``gan_lab/metrics/quality.py`` runs it once per batch and feeds both the features.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.data.transforms import match_channels, to_uint8
from gan_lab.errors import ConfigError
from gan_lab.interop.common import load_failure
from gan_lab.metrics.weights import WeightsFile

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Outputs(NamedTuple):
    """One pass of an extractor: its features, the dataset's class logits (None without a class
    head) and the logits the Inception Score is computed on (None where it has none)."""

    features: Tensor
    logits: Tensor | None
    score_logits: Tensor | None


class FeatureExtractor(nn.Module):
    """Base: ``forward(images in [-1, 1]) -> (N, num_features)`` float32, no gradients."""

    name = "features"
    num_features: int
    weights_sha256: str = ""
    resize: str = ""
    has_logits = False  # whether features_and_logits gives the dataset's class logits
    score_logits = ""  # what the Inception Score is computed on ("" for none)
    num_score_classes = 0

    def extract(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def extract_with_logits(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.extract(images), None

    def extract_outputs(self, images: Tensor) -> Outputs:
        features, logits = self.extract_with_logits(images)
        return Outputs(features, logits, None)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim == 2:  # precomputed features
            return images.float()
        return self.extract(images).float()

    @torch.no_grad()
    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(features, class logits)`` of one pass through the network; the logits are None for
        an extractor without a class head (``has_logits`` false) and for precomputed features."""
        if images.ndim == 2:
            return images.float(), None
        features, logits = self.extract_with_logits(images)
        return features.float(), None if logits is None else logits.float()

    @torch.no_grad()
    def outputs(self, images: Tensor) -> Outputs:
        """Features, class logits and Inception-Score logits of one pass (see ``Outputs``)."""
        out = self.extract_outputs(images)
        return Outputs(*(None if t is None else t.float() for t in out))

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # always in inference mode

    def protocol(self) -> dict[str, str | int]:
        return {
            "features": self.name,
            "num_features": self.num_features,
            "weights_sha256": self.weights_sha256,
            "resize": self.resize,
        }


INCEPTION = WeightsFile(
    "the FID Inception weights", INCEPTION_FILE, INCEPTION_URL, "metrics.inception_weights"
)
NO_INCEPTION_HINT = "; or use metrics.features=domain (MNIST, Fashion-MNIST) or metrics=none"


def default_inception_path() -> Path:
    """Where torch-fidelity's download puts the weights (torch hub's checkpoints folder)."""
    return INCEPTION.default_path()


def locate_inception_weights(path: str | None, download: bool = True) -> Path:
    """The weights file: ``path`` if given, else torch hub's cache, downloaded there if allowed."""
    return INCEPTION.locate(path, download, hint=NO_INCEPTION_HINT)


class InceptionFeatures(FeatureExtractor):
    """torch-fidelity's FID Inception (see module docstring); ``weights`` is the .pth file."""

    name = "inception"
    num_features = 2048
    resize = "torch-fidelity TF1-exact bilinear to 299x299, no antialiasing"
    score_logits = "Inception logits_unbiased (1008 classes)"
    num_score_classes = 1008

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:  # refuse anything but plain tensors before torch-fidelity unpickles the file
            torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as e:
            reason = load_failure(e)
            raise ConfigError(f"{weights} is not a weights file of the FID Inception ({reason})") from None
        self.net = FeatureExtractorInceptionV3(  # the logits come from the same forward
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(weights)
        )
        self.weights_sha256 = file_sha256(weights)

    def extract(self, images: Tensor) -> Tensor:
        return self.extract_outputs(images).features

    def extract_outputs(self, images: Tensor) -> Outputs:
        rgb = to_uint8(match_channels(images.float(), 3))
        features, logits = self.net(rgb)
        return Outputs(features, None, logits)


class DomainFeatures(FeatureExtractor):
    """Penultimate features of a dataset's own classifier (see ``gan_lab/metrics/domain.py``)."""

    name = "domain"
    resize = "luma, bilinear (antialiased when shrinking) to 32x32"
    has_logits = True
    score_logits = "domain classifier class logits (domain IS)"

    def __init__(self, classifier: nn.Module, weights_sha256: str, frame: int = 32) -> None:
        super().__init__()
        self.classifier = classifier
        self.frame = frame
        self.num_features = classifier.feature_dim
        self.num_score_classes = int(classifier.head[-1].out_features)
        self.weights_sha256 = weights_sha256

    def framed(self, images: Tensor) -> Tensor:
        x = match_channels(images.float(), 1)
        if x.shape[-1] != self.frame:
            x = F.interpolate(
                x,
                size=(self.frame, self.frame),
                mode="bilinear",
                align_corners=False,
                antialias=x.shape[-1] > self.frame,
            )
        return x

    def extract(self, images: Tensor) -> Tensor:
        return self.classifier.features(self.framed(images))

    def extract_with_logits(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.classifier.features_and_logits(self.framed(images))

    def extract_outputs(self, images: Tensor) -> Outputs:
        features, logits = self.extract_with_logits(images)
        return Outputs(features, logits, logits)

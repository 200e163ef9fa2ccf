"""Scoring a generator: everything FID/KID needs, for training (``QualityCallback``) and for
``evaluate.py`` alike.

A conditional module (``module.num_classes > 0``) is scored with fakes asked for labels that
follow the real label distribution of the reference split (``balanced_labels``: the counts of
each class proportional to the cached real labels' histogram, in a seeded order, the same at
every evaluation), as ``module.metric_samples(z, c, rng)``; an unconditional one with
``metric_samples(z, None, rng)``, exactly as before. On top of FID/KID, a conditional module gets

* ``class_acc`` (domain features only: MNIST, Fashion-MNIST): the fraction of fakes the domain
  classifier puts in the class they were asked for, from the same extractor pass as their
  features; ``real_class_acc`` in the protocol is the same classifier's accuracy on the
  ``num_real`` reference images, the value a perfect generator would reach. Inception features
  have no classifier of the dataset's classes: no ``class_acc`` is computed for them;
* with ``per_class=true``, the intra-class FID: for each class, FID between
  ``max(2, num_fake // num_classes)`` fakes asked for it and the reference reals of that label,
  as ``fid_<features>_class`` (a list, None for a class with fewer than 2 reals) and their mean
  ``fid_<features>_intra``. Cost: a second generation and feature pass of about ``num_fake``
  images (as long as the FID/KID pass), the fakes' features held per class until it ends
  (``num_fake`` x ``num_features`` floats), and one FID computation per class, each as costly
  as the plain FID's final step (an eigenvalue problem of ``num_features`` squared, in float64):
  negligible for the 128-d domain features, about 25 s each for Inception's 2048-d on a 2-core
  CPU (one measured at 26 s: about 4 minutes for 10 classes), less on a GPU. The per-class reals are
  the cached reals of that label (about ``num_real / num_classes``): compare intra-FID values
  computed with the same ``num_real``, and not with a plain FID.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from gan_lab.config import check_arguments
from gan_lab.config.schema import FEATURES as FEATURES
from gan_lab.config.schema import QualityConfig
from gan_lab.errors import ConfigError
from gan_lab.metrics.features import FeatureExtractor, InceptionFeatures, locate_inception_weights
from gan_lab.metrics.quality import (
    QualityMetrics,
    balanced_labels,
    frechet_distance,
    real_features,
    real_reference,
    stats_key,
)
from gan_lab.utils.once import atomic_write_text, compute_once

log = logging.getLogger(__name__)


def build_extractor(
    features: str,
    datamodule: Any,
    cache_dir: str,
    inception_weights: str | None = None,
    download_weights: bool = True,
) -> FeatureExtractor:
    """The feature extractor for ``features`` (``auto``: domain for MNIST-like data, else Inception)."""
    from gan_lab.metrics.domain import SUPPORTED, load_or_train

    check_arguments(QualityConfig, "metrics.", features=features)
    if features == "auto":
        features = "domain" if datamodule.name in SUPPORTED else "inception"
    if features == "domain":
        data_kwargs = {"root": datamodule.root}
        for key in ("search_dirs", "download"):
            if hasattr(datamodule, key):
                data_kwargs[key] = getattr(datamodule, key)
        extractor, _ = load_or_train(datamodule.name, cache_dir, data_kwargs)
        return extractor
    return InceptionFeatures(locate_inception_weights(inception_weights, download_weights))


class Evaluator:
    """FID and KID of a GAN module's EMA generator against a datamodule's real images.

    ``prepare(datamodule)`` builds the feature extractor (cheap; fails early without weights);
    ``setup(datamodule, device)`` computes or loads the real features and the floor;
    ``score(module)`` generates ``num_fake`` images from seeded latents (and, for a conditional
    module, balanced labels) and returns the scores; see the module docstring.
    """

    def __init__(
        self,
        features: str = "auto",
        num_real: int = 10000,
        num_fake: int = 10000,
        batch_size: int = 100,
        split: str = "train",
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        floor: bool = True,
        inception_weights: str | None = None,
        download_weights: bool = True,
        cache_dir: str = "~/.cache/gan_lab",
        seed: int = 0,
        per_class: bool = False,
    ) -> None:
        check_arguments(
            QualityConfig,
            "metrics.",
            features=features,
            num_real=num_real,
            num_fake=num_fake,
            batch_size=batch_size,
            per_class=per_class,
        )
        self.features, self.num_real, self.num_fake, self.batch_size = (
            features,
            num_real,
            num_fake,
            batch_size,
        )
        self.split, self.floor = split, floor
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.inception_weights, self.download_weights = inception_weights, download_weights
        self.cache_dir, self.seed, self.per_class = cache_dir, seed, per_class
        self.extractor: FeatureExtractor | None = None
        self.metrics: QualityMetrics | None = None
        self.floor_value: float | None = None
        self.protocol: dict[str, Any] = {}
        self.real_labels: torch.Tensor | None = None  # of the num_real reference images
        self.real_class_acc: float | None = None  # the domain classifier's accuracy on them
        self.dataset = ""
        self._told_unconditional = False

    @property
    def feature_name(self) -> str:
        assert self.extractor is not None, "prepare() first"
        return self.extractor.name

    def prepare(self, datamodule: Any) -> None:
        if self.extractor is None:
            self.extractor = build_extractor(
                self.features, datamodule, self.cache_dir, self.inception_weights, self.download_weights
            )

    def setup(self, datamodule: Any, device: torch.device | str) -> None:
        if self.metrics is not None:
            return
        self.prepare(datamodule)
        assert self.extractor is not None
        self.extractor.to(device)
        reference = datamodule if self.split == datamodule.split else datamodule.for_split(self.split)
        if reference is not datamodule:
            reference.prepare_data()
        ref = real_reference(reference, self.extractor, self.num_real, self.cache_dir, device)
        reals, self.real_labels, self.dataset = ref.features, ref.labels, datamodule.name
        if ref.predicted is not None:
            self.real_class_acc = float((ref.predicted == ref.labels).float().mean())
        self.metrics = QualityMetrics(
            self.extractor, reals, self.kid_subsets, self.kid_subset_size, self.num_fake, ref.labels
        )
        self.metrics.to(device)
        self.floor_value = self.compute_floor(reference, reals, device) if self.floor else None
        self.protocol = {
            **self.extractor.protocol(),
            "num_real": int(reals.shape[0]),
            "num_fake": self.num_fake,
            "split": self.split,
            "resolution": datamodule.resolution,
            "channels": datamodule.channels,
            "dataset": datamodule.name,
            "kid_subsets": self.kid_subsets,
            "kid_subset_size": self.metrics.kid_subset_size,
            "sampling": "G_ema, seeded latents, no truncation",
            "floor_fid": self.floor_value,
        }
        floor = (
            f", floor (test vs {self.split}) {self.floor_value:.4f}" if self.floor_value is not None else ""
        )
        log.info(
            "FID/KID on %s features, %d fakes vs %d reals%s",
            self.extractor.name,
            self.num_fake,
            reals.shape[0],
            floor,
        )

    def compute_floor(self, reference: Any, reals: torch.Tensor, device: torch.device | str) -> float | None:
        """FID of the test split against the reference split (cached); None without a test split."""
        if "test" not in getattr(reference, "splits", ()) or reference.split == "test":
            return None
        assert self.extractor is not None
        name = f"floor-{stats_key(reference, self.extractor, self.num_real)}.json"
        cache = Path(self.cache_dir).expanduser() / "stats" / name
        extractor = self.extractor

        def compute_and_save() -> None:
            test = reference.for_split("test")
            test.prepare_data()
            test_feats = real_features(test, extractor, self.num_real, self.cache_dir, device)
            value = frechet_distance(extractor, reals.to(device), test_feats.to(device))
            atomic_write_text(cache, json.dumps({"fid": value, "num_test": int(test_feats.shape[0])}))

        compute_once(cache, compute_and_save, f"the FID floor of {reference.name}")  # once per job
        return float(json.loads(cache.read_text())["fid"])

    def fake_labels(self, num_classes: int, n: int) -> torch.Tensor:
        """``n`` labels for the fakes of all ranks, balanced to the reference's real labels."""
        assert self.real_labels is not None, "setup() first"
        try:
            return balanced_labels(self.real_labels, n, num_classes, self.seed)
        except ValueError as e:
            raise ConfigError(
                f"cannot score a {num_classes}-class model against {self.dataset}/{self.split}: {e}"
            ) from None

    @torch.no_grad()
    def score(self, module: Any, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        """FID and KID of ``module.metric_samples``; ``num_fake`` is split over the ranks.

        Each rank generates ``ceil(num_fake / world_size)`` fakes; for a conditional module the
        labels of all ``world_size`` shares are drawn at once (balanced, seeded) and each rank
        takes its contiguous slice, so the ranks' fakes together follow the real histogram."""
        assert self.metrics is not None, "setup() first"
        device = module.device
        generator = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + rank)
        num_classes = int(getattr(module, "num_classes", 0) or 0)
        share = math.ceil(self.num_fake / world_size)
        labels = None
        if num_classes > 0:
            labels = self.fake_labels(num_classes, share * world_size)[rank * share : (rank + 1) * share]
            labels = labels.to(device)

        def sampler(asked: torch.Tensor | None) -> Any:
            def sample(index: int, n: int) -> torch.Tensor:
                z = torch.randn(n, module.G.z_dim, generator=generator, device=device)
                c = None if asked is None else asked[index * self.batch_size :][:n]
                return module.metric_samples(z, c, generator)

            return sample

        start = time.monotonic()
        scores = self.metrics.evaluate(sampler(labels), share, self.batch_size, labels)
        name = self.feature_name
        record: dict[str, Any] = {
            f"fid_{name}": scores["fid"],
            f"kid_{name}": scores["kid"],
            f"kid_{name}_std": scores["kid_std"],
        }
        if "class_acc" in scores:
            record["class_acc"] = scores["class_acc"]
        intra = self.per_class and num_classes > 0
        if self.per_class and not intra and not self._told_unconditional:
            log.info("metrics.per_class=true, but the model is unconditional: no intra-class FID")
            self._told_unconditional = True
        if intra:
            per_class = max(2, self.num_fake // num_classes)
            all_intra = balanced_labels(
                torch.arange(num_classes), per_class * num_classes, num_classes, self.seed + 1
            )
            mine = all_intra.tensor_split(world_size)[rank].to(device)
            counts = torch.bincount(all_intra, minlength=num_classes)
            values = self.metrics.intra_fid(sampler(mine), mine, self.batch_size, counts)
            scored = [v for v in values if v is not None]
            record[f"fid_{name}_intra"] = sum(scored) / len(scored) if scored else None
            record[f"fid_{name}_class"] = values
        record["seconds"] = round(time.monotonic() - start, 2)
        protocol: dict[str, Any] = {
            "conditional": num_classes > 0,
            "fake_labels": "balanced to the real label distribution" if num_classes > 0 else None,
            "per_class": intra,
        }
        if num_classes > 0:
            protocol["num_classes"] = num_classes
            protocol["real_class_acc"] = self.real_class_acc
        if intra:
            protocol["intra_fakes_per_class"] = per_class
        return {**record, **self.protocol, **protocol}

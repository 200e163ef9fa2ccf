"""Scoring a generator: everything FID/KID needs, for training (``QualityCallback``) and for
``evaluate.py`` alike."""

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
from gan_lab.metrics.features import FeatureExtractor, InceptionFeatures, locate_inception_weights
from gan_lab.metrics.quality import QualityMetrics, frechet_distance, real_features, stats_key
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
    ``score(module)`` generates ``num_fake`` images from seeded latents and returns the scores.
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
    ) -> None:
        check_arguments(
            QualityConfig,
            "metrics.",
            features=features,
            num_real=num_real,
            num_fake=num_fake,
            batch_size=batch_size,
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
        self.cache_dir, self.seed = cache_dir, seed
        self.extractor: FeatureExtractor | None = None
        self.metrics: QualityMetrics | None = None
        self.floor_value: float | None = None
        self.protocol: dict[str, Any] = {}

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
        reals = real_features(reference, self.extractor, self.num_real, self.cache_dir, device)
        self.metrics = QualityMetrics(
            self.extractor, reals, self.kid_subsets, self.kid_subset_size, self.num_fake
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

    @torch.no_grad()
    def score(self, module: Any, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        """FID and KID of ``module.metric_samples``; ``num_fake`` is split over the ranks."""
        assert self.metrics is not None, "setup() first"
        device = module.device
        generator = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + rank)

        def sample(index: int, n: int) -> torch.Tensor:
            z = torch.randn(n, module.G.z_dim, generator=generator, device=device)
            return module.metric_samples(z, generator)

        start = time.monotonic()
        scores = self.metrics.evaluate(sample, math.ceil(self.num_fake / world_size), self.batch_size)
        name = self.feature_name
        return {
            f"fid_{name}": scores["fid"],
            f"kid_{name}": scores["kid"],
            f"kid_{name}_std": scores["kid_std"],
            "seconds": round(time.monotonic() - start, 2),
            **self.protocol,
        }

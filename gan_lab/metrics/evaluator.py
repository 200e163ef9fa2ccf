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

``extra`` adds more of the standard set (each recorded with its protocol):

* ``is``: the Inception Score over ``is_splits`` splits of the ``num_fake`` fakes, on
  Inception's logits or, with the domain features, on the domain classifier's class logits
  ("domain IS", at most the number of classes); from the FID pass, no extra generation;
* ``pr``: precision and recall (``k = pr_k`` nearest neighbours) of the ``num_fake`` fakes
  against the ``num_real`` cached reals, on the FID features; from the FID pass;
* ``ppl``: the perceptual path length of ``ppl_num_samples`` pairs (``gan_lab/metrics/ppl.py``):
  a second generation pass of ``2 * ppl_num_samples`` images and their distance, LPIPS
  (``ppl_distance=lpips``: VGG16 from ``vgg16_weights``) or the domain features' squared
  distance (``ppl_distance=domain``); ``auto`` is domain with the domain features, LPIPS
  otherwise. ``ppl_space=auto`` is w for a StyleGAN generator and z for DCGAN; w for DCGAN is
  refused.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch

from gan_lab.config import check_arguments
from gan_lab.config.schema import FEATURES as FEATURES
from gan_lab.config.schema import QualityConfig
from gan_lab.errors import ConfigError
from gan_lab.metrics.features import (
    FeatureExtractor,
    InceptionFeatures,
    file_sha256,
    locate_inception_weights,
)
from gan_lab.metrics.ppl import PerceptualPathLength, feature_distance, resolve_space
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


def domain_extractor(datamodule: Any, cache_dir: str) -> FeatureExtractor:
    """The domain classifier's features for the datamodule's dataset (trained once, cached)."""
    from gan_lab.metrics.domain import load_or_train

    data_kwargs = {"root": datamodule.root}
    for key in ("search_dirs", "download"):
        if hasattr(datamodule, key):
            data_kwargs[key] = getattr(datamodule, key)
    extractor, _ = load_or_train(datamodule.name, cache_dir, data_kwargs)
    return extractor


def build_extractor(
    features: str,
    datamodule: Any,
    cache_dir: str,
    inception_weights: str | None = None,
    download_weights: bool = True,
) -> FeatureExtractor:
    """The feature extractor for ``features`` (``auto``: domain for MNIST-like data, else Inception)."""
    from gan_lab.metrics.domain import SUPPORTED

    check_arguments(QualityConfig, "metrics.", features=features)
    if features == "auto":
        features = "domain" if datamodule.name in SUPPORTED else "inception"
    if features == "domain":
        return domain_extractor(datamodule, cache_dir)
    return InceptionFeatures(locate_inception_weights(inception_weights, download_weights))


class PathDistance(NamedTuple):
    """The PPL distance: the function, what it is (for the protocol), its weights' SHA-256 and
    the module to move to the device."""

    fn: Any
    name: str
    weights_sha256: str
    module: torch.nn.Module


def build_ppl_distance(
    distance: str,
    extractor: FeatureExtractor,
    datamodule: Any,
    cache_dir: str,
    vgg16_weights: str | None = None,
    download_weights: bool = True,
) -> PathDistance:
    """LPIPS (VGG16) or the domain features' squared distance (``auto``: domain when the FID
    features are the domain ones, LPIPS otherwise); fails here without weights or a classifier."""
    from gan_lab.metrics.domain import SUPPORTED
    from gan_lab.metrics.perceptual import LPIPS, locate_vgg16_weights

    if distance == "auto":
        distance = "domain" if extractor.name == "domain" else "lpips"
    if distance == "domain":
        if datamodule.name not in SUPPORTED:
            raise ConfigError(
                f"metrics.ppl_distance=domain supports {', '.join(SUPPORTED)}, not data={datamodule.name}; "
                "use metrics.ppl_distance=lpips"
            )
        domain = extractor if extractor.name == "domain" else domain_extractor(datamodule, cache_dir)
        name = "domain: squared L2 distance of the domain classifier's features (not LPIPS)"
        return PathDistance(feature_distance(domain), name, domain.weights_sha256, domain)
    hint = "; or use metrics.ppl_distance=domain (MNIST, Fashion-MNIST) or drop ppl from metrics.extra"
    path = locate_vgg16_weights(vgg16_weights, download_weights, "metrics.vgg16_weights", hint)
    lpips = LPIPS(path)
    name = "lpips: VGG16 (torchvision ImageNet weights), LPIPS v0.1 linear heads (torchmetrics)"
    return PathDistance(lpips, name, file_sha256(path), lpips)


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
        extra: list[str] | tuple[str, ...] = (),
        is_splits: int = 10,
        pr_k: int = 3,
        ppl_num_samples: int = 2000,
        ppl_space: str = "auto",
        ppl_sampling: str = "end",
        ppl_epsilon: float = 1e-4,
        ppl_crop: bool = False,
        ppl_distance: str = "auto",
        vgg16_weights: str | None = None,
    ) -> None:
        extra = list(extra)
        check_arguments(
            QualityConfig,
            "metrics.",
            features=features,
            num_real=num_real,
            num_fake=num_fake,
            batch_size=batch_size,
            per_class=per_class,
            extra=extra,
            is_splits=is_splits,
            pr_k=pr_k,
            ppl_num_samples=ppl_num_samples,
            ppl_space=ppl_space,
            ppl_sampling=ppl_sampling,
            ppl_epsilon=ppl_epsilon,
            ppl_crop=ppl_crop,
            ppl_distance=ppl_distance,
        )
        self.extra = [m for m in ("is", "pr", "ppl") if m in extra]
        if "is" in self.extra and is_splits > num_fake:
            raise ConfigError(f"metrics.is_splits={is_splits} is more than metrics.num_fake={num_fake} fakes")
        if "pr" in self.extra and pr_k >= min(num_fake, num_real):
            raise ConfigError(
                f"metrics.pr_k={pr_k} needs more than {pr_k} fakes and reals "
                f"(metrics.num_fake={num_fake}, metrics.num_real={num_real})"
            )
        self.is_splits, self.pr_k = is_splits, pr_k
        self.ppl = None
        if "ppl" in self.extra:
            self.ppl = PerceptualPathLength(
                lambda a, b: self.ppl_distance.fn(a, b),
                ppl_num_samples,
                ppl_epsilon,
                ppl_space,
                ppl_sampling,
                ppl_crop,
            )
        self.ppl_distance_choice, self.vgg16_weights = ppl_distance, vgg16_weights
        self.ppl_distance: PathDistance | None = None
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
        self.num_real_used = 0
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
        if self.ppl is not None and self.ppl_distance is None:
            self.ppl_distance = build_ppl_distance(
                self.ppl_distance_choice,
                self.extractor,
                datamodule,
                self.cache_dir,
                self.vgg16_weights,
                self.download_weights,
            )

    def check_module(self, module: Any) -> None:
        """Refuse, before any work, what the module cannot be scored with (PPL in w space
        without a mapping network)."""
        if self.ppl is not None:
            resolve_space(self.ppl.space, module.G_ema)

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
        self.num_real_used = int(reals.shape[0])
        if "pr" in self.extra and self.pr_k >= self.num_real_used:  # a split smaller than num_real
            raise ConfigError(
                f"metrics.pr_k={self.pr_k} needs more than {self.pr_k} real images, and the "
                f"{self.split} split has {self.num_real_used}: use a smaller metrics.pr_k"
            )
        if ref.predicted is not None:
            self.real_class_acc = float((ref.predicted == ref.labels).float().mean())
        self.metrics = QualityMetrics(
            self.extractor,
            reals,
            self.kid_subsets,
            self.kid_subset_size,
            self.num_fake,
            ref.labels,
            is_splits=self.is_splits if "is" in self.extra else None,
            pr_k=self.pr_k if "pr" in self.extra else None,
        )
        self.metrics.to(device)
        if self.ppl_distance is not None:
            self.ppl_distance.module.to(device)
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
            **self.extra_protocol(),
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

    def extra_protocol(self) -> dict[str, Any]:
        """How the extra metrics are computed, for the records."""
        assert self.extractor is not None
        protocol: dict[str, Any] = {"extra": list(self.extra)}
        if "is" in self.extra:
            protocol.update(
                is_splits=self.is_splits, is_logits=self.extractor.score_logits, is_num_samples=self.num_fake
            )
        if "pr" in self.extra:
            protocol.update(
                pr_k=self.pr_k,
                pr_features=self.extractor.name,
                pr_num_real=self.num_real_used,
                pr_num_fake=self.num_fake,
            )
        if self.ppl is not None and self.ppl_distance is not None:
            protocol.update(
                ppl_num_samples=self.ppl.num_samples,
                ppl_sampling=self.ppl.sampling,
                ppl_epsilon=self.ppl.epsilon,
                ppl_crop=self.ppl.crop,
                ppl_distance=self.ppl_distance.name,
                ppl_distance_sha256=self.ppl_distance.weights_sha256,
                ppl_percentiles=[1, 99],
                ppl_scale="1 / epsilon^2",
            )
        return protocol

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
        self.check_module(module)
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
        for key in ("is", "is_std", "precision", "recall"):
            if key in scores:
                record[key] = scores[key]
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
        if self.ppl is not None:
            record.update(self.score_ppl(module, rank, world_size, num_classes))
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

    def score_ppl(self, module: Any, rank: int, world_size: int, num_classes: int) -> dict[str, Any]:
        """PPL of the module's G_ema: its own seeded latents, labels balanced like FID's."""
        assert self.ppl is not None
        start = time.monotonic()
        device = module.device
        generator = torch.Generator(device=device).manual_seed((self.seed + 1) * 1_000_003 + rank)
        labels = None
        if num_classes > 0:
            share = math.ceil(self.ppl.num_samples / world_size)
            labels = self.fake_labels(num_classes, share * world_size)[rank * share : (rank + 1) * share]
            labels = labels.to(device)
        result = self.ppl.score(module.G_ema, self.batch_size, generator, labels, world_size)
        return {
            "ppl": result["ppl"],
            "ppl_space": self.ppl.space_of(module.G_ema),
            "ppl_pairs": result["ppl_pairs"],
            "ppl_seconds": round(time.monotonic() - start, 2),
        }

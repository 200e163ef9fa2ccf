"""FID and KID through torchmetrics, with cached real statistics and a data-quality floor.

* FID (Heusel et al. 2017): ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` of the
  feature Gaussians (torchmetrics' ``FrechetInceptionDistance``, in float64).
* KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over ``kid_subsets`` random subsets of
  ``kid_subset_size`` (torchmetrics' ``KernelInceptionDistance``; its subset draws are seeded
  here, so a score does not change between two evaluations of the same model).

Real features are computed once per (dataset, split, resolution, channels, feature extractor and
its weights, number of images) and cached as a tensor file, with the class labels of the same
images beside them (and, for an extractor with a class head, its predicted classes);
``num_real`` images are a seeded random subset of the split (all of it when smaller). Fakes are
generated and featurized batch by batch, never all in memory, and each batch goes through the
extractor once: FID and KID are built over ``PrecomputedFeatures`` (an identity "feature" module)
and both are fed the same features, as the cached real features and the floor's features are.
The floor is the same metric between the test and train splits of the dataset: the score a
perfect model of the training data would get against test-split samples of the same size.

Conditional models (``gan_lab/metrics/evaluator.py`` draws the labels):

* ``balanced_labels``: the labels asked of the generator for FID/KID follow the real labels'
  histogram (largest-remainder rounding, then a seeded shuffle), so a conditional model is
  compared with reals of the same class mix; the same labels at every evaluation.
* class fidelity (``class_acc``): with an extractor that has a class head (the domain
  classifier), the fraction of fakes classified as the class they were asked for, from the
  same pass that gives their features.
* intra-class FID (``QualityMetrics.intra_fid``): per class, FID between that class's fakes and
  the cached reals of that label; reused one FID state, class after class.

More of the standard set, from the same single pass per batch when asked for
(``gan_lab/metrics/extra.py``): the Inception Score on the extractor's logits (``inception_score``)
and the improved precision and recall on the same features as FID (``precision_recall``, the
cached reals against the fakes, ``k``-NN radii).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torchmetrics.aggregation import MeanMetric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lab.metrics.extra import PrecisionRecall, inception_score_metric, seeded_inception_score
from gan_lab.metrics.features import FeatureExtractor
from gan_lab.utils.checkpoint_io import atomic_torch_save
from gan_lab.utils.once import compute_once

log = logging.getLogger(__name__)

SampleFn = Callable[[int, int], Tensor]  # (batch index, batch size) -> images in [-1, 1]
# the real-feature cache file: 2 = {"features", "labels"[, "predicted"]} (1 was the features alone)
REAL_CACHE_FORMAT = 2


def dataset_identity(datamodule: Any) -> dict[str, Any]:
    """What real statistics depend on, for a datamodule."""
    return {
        "dataset": datamodule.name,
        "root": str(Path(datamodule.root).expanduser().resolve()),
        "split": datamodule.split,
        "resolution": datamodule.resolution,
        "channels": datamodule.channels,
        "crop": getattr(datamodule, "crop", None),
    }


def stats_key(datamodule: Any, extractor: FeatureExtractor, num_real: int) -> str:
    ident = {**dataset_identity(datamodule), **extractor.protocol(), "num_real": num_real}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return (
        f"{datamodule.name}-{datamodule.split}-r{datamodule.resolution}-{extractor.name}-n{num_real}-{digest}"
    )


def base_dataset(datamodule: Any) -> Any:
    """The datamodule's dataset without mirrored copies (real statistics use the images as stored)."""
    dataset = datamodule.dataset
    return getattr(dataset, "base", dataset)


class RealReference(NamedTuple):
    """The cached reference of a split: features, class labels and, for an extractor with a class
    head, its predicted classes (None otherwise), all of the same ``num_real`` images, on the CPU."""

    features: Tensor
    labels: Tensor
    predicted: Tensor | None


@torch.no_grad()
def real_features(
    datamodule: Any,
    extractor: FeatureExtractor,
    num_real: int,
    cache_dir: str | Path,
    device: torch.device | str = "cpu",
    batch_size: int = 250,
) -> Tensor:
    """Features of ``num_real`` images of the datamodule's split (cached on disk)."""
    return real_reference(datamodule, extractor, num_real, cache_dir, device, batch_size).features


@torch.no_grad()
def real_reference(
    datamodule: Any,
    extractor: FeatureExtractor,
    num_real: int,
    cache_dir: str | Path,
    device: torch.device | str = "cpu",
    batch_size: int = 250,
) -> RealReference:
    """Features, labels (and class predictions) of ``num_real`` images of the datamodule's split,
    from one pass of the extractor per batch, cached on disk once per job."""
    key = stats_key(datamodule, extractor, num_real)
    path = Path(cache_dir).expanduser() / "stats" / f"{key}-v{REAL_CACHE_FORMAT}.pt"

    @torch.no_grad()
    def compute_and_save() -> None:
        if datamodule.dataset is None:
            datamodule.setup("fit")
        dataset = base_dataset(datamodule)
        n = len(dataset)
        chosen = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:num_real].sort().values
        log.info(
            "real %s features of %d %s/%s images (once; cached in %s)",
            extractor.name,
            chosen.numel(),
            datamodule.name,
            datamodule.split,
            path,
        )
        parts, labels, predicted = [], [], []
        for i in range(0, chosen.numel(), batch_size):
            images, batch_labels = dataset.__getitems__(chosen[i : i + batch_size].tolist())
            features, logits = extractor.features_and_logits(datamodule.transform(images.to(device)))
            parts.append(features.cpu())
            labels.append(torch.as_tensor(batch_labels).reshape(-1).to(torch.int64).cpu())
            if logits is not None:
                predicted.append(logits.argmax(1).cpu())
        saved = {"features": torch.cat(parts), "labels": torch.cat(labels)}
        if predicted:
            saved["predicted"] = torch.cat(predicted)
        atomic_torch_save(saved, path)

    # once per job: the other ranks wait for the file, then load it
    what = f"the real {extractor.name} features of {datamodule.name}/{datamodule.split}"
    compute_once(path, compute_and_save, what)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return RealReference(saved["features"], saved["labels"], saved.get("predicted"))


def balanced_labels(real_labels: Tensor, n: int, num_classes: int, seed: int = 0) -> Tensor:
    """``n`` class labels whose counts follow the histogram of ``real_labels``, in a seeded order.

    Class ``k`` gets ``floor(n * count_k / total)`` labels, and the ``n`` minus their sum left over
    go one each to the classes with the largest remainders (ties: the lower class first): the
    largest-remainder (Hamilton) rounding, exact in integers. Then the labels are shuffled with
    ``torch.randperm`` seeded by ``seed``, so that any contiguous slice (one rank's share, one
    batch) mixes the classes. Deterministic: the same arguments give the same labels."""
    real_labels = torch.as_tensor(real_labels).reshape(-1).to(torch.int64).cpu()
    if real_labels.numel() == 0:
        raise ValueError("no real labels to balance the fakes' labels to")
    if int(real_labels.min()) < 0 or int(real_labels.max()) >= num_classes:
        raise ValueError(
            f"real labels range over [{int(real_labels.min())}, {int(real_labels.max())}], "
            f"outside the model's {num_classes} classes"
        )
    counts = torch.bincount(real_labels, minlength=num_classes)
    total = int(counts.sum())
    share = counts * n
    quota, remainder = share // total, share % total
    order = sorted(range(num_classes), key=lambda k: (-int(remainder[k]), k))
    quota[order[: n - int(quota.sum())]] += 1
    labels = torch.repeat_interleave(torch.arange(num_classes), quota)
    return labels[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]


def process_rank(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the given values, else those of ``torch.distributed``'s default
    process group (the one torchmetrics syncs over), else ``(0, 1)``."""
    initialized = torch.distributed.is_available() and torch.distributed.is_initialized()
    if world_size is None:
        world_size = torch.distributed.get_world_size() if initialized else 1
    if rank is None:
        rank = torch.distributed.get_rank() if initialized else 0
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world size {world_size}")
    return rank, world_size


class PrecomputedFeatures(nn.Module):
    """The ``feature`` module of torchmetrics' FID and KID when they are fed features, not images:
    ``(N, num_features)`` in, the same values in float32 out (what the extractor returns).

    torchmetrics calls its ``feature`` module on whatever ``update`` gets; with this one the
    extractor runs outside, once per batch, and FID and KID share its output. ``num_features``
    spares FID its probe call on a dummy image at construction."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: Tensor) -> Tensor:
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(
                f"the FID/KID metrics take features of shape (N, {self.num_features}), not images "
                f"(got {tuple(features.shape)}): run the feature extractor first"
            )
        return features.float()


def frechet_distance(extractor: FeatureExtractor, a: Tensor, b: Tensor) -> float:
    """FID between two sets of ``extractor``'s features (used for the floor), in this process
    alone: no sync over ranks (each holds both sets whole, and one rank computes it while the
    others wait)."""
    fid = FrechetInceptionDistance(
        feature=PrecomputedFeatures(extractor.num_features), reset_real_features=True, sync_on_compute=False
    )
    fid = fid.to(a.device)
    fid.update(a, real=True)
    fid.update(b, real=False)
    return float(fid.compute())


class QualityMetrics:
    """FID and KID of generated images against fixed real features, with one shared extractor
    that runs once per batch of fakes (both metrics take its features).

    ``is_splits`` (an int): also the Inception Score over that many splits, on the extractor's
    score logits; ``pr_k`` (an int): also precision and recall with ``k = pr_k``."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        reals: Tensor,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        num_fake: int = 10000,
        real_labels: Tensor | None = None,
        is_splits: int | None = None,
        pr_k: int | None = None,
    ) -> None:
        self.extractor = extractor
        self.num_real = int(reals.shape[0])
        if real_labels is not None and real_labels.shape[0] != self.num_real:
            raise ValueError(f"{real_labels.shape[0]} real labels for {self.num_real} real features")
        subset = max(2, min(kid_subset_size, self.num_real, num_fake))
        features = PrecomputedFeatures(extractor.num_features)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self.kid = KernelInceptionDistance(
            feature=features, subsets=kid_subsets, subset_size=subset, reset_real_features=False
        )
        self.kid_subset_size = subset
        self._reals = reals
        self._real_labels = real_labels
        # class fidelity (an extractor with a class head) and intra-class FID (built when asked)
        self.class_acc = MeanMetric() if extractor.has_logits else None
        self.intra: FrechetInceptionDistance | None = None
        self.class_reals: tuple[Tensor, Tensor] | None = None  # this rank's reals and labels (CPU)
        self.real_class_counts: Tensor | None = None  # over all ranks
        self.device: torch.device | str = "cpu"
        self.inception_score = None
        if is_splits is not None:
            if not extractor.score_logits:
                raise ValueError(f"the {extractor.name} extractor gives no logits for the Inception Score")
            self.inception_score = inception_score_metric(extractor.num_score_classes, is_splits)
        self.precision_recall = PrecisionRecall(pr_k) if pr_k is not None else None

    def to(
        self, device: torch.device | str, rank: int | None = None, world_size: int | None = None
    ) -> QualityMetrics:
        """Move the metrics to ``device`` and feed them this rank's share of the real features.

        Under data parallelism torchmetrics syncs the states over the default process group at
        ``compute``: KID concatenates its lists of real features and FID sums its real sums and
        counts. Each of the ``world_size`` ranks therefore holds one contiguous slice of the reals
        (``rank`` and ``world_size`` default to those of ``torch.distributed``'s default group,
        or 0 and 1 without one), so that the synced state is exactly a single process's: every
        real feature once, in the original order."""
        self.extractor.to(device)
        self.device = device
        self.fid = self.fid.to(device)
        self.kid = self.kid.to(device)
        if self.class_acc is not None:
            self.class_acc = self.class_acc.to(device)
        if self.intra is not None:
            self.intra = self.intra.to(device)
        if self.inception_score is not None:
            self.inception_score = self.inception_score.to(device)
        if self.precision_recall is not None:
            self.precision_recall = self.precision_recall.to(device)
        if self._reals is not None:  # fed once, on the final device
            rank, world_size = process_rank(rank, world_size)
            share = self._reals.tensor_split(world_size)[rank]
            reals = share.to(device)
            self.fid.update(reals, real=True)
            self.kid.update(reals, real=True)
            if self.precision_recall is not None:
                self.precision_recall.update(reals, real=True)
            if self._real_labels is not None:  # the same slice, for the intra-class FID
                labels = self._real_labels.reshape(-1).to(torch.int64).cpu()
                self.class_reals = (share.cpu(), labels.tensor_split(world_size)[rank])
                self.real_class_counts = torch.bincount(labels)
            self._reals = self._real_labels = None
        return self

    @torch.no_grad()
    def evaluate(
        self, sample: SampleFn, num_fake: int, batch_size: int, labels: Tensor | None = None
    ) -> dict[str, float]:
        """Generate ``num_fake`` images with ``sample`` (batch by batch) and score them.

        ``labels``: the classes the fakes were asked for (``num_fake`` of them, batch ``i`` being
        ``labels[i * batch_size:][:n]``), for a conditional model; with an extractor that has a
        class head the result then has ``class_acc``, the fraction of fakes it classifies as
        their asked class (synced over the ranks like FID). With ``is_splits`` / ``pr_k`` it also
        has ``is`` and ``is_std`` / ``precision`` and ``recall``, from the same pass."""
        extra = [m for m in (self.inception_score, self.precision_recall) if m is not None]
        for metric in (self.fid, self.kid, *extra):
            metric.reset()
        fidelity = self.class_acc if labels is not None else None
        if fidelity is not None:
            fidelity.reset()
        done, index = 0, 0
        while done < num_fake:
            n = min(batch_size, num_fake - done)
            images = sample(index, n).float()
            if fidelity is None and self.inception_score is None:
                features = self.extractor(images)  # one pass, for all the metrics
            else:  # the same single pass also gives the logits
                features, logits, score_logits = self.extractor.outputs(images)
                if fidelity is not None:
                    asked = labels[done : done + n].to(logits.device)
                    fidelity.update((logits.argmax(1) == asked).float())
                if self.inception_score is not None:
                    self.inception_score.update(score_logits)
            self.fid.update(features, real=False)
            self.kid.update(features, real=False)
            if self.precision_recall is not None:
                self.precision_recall.update(features, real=False)
            done, index = done + n, index + 1
        fid = float(self.fid.compute())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # KID's subset draws: the same for every evaluation
            kid_mean, kid_std = self.kid.compute()
        scores = {"fid": fid, "kid": float(kid_mean), "kid_std": float(kid_std)}
        if fidelity is not None:
            scores["class_acc"] = float(fidelity.compute())
        if self.inception_score is not None:
            scores["is"], scores["is_std"] = seeded_inception_score(self.inception_score)
        if self.precision_recall is not None:
            precision, recall = self.precision_recall.compute()
            scores["precision"], scores["recall"] = float(precision), float(recall)
        return scores

    @torch.no_grad()
    def intra_fid(
        self, sample: SampleFn, labels: Tensor, batch_size: int, fake_counts: Tensor
    ) -> list[float | None]:
        """Intra-class FID: for each class, the FID between the fakes asked for that class and the
        reals of that label (None for a class with fewer than 2 of either, over all ranks).

        ``labels``: this rank's asked classes (batch ``i`` is ``labels[i * batch_size:][:n]``);
        ``fake_counts``: the number of fakes of each class over all ranks (every rank skips the
        same classes, so that the FID syncs pair up). The fakes' features are held per class
        until all are generated (``len(labels)`` x num_features floats); one FID state is reused
        class after class. Needs ``real_labels`` at construction."""
        if self.class_reals is None or self.real_class_counts is None:
            raise ValueError("intra-class FID needs the real labels (QualityMetrics(real_labels=...))")
        num_classes = int(fake_counts.numel())
        by_class: list[list[Tensor]] = [[] for _ in range(num_classes)]
        done, index = 0, 0
        while done < labels.numel():
            n = min(batch_size, labels.numel() - done)
            features = self.extractor(sample(index, n).float())
            asked = labels[done : done + n].to(features.device)
            for k in asked.unique().tolist():
                by_class[k].append(features[asked == k])
            done, index = done + n, index + 1
        if self.intra is None:
            self.intra = FrechetInceptionDistance(
                feature=PrecomputedFeatures(self.extractor.num_features), reset_real_features=True
            ).to(self.device)
        reals, real_labels = self.class_reals
        real_counts = torch.zeros(num_classes, dtype=torch.int64)
        known = min(num_classes, self.real_class_counts.numel())
        real_counts[:known] = self.real_class_counts[:known]
        empty = torch.zeros(0, self.extractor.num_features, device=self.device)
        values: list[float | None] = []
        for k in range(num_classes):
            if real_counts[k] < 2 or fake_counts[k] < 2:
                values.append(None)
                continue
            self.intra.reset()
            # every rank updates (maybe with nothing): the states of all ranks are summed
            self.intra.update(reals[real_labels == k].to(self.device), real=True)
            self.intra.update(torch.cat(by_class[k]) if by_class[k] else empty, real=False)
            values.append(float(self.intra.compute()))
        return values

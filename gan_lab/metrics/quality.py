"""FID and KID through torchmetrics, with cached real statistics and a data-quality floor.

* FID (Heusel et al. 2017): ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` of the
  feature Gaussians (torchmetrics' ``FrechetInceptionDistance``, in float64).
* KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over ``kid_subsets`` random subsets of
  ``kid_subset_size`` (torchmetrics' ``KernelInceptionDistance``; its subset draws are seeded
  here, so a score does not change between two evaluations of the same model).

Real features are computed once per (dataset, split, resolution, channels, feature extractor and
its weights, number of images) and cached as a tensor file; ``num_real`` images are a seeded
random subset of the split (all of it when smaller). Fakes are generated and featurized batch
by batch, never all in memory, and each batch goes through the extractor once: FID and KID are
built over ``PrecomputedFeatures`` (an identity "feature" module) and both are fed the same
features, as the cached real features and the floor's features are. The floor is the same
metric between the test and train splits of the dataset: the score a perfect model of the
training data would get against test-split samples of the same size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gan_lab.metrics.features import FeatureExtractor
from gan_lab.utils.checkpoint_io import atomic_torch_save
from gan_lab.utils.once import compute_once

log = logging.getLogger(__name__)

SampleFn = Callable[[int, int], Tensor]  # (batch index, batch size) -> images in [-1, 1]


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
    path = Path(cache_dir).expanduser() / "stats" / f"{stats_key(datamodule, extractor, num_real)}.pt"

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
        parts = []
        for i in range(0, chosen.numel(), batch_size):
            images, _ = dataset.__getitems__(chosen[i : i + batch_size].tolist())
            parts.append(extractor(datamodule.transform(images.to(device))).cpu())
        atomic_torch_save(torch.cat(parts), path)

    # once per job: the other ranks wait for the file, then load it
    what = f"the real {extractor.name} features of {datamodule.name}/{datamodule.split}"
    compute_once(path, compute_and_save, what)
    return torch.load(path, map_location="cpu", weights_only=True)


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
    that runs once per batch of fakes (both metrics take its features)."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        reals: Tensor,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        num_fake: int = 10000,
    ) -> None:
        self.extractor = extractor
        self.num_real = int(reals.shape[0])
        subset = max(2, min(kid_subset_size, self.num_real, num_fake))
        features = PrecomputedFeatures(extractor.num_features)
        self.fid = FrechetInceptionDistance(feature=features, reset_real_features=False)
        self.kid = KernelInceptionDistance(
            feature=features, subsets=kid_subsets, subset_size=subset, reset_real_features=False
        )
        self.kid_subset_size = subset
        self._reals = reals

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
        self.fid = self.fid.to(device)
        self.kid = self.kid.to(device)
        if self._reals is not None:  # fed once, on the final device
            rank, world_size = process_rank(rank, world_size)
            reals = self._reals.tensor_split(world_size)[rank].to(device)
            self.fid.update(reals, real=True)
            self.kid.update(reals, real=True)
            self._reals = None
        return self

    @torch.no_grad()
    def evaluate(self, sample: SampleFn, num_fake: int, batch_size: int) -> dict[str, float]:
        """Generate ``num_fake`` images with ``sample`` (batch by batch) and score them."""
        self.fid.reset()
        self.kid.reset()
        done, index = 0, 0
        while done < num_fake:
            n = min(batch_size, num_fake - done)
            features = self.extractor(sample(index, n).float())  # one pass, for both metrics
            self.fid.update(features, real=False)
            self.kid.update(features, real=False)
            done, index = done + n, index + 1
        fid = float(self.fid.compute())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # KID's subset draws: the same for every evaluation
            kid_mean, kid_std = self.kid.compute()
        return {"fid": fid, "kid": float(kid_mean), "kid_std": float(kid_std)}

"""Inception Score and precision/recall, on the features and logits of the lab's extractors.

* Inception Score (Salimans et al. 2016): ``IS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y|x)``
  the softmax of a classifier's logits for a fake ``x`` and ``p(y)`` their mean over a split;
  the fakes are cut into ``splits`` parts and the mean and standard deviation of the parts'
  scores reported. It is torchmetrics' ``InceptionScore`` fed precomputed logits: Inception's
  1008 ``logits_unbiased`` (torch-fidelity's network, as torchmetrics and torch-fidelity use)
  with ``features=inception``; the domain classifier's class logits with ``features=domain``
  ("domain IS": its range is ``[1, number of classes]``, 10 for MNIST, and it is not comparable
  with published Inception Scores). torchmetrics shuffles the fakes before splitting; the
  shuffle is seeded here, so a score does not change between two evaluations of one model.
* Precision and recall (Kynkaenniemi et al. 2019, "Improved precision and recall metric for
  assessing generative models"): each set's manifold is the union of balls centred on its
  feature vectors with radius the distance to the ``k``-th nearest neighbour in the same set;
  ``precision = mean_fake 1[fake in manifold(reals)]``, ``recall = mean_real 1[real in
  manifold(fakes)]``. Computed by torch-fidelity's ``calculate_precision_recall_part`` (distance
  blocks of ``batch_size`` rows, never the whole matrix) on the same features as FID/KID. The
  paper uses VGG16 fc2 features; here they are the extractor's (Inception pool3 or domain),
  which the protocol says.

Both are torchmetrics ``Metric`` states, synced over the ranks of data parallelism at
``compute`` as FID and KID are (the reals: one slice per rank, fed once).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.image.inception import InceptionScore
from torchmetrics.utilities import dim_zero_cat


class LogitsIdentity(torch.nn.Module):
    """The ``feature`` module of torchmetrics' ``InceptionScore`` when it is fed logits."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = int(num_classes)

    def forward(self, logits: Tensor) -> Tensor:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"the Inception Score takes logits of shape (N, {self.num_classes}), "
                f"got {tuple(logits.shape)}"
            )
        return logits.float()


def inception_score_metric(num_classes: int, splits: int = 10) -> InceptionScore:
    """torchmetrics' Inception Score over precomputed ``(N, num_classes)`` logits."""
    with warnings.catch_warnings():  # "will save all extracted features": logits, num_fake x classes
        warnings.simplefilter("ignore", UserWarning)
        return InceptionScore(feature=LogitsIdentity(num_classes), splits=splits)


def seeded_inception_score(metric: InceptionScore, seed: int = 0) -> tuple[float, float]:
    """``(mean, std)`` of the metric over its splits, with its shuffle of the fakes seeded (the
    standard deviation of a single split is 0)."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "std\\(\\): degrees of freedom", UserWarning)
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), 0.0 if metric.splits == 1 else float(std)


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """The Inception Score ``(mean, std)`` of one set of logits (see the module docstring)."""
    metric = inception_score_metric(logits.shape[1], splits)
    metric.update(logits)
    return seeded_inception_score(metric, seed)


class PrecisionRecall(Metric):
    """Improved precision and recall (Kynkaenniemi et al. 2019) of fake against real features.

    ``update(features, real)`` adds ``(N, D)`` features to one side; the real features are kept
    by ``reset`` (fed once, like FID's with ``reset_real_features=False``). ``compute`` returns
    ``(precision, recall)`` as 0-d tensors, from torch-fidelity's k-NN radius test."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    real_features: list[Tensor]
    fake_features: list[Tensor]

    def __init__(self, k: int = 3, batch_size: int = 2000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(k) < 1:
            raise ValueError(f"k={k}: the k-NN radius needs k >= 1")
        self.k, self.batch_size = int(k), int(batch_size)
        self.add_state("real_features", [], dist_reduce_fx="cat")
        self.add_state("fake_features", [], dist_reduce_fx="cat")

    def update(self, features: Tensor, real: bool) -> None:
        if features.ndim != 2:
            raise ValueError(f"precision/recall take features of shape (N, D), got {tuple(features.shape)}")
        (self.real_features if real else self.fake_features).append(features.float())

    def compute(self) -> tuple[Tensor, Tensor]:
        from torch_fidelity.metric_prc import calculate_precision_recall_part

        reals, fakes = dim_zero_cat(self.real_features), dim_zero_cat(self.fake_features)
        for name, feats in (("real", reals), ("fake", fakes)):
            if feats.shape[0] <= self.k:
                raise ValueError(f"precision/recall with k={self.k} need more than {self.k} {name} features")
        # torch-fidelity's convention: features_1 are the generated ones, features_2 the real ones
        precision, recall = calculate_precision_recall_part(fakes, reals, self.k, self.batch_size)
        return torch.tensor(precision), torch.tensor(recall)

    def reset(self) -> None:
        """Forget the fakes; the real features stay (as torchmetrics' FID with reset_real_features=False)."""
        default = self._defaults.pop("real_features")
        try:
            super().reset()
        finally:
            self._defaults["real_features"] = default


def precision_recall(reals: Tensor, fakes: Tensor, k: int = 3, batch_size: int = 2000) -> tuple[float, float]:
    """``(precision, recall)`` of ``fakes`` against ``reals``, both ``(N, D)`` features."""
    metric = PrecisionRecall(k, batch_size, sync_on_compute=False)
    metric.update(reals, real=True)
    metric.update(fakes, real=False)
    precision, recall = metric.compute()
    return float(precision), float(recall)

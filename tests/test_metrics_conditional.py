"""FID/KID of conditional models (issue 13, section 4): fakes asked for labels balanced to the real
label distribution, class fidelity (``class_acc``) through the domain classifier, the intra-class
FID (``metrics.per_class``), the protocol of the records, and the unconditional path unchanged.

The data is a small Fashion-MNIST in its real on-disk format whose classes are learnable (class
k is a bright bar at one of 10 places) and unevenly frequent (class k: 3 (k + 5) images of 285);
the domain classifier is the real one (``DomainFeatures`` over a ``DomainClassifier``), trained
on it once for the module (a third of a second; batches of 32 so that 2 epochs learn it).
The "generators" are stand-ins that return real images: of the asked class, or ignoring it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch

from gan_lab.callbacks.quality import QualityCallback
from gan_lab.config import validate_evaluate
from gan_lab.data.idx import write_idx
from gan_lab.errors import ConfigError
from gan_lab.metrics.domain import train_classifier
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.metrics.features import DomainFeatures
from gan_lab.metrics.quality import QualityMetrics, balanced_labels, real_reference
from gan_lab.train import CONFIG_DIR

NUM_CLASSES = 10


def class_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """28x28 uint8 images: dark noise, and a bright bar at one of 10 places given by the label."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(labels.size, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 5)
        top, left = 2 + 13 * r + rng.integers(0, 2), 5 * c + rng.integers(0, 2)
        images[i, top : top + 11, left : left + 4] = rng.integers(220, 256)
    return images


def uneven_labels(scale: int, seed: int) -> np.ndarray:
    counts = [scale * (k + 5) for k in range(NUM_CLASSES)]
    labels = np.repeat(np.arange(NUM_CLASSES, dtype=np.uint8), counts)
    return np.random.default_rng(seed).permutation(labels)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The reference datamodule (train split), its images and labels, and the domain features
    of a classifier trained on them."""
    from gan_lab.data import FashionMNISTDataModule

    root = tmp_path_factory.mktemp("classes")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, scale, seed in (("train", 3, 0), ("t10k", 1, 1)):
        labels = uneven_labels(scale, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", class_images(labels, seed))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
    dm = FashionMNISTDataModule(str(root), search_dirs=[], download=False, batch_size=16)
    dm.prepare_data()
    dm.setup("fit")
    cache = tmp_path_factory.mktemp("cache")
    images, labels = dm.dataset.__getitems__(list(range(len(dm.dataset))))
    images, labels = dm.transform(images), labels.to(torch.int64)
    classifier = train_classifier(images, labels, batch_size=32)
    extractor = DomainFeatures(classifier, weights_sha256="test")
    return SimpleNamespace(dm=dm, cache=cache, images=images, labels=labels, extractor=extractor)


def evaluator(data: SimpleNamespace, **kwargs: Any) -> Evaluator:
    settings = {
        "features": "domain",
        "num_real": 250,
        "num_fake": 400,
        "batch_size": 100,
        "kid_subsets": 5,
        "kid_subset_size": 100,
        "floor": False,
        "cache_dir": str(data.cache),
        **kwargs,
    }
    e = Evaluator(**settings)
    e.extractor = data.extractor  # what prepare() would build: the dataset's classifier
    e.setup(data.dm, "cpu")
    return e


def timeless(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "seconds"}


class RealImages:
    """A stand-in GAN module whose "generator" returns real images: of the asked class
    (``follow=True``), or of any class, ignoring ``c``. ``num_classes=0``: unconditional."""

    def __init__(self, data: SimpleNamespace, num_classes: int = NUM_CLASSES, follow: bool = True) -> None:
        self.num_classes, self.follow = num_classes, follow
        self.device = torch.device("cpu")
        self.G = SimpleNamespace(z_dim=4)
        self.images, self.labels = data.images, data.labels
        self.asked: list[torch.Tensor | None] = []

    def metric_samples(self, z: torch.Tensor, c: torch.Tensor | None, rng: torch.Generator) -> torch.Tensor:
        self.asked.append(c)
        picks = torch.randint(0, 1 << 30, (z.shape[0],), generator=rng)
        if c is None or not self.follow:
            return self.images[picks % self.images.shape[0]]
        out = []
        for k, pick in zip(c.tolist(), picks.tolist(), strict=True):
            pool = (self.labels == k).nonzero().flatten()
            out.append(self.images[pool[pick % pool.numel()]])
        return torch.stack(out)

    def asked_labels(self) -> torch.Tensor:
        return torch.cat([c for c in self.asked if c is not None])


def test_balanced_labels_follow_the_histogram_by_largest_remainder() -> None:
    real = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)  # 50 %, 30 %, 20 %; class 3 absent
    labels = balanced_labels(real, 7, num_classes=4, seed=0)
    # quotas 3.5, 2.1, 1.4, 0: floors 3, 2, 1 and the one left goes to the largest remainder (class 0)
    assert torch.bincount(labels, minlength=4).tolist() == [4, 2, 1, 0]
    assert torch.equal(labels, balanced_labels(real, 7, num_classes=4, seed=0))  # deterministic
    assert not torch.equal(balanced_labels(real, 100, 4, seed=0), balanced_labels(real, 100, 4, seed=1))
    assert torch.bincount(balanced_labels(real, 100, 4, seed=1), minlength=4).tolist() == [50, 30, 20, 0]
    with pytest.raises(ValueError, match="outside the model's 2 classes"):
        balanced_labels(real, 7, num_classes=2)


def test_the_real_cache_holds_the_labels_of_the_same_images(data: SimpleNamespace, tmp_path: Path) -> None:
    ref = real_reference(data.dm, data.extractor, 2000, tmp_path)  # more than the split: all of it
    assert ref.features.shape == (285, 128)
    assert torch.equal(ref.labels, data.labels)  # the split in order: every image and its label
    assert (ref.predicted == ref.labels).float().mean() > 0.95  # the classifier learned the classes
    (cached,) = (tmp_path / "stats").glob("*.pt")
    assert cached.name.endswith("-v2.pt")  # the format with labels: v1 caches are not read
    assert set(torch.load(cached, weights_only=True)) == {"features", "labels", "predicted"}


def test_conditional_fakes_follow_the_real_label_histogram_over_ranks(data: SimpleNamespace) -> None:
    e = evaluator(data)
    reference = torch.bincount(e.real_labels, minlength=NUM_CLASSES)
    assert reference.min() < 20 < 30 < reference.max()  # uneven classes: the balance is not uniform
    module = RealImages(data)
    record = e.score(module)
    counts = torch.bincount(module.asked_labels(), minlength=NUM_CLASSES)
    assert counts.sum() == 400
    assert (counts - reference * 400 / 250).abs().max() < 1  # proportional, rounded
    assert torch.equal(counts, torch.bincount(balanced_labels(e.real_labels, 400, NUM_CLASSES)))
    assert (
        record["conditional"] is True and record["fake_labels"] == "balanced to the real label distribution"
    )
    # two ranks: each its slice (ceil(num_fake / 2) fakes), together the same balance
    shares = []
    for rank in range(2):
        m = RealImages(data)
        e.score(m, rank=rank, world_size=2)
        shares.append(m.asked_labels())
    assert [s.numel() for s in shares] == [200, 200]
    assert torch.equal(torch.cat(shares), module.asked_labels())  # the one-process labels, split


def test_class_acc_is_one_for_the_asked_class_and_chance_when_ignored(data: SimpleNamespace) -> None:
    e = evaluator(data)
    follows = e.score(RealImages(data, follow=True))
    ignores = e.score(RealImages(data, follow=False))
    assert follows["class_acc"] > 0.95 and follows["real_class_acc"] > 0.95
    assert 0.03 < ignores["class_acc"] < 0.2  # chance for these class frequencies: 0.11
    # the class logits come from the same pass as the features: one extractor call per batch
    with (
        mock.patch.object(e.extractor, "extract", side_effect=AssertionError("a second pass")),
        mock.patch.object(
            e.extractor.classifier, "features_and_logits", wraps=e.extractor.classifier.features_and_logits
        ) as one_pass,
    ):
        assert timeless(e.score(RealImages(data, follow=True))) == timeless(follows)  # the same again
    assert one_pass.call_count == 4  # 400 fakes in batches of 100


def test_intra_fid_tells_a_generator_that_ignores_the_class(data: SimpleNamespace) -> None:
    e = evaluator(data, per_class=True)
    follows = e.score(RealImages(data, follow=True))
    ignores = e.score(RealImages(data, follow=False))
    assert len(follows["fid_domain_class"]) == NUM_CLASSES and follows["intra_fakes_per_class"] == 40
    assert follows["per_class"] is True
    assert follows["fid_domain_intra"] == pytest.approx(np.mean(follows["fid_domain_class"]))
    # both are mixtures of real images: FID hardly tells them apart, the intra-class FID does
    assert ignores["fid_domain_intra"] > 3 * follows["fid_domain_intra"]
    assert all(i > f for i, f in zip(ignores["fid_domain_class"], follows["fid_domain_class"], strict=True))
    fid_gap = ignores["fid_domain"] - follows["fid_domain"]
    assert abs(fid_gap) < 0.01 * (ignores["fid_domain_intra"] - follows["fid_domain_intra"])
    json.dumps(follows)  # a record of scores.jsonl


def test_per_class_off_computes_no_intra_fid(data: SimpleNamespace) -> None:
    e = evaluator(data)
    module = RealImages(data)
    with mock.patch.object(QualityMetrics, "intra_fid", side_effect=AssertionError("computed")):
        record = e.score(module)
    assert len(module.asked) == 4  # the FID/KID pass alone
    assert (
        record["per_class"] is False and "fid_domain_intra" not in record and "fid_domain_class" not in record
    )


def test_unconditional_scores_are_unchanged(data: SimpleNamespace) -> None:
    """An unconditional module (or one without ``num_classes``) is scored as before the
    conditional work: the same latents, c=None, FID/KID alone, through ``extract`` alone."""
    e = evaluator(data, per_class=True)
    module = RealImages(data, num_classes=0)
    with mock.patch.object(
        e.extractor.classifier, "features_and_logits", side_effect=AssertionError("logits computed")
    ):
        record = e.score(module)
    assert module.asked == [None] * 4
    assert record["conditional"] is False and record["fake_labels"] is None and record["per_class"] is False
    assert "class_acc" not in record and "fid_domain_intra" not in record
    # the former Evaluator.score: a generator seeded by seed * 1_000_003 + rank, z then images
    g = torch.Generator().manual_seed(0)

    def former(index: int, n: int) -> torch.Tensor:
        z = torch.randn(n, 4, generator=g)
        return module.metric_samples(z, None, g)

    assert e.metrics is not None
    expected = e.metrics.evaluate(former, 400, 100)
    assert {k: record[f"{k}_domain" if k != "kid_std" else "kid_domain_std"] for k in expected} == expected
    old_module = RealImages(data)
    del old_module.num_classes  # a module without the attribute: unconditional
    assert timeless(e.score(old_module)) == timeless(record)


def test_quality_callback_logs_class_acc_and_intra_fid(data: SimpleNamespace, tmp_path: Path) -> None:
    callback = QualityCallback(dirpath=str(tmp_path), features="domain", per_class=True)
    callback.evaluator = evaluator(data, per_class=True)
    logged: list[dict[str, float]] = []
    trainer = SimpleNamespace(
        global_step=2,
        global_rank=0,
        world_size=1,
        is_global_zero=True,
        checkpoint_callback=None,
        loggers=[SimpleNamespace(log_metrics=lambda values, step: logged.append(values))],
        save_checkpoint=lambda *args, **kwargs: None,
    )
    callback.evaluate(trainer, RealImages(data))
    (values,) = logged
    assert {"val/fid_domain", "val/class_acc", "val/fid_domain_intra"} <= set(values)
    (line,) = (tmp_path / "metrics" / "scores.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["conditional"] is True and record["per_class"] is True
    assert record["fake_labels"] == "balanced to the real label distribution"
    assert len(record["fid_domain_class"]) == NUM_CLASSES and record["class_acc"] == values["val/class_acc"]


def test_per_class_must_be_true_or_false(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="evaluate"):
        overrides = [f"ckpt={tmp_path / 'x.ckpt'}", "metrics.per_class=maybe"]
        cfg = compose(config_name="evaluate", overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path)
        HydraConfig.instance().set_config(cfg)  # ${hydra:...} in paths resolves, as in a run
        with open_dict(cfg):
            del cfg["hydra"]
    with pytest.raises(ConfigError, match=r"^metrics\.per_class='maybe' is invalid: expected true or false$"):
        validate_evaluate(cfg)
    with pytest.raises(ConfigError, match=r"metrics\.per_class='yes' is invalid: expected true or false"):
        Evaluator(per_class="yes")


def test_a_model_with_fewer_classes_than_the_labels_is_refused(data: SimpleNamespace) -> None:
    e = evaluator(data)
    with pytest.raises(ConfigError, match=r"cannot score a 3-class model against fashion_mnist/train"):
        e.score(RealImages(data, num_classes=3))
    assert math.isfinite(e.score(RealImages(data))["fid_domain"])

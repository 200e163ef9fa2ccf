"""A small classifier trained on MNIST or Fashion-MNIST itself, whose penultimate layer gives
"domain" features for FID/KID that work offline (no Inception weights needed).

    python -m gan_lab.metrics.domain --data fashion_mnist      (make domain-classifier)

It is trained once per dataset on its training split (2 epochs of Adam, about a minute on a
2-core CPU) and cached outside the repository in ``CACHE/domain/<dataset>-classifier-v1.pt``
with a JSON beside it that records the test-split accuracy, the weights' SHA-256 and the
training settings. Training runs pick it up from there, or train it on first use.

Architecture: three stride-2 3x3 conv + ReLU stages (32, 64, 128 channels) on the 32x32
frame of the dataset (28x28 + 2-pixel border, in [-1, 1]), a 128-d fully connected layer (the
features, taken before its ReLU) and the 10-way output. The features are scaled by a constant
fixed after training (the inverse of the mean per-dimension standard deviation on the training
split), so that FID and KID values have a magnitude comparable to Inception's. The 10-way head
(``features_and_logits``, one pass with the features) scores a conditional generator's class
fidelity: ``class_acc``, the fraction of fakes classified as the class they were asked for.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.errors import ConfigError, GanLabError
from gan_lab.metrics.features import DomainFeatures, file_sha256
from gan_lab.utils.checkpoint_io import atomic_torch_save
from gan_lab.utils.once import atomic_write_text, compute_once

log = logging.getLogger(__name__)

VERSION = 2
SUPPORTED = ("fashion_mnist", "mnist")


class DomainClassifier(nn.Module):
    feature_dim = 128

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *stage(1, 32),
            *stage(32, 64),
            *stage(64, 128),
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, self.feature_dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(self.feature_dim, num_classes))
        self.register_buffer("feature_scale", torch.ones([]))

    def features(self, x: Tensor) -> Tensor:
        return self.body(x) * self.feature_scale

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The features and the class logits of one pass through the body."""
        hidden = self.body(x)
        return hidden * self.feature_scale, self.head(hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def accuracy(model: DomainClassifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        correct += (model(images[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum().item()
    return correct / max(images.shape[0], 1)


def train_classifier(
    train_images: Tensor,
    train_labels: Tensor,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
) -> DomainClassifier:
    """Train on float images (N, 1, 32, 32) in [-1, 1]; deterministic for a given seed on CPU."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = DomainClassifier(int(train_labels.max()) + 1 if train_labels.numel() else 10)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(train_images.shape[0], generator=generator)
            for i in range(0, order.numel(), batch_size):
                idx = order[i : i + batch_size]
                loss = F.cross_entropy(model(train_images[idx]), train_labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    model.eval().requires_grad_(False)
    with torch.no_grad():
        sample = train_images[:5000]
        feats = torch.cat([model.body(sample[i : i + 1000]) for i in range(0, sample.shape[0], 1000)])
        model.feature_scale.fill_(1.0 / feats.std(dim=0).mean().clamp_min(1e-8))
    return model


def framed_split(datamodule_class: Any, root: str, split: str, **kwargs: Any) -> tuple[Tensor, Tensor]:
    """A split of an MNIST-format dataset as float (N, 1, 32, 32) in [-1, 1] and labels."""
    dm = datamodule_class(root, resolution=32, channels=1, split=split, **kwargs)
    dm.prepare_data()
    images, labels = dm.load()
    return dm.transform(images), labels


def classifier_path(cache_dir: str | Path, dataset: str) -> Path:
    return Path(cache_dir).expanduser() / "domain" / f"{dataset}-classifier-v{VERSION}.pt"


def load_or_train(
    dataset: str, cache_dir: str | Path, data_kwargs: dict[str, Any]
) -> tuple[DomainFeatures, dict]:
    """The domain feature extractor of ``dataset`` (trained and cached on first use) and its info."""
    if dataset not in SUPPORTED:
        raise ConfigError(
            f"metrics.features=domain supports {', '.join(SUPPORTED)}, not data={dataset}; "
            "use metrics.features=inception (or metrics=none)"
        )
    from gan_lab.data.mnist import FashionMNISTDataModule, MNISTDataModule

    path = classifier_path(cache_dir, dataset)
    info_path = path.with_suffix(".json")  # written last: its presence means both are complete
    dm_class = FashionMNISTDataModule if dataset == "fashion_mnist" else MNISTDataModule

    def train_and_save() -> None:
        log.info("training the %s domain classifier for FID/KID once (cached in %s)", dataset, path)
        start = time.monotonic()
        train_x, train_y = framed_split(dm_class, split="train", **data_kwargs)
        test_x, test_y = framed_split(dm_class, split="test", **data_kwargs)
        model = train_classifier(train_x, train_y)
        info = {
            "dataset": dataset,
            "version": VERSION,
            "test_accuracy": accuracy(model, test_x, test_y),
            "train_images": int(train_x.shape[0]),
            "test_images": int(test_x.shape[0]),
            "epochs": 2,
            "train_seconds": round(time.monotonic() - start, 1),
        }
        atomic_torch_save(model.state_dict(), path)
        info["weights_sha256"] = file_sha256(path)
        atomic_write_text(info_path, json.dumps(info, indent=2))
        log.info("%s domain classifier: test accuracy %.4f", dataset, info["test_accuracy"])

    # once per job: under torchrun or SLURM the other ranks wait for it, then load it
    compute_once(
        path,
        train_and_save,
        f"the {dataset} domain classifier",
        ready=lambda: path.is_file() and info_path.is_file(),
    )
    info = json.loads(info_path.read_text())
    model = DomainClassifier()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return DomainFeatures(model.eval().requires_grad_(False), info["weights_sha256"]), info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train (or show) the domain classifier used for domain FID/KID."
    )
    parser.add_argument("--data", default="fashion_mnist", choices=SUPPORTED)
    parser.add_argument("--root", default=os.environ.get("GAN_LAB_DATA", "data"))
    parser.add_argument("--cache-dir", default=os.environ.get("GAN_LAB_CACHE", "~/.cache/gan_lab"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        _, info = load_or_train(args.data, args.cache_dir, {"root": args.root})
    except GanLabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.data} domain classifier: test accuracy {info['test_accuracy']:.4f} "
        f"({classifier_path(args.cache_dir, args.data)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

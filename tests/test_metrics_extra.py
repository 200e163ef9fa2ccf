"""More of the standard metric set: Inception Score, precision/recall, perceptual path length and
the LPIPS distance, on their known cases, and in training's scores.jsonl and evaluate.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from gan_lab.errors import ConfigError
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.metrics.extra import inception_score, precision_recall
from gan_lab.metrics.features import INCEPTION_FILE, InceptionFeatures
from gan_lab.metrics.perceptual import LPIPS, VGG16_FILE, locate_vgg16_weights
from gan_lab.metrics.ppl import PerceptualPathLength, feature_distance, filtered_mean, slerp
from gan_lab.metrics.quality import QualityMetrics
from gan_lab.nn.dcgan import DCGANGenerator
from gan_lab.nn.stylegan import StyleGANGenerator
from gan_lab.training import run

from .conftest import TINY_METRICS, compose_tool
from .test_metrics import random_domain_features, write_random_inception_weights


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision's VGG16 convolutions (``features.*``, all LPIPS reads) with random values."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    convs = make_layers(cfgs["D"])
    path = tmp_path_factory.mktemp("vgg") / VGG16_FILE
    torch.save({f"features.{k}": v for k, v in convs.state_dict().items()}, path)
    return path


@pytest.fixture(scope="module")
def lpips(vgg16_file: Path) -> LPIPS:
    return LPIPS(vgg16_file)


# ---------------------------------------------------------------------------- precision and recall
def test_precision_and_recall_of_identical_sets_are_one_and_of_far_apart_sets_zero() -> None:
    torch.manual_seed(0)
    reals = torch.randn(300, 8)
    assert precision_recall(reals, reals.clone()) == (1.0, 1.0)
    assert precision_recall(reals, reals + 100.0) == (0.0, 0.0)


def test_precision_and_recall_tell_mode_collapse_from_poor_samples() -> None:
    """Fakes from one of the reals' two clusters: all plausible (precision 1), half the data
    missed (recall about 0.5); fakes spread far wider than the reals: the reverse."""
    torch.manual_seed(1)
    left, right = torch.randn(200, 4) - 6, torch.randn(200, 4) + 6
    reals = torch.cat([left, right])
    precision, recall = precision_recall(reals, torch.randn(200, 4) - 6)
    assert precision > 0.85 and 0.4 < recall < 0.6
    precision, recall = precision_recall(reals, torch.randn(400, 4) * 30)
    assert precision < 0.2 and recall > 0.9


# ---------------------------------------------------------------------------- Inception Score
def test_inception_score_is_the_number_of_confidently_and_evenly_predicted_classes() -> None:
    for k in (2, 10):
        confident = torch.nn.functional.one_hot(torch.arange(600) % k, k).float() * 60
        mean, std = inception_score(confident, splits=1)
        assert mean == pytest.approx(k, rel=1e-4) and std == 0.0
    constant = torch.zeros(600, 10)
    constant[:, 3] = 60.0
    assert inception_score(constant, splits=5)[0] == pytest.approx(1.0, abs=1e-4)
    uncertain = torch.zeros(600, 10)  # uniform p(y|x): no information either
    assert inception_score(uncertain, splits=5)[0] == pytest.approx(1.0, abs=1e-4)
    confident = torch.nn.functional.one_hot(torch.arange(600) % 10, 10).float() * 60
    assert inception_score(confident, splits=10) == inception_score(confident, splits=10)  # seeded


def test_is_and_pr_come_from_the_fid_pass_of_each_batch() -> None:
    extractor = random_domain_features()
    torch.manual_seed(2)
    reals = torch.rand(120, 1, 32, 32) * 2 - 1
    metrics = QualityMetrics(
        extractor, extractor(reals), kid_subsets=5, kid_subset_size=40, num_fake=120, is_splits=4, pr_k=3
    )
    metrics.to("cpu")
    with mock.patch.object(extractor, "extract_outputs", wraps=extractor.extract_outputs) as calls:
        same = metrics.evaluate(lambda i, n: reals[i * 40 : i * 40 + n], num_fake=120, batch_size=40)
        assert calls.call_count == 3  # one pass per batch of fakes, for all the metrics
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["fid"] < 1e-3
    assert 1.0 <= same["is"] <= 10.0 and same["is_std"] >= 0
    constant = metrics.evaluate(lambda i, n: torch.full((n, 1, 32, 32), 0.8), num_fake=120, batch_size=40)
    assert constant["is"] == pytest.approx(1.0, abs=1e-4)  # one image: one prediction
    assert constant["recall"] < 0.1  # the reals kept across evaluations, the fakes replaced


def test_inception_gives_its_logits_for_the_inception_score_from_the_same_pass(tmp_path: Path) -> None:
    extractor = InceptionFeatures(write_random_inception_weights(tmp_path / INCEPTION_FILE))
    images = torch.rand(2, 1, 32, 32) * 2 - 1
    features, class_logits, score_logits = extractor.outputs(images)
    assert features.shape == (2, 2048) and class_logits is None and score_logits.shape == (2, 1008)
    assert torch.equal(features, extractor(images))  # the FID features as before


# ---------------------------------------------------------------------------- perceptual path length
class LinearGenerator(nn.Module):
    """``G(z) = tanh(steepness * A z)`` as a 1x8x8 image (``steepness`` 0: ignores its input)."""

    z_dim, resolution = 16, 8

    def __init__(self, steepness: float) -> None:
        super().__init__()
        self.steepness = steepness
        self.A = nn.Linear(self.z_dim, 64, bias=False)
        nn.init.normal_(self.A.weight, std=0.1, generator=torch.Generator().manual_seed(0))

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return torch.tanh(self.steepness * self.A(z)).view(-1, 1, 8, 8)


def pixel_distance(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).square().flatten(1).sum(1)


def test_ppl_of_a_generator_that_ignores_its_input_is_zero_and_grows_with_its_steepness() -> None:
    def ppl(steepness: float, epsilon: float = 1e-4) -> float:
        metric = PerceptualPathLength(pixel_distance, 400, epsilon, "z", "end")
        return metric.score(LinearGenerator(steepness), 100, torch.Generator().manual_seed(0))["ppl"]

    assert ppl(0.0) == 0.0
    gentle, steep = ppl(0.1), ppl(0.2)
    assert gentle > 0 and steep == pytest.approx(4 * gentle, rel=0.05)  # near-linear: the square
    assert ppl(0.1, 1e-3) == pytest.approx(gentle, rel=0.05)  # a derivative: epsilon does not matter


def test_stylegan_ppl_shares_noise_within_pairs_and_converges_as_epsilon_shrinks() -> None:
    """With the noise of a pair drawn twice, d / eps^2 would grow 100x from eps 1e-3 to 1e-4."""
    torch.manual_seed(0)
    G = StyleGANGenerator(resolution=32, channels=1, z_dim=32, w_dim=32, channel_base=128, channel_max=16)
    with torch.no_grad():  # a trained generator's noise inputs matter (they start at strength 0)
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    distance = feature_distance(random_domain_features())
    values = {}
    for space in ("w", "z"):
        for eps in (1e-3, 1e-4):
            metric = PerceptualPathLength(distance, 64, eps, space, "end")
            values[space, eps] = metric.score(G.eval(), 32, torch.Generator().manual_seed(0))["ppl"]
        assert values[space, 1e-4] == pytest.approx(values[space, 1e-3], rel=0.2)
    full = PerceptualPathLength(distance, 64, 1e-4, "w", "full", crop=True)
    result = full.score(G, 32, torch.Generator().manual_seed(0))
    assert result["ppl"] > 0 and result["ppl_pairs"] == 64


def test_ppl_refuses_w_space_without_a_mapping_network() -> None:
    G = DCGANGenerator(z_dim=16, resolution=32, channels=1, width=8)
    metric = PerceptualPathLength(pixel_distance, 8, 1e-4, "w", "end")
    with pytest.raises(ConfigError, match="ppl_space=w needs a generator with a mapping network"):
        metric.score(G, 8, torch.Generator())
    assert PerceptualPathLength(pixel_distance, 8, 1e-4, "auto", "end").space_of(G) == "z"
    evaluator = Evaluator(extra=["ppl"], ppl_space="w")
    with pytest.raises(ConfigError, match=r"DCGANGenerator has no w space: use metrics\.ppl_space=z"):
        evaluator.check_module(SimpleNamespace(G_ema=G))


def test_ppl_drops_values_outside_the_1st_and_99th_percentiles_as_numpy_order_statistics_do() -> None:
    values = torch.rand(1000, generator=torch.Generator().manual_seed(0)).double() * 10
    values[:3] = torch.tensor([1e6, 1e7, -5.0], dtype=torch.float64)
    d = values.numpy()
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    assert filtered_mean(values) == pytest.approx(d[(d >= lo) & (d <= hi)].mean(), rel=1e-12)
    assert filtered_mean(values) < 6  # the outliers are gone


def test_slerp_interpolates_directions_on_the_unit_sphere() -> None:
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    assert torch.allclose(slerp(a, b, torch.zeros(5, 1)), a / a.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(5, 1)), b / b.norm(dim=1, keepdim=True), atol=1e-5)
    mid = slerp(a, b, torch.full((5, 1), 0.5))
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-6)
    cos = lambda x, y: (x * y).sum(1) / x.norm(dim=1) / y.norm(dim=1)  # noqa: E731
    assert torch.allclose(cos(mid, a), cos(mid, b), atol=1e-5)  # halfway in angle


# ---------------------------------------------------------------------------- LPIPS
def test_lpips_of_an_image_with_itself_is_zero_and_it_is_differentiable(lpips: LPIPS) -> None:
    torch.manual_seed(3)
    a = (torch.rand(3, 3, 32, 32) * 2 - 1).requires_grad_(True)
    b = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.equal(lpips(a, a).detach(), torch.zeros(3))
    d = lpips(a, b)
    assert d.shape == (3,) and (d > 0).all()
    assert torch.allclose(d, lpips(b, a.detach()), atol=1e-6)  # symmetric
    d.sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in lpips.parameters())  # the weights stay frozen
    gray, other = torch.rand(2, 1, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) * 2 - 1  # small: upsampled
    assert torch.allclose(lpips(gray, other), lpips(gray.repeat(1, 3, 1, 1), other.repeat(1, 3, 1, 1)))
    assert not lpips.train().training  # always in inference mode


def test_lpips_weights_say_what_to_do_when_missing_or_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError) as err:
        locate_vgg16_weights(None)
    message = str(err.value)
    assert VGG16_FILE in message and str(tmp_path / "torch") in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "metrics.vgg16_weights=PATH" in message and "\n" not in message
    with pytest.raises(ConfigError, match=VGG16_FILE):
        LPIPS()  # the module itself looks in the same place
    with pytest.raises(ConfigError, match=r"metrics.vgg16_weights=/no/such\.pth does not exist"):
        locate_vgg16_weights("/no/such.pth")
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, other)
    with pytest.raises(ConfigError, match=r"features.0.weight has shape \(8, 3, 3, 3\), not \(64, 3, 3, 3\)"):
        LPIPS(other)
    noise = tmp_path / "noise.pth"  # not a torch file: one line, not torch's advice to unpickle it
    noise.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError) as err:
        LPIPS(noise)
    assert str(err.value).startswith(f"{noise} is not a weights file") and "\n" not in str(err.value)


# ---------------------------------------------------------------------------- training and evaluate.py
EXTRA = ("metrics.extra=[is,pr,ppl]", "metrics.ppl_num_samples=16", "metrics.is_splits=2")


def test_extra_metrics_are_logged_recorded_and_evaluated_with_their_protocol(
    compose_cfg, tmp_path: Path, vgg16_file: Path
) -> None:
    from gan_lab.evaluate import evaluate

    out, cache = tmp_path / "run", tmp_path / "cache"
    overrides = ("model=stylegan", "metrics=default", *TINY_METRICS, *EXTRA, f"paths.cache_dir={cache}")
    cfg = compose_cfg(*overrides, "trainer.max_steps=2", run_dir=out)
    run(cfg)
    (record,) = [json.loads(x) for x in (out / "metrics" / "scores.jsonl").read_text().splitlines()]
    assert 1 <= record["is"] <= 10 and 0 <= record["precision"] <= 1 and 0 <= record["recall"] <= 1
    assert record["ppl"] > 0 and record["ppl_pairs"] == 16
    assert record["is_logits"] == "domain classifier class logits (domain IS)" and record["is_splits"] == 2
    assert record["pr_k"] == 3 and record["pr_features"] == "domain" and record["pr_num_real"] == 64
    assert record["ppl_space"] == "w" and record["ppl_sampling"] == "end" and record["ppl_epsilon"] == 1e-4
    assert record["ppl_distance"].startswith("domain") and record["ppl_crop"] is False
    header = next((out / "csv").rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {"val/is", "val/precision", "val/recall", "val/ppl"} <= set(header)

    ckpt = out / "checkpoints" / "last.ckpt"
    metrics = [m for m in TINY_METRICS if not m.startswith("metrics.every")]
    scored = evaluate(
        compose_tool(
            "evaluate",
            tmp_path / "eval",
            f"ckpt={ckpt}",
            f"paths.cache_dir={cache}",
            *metrics,
            *EXTRA,
            "metrics.ppl_distance=lpips",
            f"metrics.vgg16_weights={vgg16_file}",
            "metrics.ppl_space=z",
        )
    )
    saved = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert saved == json.loads(json.dumps(scored))
    assert saved["ppl_distance"].startswith("lpips: VGG16") and saved["ppl_space"] == "z"
    assert saved["ppl_distance_sha256"] == hashlib.sha256(vgg16_file.read_bytes()).hexdigest()
    assert saved["ppl"] > 0 and saved["is"] == pytest.approx(record["is"], rel=1e-5)  # same G_ema, seeds
    assert saved["precision"] == record["precision"] and saved["recall"] == record["recall"]


def test_ppl_in_w_space_of_a_dcgan_is_refused_before_training(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = compose_cfg("metrics=default", "metrics.extra=[ppl]", "metrics.ppl_space=w", run_dir=out)
    with pytest.raises(ConfigError, match=r"metrics\.ppl_space=w needs a generator with a mapping network"):
        run(cfg)
    assert not (out / "checkpoints").exists()
    with pytest.raises(ConfigError, match=r"metrics.extra=\['is', 'fid'\] is invalid: expected a list from"):
        run(compose_cfg("metrics=default", "metrics.extra=[is,fid]", run_dir=out))
    with pytest.raises(ConfigError, match=r"metrics\.is_splits=10 is more than metrics\.num_fake=8 fakes"):
        run(compose_cfg("metrics=default", "metrics.extra=[is]", "metrics.num_fake=8", run_dir=out))
    assert not (out / "checkpoints").exists()

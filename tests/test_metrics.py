"""FID/KID: the wrapper's values, the Inception path with a local weights file, the domain
classifier, caching, best-checkpoint selection, evaluate.py and generate.py."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from PIL import Image

from gan_lab.errors import CheckpointError, ConfigError
from gan_lab.metrics import domain as domain_module
from gan_lab.metrics.domain import DomainClassifier, accuracy, train_classifier
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.metrics.features import (
    INCEPTION_FILE,
    DomainFeatures,
    InceptionFeatures,
    locate_inception_weights,
)
from gan_lab.metrics.quality import QualityMetrics, frechet_distance, real_features
from gan_lab.training import run

from .conftest import TINY_METRICS, compose_tool
from .test_training import state


def random_domain_features(seed: int = 0) -> DomainFeatures:
    torch.manual_seed(seed)
    return DomainFeatures(DomainClassifier().eval(), weights_sha256="random")


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_a_shift() -> None:
    extractor = random_domain_features()
    torch.manual_seed(1)
    images = torch.rand(256, 1, 32, 32) * 2 - 1
    feats = extractor(images)
    assert frechet_distance(extractor, feats, feats) == pytest.approx(0.0, abs=1e-3)
    shifted = extractor((images + 0.5).clamp(-1, 1))
    more = extractor((images + 1.0).clamp(-1, 1))
    small, large = frechet_distance(extractor, feats, shifted), frechet_distance(extractor, feats, more)
    assert 0.001 < small < large


def test_quality_metrics_scores_generated_batches() -> None:
    extractor = random_domain_features()
    torch.manual_seed(2)
    reals = torch.rand(200, 1, 32, 32) * 2 - 1
    metrics = QualityMetrics(
        extractor, extractor(reals), kid_subsets=10, kid_subset_size=50, num_fake=200
    ).to("cpu")
    same = metrics.evaluate(lambda i, n: reals[i * 50 : i * 50 + n], num_fake=200, batch_size=50)
    other = metrics.evaluate(lambda i, n: torch.full((n, 1, 32, 32), 0.8), num_fake=200, batch_size=50)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3) and abs(same["kid"]) < 1e-3
    assert other["fid"] > 0.01 > same["fid"] and other["kid"] > same["kid"]
    again = metrics.evaluate(lambda i, n: torch.full((n, 1, 32, 32), 0.8), num_fake=200, batch_size=50)
    assert again == other  # real statistics kept across evaluations, KID subsets seeded


def test_fid_and_kid_share_one_pass_of_the_extractor_per_fake_batch() -> None:
    """Each fake batch goes through the feature extractor once (for FID and KID together); the
    scores are those of torchmetrics' FID and KID fed the images themselves, as before."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    extractor = random_domain_features()
    torch.manual_seed(3)
    reals = torch.rand(120, 1, 32, 32) * 2 - 1
    fakes = (torch.rand(150, 1, 32, 32) * 2 - 1) * 0.7 + 0.2
    metrics = QualityMetrics(extractor, extractor(reals), kid_subsets=7, kid_subset_size=40, num_fake=150)
    with mock.patch.object(extractor, "extract", wraps=extractor.extract) as extract:
        metrics.to("cpu")  # the real features are fed as they are: no pass
        assert extract.call_count == 0
        scores = metrics.evaluate(lambda i, n: fakes[i * 40 : i * 40 + n], num_fake=150, batch_size=40)
        assert [c.args[0].shape[0] for c in extract.call_args_list] == [40, 40, 40, 30]
        extract.reset_mock()
        frechet_distance(extractor, extractor(reals), extractor(fakes))  # the floor: features in
        assert extract.call_count == 2
    # the reference: torchmetrics' metrics running the extractor on the images themselves
    fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False)
    kid = KernelInceptionDistance(feature=extractor, subsets=7, subset_size=40, reset_real_features=False)
    for metric in (fid, kid):
        metric.update(reals, real=True)
        for batch in fakes.split(40):
            metric.update(batch, real=False)
    torch.manual_seed(0)  # QualityMetrics' seed of KID's subset draws
    kid_mean, kid_std = kid.compute()
    assert scores == {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
    assert scores["fid"] > 0.01 and scores["kid"] > 0
    with pytest.raises(ValueError, match=r"features of shape \(N, 128\), not images"):
        metrics.fid.update(fakes, real=False)  # the metrics themselves never run the extractor


def write_random_inception_weights(path: Path) -> Path:
    """A weights file of the FID Inception's architecture with random values."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with (
        mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None),
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


def test_inception_path_loads_a_local_weights_file(tmp_path: Path) -> None:
    weights = write_random_inception_weights(tmp_path / INCEPTION_FILE)
    extractor = InceptionFeatures(locate_inception_weights(str(weights), download=False))
    images = torch.rand(3, 1, 32, 32) * 2 - 1  # gray images are repeated to RGB
    features = extractor(images)
    assert features.shape == (3, 2048) and torch.isfinite(features).all()
    assert (
        extractor.protocol()["weights_sha256"]
        == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    )
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not weights")
    with pytest.raises(ConfigError, match="is not a weights file of the FID Inception"):
        InceptionFeatures(garbage)


def test_missing_inception_weights_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError) as err:
        locate_inception_weights(None, download=False)
    message = str(err.value)
    assert INCEPTION_FILE in message and str(tmp_path / "torch") in message
    assert "metrics.inception_weights=PATH" in message
    with pytest.raises(ConfigError, match=r"metrics.inception_weights=/no/such\.pth does not exist"):
        locate_inception_weights("/no/such.pth")


def test_missing_weights_stop_training_before_it_starts(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out = tmp_path / "run"
    cfg = compose_cfg(
        "metrics=default", "metrics.features=inception", "metrics.download_weights=false", run_dir=out
    )
    with pytest.raises(ConfigError, match=INCEPTION_FILE):
        run(cfg)
    assert not (out / "checkpoints").exists()


def learnable_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class k is a bright square at one of 10 positions, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.rand(n, 1, 32, 32, generator=g) * 0.4 - 1
    for i, k in enumerate(labels.tolist()):
        r, c = divmod(k, 5)
        images[i, :, 4 + 12 * r : 12 + 12 * r, 2 + 6 * c : 6 + 6 * c] = 1.0
    return images, labels


def test_domain_classifier_learns_a_small_split_and_its_features_feed_fid() -> None:
    train_x, train_y = learnable_digits(1000, 0)
    test_x, test_y = learnable_digits(300, 1)
    model = train_classifier(train_x, train_y, epochs=3)
    assert accuracy(model, test_x, test_y) > 0.5  # chance is 0.1
    extractor = DomainFeatures(model, "trained")
    a, b = extractor(test_x), extractor(train_x[:300])
    assert a.shape == (300, 128)
    assert frechet_distance(extractor, a, b) < frechet_distance(extractor, a, extractor(-test_x))


def test_domain_classifier_is_trained_once_and_cached(fashion_root: Path, tmp_path: Path) -> None:
    data = {"root": str(fashion_root), "search_dirs": [], "download": False}
    extractor, info = domain_module.load_or_train("fashion_mnist", tmp_path, data)
    assert set(info) >= {"test_accuracy", "weights_sha256", "train_images"} and info["train_images"] == 256
    assert json.loads((tmp_path / "domain" / "fashion_mnist-classifier-v2.json").read_text()) == info
    with mock.patch.object(domain_module, "train_classifier", side_effect=AssertionError("trained again")):
        again, _ = domain_module.load_or_train("fashion_mnist", tmp_path, data)
    assert again.weights_sha256 == extractor.weights_sha256
    with pytest.raises(ConfigError, match="supports fashion_mnist, mnist, not data=cifar10"):
        domain_module.load_or_train("cifar10", tmp_path, data)


def test_real_features_are_cached(fashion_root: Path, tmp_path: Path) -> None:
    from gan_lab.data import FashionMNISTDataModule

    dm = FashionMNISTDataModule(str(fashion_root), search_dirs=[], download=False, batch_size=16)
    dm.prepare_data()
    dm.setup("fit")
    extractor = random_domain_features()
    first = real_features(dm, extractor, 100, tmp_path)
    assert first.shape == (100, 128) and len(list((tmp_path / "stats").glob("*.pt"))) == 1
    with mock.patch.object(extractor, "extract", side_effect=AssertionError("recomputed")):
        assert torch.equal(real_features(dm, extractor, 100, tmp_path), first)
    real_features(dm, extractor, 50, tmp_path)  # another size: another entry
    assert len(list((tmp_path / "stats").glob("*.pt"))) == 2


METRICS = ("metrics=default", *TINY_METRICS)


def test_training_scores_keeps_the_best_and_returns_it(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    fake_fids = iter([5.0, 3.0, 4.0, 2.5, 6.0])
    real_score = Evaluator.score

    def scripted(self, module, rank=0, world_size=1):
        record = real_score(self, module, rank, world_size)
        record["fid_domain"] = next(fake_fids)
        return record

    with mock.patch.object(Evaluator, "score", scripted):
        result = run(
            compose_cfg(*METRICS, f"paths.cache_dir={tmp_path / 'cache'}", "trainer.max_steps=9", run_dir=out)
        )
    assert result["best"] == 2.5
    # evaluations at iterations 2, 4, 6, 8 and at the end (9); the best was iteration 8
    assert state(out / "checkpoints" / "best.ckpt")["global_step"] == 8
    lines = [json.loads(x) for x in (out / "metrics" / "scores.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [2, 4, 6, 8, 9]
    assert {
        "features",
        "weights_sha256",
        "num_real",
        "num_fake",
        "split",
        "resolution",
        "resize",
        "kimg",
    } <= set(lines[0])
    assert lines[0]["features"] == "domain" and lines[0]["floor_fid"] is not None
    assert Image.open(out / "metrics" / "fid_domain.png").size == (640, 400)
    callback_state = next(
        v for k, v in state(out / "checkpoints" / "last.ckpt")["callbacks"].items() if "Quality" in k
    )
    assert callback_state["best"] == 2.5 and callback_state["best_iteration"] == 8
    assert len(callback_state["history"]) == 5


@pytest.mark.parametrize("model", ["dcgan", "stylegan"])
def test_evaluate_and_generate_on_a_short_run(compose_cfg, tmp_path: Path, model: str) -> None:
    from gan_lab.evaluate import evaluate
    from gan_lab.generate import generate

    run(compose_cfg(f"model={model}", "trainer.max_steps=2", run_dir=tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    metrics = [m for m in METRICS if not m.startswith(("metrics=", "metrics.every"))]
    record = evaluate(
        compose_tool(
            "evaluate", tmp_path / "eval", f"ckpt={ckpt}", f"paths.cache_dir={tmp_path / 'c'}", *metrics
        )
    )
    assert record["fid_domain"] > 0 and record["iteration"] == 2
    assert json.loads((tmp_path / "eval" / "scores.json").read_text())["fid_domain"] == record["fid_domain"]
    paths = generate(compose_tool("generate", tmp_path / "gen", f"ckpt={ckpt}", "num=9", "seed=3"))
    assert Image.open(paths[0]).size == (3 * 33 + 1, 3 * 33 + 1)  # 3x3 grid of 32 px with 1 px padding
    strip, gif = generate(
        compose_tool(
            "generate", tmp_path / "walk", f"ckpt={ckpt}", "mode=interpolate", "keyframes=3", "steps=4"
        )
    )
    assert Image.open(gif).n_frames == 12
    assert Image.open(strip).size == (4 * 33 + 1, 3 * 33 + 1)  # one row per leg of the walk
    if model == "stylegan":
        (mix,) = generate(
            compose_tool("generate", tmp_path / "mix", f"ckpt={ckpt}", "mode=style_mix", "rows=2", "cols=3")
        )
        assert Image.open(mix).size == (4 * 33 + 1, 3 * 33 + 1)
    else:
        with pytest.raises(ConfigError, match="style_mix needs a StyleGAN checkpoint"):
            generate(compose_tool("generate", tmp_path / "mix", f"ckpt={ckpt}", "mode=style_mix"))


def test_tools_refuse_bad_checkpoints(tmp_path: Path) -> None:
    from gan_lab.evaluate import evaluate
    from gan_lab.generate import generate

    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(compose_tool("evaluate", tmp_path / "e", f"ckpt={tmp_path / 'missing.ckpt'}"))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=f"ckpt={bad} is not a checkpoint"):  # its own key, ckpt=
        generate(compose_tool("generate", tmp_path / "g", f"ckpt={bad}"))

"""project.py: projection of an image into a StyleGAN checkpoint's w space (StyleGAN2, section 5).

An image the tiny generator made from a known w is recovered (PSNR threshold from measurement),
the LPIPS path runs with a randomly initialised VGG16 written here, the outputs load, and bad
input is refused in one line."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import Tensor

from gan_lab.config import validate_project
from gan_lab.config.schema import ProjectConfig
from gan_lab.errors import ConfigError
from gan_lab.nn.stylegan import StyleGANGenerator
from gan_lab.project import (
    PixelLoss,
    Schedule,
    noise_regularization,
    normalize_noise_,
    prepare_target,
    project,
    to_pil,
    to_tensor,
)
from gan_lab.project import run as project_run

from .conftest import REPO, compose_tool, refused_in_one_line

# Measured on the tiny 1-iteration StyleGAN of `stylegan_ckpt` (32x32 gray, 8 ws), mode=w, pixel
# distance, 200 steps, 500 w samples, targets made from the ws of z seeds 1-10: final PSNR
# 23.6-32.1 dB (seed 1, the one tested: 26.6 dB) from 6.8-15.0 dB at the start (w_avg), a gain of
# at least 11.5 dB.
RECOVERED_PSNR_DB = 20.0
MIN_GAIN_DB = 8.0
_CACHE: dict[str, Path] = {}


def checkpoint(compose_cfg, tmp_path_factory: pytest.TempPathFactory, name: str, *overrides: str) -> Path:
    """A genuine checkpoint of a 1-iteration tiny run (made once per test session)."""
    if name not in _CACHE:
        from gan_lab.training import run

        out = tmp_path_factory.mktemp(name)
        run(compose_cfg("trainer.max_steps=1", *overrides, run_dir=out))
        _CACHE[name] = out / "checkpoints" / "last.ckpt"
    return _CACHE[name]


@pytest.fixture
def stylegan_ckpt(compose_cfg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint(compose_cfg, tmp_path_factory, "stylegan", "model=stylegan")


def tiny_generator(num_classes: int = 0) -> StyleGANGenerator:
    torch.manual_seed(0)
    G = StyleGANGenerator(
        32, 1, z_dim=32, w_dim=32, channel_base=128, channel_max=16, num_classes=num_classes
    )
    return G.eval()


def made_image(G: Any, seed: int, out: Path) -> tuple[Path, Tensor]:
    """A PNG of the image G makes from the w of latent ``seed`` (stored noise), and that w."""
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z)
        image = G.synthesis(ws, noise_mode="const", fused=True)
    to_pil(image).save(out)
    return out, ws


def options(tmp_path: Path, ckpt: Path, target: Path, *overrides: str) -> Any:
    """conf/project.yaml composed as project.py does, quick, with an empty cache folder (no domain
    classifier) and no LPIPS weights unless the overrides bring them."""
    quick = ["w_avg_samples=500", "log_every=1000", f"paths.cache_dir={tmp_path / 'cache'}"]
    return compose_tool("project", tmp_path / "out", f"ckpt={ckpt}", f"target={target}", *quick, *overrides)


@pytest.fixture
def no_default_vgg16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # torchvision's cache: empty


def random_vgg16_weights(path: Path) -> Path:
    """A randomly initialised torchvision VGG16 ``features`` state dict (what LPIPS loads)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


# ---------------------------------------------------------------------------- recovery and outputs
def test_projection_recovers_an_image_the_generator_made(
    stylegan_ckpt: Path, tmp_path: Path, no_default_vgg16: None
) -> None:
    from gan_lab.checkpoints import load_model

    module, _ = load_model(stylegan_ckpt)
    G = module.G_ema
    target, _ = made_image(G, seed=1, out=tmp_path / "made.png")
    summary = project_run(options(tmp_path, stylegan_ckpt, target, "steps=200", "gif_every=50"))

    assert summary["distance"] == "pixel" and summary["distance_description"] == "pixel (mean squared error)"
    assert summary["psnr_db"] > RECOVERED_PSNR_DB, summary
    assert summary["psnr_db"] - summary["start_psnr_db"] > MIN_GAIN_DB, summary
    out = tmp_path / "out"
    assert json.loads((out / "projection.json").read_text()) == summary
    assert Image.open(out / "target.png").size == (32, 32) and Image.open(out / "target.png").mode == "L"
    np.testing.assert_array_equal(np.asarray(Image.open(out / "target.png")), np.asarray(Image.open(target)))
    assert Image.open(out / "proj.gif").n_frames == 1 + 200 // 50  # step 0, then every 50 steps

    # the .npz holds the ws (one w broadcast) and the noise maps that render proj.png again
    saved = np.load(out / "projected_w.npz")
    ws = torch.from_numpy(saved["w"])
    assert ws.shape == (1, G.num_ws, G.w_dim) and str(saved["mode"]) == "w"
    assert torch.equal(ws, ws[:, :1].expand_as(ws))
    layers = {k.removeprefix("noise.") for k in saved.files if k.startswith("noise.")}
    buffers = {
        n.removesuffix(".noise_const"): b for n, b in G.synthesis.named_buffers() if "noise_const" in n
    }
    assert layers == set(buffers) and len(layers) == 7
    for name, buf in buffers.items():
        buf.copy_(torch.from_numpy(saved[f"noise.{name}"]))
    with torch.no_grad():
        again = np.asarray(to_pil(G.synthesis(ws, noise_mode="const", fused=True)), dtype=int)
    assert np.abs(again - np.asarray(Image.open(out / "proj.png"), dtype=int)).max() <= 1


def test_wplus_optimises_one_w_per_layer_and_stays_in_its_class(tmp_path: Path) -> None:
    G = tiny_generator(num_classes=3)
    z = torch.randn(1, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        target = G.synthesis(G.mapping(z, torch.tensor([2])), noise_mode="const", fused=True)
    result = project(G, target, PixelLoss(), Schedule(steps=20), c=2, mode="wplus", w_avg_samples=200)
    assert result.ws.shape == (1, G.num_ws, 32)
    assert not torch.allclose(result.ws[:, 0], result.ws[:, -1])  # each layer its own w
    assert result.distance < float(PixelLoss()(result.start_image, target))
    # the noise maps were renormalised after every step; the generator itself is untouched
    for n in result.noise.values():
        assert abs(float(n.mean())) < 1e-4 and abs(float(n.square().mean()) - 1) < 1e-3
    assert all(not b.requires_grad for b in G.buffers())


# ---------------------------------------------------------------------------- the losses
def test_lpips_path_runs_with_vgg16_weights(stylegan_ckpt: Path, tmp_path: Path) -> None:
    weights = random_vgg16_weights(tmp_path / "vgg16.pth")
    target = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(target)
    summary = project_run(
        options(tmp_path, stylegan_ckpt, target, f"lpips_weights={weights}", "steps=4", "gif_every=0")
    )
    assert summary["distance"] == "lpips" and str(weights) in summary["distance_description"]
    assert math.isfinite(summary["final_distance"]) and summary["final_distance"] >= 0
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {"target.png", "proj.png", "projected_w.npz", "projection.json"}
    assert not (out / "proj.gif").exists()  # gif_every=0
    assert Image.open(out / "target.png").size == (32, 32)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match=r"^the VGG16 weights' features.0.weight has shape \(1,\)"):
        project_run(options(tmp_path, stylegan_ckpt, target, f"lpips_weights={tmp_path / 'other.pth'}"))


def test_distance_auto_without_weights_falls_back_to_pixels_and_lpips_refuses(
    stylegan_ckpt: Path, tmp_path: Path, no_default_vgg16: None, capsys: pytest.CaptureFixture
) -> None:
    target, _ = made_image(tiny_generator(), 0, tmp_path / "t.png")
    summary = project_run(options(tmp_path, stylegan_ckpt, target, "steps=2", "distance=auto"))
    assert summary["distance"] == "pixel"
    assert capsys.readouterr().out.startswith("distance: pixel (mean squared error); final pixel ")
    with pytest.raises(
        ConfigError, match=r"LPIPS VGG16 weights .* cannot be downloaded here.* lpips_weights=PATH"
    ):
        project_run(options(tmp_path, stylegan_ckpt, target, "distance=lpips"))
    with pytest.raises(ConfigError, match=r"^lpips_weights=/nowhere/vgg16.pth does not exist$"):
        project_run(options(tmp_path, stylegan_ckpt, target, "lpips_weights=/nowhere/vgg16.pth"))


def test_pixel_distance_adds_the_cached_domain_classifier_features(
    stylegan_ckpt: Path, tmp_path: Path
) -> None:
    from gan_lab.metrics.domain import DomainClassifier, classifier_path
    from gan_lab.metrics.features import file_sha256

    path = classifier_path(tmp_path / "cache", "fashion_mnist")  # the checkpoint's dataset
    path.parent.mkdir(parents=True)
    torch.save(DomainClassifier().state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"weights_sha256": file_sha256(path)}))
    target, _ = made_image(tiny_generator(), 0, tmp_path / "t.png")
    summary = project_run(options(tmp_path, stylegan_ckpt, target, "distance=pixel", "steps=2"))
    assert summary["distance"] == "pixel+domain"
    assert summary["distance_description"] == (
        f"pixel (mean squared error) + 0.1 x domain-classifier features (fashion_mnist classifier, {path})"
    )
    summary = project_run(
        options(tmp_path, stylegan_ckpt, target, "distance=pixel", "steps=2", "domain_weight=0")
    )
    assert summary["distance"] == "pixel"


# ---------------------------------------------------------------------------- schedule and noise
def test_schedule_follows_the_reference_projector() -> None:
    s = Schedule(steps=1000)
    assert s.learning_rate(0) == 0  # linear warm-up over the first 5%
    assert s.learning_rate(25) == pytest.approx(0.05)
    assert s.learning_rate(50) == s.learning_rate(500) == pytest.approx(0.1)
    assert s.learning_rate(875) == pytest.approx(0.05)  # cosine ramp-down over the last 25%
    assert s.learning_rate(999) < 1e-4
    assert s.noise_scale(0, w_std=2.0) == pytest.approx(0.1)  # w_std * 0.05
    assert s.noise_scale(375, w_std=2.0) == pytest.approx(0.1 * 0.25)  # (1 - 0.5)^2
    assert s.noise_scale(750, w_std=2.0) == s.noise_scale(900, w_std=2.0) == 0


def test_noise_regularizer_penalises_correlated_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    white = [torch.randn(32, 32, generator=gen), torch.randn(8, 8, generator=gen)]
    smooth = [torch.nn.functional.interpolate(w[None, None], scale_factor=0.25)[0, 0] for w in white]
    smooth = [torch.nn.functional.interpolate(s[None, None], scale_factor=4.0)[0, 0] for s in smooth]
    normalize_noise_(white)
    normalize_noise_(smooth)
    assert all(abs(float(n.mean())) < 1e-5 and abs(float(n.std(correction=0)) - 1) < 1e-4 for n in smooth)
    assert float(noise_regularization(smooth)) > 100 * float(noise_regularization(white))


# ---------------------------------------------------------------------------- the target image
def test_target_is_center_cropped_resized_and_converted() -> None:
    picture = np.zeros((60, 100, 4), dtype=np.uint8)  # a wide RGBA image: red center square
    picture[:, 20:80, :] = (255, 0, 0, 255)
    picture[:, :20, 3] = 0  # transparent left margin: cropped away anyway
    gray = prepare_target(Image.fromarray(picture, "RGBA"), 32, 1)
    assert gray.size == (32, 32) and gray.mode == "L"
    assert np.asarray(gray).min() == np.asarray(gray).max() == round(0.299 * 255)  # all red, as luma
    rgb = prepare_target(Image.fromarray(picture, "RGBA"), 64, 3)
    assert rgb.mode == "RGB" and np.asarray(rgb)[..., 0].min() == 255
    deep = Image.fromarray(np.full((40, 40), 65535 // 2, dtype=np.uint16))  # 16-bit gray: mid-gray
    assert 126 <= np.asarray(prepare_target(deep, 32, 1)).mean() <= 129
    dark = Image.fromarray(np.full((40, 40), 200, dtype=np.uint16))  # 16-bit, dark: stays dark
    assert np.asarray(prepare_target(dark, 32, 1)).max() <= 1
    assert to_tensor(gray).shape == (1, 1, 32, 32)


# ---------------------------------------------------------------------------- refusals
def test_refusals_are_one_line(compose_cfg, tmp_path_factory, stylegan_ckpt: Path, tmp_path: Path) -> None:
    target, _ = made_image(tiny_generator(), 0, tmp_path / "t.png")
    dcgan = checkpoint(compose_cfg, tmp_path_factory, "dcgan")
    conditional = checkpoint(compose_cfg, tmp_path_factory, "cond", "model=stylegan", "data.conditional=true")
    junk = tmp_path / "junk.png"
    junk.write_text("not a picture")
    cases = [
        (
            dcgan,
            target,
            [],
            r"^project.py needs a StyleGAN checkpoint .* has a DCGANGenerator, which has none$",
        ),
        (stylegan_ckpt, tmp_path / "none.png", [], r"^target=.*none.png does not exist$"),
        (stylegan_ckpt, junk, [], r"^target=.*junk.png is not an image PIL can read \(.*\)$"),
        (stylegan_ckpt, tmp_path, [], r"^target=.* is not a file \(expected an image"),
        (stylegan_ckpt, target, ["mode=z"], r"^mode='z' is invalid: expected one of w, wplus$"),
        (stylegan_ckpt, target, ["steps=0"], r"^steps=0 is invalid: expected a positive integer$"),
        (
            stylegan_ckpt,
            target,
            ["distance=l2"],
            r"^distance='l2' is invalid: expected one of auto, lpips, pixel$",
        ),
        (
            stylegan_ckpt,
            target,
            ["class=1"],
            r"^class=1 needs a class-conditional checkpoint; this one is uncond",
        ),
        (
            conditional,
            target,
            [],
            r"^this checkpoint is class-conditional \(this checkpoint has 10 classes, ",
        ),
        (conditional, target, ["class=10"], r"^class=10 is out of range: this checkpoint has 10 classes"),
    ]
    for ckpt, image, overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            project_run(options(tmp_path, ckpt, image, "steps=1", *overrides))
    assert not (tmp_path / "out" / "proj.png").exists()  # nothing was projected
    summary = project_run(options(tmp_path, conditional, target, "steps=1", "class=3", "distance=pixel"))
    assert summary["class"] == 3 and int(np.load(tmp_path / "out" / "projected_w.npz")["class"]) == 3


def test_cli_refusal_is_one_line_and_exit_2(compose_cfg, tmp_path_factory, tmp_path: Path) -> None:
    dcgan = checkpoint(compose_cfg, tmp_path_factory, "dcgan")
    target, _ = made_image(tiny_generator(), 0, tmp_path / "t.png")
    line = refused_in_one_line("project.py", f"ckpt={dcgan}", f"target={target}", f"hydra.run.dir={tmp_path}")
    assert "needs a StyleGAN checkpoint" in line


def test_loss_option_is_one_line_naming_distance(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from gan_lab.project import main

    monkeypatch.setattr(sys, "argv", ["project.py", "ckpt=x.ckpt", "target=x.png", "loss=pixel"])
    with pytest.raises(SystemExit) as stopped:
        main()  # refused before Hydra composes (it would take loss= for the training loss group)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: project.py has no option loss (loss=pixel): choose the image distance with "
        "distance=auto|lpips|pixel"
    ]


def test_project_config_has_a_schema(tmp_path: Path) -> None:
    cfg = OmegaConf.load(REPO / "conf" / "project.yaml")
    keys = set(cfg) - {"defaults", "hydra"}
    assert keys <= set(ProjectConfig.__dataclass_fields__) | set(ProjectConfig.KEYS)
    validate_project(compose_tool("project", tmp_path, "ckpt=x.ckpt", "target=x.png"))
    with pytest.raises(ConfigError, match=r"^target is required: target=PATH \(an image file\)$"):
        validate_project(compose_tool("project", tmp_path, "ckpt=x.ckpt"))

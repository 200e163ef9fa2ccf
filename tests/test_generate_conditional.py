"""Pictures of class-conditional models: the training sample grid (one row per class) and
generate.py's ``class=``/``classes=`` (grids, walks and style mixing within the chosen classes,
class names in the file names, one-line refusals); unconditional pictures unchanged.

Most tests use a fake module whose generator paints every image of class k one flat gray, so
that a cell's color says its class."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor, nn
from torchvision.utils import make_grid

from gan_lab.callbacks.samples import SampleGrid
from gan_lab.data.transforms import to_uint8
from gan_lab.errors import ConfigError
from gan_lab.generate import Renderer, grid, interpolate, style_mix
from gan_lab.nn.dcgan import DCGANGenerator
from gan_lab.nn.stylegan import StyleGANGenerator
from gan_lab.utils.classes import grid_classes

from .conftest import REPO, compose_tool, refused_in_one_line

SIZE = 8  # fake images are SIZE x SIZE; grids pad them by 1 px


def gray(k: int, num_classes: int) -> float:
    return -1 + 2 * k / max(num_classes - 1, 1)


def gray_uint8(k: int, num_classes: int) -> int:
    return int(to_uint8(torch.tensor(gray(k, num_classes))))


class PaintByClass(nn.Module):
    """A conditional "generator": each image of class k is the flat gray of k (remembers its z)."""

    def __init__(self, num_classes: int, z_dim: int = 4) -> None:
        super().__init__()
        self.num_classes, self.z_dim = num_classes, z_dim
        self.seen: list[Tensor] = []

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        if c is None:
            raise ValueError("PaintByClass is conditional: pass the labels c")
        self.seen.append(z.clone())
        value = -1 + 2 * c.float() / max(self.num_classes - 1, 1)
        return value.view(-1, 1, 1, 1).expand(z.shape[0], 1, SIZE, SIZE).clone()


class FakeModule(nn.Module):
    """What pictures need of a lab module (``gan_lab.modules.gan.GANModule``'s attributes)."""

    def __init__(self, generator: nn.Module, num_samples: int = 7) -> None:
        super().__init__()
        self.G = self.G_ema = generator
        self.num_classes = getattr(generator, "num_classes", 0)
        if self.num_classes:
            self.register_buffer("sample_c", grid_classes(num_samples, self.num_classes))
            self.sample_grid_cols = len(self.sample_c) // len(self.sample_c.unique())
        else:
            self.register_buffer("sample_c", torch.zeros(0, dtype=torch.int64))
            self.sample_grid_cols = None
        n = len(self.sample_c) or num_samples
        self.register_buffer(
            "sample_z", torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(0))
        )

    @property
    def device(self) -> torch.device:
        return self.sample_z.device

    @torch.no_grad()
    def sample(self) -> Tensor:
        return self.G_ema(self.sample_z, self.sample_c if self.num_classes else None)


def options(**overrides) -> DictConfig:
    """conf/generate.yaml's options (no Hydra), with ``overrides``."""
    cfg = OmegaConf.load(REPO / "conf" / "generate.yaml")
    for key in ("defaults", "hydra"):
        cfg.pop(key)
    cfg.ckpt = "fake.ckpt"
    cfg.merge_with(overrides)
    return cfg


def cell(picture: np.ndarray, row: int, col: int, size: int = SIZE) -> np.ndarray:
    """The pixels of grid cell (row, col) (1 px padding)."""
    top, left = 1 + row * (size + 1), 1 + col * (size + 1)
    return picture[top : top + size, left : left + size]


def grid_shape(path: Path, size: int = SIZE) -> tuple[int, int]:
    """(rows, cols) of a padded grid of size-px images."""
    width, height = Image.open(path).size
    return (height - 1) // (size + 1), (width - 1) // (size + 1)


def assert_rows(path: Path, classes: list[int], num_classes: int) -> None:
    picture = np.asarray(Image.open(path).convert("L"))
    rows, cols = grid_shape(path)
    assert rows == len(classes)
    for r, k in enumerate(classes):
        for j in range(cols):
            assert (cell(picture, r, j) == gray_uint8(k, num_classes)).all(), (path.name, r, j, k)


# ---------------------------------------------------------------------------- training sample grids
class Recorder:
    def __init__(self) -> None:
        self.logged: list[dict] = []

    def log_image(self, **kwargs) -> None:
        self.logged.append(kwargs)


def save_training_grid(module: nn.Module, tmp_path: Path, **kwargs) -> tuple[Path, Recorder]:
    logger = Recorder()
    trainer = SimpleNamespace(global_step=0, loggers=[logger])
    return SampleGrid(str(tmp_path / "samples"), **kwargs).save(trainer, module), logger


def test_training_grid_of_a_conditional_module_has_one_row_per_class(tmp_path: Path) -> None:
    module = FakeModule(PaintByClass(num_classes=3), num_samples=7)  # 3 rows of 2
    path, logger = save_training_grid(module, tmp_path, nrow=5)  # nrow: for square grids only
    assert path.name == "iter_0000000.png"
    assert grid_shape(path) == (3, 2)
    assert_rows(path, [0, 1, 2], 3)
    assert Image.open(path).text["classes"] == "rows: classes 0, 1, 2"
    assert logger.logged[0]["caption"] == ["iter 0 (rows: classes 0, 1, 2)"]


def test_training_grid_of_many_classes_names_its_evenly_spaced_rows(tmp_path: Path) -> None:
    module = FakeModule(PaintByClass(num_classes=12), num_samples=20)  # 10 of the 12 classes, 2 each
    path, logger = save_training_grid(module, tmp_path)
    rows = [0, 1, 2, 4, 5, 6, 7, 9, 10, 11]
    assert grid_shape(path) == (10, 2)
    assert_rows(path, rows, 12)
    assert logger.logged[0]["caption"] == [f"iter 0 (rows: classes {', '.join(map(str, rows))})"]


def test_training_grid_of_an_unconditional_module_stays_square(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = FakeModule(DCGANGenerator(z_dim=8, resolution=32, channels=1, width=8), num_samples=9).eval()
    path, logger = save_training_grid(module, tmp_path)
    expected = make_grid(to_uint8(module.sample().float()), nrow=3, padding=1).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(path)), expected)
    assert "classes" not in Image.open(path).text
    assert logger.logged[0]["caption"] == ["iter 0"]


# ---------------------------------------------------------------------------- generate.py: grids
def test_grid_of_one_class_paints_every_image_of_that_class(tmp_path: Path) -> None:
    module = FakeModule(PaintByClass(num_classes=4))
    (path,) = grid(
        Renderer(module, options(**{"class": 2, "num": 6})), options(**{"class": 2, "num": 6}), tmp_path
    )
    assert path.name == "grid-seed0-class2.png"
    assert grid_shape(path) == (2, 3)  # square-ish, as unconditional grids
    picture = np.asarray(Image.open(path).convert("L"))
    assert all((cell(picture, r, j) == gray_uint8(2, 4)).all() for r in range(2) for j in range(3))
    assert Image.open(path).text["classes"] == "class 2 (every image)"


def test_grid_of_listed_classes_has_one_row_each_and_one_latent_a_column(tmp_path: Path) -> None:
    generator = PaintByClass(num_classes=4)
    cfg = options(classes=[3, 0], num=7)  # 2 rows of 7 // 2 = 3
    (path,) = grid(Renderer(FakeModule(generator), cfg), cfg, tmp_path)
    assert path.name == "grid-seed0-classes3-0.png"
    assert_rows(path, [3, 0], 4)
    (z,) = generator.seen[-1:]
    assert z.shape[0] == 6 and torch.equal(z[:3], z[3:])  # a column shows one latent in every class
    assert Image.open(path).text["classes"] == "rows: classes 3, 0"


def test_default_grid_of_a_conditional_checkpoint_has_one_row_per_class(tmp_path: Path) -> None:
    cfg = options(num=7)
    (path,) = grid(Renderer(FakeModule(PaintByClass(num_classes=3)), cfg), cfg, tmp_path)
    assert path.name == "grid-seed0-classes0-1-2.png"
    assert grid_shape(path) == (3, 2)  # grid_classes(7, 3): 3 rows of 2
    assert_rows(path, [0, 1, 2], 3)
    cfg = options(num=7, nrow=4)  # nrow: the images of each row
    (path,) = grid(Renderer(FakeModule(PaintByClass(num_classes=3)), cfg), cfg, tmp_path)
    assert grid_shape(path) == (3, 4)


def test_class_refusals_are_one_line(tmp_path: Path) -> None:
    conditional, unconditional = (
        FakeModule(PaintByClass(num_classes=3)),
        FakeModule(DCGANGenerator(z_dim=8, resolution=32, channels=1, width=8)),
    )
    cases = [
        (
            conditional,
            {"class": 3},
            r"^class=3 is out of range: this checkpoint has 3 classes, labels 0 to 2$",
        ),
        (conditional, {"classes": [0, 5]}, r"^classes=\[0, 5\] has 5, out of range: .* labels 0 to 2$"),
        (
            unconditional,
            {"class": 1},
            r"^class=1 needs a class-conditional checkpoint; this one is unconditional$",
        ),
        (unconditional, {"classes": [1]}, r"^classes=\[1\] needs a class-conditional checkpoint"),
    ]
    for module, overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            Renderer(module, options(**overrides))


def test_both_class_and_classes_are_one_line_and_exit_2_before_the_checkpoint_is_read(tmp_path: Path) -> None:
    line = refused_in_one_line(
        "generate.py",
        f"ckpt={tmp_path / 'missing.ckpt'}",  # not read: the options are refused first
        "class=1",
        "classes=[2]",
        f"hydra.run.dir={tmp_path / 'out'}",
    )
    assert "class=1 and classes=[2] are both given: choose one" in line


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("class=x", r"^class='x' is invalid: expected a class label \(an integer >= 0\) or null$"),
        ("class=-2", r"^class=-2 is invalid: expected an integer >= 0 or null$"),
        ("classes=[0,a]", r"^classes=\[0, 'a'\] is invalid: expected a list of class labels"),
        ("classes=[]", r"^classes=\[\] is invalid: expected a non-empty list of class labels"),
    ],
)
def test_class_labels_that_are_no_labels_are_refused_before_loading(
    tmp_path: Path, setting: str, message: str
) -> None:
    from gan_lab.config import validate_generate

    with pytest.raises(ConfigError, match=message):
        validate_generate(compose_tool("generate", tmp_path, f"ckpt={tmp_path / 'missing.ckpt'}", setting))


# ---------------------------------------------------------------------------- generate.py: walks
def test_walk_of_a_conditional_model_stays_in_its_class(tmp_path: Path) -> None:
    generator = PaintByClass(num_classes=3)
    cfg = options(**{"mode": "interpolate", "class": 2, "keyframes": 3, "steps": 2})
    strip, gif = interpolate(Renderer(FakeModule(generator), cfg), cfg, tmp_path)
    assert (strip.name, gif.name) == ("interpolate-seed0-class2.png", "interpolate-seed0-class2.gif")
    assert_rows(strip, [2, 2, 2], 3)  # one row per leg, every frame of class 2
    frames = Image.open(gif)  # (PIL stores these identical frames as one)
    for k in range(frames.n_frames):
        frames.seek(k)
        assert (np.asarray(frames.convert("L")) == gray_uint8(2, 3)).all()


def test_walks_default_to_class_0_and_classes_give_one_walk_each(tmp_path: Path) -> None:
    cfg = options(mode="interpolate", keyframes=2, steps=2)
    paths = interpolate(Renderer(FakeModule(PaintByClass(num_classes=3)), cfg), cfg, tmp_path)
    assert [p.name for p in paths] == ["interpolate-seed0-class0.png", "interpolate-seed0-class0.gif"]
    assert_rows(paths[0], [0, 0], 3)
    cfg = options(mode="interpolate", keyframes=2, steps=2, classes=[1, 2])
    paths = interpolate(Renderer(FakeModule(PaintByClass(num_classes=3)), cfg), cfg, tmp_path)
    assert [p.name for p in paths[::2]] == ["interpolate-seed0-class1.png", "interpolate-seed0-class2.png"]
    assert_rows(paths[2], [2, 2], 3)


# ---------------------------------------------------------------------------- StyleGAN: mapping(z, c)
def tiny_stylegan(num_classes: int = 0) -> nn.Module:
    torch.manual_seed(0)
    return StyleGANGenerator(
        resolution=32,
        channels=1,
        z_dim=8,
        w_dim=8,
        map_layers=2,
        channel_base=64,
        channel_max=8,
        num_classes=num_classes,
    ).eval()


def test_stylegan_grid_and_walk_of_a_class_map_z_with_that_label(tmp_path: Path) -> None:
    G = tiny_stylegan(num_classes=3)
    module = FakeModule(G)
    cfg = options(**{"class": 1, "num": 4, "psi": 0.7, "noise": "none"})
    (path,) = grid(Renderer(module, cfg), cfg, tmp_path)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = G.mapping(z, torch.full((4,), 1), truncation_psi=0.7, truncation_cutoff=None)
        expected = G.synthesis(ws, noise_mode="none", fused=True)
        other = G.synthesis(
            G.mapping(z, torch.full((4,), 2), truncation_psi=0.7), noise_mode="none", fused=True
        )
    picture = make_grid(to_uint8(expected), nrow=2, padding=1).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(path)), picture)
    assert not torch.equal(to_uint8(expected), to_uint8(other))  # the label reaches the pictures
    cfg = options(
        **{"mode": "interpolate", "class": 1, "keyframes": 2, "steps": 2, "psi": 0.7, "noise": "none"}
    )
    strip, _ = interpolate(Renderer(module, cfg), cfg, tmp_path)
    keys = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = G.mapping(keys, torch.full((2,), 1), truncation_psi=0.7)
        frames = [
            G.synthesis(torch.lerp(ws[a : a + 1], ws[b : b + 1], t), noise_mode="none", fused=True)
            for a, b in ((0, 1), (1, 0))
            for t in (0, 0.5)
        ]
    picture = make_grid(to_uint8(torch.cat(frames)), nrow=2, padding=1).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(strip)), picture)


def test_style_mix_of_a_class_takes_its_sources_from_that_class(tmp_path: Path) -> None:
    G = tiny_stylegan(num_classes=3)
    cfg = options(**{"mode": "style_mix", "class": 2, "rows": 2, "cols": 3, "noise": "none"})
    (path,) = style_mix(Renderer(FakeModule(G), cfg), cfg, tmp_path)
    assert path.name == "style_mix-coarse-seed0-class2.png"
    cols = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        top = G.synthesis(G.mapping(cols, torch.full((3,), 2)), noise_mode="none", fused=True)
    picture = np.asarray(Image.open(path).convert("L"))
    for j in range(3):
        assert np.array_equal(cell(picture, 0, j + 1, size=32), to_uint8(top[j, 0]).numpy())
    cfg = options(**{"mode": "style_mix", "classes": [0, 2], "rows": 2, "cols": 3, "noise": "none"})
    (path,) = style_mix(Renderer(FakeModule(G), cfg), cfg, tmp_path)
    assert path.name == "style_mix-coarse-seed0-classes0-2.png"
    assert (
        Image.open(path).text["classes"] == "row sources: classes [0, 2], column sources: classes [0, 2, 0]"
    )


# ---------------------------------------------------------------------------- unconditional: unchanged
def old_grid_pixels(G: nn.Module, num: int, seed: int, stylegan: bool, psi: float = 1.0) -> np.ndarray:
    """The grid generate.py drew before class conditioning, computed its way."""
    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        if stylegan:
            rng = torch.Generator().manual_seed(seed)
            ws = G.mapping(z, truncation_psi=psi, truncation_cutoff=None)
            images = G.synthesis(ws, noise_mode="const", rng=rng, fused=True)
        else:
            images = G(z)
    nrow = math.ceil(math.sqrt(num))
    return make_grid(to_uint8(images.float()), nrow=nrow, padding=1).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("stylegan", [False, True])
def test_unconditional_grids_keep_their_pixels_and_names(tmp_path: Path, stylegan: bool) -> None:
    torch.manual_seed(0)
    G = tiny_stylegan() if stylegan else DCGANGenerator(z_dim=8, resolution=32, channels=1, width=8).eval()
    cfg = options(num=5, seed=3, psi=0.5)
    (path,) = grid(Renderer(FakeModule(G), cfg), cfg, tmp_path)
    assert path.name == "grid-seed3.png" and "classes" not in Image.open(path).text
    assert np.array_equal(np.asarray(Image.open(path)), old_grid_pixels(G, 5, 3, stylegan, psi=0.5))
    cfg = options(mode="interpolate", keyframes=2, steps=2)
    assert [p.name for p in interpolate(Renderer(FakeModule(G), cfg), cfg, tmp_path)] == [
        "interpolate-seed0.png",
        "interpolate-seed0.gif",
    ]


# ---------------------------------------------------------------------------- a trained checkpoint
def test_generate_on_a_tiny_conditional_checkpoint(compose_cfg, tmp_path: Path) -> None:
    """Two iterations of a conditional DCGAN, then generate.py's grids of classes from its checkpoint."""
    from gan_lab.generate import generate
    from gan_lab.training import run

    run(compose_cfg("data.conditional=true", "trainer.max_steps=2", run_dir=tmp_path / "run"))
    samples = tmp_path / "run" / "samples" / "iter_0000002.png"
    assert Image.open(samples).text["classes"] == "rows: classes " + ", ".join(map(str, range(10)))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    (one,) = generate(compose_tool("generate", tmp_path / "gen", f"ckpt={ckpt}", "class=3", "num=4"))
    assert one.name == "grid-seed0-class3.png" and grid_shape(one, size=32) == (2, 2)
    (rows,) = generate(compose_tool("generate", tmp_path / "gen", f"ckpt={ckpt}", "classes=[1,7]", "num=6"))
    assert rows.name == "grid-seed0-classes1-7.png" and grid_shape(rows, size=32) == (2, 3)
    (default,) = generate(compose_tool("generate", tmp_path / "gen", f"ckpt={ckpt}", "num=10"))
    assert grid_shape(default, size=32) == (10, 1)
    with pytest.raises(ConfigError, match=r"^class=10 is out of range: this checkpoint has 10 classes"):
        generate(compose_tool("generate", tmp_path / "gen", f"ckpt={ckpt}", "class=10"))

"""generate.py's ``mode=seeds`` (one PNG per seed, the same pixels as that seed's tile in a grid of
seeds and as ``mode=grid seed=S num=1``, with every class, truncation and noise option) and
``upscale`` (every written picture enlarged by an integer factor, nearest neighbour), on tiny
checkpoints of two training iterations; the refusals of bad values (one line, exit status 2)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from PIL import Image, ImageSequence

from gan_lab.config import validate_generate
from gan_lab.errors import ConfigError
from gan_lab.generate import generate
from gan_lab.training import run

from .conftest import compose_tool

SIZE = 32  # the tiny networks' resolution; grids pad images by 1 px


def train_tiny(compose_cfg, tmp_path: Path, *overrides: str) -> Path:
    """The last.ckpt of a two-iteration run."""
    run(compose_cfg(*overrides, "trainer.max_steps=2", run_dir=tmp_path / "run"))
    return tmp_path / "run" / "checkpoints" / "last.ckpt"


def pixels(path: Path) -> np.ndarray:
    """A picture as RGB pixels (gray PNGs repeated to three channels, as grids store them)."""
    return np.asarray(Image.open(path).convert("RGB"))


def tile(grid: np.ndarray, row: int, col: int, size: int = SIZE) -> np.ndarray:
    top, left = 1 + row * (size + 1), 1 + col * (size + 1)
    return grid[top : top + size, left : left + size]


def enlarged(picture: np.ndarray, factor: int) -> np.ndarray:
    """Each pixel a factor x factor block."""
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def draw(out: Path, ckpt: Path, *overrides: str) -> list[Path]:
    return generate(compose_tool("generate", out, f"ckpt={ckpt}", *overrides))


@pytest.mark.parametrize(
    ("model", "options"),
    [("dcgan", ()), ("stylegan", ("psi=0.7", "noise=random"))],
)
def test_seed_pngs_are_the_tiles_of_a_grid_of_the_same_seeds(
    compose_cfg, tmp_path: Path, model: str, options: tuple[str, ...]
) -> None:
    ckpt = train_tiny(compose_cfg, tmp_path, f"model={model}")
    seeds = draw(tmp_path / "seeds", ckpt, "mode=seeds", "seeds=[1,2,30]", *options)
    assert [p.name for p in seeds] == ["seed0001.png", "seed0002.png", "seed0030.png"]
    assert Image.open(seeds[0]).size == (SIZE, SIZE)
    (grid,) = draw(tmp_path / "grid", ckpt, "seeds=[1,2,30]", *options)  # mode=grid
    assert grid.name == "grid-seeds1-2-30.png" and Image.open(grid).text["seeds"] == "seeds 1, 2, 30"
    picture = pixels(grid)
    assert picture.shape == (1 + 2 * (SIZE + 1), 1 + 2 * (SIZE + 1), 3)  # square: 2 a row
    for k, path in enumerate(seeds):
        assert np.array_equal(tile(picture, k // 2, k % 2), pixels(path)), path.name
    # a seed's image is mode=grid seed=S num=1, whatever the other seeds listed (noise too)
    (single,) = draw(tmp_path / "single", ckpt, "seed=30", "num=1", *options)  # one image: no padding
    assert np.array_equal(pixels(single), pixels(seeds[2]))
    again = draw(tmp_path / "again", ckpt, "mode=seeds", "seeds=[30,7]", *options)
    assert np.array_equal(pixels(again[0]), pixels(seeds[2]))
    assert not np.array_equal(pixels(seeds[0]), pixels(seeds[1]))  # the seed picks the latent


def test_seed_pngs_of_a_conditional_stylegan_are_the_rows_of_its_grid(compose_cfg, tmp_path: Path) -> None:
    ckpt = train_tiny(compose_cfg, tmp_path, "model=stylegan", "data.conditional=true")
    options = ("psi=0.5", "noise=random")
    seeds = draw(tmp_path / "seeds", ckpt, "mode=seeds", "seeds=[4,5]", "classes=[1,7]", *options)
    names = ["seed0004-class1.png", "seed0004-class7.png", "seed0005-class1.png", "seed0005-class7.png"]
    assert [p.name for p in seeds] == names
    assert Image.open(seeds[1]).text["classes"] == "class 7"
    (grid,) = draw(tmp_path / "grid", ckpt, "seeds=[4,5]", "classes=[1,7]", *options)
    assert grid.name == "grid-seeds4-5-classes1-7.png"
    assert Image.open(grid).text["seeds"] == "columns: seeds 4, 5"
    picture = pixels(grid)
    for r, label in enumerate([1, 7]):  # one row per class, one column per seed
        for j, seed in enumerate([4, 5]):
            assert np.array_equal(
                tile(picture, r, j), pixels(tmp_path / "seeds" / f"seed{seed:04d}-class{label}.png")
            )
    assert not np.array_equal(pixels(seeds[0]), pixels(seeds[1]))  # the label reaches the picture
    (one,) = draw(tmp_path / "one", ckpt, "mode=seeds", "seeds=[5]", "class=7", *options)
    (single,) = draw(tmp_path / "single", ckpt, "seed=5", "num=1", "class=7", *options)
    assert one.name == "seed0005-class7.png"
    assert np.array_equal(pixels(one), pixels(seeds[3]))
    assert np.array_equal(pixels(single), pixels(one))
    (default,) = draw(tmp_path / "default", ckpt, "mode=seeds", "seeds=[5]", *options)
    assert default.name == "seed0005-class0.png"  # neither class nor classes: class 0, as walks


def test_upscale_enlarges_every_written_picture(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    ckpt = train_tiny(compose_cfg, tmp_path, "model=stylegan")
    cases = {
        "grid": ("num=4",),
        "seeds": ("mode=seeds", "seeds=[3]"),
        "walk": ("mode=interpolate", "keyframes=2", "steps=3"),
        "mix": ("mode=style_mix", "rows=2", "cols=2"),
    }
    for name, overrides in cases.items():
        plain = draw(tmp_path / name / "x1", ckpt, *overrides)
        big = draw(tmp_path / name / "x3", ckpt, *overrides, "upscale=3")
        assert [p.name for p in big] == [p.name for p in plain]
        for small, large in zip(plain, big, strict=True):
            if large.suffix == ".gif":
                frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(small))]
                upscaled = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(large))]
                assert len(upscaled) == len(frames) == 6
                assert upscaled[0].shape == (3 * SIZE, 3 * SIZE, 3)
                assert all(np.array_equal(u, enlarged(f, 3)) for u, f in zip(upscaled, frames, strict=True))
            else:
                assert Image.open(large).size == tuple(3 * s for s in Image.open(small).size)
                assert np.array_equal(pixels(large), enlarged(pixels(small), 3)), large.name
    # a picture PIL would not open again is refused before anything is written
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2,000 pixels: 32 px x 2 is 4,096
    with pytest.raises(ConfigError, match=r"^upscale=2 would make seed0003.png 64 x 64 px, more than"):
        draw(tmp_path / "huge", ckpt, "mode=seeds", "seeds=[3,4]", "upscale=2")
    assert not list((tmp_path / "huge").iterdir())


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("seeds=[]", r"^seeds=\[\] is invalid: expected a non-empty list of seeds"),
        ("seeds=[1,-2]", r"^seeds=\[1, -2\] is invalid: expected a non-empty list of seeds"),
        ("seeds=[1.5]", r"^seeds=\[1.5\] is invalid"),
        ("seeds=3", r"^seeds=3 is invalid: expected a non-empty list of seeds"),
        ("seeds=[1,a]", r"^seeds=\[1, 'a'\] is invalid"),
        ("seeds=[18446744073709551616]", r"integers from 0 to 2\^64 - 1"),
        ("upscale=0", r"^upscale=0 is invalid: expected a positive integer$"),
        ("upscale=1.5", r"^upscale=1.5 is invalid: expected a positive integer$"),
        ("upscale=true", r"^upscale=True is invalid: expected a positive integer$"),
        ("mode=seeds", r"^mode=seeds needs the seeds to draw: seeds=\[1,2,3\]"),
        ("mode=interpolate seeds=[1]", r"^seeds=\[1\] is for mode=seeds and mode=grid; mode=interpolate"),
    ],
)
def test_bad_seeds_and_upscale_are_refused_before_loading(tmp_path: Path, setting: str, message: str) -> None:
    cfg = compose_tool("generate", tmp_path, f"ckpt={tmp_path / 'missing.ckpt'}", *setting.split())
    with pytest.raises(ConfigError, match=message) as refused:
        validate_generate(cfg)
    assert "\n" not in str(refused.value)


def test_a_bad_upscale_is_one_line_and_exit_2_from_the_command_line(
    tmp_path: Path, monkeypatch, capfd
) -> None:
    """``python generate.py ... upscale=0`` (its Hydra main, in this process: a subprocess costs
    seconds of imports)."""
    from gan_lab.generate import main

    argv = ["generate.py", f"ckpt={tmp_path / 'missing.ckpt'}", "mode=seeds", "seeds=[1,2]", "upscale=0"]
    monkeypatch.setattr(sys, "argv", [*argv, f"hydra.run.dir={tmp_path / 'out'}"])
    GlobalHydra.instance().clear()  # compose_tool (other tests) leaves it initialised
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as exited:
            main()  # the checkpoint is not read: the options are refused first
    finally:  # Hydra's job logging (a console and a file handler) is left to this process otherwise
        for handler in set(root.handlers) - set(handlers):
            handler.close()
        root.handlers[:], root.level = handlers, level
    assert exited.value.code == 2
    captured = capfd.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith("upscale=0 is invalid: expected a positive integer"), lines

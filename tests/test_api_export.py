"""The Python API (``from gan_lab import load_generator``) and the exported files (``scripts/export.py``).

``load_generator`` must give the lab's own images: generate.py's grid pixels for the same seeds
and options, and ``module.G_ema``'s outputs for latents of one's own. Each exported file must load
in a Python process that cannot import the lab and reproduce those images. The checkpoints are
real ones, of 1-iteration tiny runs (``debug=tiny``), made once per session.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.utils import make_grid

import gan_lab
from gan_lab.api import Generator, export_generator, load_generator, read_metadata
from gan_lab.checkpoints import load_model
from gan_lab.config import validate_export
from gan_lab.config.schema import ExportConfig
from gan_lab.errors import CheckpointError, ConfigError
from gan_lab.generate import generate
from gan_lab.training import run

from .conftest import REPO, compose_tool
from .test_checkpoint_safety import craft, in_config, writer

RUNS = {
    "dcgan": ("model=dcgan",),
    "stylegan": ("model=stylegan",),
    "stylegan_cond": ("model=stylegan", "data.conditional=true"),
}
_CACHE: dict[str, Path] = {}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]  # the first five


@pytest.fixture
def ckpt(compose_cfg, tmp_path_factory: pytest.TempPathFactory):
    """ckpt(kind) -> the last.ckpt of a 1-iteration tiny run of that kind (made once per session)."""

    def make(kind: str) -> Path:
        if kind not in _CACHE:
            out = tmp_path_factory.mktemp(kind)
            run(compose_cfg(*RUNS[kind], "trainer.max_steps=1", run_dir=out))
            _CACHE[kind] = out / "checkpoints" / "last.ckpt"
        return _CACHE[kind]

    return make


def grid_pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def as_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    """The pixels generate.py's save_grid writes for ``images`` (make_grid makes them RGB)."""
    return make_grid(Generator.to_uint8(images), nrow=nrow, padding=1).permute(1, 2, 0).numpy()


def test_import_gan_lab_stays_cheap_and_names_the_api() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gan_lab, sys; "
            "print(sorted({'torch', 'lightning', 'pytorch_lightning'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    assert gan_lab.load_generator is load_generator and "load_generator" in dir(gan_lab)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gan_lab.nope  # noqa: B018


def test_stylegan_samples_are_generate_py_grids(ckpt, tmp_path: Path) -> None:
    path = ckpt("stylegan")
    G = load_generator(path)
    assert (G.kind, G.resolution, G.channels, G.z_dim, G.w_dim) == ("stylegan", 32, 1, 32, 32)
    assert (G.num_classes, G.class_names, G.checkpoint, G.iteration) == (0, None, str(path), 1)
    assert not G.training and not G.net.training
    G.train()
    assert not G.net.training  # stays in eval mode: no w_avg updates
    for noise in ("const", "random"):
        out = tmp_path / noise
        cfg = compose_tool("generate", out, f"ckpt={path}", "num=6", "seed=3", "psi=0.7", f"noise={noise}")
        (png,) = generate(cfg)
        images = G.sample(6, seed=3, psi=0.7, noise=noise)
        assert images.shape == (6, 1, 32, 32)
        np.testing.assert_array_equal(as_grid(images, nrow=3), grid_pixels(png))
    assert not torch.equal(G.sample(2, seed=3), G.sample(2, seed=4))


def test_conditional_stylegan_is_generate_py_and_g_ema(ckpt, tmp_path: Path) -> None:
    path = ckpt("stylegan_cond")
    G = load_generator(path)
    assert G.num_classes == 10 and G.class_names[:5] == FASHION_CLASSES
    (png,) = generate(
        compose_tool("generate", tmp_path, f"ckpt={path}", "num=4", "seed=1", "class=3", "psi=0.5")
    )
    np.testing.assert_array_equal(as_grid(G.sample(4, seed=1, c=3, psi=0.5), nrow=2), grid_pixels(png))

    module, _ = load_model(path)
    z, c = torch.randn(5, 32), torch.tensor([0, 2, 4, 6, 9])
    with torch.no_grad():
        lab = module.G_ema(z, c, truncation_psi=0.6, noise_mode="const")
        torch.testing.assert_close(G(z, c, psi=0.6), lab, rtol=0, atol=1e-6)
        torch.testing.assert_close(G(z, c.tolist(), psi=0.6), lab, rtol=0, atol=1e-6)
        # psi = 0: every latent gives its class's average image, w_avg_class[c]
        same_class = G(torch.randn(3, 32), c=7, psi=0)
        torch.testing.assert_close(same_class, same_class[:1].expand(3, -1, -1, -1))
        assert not torch.equal(same_class[0], G(z[:1], c=8, psi=0)[0])


def test_dcgan_is_its_g_ema_and_pictures_convert(ckpt) -> None:
    path = ckpt("dcgan")
    G = load_generator(path)
    assert (G.kind, G.w_dim, G.num_ws, G.z_dim) == ("dcgan", None, None, 100)
    module, _ = load_model(path)
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(G(z), module.G_ema(z), rtol=0, atol=0)
        seeded = module.G_ema(torch.randn(4, 100, generator=torch.Generator().manual_seed(5)))
    torch.testing.assert_close(G.sample(4, seed=5), seeded, rtol=0, atol=0)
    pictures = G.to_pil(G.sample(2))
    assert [(p.mode, p.size) for p in pictures] == [("L", (32, 32))] * 2
    assert np.array_equal(np.asarray(pictures[1]), G.to_uint8(G.sample(2))[1, 0].numpy())


@pytest.mark.parametrize(
    ("kind", "call", "error", "message"),
    [
        ("dcgan", {"c": 3}, ValueError, r"^this generator is unconditional: call it without c \(got c=3\)$"),
        (
            "dcgan",
            {"psi": 0.7},
            ConfigError,
            r"^psi=0.7: truncation and noise are StyleGAN's; .* DCGANGenerator",
        ),
        (
            "dcgan",
            {"z": torch.randn(2, 7)},
            ValueError,
            r"^z must be a float tensor of shape \(N, 100\), got",
        ),
        ("stylegan_cond", {}, ValueError, r"^this generator is conditional \(10 classes\): pass c, a class"),
        (
            "stylegan_cond",
            {"c": 10},
            ValueError,
            r"^class label 10 is out of range: 10 classes, labels 0 to 9$",
        ),
        (
            "stylegan_cond",
            {"c": [1, 2]},
            ValueError,
            r"^c has 2 labels for 3 images: give one label or one per",
        ),
        (
            "stylegan_cond",
            {"c": torch.ones(3)},
            ValueError,
            r"^c must hold integer class labels, got .*float32$",
        ),
        ("stylegan_cond", {"c": 1, "psi": "x"}, ConfigError, r"^psi='x' is invalid: expected a number"),
        (
            "stylegan_cond",
            {"c": 1, "noise": "on"},
            ConfigError,
            r"^noise='on' is invalid: expected one of const",
        ),
        (
            "stylegan_cond",
            {"c": 1, "cutoff": -1},
            ConfigError,
            r"^cutoff=-1 is invalid: expected an integer >= 0",
        ),
    ],
)
def test_bad_calls_are_one_line(ckpt, kind: str, call: dict[str, Any], error: type, message: str) -> None:
    G = load_generator(ckpt(kind))
    args = {"z": torch.randn(3, G.z_dim), **call}
    with pytest.raises(error, match=message) as refused:
        G(**args)
    assert "\n" not in str(refused.value)


def test_a_missing_checkpoint_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"^path=.*nothing.ckpt does not exist$"):
        load_generator(tmp_path / "nothing.ckpt")


def test_a_crafted_checkpoint_builds_nothing(ckpt, tmp_path: Path) -> None:
    """The stored config aims instantiate at a function that writes a file: refused, not run."""
    target = tmp_path / "bashrc"
    crafted = craft(ckpt("dcgan"), tmp_path / "crafted.ckpt", in_config("model", "evil", node=writer(target)))
    with pytest.raises(CheckpointError, match=r"^path=.*crafted.ckpt.*refused to build .*_target_="):
        load_generator(crafted)
    assert not target.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_device_this_machine_lacks_is_one_line(ckpt) -> None:
    with pytest.raises(ValueError, match=r"^device=cuda but no CUDA device is available$"):
        load_generator(ckpt("dcgan"), device="cuda")


# ---------------------------------------------------------------------------- exported files
LOAD_WITHOUT_THE_LAB = textwrap.dedent(
    """
    import json, sys
    sys.modules["gan_lab"] = None  # `import gan_lab` raises: nothing below may need the lab
    import torch
    import torch.export
    from torch import nn

    sys.stdin.readline()  # imported while the test writes the files: go once they are there
    expected = torch.load("expected.pt", weights_only=True)
    for name, case in expected.items():
        fmt, inputs = case["format"], case["inputs"]
        extra = {"gan_lab.json": ""}
        if fmt == "torchscript":
            run = torch.jit.load(case["file"], _extra_files=extra)
        elif fmt == "export":
            run = torch.export.load(case["file"], extra_files=extra).module()
        else:
            stored = torch.load(case["file"], weights_only=True)
            weights, extra["gan_lab.json"] = stored["state_dict"], json.dumps(stored["metadata"])
            assert weights.keys() == case["weights"].keys()
            assert all(torch.equal(weights[k], v) for k, v in case["weights"].items())
        meta = json.loads(extra["gan_lab.json"])
        assert {k: meta[k] for k in case["meta"]} == case["meta"], meta
        if fmt == "state_dict" and meta["network"] == "DCGANGenerator":
            # the DCGAN of the paper in plain torch.nn, from the metadata alone
            cfg, res = meta["config"], meta["resolution"]
            sides = [2**k for k in range(2, int(res).bit_length() - 1)]
            widths = [min(cfg["width"] * (res // 2) // s, cfg["max_width"]) for s in sides]
            layers = [nn.ConvTranspose2d(cfg["z_dim"], widths[0], 4, 1, 0, bias=False)]
            layers += [nn.BatchNorm2d(widths[0]), nn.ReLU()]
            for a, b in zip(widths, widths[1:]):
                layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
            layers += [nn.ConvTranspose2d(widths[-1], meta["channels"], 4, 2, 1, bias=False), nn.Tanh()]
            run = nn.Module()
            run.net = nn.Sequential(*layers)
            run.load_state_dict(weights)
            run = run.eval().net
            inputs = [inputs[0].view(-1, cfg["z_dim"], 1, 1)]
        if fmt == "state_dict" and meta["network"] != "DCGANGenerator":
            print(name, "weights")
            continue
        with torch.no_grad():
            images = run(*inputs)
        worst = (images - case["images"]).abs().max().item()
        assert images.shape == case["images"].shape and worst < 1e-4, (name, worst)
        print(name, "images", f"{worst:.1e}")
    """
)


FORMATS = {"dcgan": ("torchscript", "state_dict"), "stylegan_cond": ("torchscript", "export", "state_dict")}
BAKED = {"dcgan": {}, "stylegan_cond": {"psi": 0.7, "cutoff": 3}}


def write_exports(ckpt, folder: Path) -> dict[str, dict[str, Any]]:
    """Each case's file (export_generator) with its inputs and the lab's images for them."""
    cases = {}
    for kind, formats in FORMATS.items():
        G = load_generator(ckpt(kind))
        z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(9))
        c = torch.tensor([0, 3, 3, 8, 9]) if G.conditional else None
        with torch.no_grad():
            images = G(z, c, **BAKED[kind])  # the lab's images (per-sample kernels, as generate.py)
        weights = {k: v.clone() for k, v in G.net.state_dict().items()}
        for fmt in formats:
            file = folder / f"{kind}-{fmt}{'.pt2' if fmt == 'export' else '.pt'}"
            baked = BAKED[kind] if fmt != "state_dict" else {}
            # loading a .pt2 back costs seconds: the process without the lab loads and checks it
            assert export_generator(G, file, fmt, **baked, check=fmt != "export") == file
            if fmt != "export":
                assert read_metadata(file, fmt)["psi"] == baked.get("psi", 1.0)
            cases[f"{kind}-{fmt}"] = {
                "format": fmt,
                "file": str(file),
                "inputs": [z] if c is None else [z, c],
                "images": images,
                "weights": weights,
                "meta": {"num_classes": G.num_classes, "file_format": fmt, "psi": baked.get("psi", 1.0)},
            }
    return cases


def test_exported_files_run_without_the_lab(ckpt, tmp_path: Path) -> None:
    # a process that cannot import the lab, started first: its imports overlap the exports
    loader = subprocess.Popen(
        [sys.executable, "-c", LOAD_WITHOUT_THE_LAB],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        cases = write_exports(ckpt, tmp_path)
        torch.save(cases, tmp_path / "expected.pt")
        out, err = loader.communicate("go\n", timeout=300)
    finally:
        if loader.poll() is None:  # the test failed before handing over: do not leave it waiting
            loader.kill()
            loader.wait()
    assert loader.returncode == 0, err[-3000:]
    said = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert set(said) == set(cases)
    assert said["stylegan_cond-state_dict"] == "weights"
    assert all(v.startswith("images") for k, v in said.items() if k != "stylegan_cond-state_dict")
    assert not list(tmp_path.glob(".*partial*"))  # written whole, then renamed


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("export_script", REPO / "scripts" / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_script_writes_to_its_run_folder_by_default(ckpt, tmp_path: Path) -> None:
    path = ckpt("dcgan")
    written = load_script().export(compose_tool("export", tmp_path / "run", f"ckpt={path}"))
    assert written == tmp_path / "run" / "last-generator.pt"
    G = load_generator(path)
    z = torch.randn(2, 100)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(written)(z), G(z))


def test_export_yaml_has_its_schema_and_its_defaults_validate(tmp_path: Path) -> None:
    cfg = compose_tool("export", tmp_path, f"ckpt={tmp_path / 'missing.ckpt'}")
    assert set(cfg) <= set(ExportConfig.__dataclass_fields__)
    validate_export(cfg)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("cutoff=-1", r"^cutoff=-1 is invalid: expected an integer >= 0 or null$"),
        ("device=tpu", r"^device='tpu' is invalid: expected auto, cpu, cuda"),
        ("format=onnx", r"^format='onnx' is invalid: expected one of torchscript, export, state_dict$"),
        ("format=state_dict psi=0.5", r"^psi=0.5: format=state_dict writes the weights .* not a sampler"),
        ("noise=random", r"^noise='random' is invalid: expected one of const, none$"),
        ("psi=abc", r"^psi='abc' is invalid: expected a number"),
    ],
)
def test_bad_export_options_are_refused_before_loading(tmp_path: Path, settings: str, message: str) -> None:
    cfg = compose_tool("export", tmp_path, f"ckpt={tmp_path / 'missing.ckpt'}", *settings.split())
    with pytest.raises(ConfigError, match=message):
        validate_export(cfg)


def test_exports_the_checkpoint_cannot_take_are_refused(ckpt, tmp_path: Path) -> None:
    G = load_generator(ckpt("dcgan"))
    with pytest.raises(ConfigError, match=r"^psi=0.7: truncation and noise are StyleGAN's"):
        export_generator(G, tmp_path / "g.pt", "torchscript", psi=0.7)
    with pytest.raises(ConfigError, match=r"^out=.*g.pt: a torch.export file is named \*.pt2"):
        export_generator(G, tmp_path / "g.pt", "export")
    with pytest.raises(ConfigError, match=r"^out=.* is a folder: give the file to write"):
        export_generator(G, tmp_path, "state_dict")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")  # a folder that cannot be made under a file: one line, nothing traced
    with pytest.raises(ConfigError, match=r"^out=.*: cannot create its folder"):
        export_generator(G, blocker / "sub" / "g.pt", "torchscript")
    blocker.unlink()
    assert list(tmp_path.iterdir()) == []


def test_a_bad_export_is_one_line_and_exit_2_from_the_command_line(
    ckpt, tmp_path: Path, monkeypatch, capfd
) -> None:
    """``python scripts/export.py ckpt=DCGAN psi=0.5`` (its Hydra main, in this process: a
    subprocess costs seconds of imports): refused once the checkpoint says it is a DCGAN."""
    argv = ["export.py", f"ckpt={ckpt('dcgan')}", "psi=0.5", f"hydra.run.dir={tmp_path / 'out'}"]
    monkeypatch.setattr(sys, "argv", argv)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with pytest.raises(SystemExit) as exited:
            load_script().main()
    finally:  # Hydra's job logging (a console and a file handler) is left to this process otherwise
        for handler in set(root.handlers) - set(handlers):
            handler.close()
        root.handlers[:], root.level = handlers, level
    assert exited.value.code == 2
    captured = capfd.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line.strip()]
    assert len(lines) == 1 and "psi=0.5: truncation and noise are StyleGAN's" in lines[0], lines
    assert not list((tmp_path / "out").glob("*.pt"))


def test_sample_counts_and_seeds_are_checked(ckpt) -> None:
    G = load_generator(ckpt("dcgan"))
    for bad, message in ((0, r"^n=0 is invalid"), (2.5, r"^n=2.5 is invalid")):
        with pytest.raises(ValueError, match=message):
            G.sample(bad)
    with pytest.raises(ValueError, match=r"^seed=-1 is invalid: expected an integer >= 0$"):
        G.sample(2, seed=-1)
    assert math.isclose(json.loads(json.dumps(G.metadata()))["kimg"], G.kimg)

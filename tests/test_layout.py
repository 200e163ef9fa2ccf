"""The layout the user asked for: ``conf/ gan_lab/ scripts/ tests/`` at the top, the runnable
helpers in ``scripts/`` (what the Makefile runs), and a non-editable install (``pip install .``)
that finds the Hydra configs: the wheel ships the top-level ``conf/`` as ``gan_lab/conf/``, and
``gan_lab.train.CONFIG_DIR`` points there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO

CHECK = """
import sys
from hydra import compose, initialize_config_dir
import gan_lab
from gan_lab.train import CONFIG_DIR
with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
    cfg = compose(config_name="train", overrides=["model=stylegan", "debug=tiny"])
print(gan_lab.__file__)
print(CONFIG_DIR)
print(cfg.model._target_, cfg.model.generator.channel_max)
"""


def test_the_wheel_ships_conf_and_the_installed_package_uses_it(tmp_path: Path) -> None:
    # build from a copy of the sources, so the checkout gets no build/ folder
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "gan_lab", src / "gan_lab", symlinks=True, ignore=ignore)
    shutil.copytree(REPO / "conf", src / "conf", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, src],
        check=True,
        env=env,
        capture_output=True,
    )
    (wheel,) = wheels.glob("gan_lab-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"gan_lab/conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")}
    assert configs <= shipped, sorted(configs - shipped)

    # the installed package (unpacked wheel, no checkout around it) composes from its own conf/
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    package, config_dir, composed = done.stdout.strip().splitlines()[-3:]
    assert Path(package).parent == site / "gan_lab"
    assert Path(config_dir) == site / "gan_lab" / "conf" and not Path(config_dir).is_symlink()
    assert composed == "gan_lab.modules.StyleGAN 16"


def test_the_makefile_runs_the_helpers_in_scripts() -> None:
    makefile = (REPO / "Makefile").read_text()
    run = dict(re.findall(r"^([a-z-]+):.*\n(?:#.*\n|\t.*\n)*?\t\$\(PY\) (scripts/\S+\.py)", makefile, re.M))
    assert run == {
        "data": "scripts/get_data.py",
        "domain-classifier": "scripts/domain_classifier.py",
        "bench": "scripts/benchmarks/train_step.py",
        "bench-data": "scripts/benchmarks/data_throughput.py",
        "bench-metrics": "scripts/benchmarks/metrics_eval.py",
    }
    assert all((REPO / path).is_file() for path in run.values())
    assert not (REPO / "benchmarks").exists() and not (REPO / "sweeps").exists()
    assert (REPO / "scripts" / "sweeps" / "wandb_fid.yaml").is_file()


def test_get_data_script_says_where_the_data_is(fashion_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "get_data.py"), "--root", str(fashion_root)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Fashion-MNIST train: " in done.stdout and "Fashion-MNIST test: " in done.stdout


def test_domain_classifier_script_lists_its_options() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "domain_classifier.py"), "--help"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "domain classifier" in done.stdout and "--data {" in done.stdout and "fashion_mnist" in done.stdout

"""The conventions a user of a Lightning project expects around the code: ``make help`` lists every
target with what it does (a new target without its ``## description`` fails here), pre-commit runs
ruff's check and format hooks, pytest refuses unregistered markers, and the licence, citation
file and changelog agree with the package's metadata."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import gan_lab

from .conftest import REPO

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

MAKEFILE = REPO / "Makefile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def makefile_targets() -> set[str]:
    """The targets the Makefile declares: every rule with a plain name (not ``$(STAMP)``-style file
    rules, not ``.PHONY``-style special targets, not ``VAR := value``), and every ``.PHONY`` name."""
    text = MAKEFILE.read_text()
    rules = set(re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", text, re.M))
    phony = {name for line in re.findall(r"^\.PHONY\s*:(.*)$", text, re.M) for name in line.split()}
    return rules | phony


def make(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True)


def test_make_help_names_every_target_with_what_it_does() -> None:
    done = make("help")
    assert done.returncode == 0, done.stderr
    described = dict(re.findall(r"^  (\S+) +(\S.*)$", done.stdout, re.M))
    targets = makefile_targets()
    assert {"help", "install", "train", "test", "lint"} <= targets
    undocumented = sorted(targets - set(described))
    assert not undocumented, f"add a '## description' to the rule line of: {', '.join(undocumented)}"
    assert set(described) <= targets  # help lists real targets only
    text = MAKEFILE.read_text()
    phony = {name for line in re.findall(r"^\.PHONY\s*:(.*)$", text, re.M) for name in line.split()}
    assert phony == targets, "every named target is .PHONY and every .PHONY name has a rule"


def test_make_alone_shows_the_help_and_installs_nothing() -> None:
    """Bare ``make`` (dry run: nothing is executed) runs the help recipe, not the install."""
    done = make("-n")
    assert done.returncode == 0, done.stderr
    assert "grep -hE" in done.stdout and "pip install" not in done.stdout


def test_pre_commit_runs_ruff_check_and_format() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    (ruff,) = [r for r in config["repos"] if r["repo"] == "https://github.com/astral-sh/ruff-pre-commit"]
    hooks = [hook["id"] for hook in ruff["hooks"]]
    assert hooks == ["ruff-check", "ruff-format"]  # fixes first, then formatting (ruff's advice)
    # a release tag (not a branch), one that the dev extra's ruff requirement allows
    assert re.fullmatch(r"v\d+\.\d+\.\d+", ruff["rev"]), ruff["rev"]
    (requirement,) = [r for r in PYPROJECT["project"]["optional-dependencies"]["dev"] if r.startswith("ruff")]
    assert Version(ruff["rev"][1:]) in SpecifierSet(requirement.removeprefix("ruff"))


def test_pytest_refuses_unregistered_markers() -> None:
    options = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split()
    assert "--durations=15" in options["addopts"].split()
    registered = {marker.split(":")[0] for marker in options["markers"]}
    used = set()
    for path in (REPO / "tests").glob("*.py"):
        used |= set(re.findall(r"pytest\.mark\.([a-z_]+)", path.read_text()))
    builtin = {"parametrize", "skipif", "skip", "xfail", "usefixtures", "filterwarnings"}
    assert used - builtin <= registered


def test_licence_citation_and_changelog_agree_with_the_package() -> None:
    version = gan_lab.__version__
    assert PYPROJECT["project"]["version"] == version
    assert PYPROJECT["project"]["license"] == {"text": "MIT"}
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License\n") and "gan_lab contributors" in licence
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["title"] == "gan_lab"
    assert str(citation["version"]) == version and citation["license"] == "MIT"
    assert citation["authors"] == [{"name": "gan_lab contributors"}]
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and version in changelog
    assert "keepachangelog.com" in changelog

"""A checkpoint is data: rebuilding a run from a crafted one builds nothing the lab did not list.

Each crafted checkpoint below is a real lab checkpoint whose stored config or overrides aim
``hydra.utils.instantiate`` at a function that writes a file (``pathlib.Path.write_text``,
``shutil.copyfile``, ...). Loading it through ``train.py ckpt_path=``, ``generate.py ckpt=`` or
``evaluate.py ckpt=`` must refuse it in one line, exit 2, and leave the target file unwritten.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from gan_lab.allowlist import ALLOWED_TARGETS, conf_targets
from gan_lab.checkpoints import load_model
from gan_lab.errors import CheckpointError, ConfigError
from gan_lab.train import CONFIG_DIR
from gan_lab.training import run

from .conftest import REPO

_CACHE: dict[str, Path] = {}


@pytest.fixture
def lab_ckpt(compose_cfg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genuine checkpoint of a 2-iteration DCGAN run (made once per test session)."""
    if "ckpt" not in _CACHE:
        out = tmp_path_factory.mktemp("genuine")
        run(compose_cfg("trainer.max_steps=2", run_dir=out))
        _CACHE["ckpt"] = out / "checkpoints" / "last.ckpt"
    return _CACHE["ckpt"]


def writer(target: Path, text: str = "pwned") -> dict[str, Any]:
    """A config node that, if instantiated, writes ``text`` to ``target``."""
    return {
        "_target_": "pathlib.Path.write_text",
        "_args_": [{"_target_": "pathlib.Path", "_args_": [str(target)]}, text],
    }


def craft(genuine: Path, out: Path, edit: Any) -> Path:
    checkpoint = torch.load(genuine, map_location="cpu", weights_only=True)
    edit(checkpoint["gan_lab"])
    torch.save(checkpoint, out)
    return out


def in_config(*keys: str, node: Any) -> Any:
    def edit(meta: dict) -> None:
        parent = meta["config"]
        for key in keys[:-1]:
            parent = parent.setdefault(key, {})
        parent[keys[-1]] = copy.deepcopy(node)

    return edit


# (name, how the stored config or overrides are altered given the file to aim at)
ATTACKS = {
    "model": lambda f: in_config("model", "evil", node=writer(f)),
    "data_nested": lambda f: in_config("data", "extra", "deeper", node=writer(f)),
    "augment_in_a_list": lambda f: in_config(
        "augment", node={"_target_": "gan_lab.augment.DiffAugment", "policy": [writer(f)]}
    ),
    "loss_replaced": lambda f: in_config(
        "loss", node={"_target_": "shutil.copyfile", "src": str(REPO / "README.md"), "dst": str(f)}
    ),
    "callbacks": lambda f: in_config("callbacks", "evil", node=writer(f)),
    "metrics": lambda f: in_config("metrics", node=writer(f)),
}

OVERRIDE_ATTACKS = {
    "plus_override": lambda f: [
        f"+data.evil={{_target_:pathlib.Path.write_text,_args_:[{{_target_:pathlib.Path,_args_:['{f}']}},pwned]}}"
    ],
    "callback_override": lambda f: [
        f"+callbacks.evil={{_target_:pathlib.Path.write_text,_args_:[{{_target_:pathlib.Path,_args_:['{f}']}},x]}}"
    ],
}


def with_overrides(overrides: list[str]) -> Any:
    def edit(meta: dict) -> None:
        meta["overrides"] = [*meta["overrides"], *overrides]

    return edit


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_crafted_stored_config_is_refused_by_generate_and_evaluate(
    attack: str, lab_ckpt: Path, tmp_path: Path
) -> None:
    target = tmp_path / "bashrc"
    crafted = craft(lab_ckpt, tmp_path / "crafted.ckpt", ATTACKS[attack](target))
    with pytest.raises(CheckpointError, match=r"ckpt=.*refused to build .*_target_="):
        load_model(crafted)
    assert not target.exists()


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_crafted_stored_config_is_refused_on_resume(
    attack: str, lab_ckpt: Path, tmp_path: Path, compose_cfg
) -> None:
    target = tmp_path / "bashrc"
    crafted = craft(lab_ckpt, tmp_path / "crafted.ckpt", ATTACKS[attack](target))
    with pytest.raises(CheckpointError, match="refused to build"):
        run(compose_cfg(f"ckpt_path={crafted}", "trainer.max_steps=4", run_dir=tmp_path / "run"))
    assert not target.exists()


@pytest.mark.parametrize("attack", sorted(OVERRIDE_ATTACKS))
def test_crafted_stored_overrides_are_refused_on_resume(
    attack: str, lab_ckpt: Path, tmp_path: Path, compose_cfg
) -> None:
    target = tmp_path / "bashrc"
    crafted = craft(lab_ckpt, tmp_path / "crafted.ckpt", with_overrides(OVERRIDE_ATTACKS[attack](target)))
    with pytest.raises(CheckpointError, match=r"refused to build (data|callbacks)\.evil"):
        run(compose_cfg(f"ckpt_path={crafted}", "trainer.max_steps=4", run_dir=tmp_path / "run", bare=True))
    assert not target.exists()


def test_stored_resolvers_and_interpolations_are_refused(lab_ckpt: Path, tmp_path: Path, compose_cfg) -> None:
    made = tmp_path / "made_by_a_resolver"
    crafted = craft(lab_ckpt, tmp_path / "a.ckpt", with_overrides([f"+x=${{ensure_dir:{made}}}"]))
    with pytest.raises(CheckpointError, match="resolver call is not re-run"):
        run(compose_cfg(f"ckpt_path={crafted}", "trainer.max_steps=4", run_dir=tmp_path / "r", bare=True))
    assert not made.exists()
    # an interpolation in the stored (resolved) config would be evaluated when it is read
    crafted = craft(lab_ckpt, tmp_path / "b.ckpt", in_config("run_name", node="${oc.env:HOME}"))
    with pytest.raises(CheckpointError, match="interpolation at run_name"):
        load_model(crafted)


def test_stored_output_locations_are_not_reapplied(lab_ckpt: Path, tmp_path: Path, compose_cfg) -> None:
    elsewhere = tmp_path / "someone_elses_run"
    crafted = craft(
        lab_ckpt, tmp_path / "c.ckpt", with_overrides([f"callbacks.checkpoint.dirpath={elsewhere}"])
    )
    out = tmp_path / "resumed"
    run(compose_cfg(f"ckpt_path={crafted}", "trainer.max_steps=3", run_dir=out, bare=True))
    assert (out / "checkpoints" / "last.ckpt").is_file() and not elsewhere.exists()


def test_a_genuine_checkpoint_still_loads(lab_ckpt: Path) -> None:
    module, info = load_model(lab_ckpt)
    assert info["iteration"] == 2 and type(module).__name__ == "GANModule"


def test_the_allowlist_covers_every_target_the_lab_configs_name() -> None:
    assert conf_targets(CONFIG_DIR) <= ALLOWED_TARGETS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a checkpoint: an empty file"),
        (b"just some text\n", "is not a checkpoint: not a PyTorch checkpoint"),
        (bytes(range(256)) * 8, "is not a checkpoint: not a PyTorch checkpoint"),
    ],
)
def test_files_that_are_not_checkpoints_say_so(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"ckpt={path} {message}"):
        load_model(path)


def test_resuming_a_finished_run_says_how_to_extend_it(lab_ckpt: Path, tmp_path: Path, compose_cfg) -> None:
    with pytest.raises(ConfigError, match=r"already reaches trainer.max_steps=2.*trainer.max_steps=N"):
        run(compose_cfg(f"ckpt_path={lab_ckpt}", run_dir=tmp_path / "again", bare=True))


# ---------------------------------------------------------------- the three entry points, as typed
ENTRY_POINTS = {
    "train.py": lambda ckpt, out: ["train.py", f"ckpt_path={ckpt}", f"hydra.run.dir={out}"],
    "generate.py": lambda ckpt, out: ["generate.py", f"ckpt={ckpt}", f"hydra.run.dir={out}"],
    "evaluate.py": lambda ckpt, out: ["evaluate.py", f"ckpt={ckpt}", f"hydra.run.dir={out}"],
}


@pytest.mark.slow
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_refuse_a_crafted_checkpoint_in_one_line(
    entry: str, lab_ckpt: Path, tmp_path: Path
) -> None:
    target = tmp_path / "bashrc"
    crafted = craft(lab_ckpt, tmp_path / "crafted.ckpt", ATTACKS["model"](target))
    script, *args = ENTRY_POINTS[entry](crafted, tmp_path / "out")
    done = subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert "refused to build model.evil._target_='pathlib.Path.write_text'" in output
    assert "Traceback" not in output
    assert not target.exists()

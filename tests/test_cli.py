"""`python train.py ...` as a user runs it: run folder, one-line errors, a killed run, W&B offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from .conftest import REPO, small_overrides

pytestmark = pytest.mark.slow


def train_cmd(*overrides: str) -> list[str]:
    flags = [o for o in overrides if o.startswith("-")]  # -m: Hydra wants flags before overrides
    rest = [o for o in overrides if not o.startswith("-")]
    return [sys.executable, str(REPO / "train.py"), *flags, *small_overrides(rest), *rest]


def env_for(
    data_root: Path, wandb_mode: str = "disabled", extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {**os.environ, "GAN_LAB_DATA": str(data_root), "WANDB_MODE": wandb_mode, "PYTHONUNBUFFERED": "1"}
    return {**env, **(extra or {})}


def run_train(
    cwd: Path,
    data_root: Path,
    *overrides: str,
    wandb_mode: str = "disabled",
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_cmd(*overrides),
        cwd=cwd,
        env=env_for(data_root, wandb_mode, extra_env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def start_train(cwd: Path, data_root: Path, *overrides: str, capture: bool = False) -> subprocess.Popen:
    """A training run in the background (a long budget: the test stops it)."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        train_cmd("trainer.max_steps=100000", *overrides),
        cwd=cwd,
        env=env_for(data_root),
        stdout=out,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        text=True,
    )


def wait_until(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if done():
            return True
        time.sleep(0.2)
    return False


def test_run_folder_layout(tmp_path: Path, fashion_root: Path) -> None:
    done = run_train(
        tmp_path,
        fashion_root,
        "trainer.max_steps=6",
        "callbacks.checkpoint.every_n_train_steps=3",
        "callbacks.samples.every_n_iters=3",
        "trainer.log_every_n_steps=3",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith("_dcgan_fashion_mnist")
    run = runs[0]
    for rel in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "train.log",
        "checkpoints/last.ckpt",
        "checkpoints/iter_0000003.ckpt",
        "samples/iter_0000000.png",
        "samples/iter_0000006.png",
        "csv/metrics.csv",
    ):
        assert (run / rel).is_file(), rel
    log = (run / "train.log").read_text()
    assert "finished at iteration 6" in log
    # a single run is not a sweep job: the sweep summary leaves it alone (no warning, no file)
    assert "SweepSummary" not in done.stderr
    assert not (run / "job_result.json").exists()


def test_bad_value_is_one_line_before_training(tmp_path: Path, fashion_root: Path) -> None:
    done = run_train(tmp_path, fashion_root, "data.resolution=48")
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "data.resolution=48 is invalid: expected a power of two >= 32" in output
    assert "Traceback" not in output
    assert not list(tmp_path.glob("outputs/runs/*/checkpoints"))


def test_unknown_option_keeps_hydras_message(tmp_path: Path, fashion_root: Path) -> None:
    done = run_train(tmp_path, fashion_root, "model=nosuchgan")
    assert done.returncode != 0
    assert "Could not find 'model/nosuchgan'" in done.stderr


def test_missing_dataset_is_one_line_with_both_ways(tmp_path: Path) -> None:
    done = run_train(tmp_path, tmp_path / "empty", "trainer.max_steps=1")
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "Fashion-MNIST not found" in output and "apt-get install dataset-fashion-mnist" in output
    assert "make data" in output and "Traceback" not in output


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, fashion_root: Path) -> None:
    run_dir = tmp_path / "killed"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = start_train(
        tmp_path,
        fashion_root,
        "callbacks.checkpoint.every_n_train_steps=4",
        "callbacks.samples.every_n_iters=1000",
        f"hydra.run.dir={run_dir}",
    )
    try:
        if not wait_until(lambda: last.is_file() and len(list(last.parent.glob("iter_*.ckpt"))) >= 3, 240):
            pytest.fail("the run wrote no checkpoints")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]  # complete, loadable
    assert step >= 8 and step % 4 == 0
    resumed = run_train(
        tmp_path,
        fashion_root,
        f"ckpt_path={last}",
        f"trainer.max_steps={step + 3}",
        f"hydra.run.dir={tmp_path / 'resumed'}",
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = torch.load(
        tmp_path / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert final["global_step"] == step + 3
    assert final["images_seen"] == (step + 3) * 16
    # the resumed run's folder records the config it actually ran (the killed run's, extended)
    overrides = (tmp_path / "resumed" / ".hydra" / "overrides.yaml").read_text()
    assert "debug=tiny" in overrides and f"trainer.max_steps={step + 3}" in overrides


def test_wandb_offline_writes_its_run_files(tmp_path: Path, fashion_root: Path) -> None:
    run_dir = tmp_path / "wb"
    done = run_train(
        tmp_path,
        fashion_root,
        "logger=wandb",
        "trainer.max_steps=3",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={run_dir}",
        wandb_mode="offline",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb")), "no W&B run file"
    # the checkpoint remembers the W&B run, so a resume continues it
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["gan_lab"]["wandb_id"] and ckpt["gan_lab"]["wandb_id"] in runs[0].name


def test_stylegan_run_writes_its_folder_and_resumes(tmp_path: Path, fashion_root: Path) -> None:
    first, resumed = tmp_path / "sg", tmp_path / "sg_resumed"
    done = run_train(
        tmp_path,
        fashion_root,
        "model=stylegan",
        "data.resolution=32",
        "trainer.max_steps=5",
        "callbacks.samples.every_n_iters=5",
        f"hydra.run.dir={first}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for rel in (".hydra/config.yaml", "train.log", "checkpoints/last.ckpt", "samples/iter_0000005.png"):
        assert (first / rel).is_file(), rel
    again = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}",
            "trainer.max_steps=7",
            f"hydra.run.dir={resumed}",
        ],
        cwd=tmp_path,
        env=env_for(fashion_root),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    final = torch.load(resumed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == 7 and final["gan_lab"]["module"] == "StyleGAN"


def test_each_tool_names_its_hydra_job_after_itself() -> None:
    """The tools share one Hydra main (gan_lab.utils.cli.tool_main); each job is still named after
    its tool (its log file: generate.log, ...), not after the shared module."""
    from hydra._internal.utils import detect_calling_file_or_module_from_task_function, detect_task_name

    import gan_lab.evaluate
    import gan_lab.generate
    import gan_lab.project

    for name, main in (
        ("generate", gan_lab.generate.main),
        ("evaluate", gan_lab.evaluate.main),
        ("project", gan_lab.project._main),
    ):
        assert detect_task_name(*detect_calling_file_or_module_from_task_function(main)) == name


def test_a_tool_run_as_a_script_names_its_job_after_its_file(tmp_path: Path) -> None:
    """``python scripts/export.py``: the task lives in ``__main__``, so Hydra names the job after
    the task's file (export.log), not after gan_lab/utils/cli.py."""
    import logging

    from hydra._internal.utils import detect_calling_file_or_module_from_task_function, detect_task_name

    from gan_lab.utils.cli import tool_main

    namespace: dict = {"__name__": "__main__"}
    exec(compile("def export(cfg):\n    return cfg\n", str(tmp_path / "export.py"), "exec"), namespace)
    main = tool_main("export", namespace["export"], logging.getLogger("test"))
    assert detect_task_name(*detect_calling_file_or_module_from_task_function(main)) == "export"

"""Stopping a run from outside: SIGTERM and SIGINT save the current iteration and exit 128 + signal;
the requeue signal saves before the cluster's handler runs; a requeued job resumes its folder."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest
import torch

import gan_lab.training
from gan_lab.training import run

from .signal_at import SendSignalAt
from .test_cli import start_train, wait_until
from .test_training import assert_same_training_state, state

COMMON = ("callbacks.checkpoint.every_n_train_steps=4", "model.ema_kimg=0.1")


def signal_at(monkeypatch: pytest.MonkeyPatch, iteration: int, signum: int) -> None:
    """The next run signals itself at ``iteration`` (a callback added beside the configured ones)."""
    configured = gan_lab.training.build_callbacks
    monkeypatch.setattr(
        gan_lab.training, "build_callbacks", lambda cfg: [*configured(cfg), SendSignalAt(iteration, signum)]
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_the_current_iteration_and_resume_is_exact(
    signum: int, compose_cfg, tmp_path: Path, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight, stopped, resumed = tmp_path / "straight", tmp_path / "stopped", tmp_path / "resumed"
    run(compose_cfg("trainer.max_steps=10", *COMMON, run_dir=straight))
    # 5 is not a checkpoint interval (4): the stop itself must write last.ckpt
    with monkeypatch.context() as patch, caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
        signal_at(patch, 5, signum)
        run(compose_cfg("trainer.max_steps=10", *COMMON, run_dir=stopped))
    assert exited.value.code == 128 + signum
    last = stopped / "checkpoints" / "last.ckpt"
    assert state(last)["global_step"] == 5
    name = signal.Signals(signum).name
    assert any(
        f"stopped by {name} at iteration 5" in r.getMessage() and f"ckpt_path={last}" in r.getMessage()
        for r in caplog.records
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    run(compose_cfg("trainer.max_steps=10", f"ckpt_path={last}", run_dir=resumed))
    assert_same_training_state(
        state(straight / "checkpoints" / "last.ckpt"), state(resumed / "checkpoints" / "last.ckpt")
    )


def test_requeue_signal_saves_before_the_clusters_handler_runs(
    compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    seen: list[int] = []

    def cluster_requeue(signum: int, frame: object) -> None:  # submitit's or Lightning's handler
        seen.append(state(out / "checkpoints" / "last.ckpt")["global_step"])

    signal_at(monkeypatch, 3, signal.SIGUSR1)
    previous = signal.signal(signal.SIGUSR1, cluster_requeue)
    try:
        run(compose_cfg("trainer.max_steps=6", *COMMON, run_dir=out))
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [3]  # called once, after last.ckpt was written at the iteration it arrived
    assert state(out / "checkpoints" / "last.ckpt")["global_step"] == 6  # and training went on


def test_requeued_slurm_job_resumes_from_its_folder(
    compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "job"
    run(compose_cfg("trainer.max_steps=3", *COMMON, run_dir=out))
    stale = out / "checkpoints" / ".last.ckpt.tmp-999999999"  # a write killed by the preemption
    stale.write_bytes(b"partial")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    run(compose_cfg("trainer.max_steps=6", *COMMON, run_dir=out))
    final = state(out / "checkpoints" / "last.ckpt")
    assert final["global_step"] == 6 and final["images_seen"] == 6 * 16  # continued, not restarted
    assert not stale.exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_kill_from_outside_saves_and_exits_non_zero(signum: int, tmp_path: Path, fashion_root: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start_train(
        tmp_path,
        fashion_root,
        "callbacks.checkpoint.every_n_train_steps=1000",
        "callbacks.iteration_log.every_n_iters=2",
        f"hydra.run.dir={run_dir}",
        capture=True,
    )
    log = run_dir / "train.log"
    try:
        wait_until(lambda: log.is_file() and "iter 4/" in log.read_text(), 120)
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, output[-3000:]
    step = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "global_step"
    ]
    assert step >= 4
    name = signal.Signals(signum).name
    assert f"stopped by {name} at iteration {step}" in log.read_text()
    assert "Traceback" not in output

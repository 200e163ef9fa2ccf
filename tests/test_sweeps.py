"""Sweeps and scale-out: multirun, Optuna, submitit, data-parallel training, divergence."""

from __future__ import annotations

import csv
import json
import logging
import math
import sqlite3
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from gan_lab.config import validate
from gan_lab.losses import NonSaturatingLoss
from gan_lab.training import run
from gan_lab.utils.sweep import DIVERGED_FILE, ERROR_FILE, SweepSummary

from .conftest import REPO, TINY_METRICS
from .test_cli import run_train

pytestmark = pytest.mark.slow


def summary(root: Path) -> list[dict[str, str]]:
    (sweep,) = root.glob("outputs/multiruns/*")
    with open(sweep / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_multirun_runs_each_job_and_summarises_them(tmp_path: Path, fashion_root: Path) -> None:
    env = {"GAN_LAB_CACHE": str(tmp_path / "cache")}
    done = run_train(
        tmp_path,
        fashion_root,
        "-m",
        "seed=1,2",
        "data.resolution=32,48",
        "trainer.max_steps=2",
        "metrics=default",
        *TINY_METRICS,
        extra_env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = summary(tmp_path)
    assert len(rows) == 4
    by_status = {r["status"] for r in rows}
    assert by_status == {"completed", "refused"}
    refused = [r for r in rows if r["status"] == "refused"]
    assert all("data.resolution=48" in r["overrides"] and "power of two" in r["error"] for r in refused)
    assert all(math.isinf(float(r["objective"])) for r in refused)
    completed = [r for r in rows if r["status"] == "completed"]
    assert all(0 < float(r["objective"]) < math.inf for r in completed)
    for r in completed:  # each job has its own run folder
        assert (Path(r["folder"]) / "checkpoints" / "best.ckpt").is_file()


def test_optuna_search_minimises_the_returned_metric(tmp_path: Path, fashion_root: Path) -> None:
    env = {"GAN_LAB_CACHE": str(tmp_path / "cache")}
    done = run_train(
        tmp_path,
        fashion_root,
        "-m",
        "hparams_search=optuna_fid",
        "hydra.sweeper.n_trials=2",
        "trainer.max_steps=2",
        "metrics=default",
        *TINY_METRICS,
        extra_env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = tmp_path.glob("outputs/multiruns/*")
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    values = [float(r["objective"]) for r in summary(tmp_path)]
    assert len(values) == 2 and best["best_value"] == pytest.approx(min(values))
    with sqlite3.connect(sweep / "optuna.db") as db:  # the study is stored, so it can be resumed
        assert db.execute("select count(*) from trials").fetchone()[0] == 2


def test_submitit_local_launcher_runs_a_job(tmp_path: Path, fashion_root: Path) -> None:
    done = run_train(tmp_path, fashion_root, "-m", "hydra/launcher=submitit_local", "trainer.max_steps=2")
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = summary(tmp_path)
    assert row["status"] == "completed"
    assert (Path(row["folder"]) / "checkpoints" / "last.ckpt").is_file()


def test_two_process_data_parallel_run(tmp_path: Path, fashion_root: Path) -> None:
    run_dir = tmp_path / "ddp"
    done = run_train(
        tmp_path,
        fashion_root,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_steps=6",
        "callbacks.samples.every_n_iters=3",
        "metrics=default",
        "metrics.every_n_iters=3",
        *TINY_METRICS[1:],
        f"hydra.run.dir={run_dir}",
        extra_env={"GAN_LAB_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert "replicas agree: G, D, G_ema identical on 2 processes at iteration 6" in log
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 6 and last["images_seen"] == 6 * 16 * 2  # kimg counts both ranks
    # samples, scores and checkpoints come from rank 0 only: no duplicates
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "iter_0000000.png",
        "iter_0000003.png",
        "iter_0000006.png",
    ]
    scores = (run_dir / "metrics" / "scores.jsonl").read_text().splitlines()
    assert len(scores) == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert log.count("finished at iteration 6") == 1


def test_a_diverging_run_stops_cleanly_with_a_bad_objective(compose_cfg, tmp_path: Path, caplog) -> None:
    out = tmp_path / "run"
    real = NonSaturatingLoss.discriminator
    calls = {"n": 0}

    def poisoned(self, real_logits, fake_logits):
        calls["n"] += 1
        loss = real(self, real_logits, fake_logits)
        return loss * float("nan") if calls["n"] >= 3 else loss

    every_2 = ("callbacks.divergence.check_every_n_iters=2", "callbacks.checkpoint.every_n_train_steps=2")
    with mock.patch.object(NonSaturatingLoss, "discriminator", poisoned), caplog.at_level(logging.ERROR):
        result = run(compose_cfg("trainer.max_steps=50", *every_2, run_dir=out))
    assert result["best"] == math.inf
    assert any("training diverged (loss/d=nan at iteration 4)" in r.getMessage() for r in caplog.records)
    assert (out / DIVERGED_FILE).read_text().strip() == "training diverged (loss/d=nan at iteration 4)"
    # last.ckpt keeps the last finite state (iteration 2); the NaN state of iteration 4 has its own file
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    diverged = torch.load(out / "checkpoints" / "diverged.ckpt", weights_only=True)
    assert diverged["global_step"] == 4 and not torch.isfinite(diverged["state_dict"]["G.net.0.weight"]).all()
    assert not (out / "checkpoints" / "iter_0000004.ckpt").exists()
    # and a resume from it trains on
    resumed = tmp_path / "resumed"
    run(compose_cfg(f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=6", run_dir=resumed))
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in final["state_dict"].values() if v.is_floating_point())


def test_sweep_summary_names_diverged_and_refused_jobs(tmp_path: Path) -> None:
    outcomes = {
        0: ("completed", 12.5, None),
        1: ("diverged", math.inf, DIVERGED_FILE),
        2: ("refused", math.inf, ERROR_FILE),
    }
    callback = SweepSummary()
    for num, (_, objective, reason_file) in outcomes.items():
        folder = tmp_path / str(num)
        folder.mkdir()
        if reason_file:
            (folder / reason_file).write_text(f"reason of job {num}\n")
        hydra_cfg = OmegaConf.create(
            {"hydra": {"mode": RunMode.MULTIRUN, "runtime": {"output_dir": str(folder)}, "job": {"num": num}}}
        )
        job = JobReturn(overrides=[f"seed={num}"], hydra_cfg=hydra_cfg, working_dir=str(folder))
        job.status, job._return_value = JobStatus.COMPLETED, objective
        callback.on_job_end(OmegaConf.create(), job)
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    with open(tmp_path / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["job"], r["status"]) for r in rows] == [
        ("0", "completed"),
        ("1", "diverged"),
        ("2", "refused"),
    ]
    assert rows[0]["error"] == "" and float(rows[0]["objective"]) == 12.5
    assert rows[1]["error"] == "reason of job 1" and math.isinf(float(rows[1]["objective"]))


def test_sweep_summary_orders_jobs_by_outcome_and_shows_reasons_in_markdown(tmp_path: Path) -> None:
    """Completed jobs by objective, then completed without one (metrics=none), then diverged,
    refused and failed jobs; summary.md shows every reason, on one table row."""
    jobs = [  # (job, status, objective, error), as each job's job_result.json records it
        (0, "refused", math.inf, "data.root=/nowhere does not exist"),
        (1, "completed", 3.0, None),
        (2, "completed", None, None),
        (3, "failed", None, "RuntimeError: out of memory\nat line 2 | of the trace"),
        (4, "diverged", math.inf, "training diverged (loss/d=nan at iteration 4)"),
        (5, "completed", 1.5, None),
        (6, "completed", None, None),
    ]
    for num, status, objective, error in jobs:
        folder = tmp_path / str(num)
        folder.mkdir()
        entry = {
            "job": num,
            "overrides": [f"seed={num}"],
            "status": status,
            "objective": objective,
            "error": error,
            "folder": str(folder),
        }
        (folder / "job_result.json").write_text(json.dumps(entry))
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    expected = ["5", "1", "2", "6", "4", "0", "3"]
    with open(tmp_path / "summary.csv") as f:
        assert [r["job"] for r in csv.DictReader(f)] == expected
    table = (tmp_path / "summary.md").read_text().splitlines()
    assert table[0] == "| job | status | objective | overrides | reason |"
    rows = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    assert list(rows) == expected and len(table) == 2 + len(jobs)
    assert rows["5"] == "| 5 | completed | 1.5000 | seed=5 |  |"
    assert rows["2"] == "| 2 | completed |  | seed=2 |  |"
    assert rows["4"] == "| 4 | diverged | inf | seed=4 | training diverged (loss/d=nan at iteration 4) |"
    assert rows["0"].endswith("| refused | inf | seed=0 | data.root=/nowhere does not exist |")
    # a multi-line error stays on its row, and its "|" does not open a new column
    assert rows["3"] == r"| 3 | failed |  | seed=3 | RuntimeError: out of memory at line 2 \| of the trace |"


def test_wandb_sweep_parameters_are_valid_overrides(compose_cfg) -> None:
    spec = yaml.safe_load((REPO / "scripts" / "sweeps" / "wandb_fid.yaml").read_text())
    assert "${args_no_hyphens}" in spec["command"] and spec["program"] == "train.py"
    for key, param in spec["parameters"].items():
        samples = param.get("values") or [param.get("value")]
        if "min" in param:
            samples = [param["min"], param["max"]]
        for value in samples:
            validate(compose_cfg(f"{key}={value}"))

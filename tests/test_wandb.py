"""W&B as a user reads it: offline runs read back from the run folder's ``run-<id>.wandb`` file.

One run per job of a multirun (own id, name with the job's overrides, the sweep as group), the
FID summary as the minimum, kimg in every score row, parameter counts in the config, checkpoints
as artifacts with their score, every run finished whatever the job's end, and offline resumes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from lightning.pytorch.loggers import WandbLogger

from gan_lab.callbacks.quality import QualityCallback
from gan_lab.errors import ConfigError
from gan_lab.loggers.wandb import LabWandbLogger, finish_runs, job_overrides

from .conftest import TINY_METRICS, ComposeFn
from .test_cli import run_train

_BLOCK, _HEADER = 32768, 7  # W&B's record log: 32 KiB blocks, 7-byte header per chunk


def wandb_records(path: Path) -> list[Any]:
    """The records of a ``run-<id>.wandb`` file (W&B's LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending, records = _HEADER, b"", []
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        pending += data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def read_run(folder: Path) -> dict[str, Any]:
    """What W&B would show of the offline run in ``folder`` (``offline-run-*``)."""
    (file,) = folder.glob("run-*.wandb")
    run: dict[str, Any] = {"config": {}, "summary": {}, "history": [], "artifacts": [], "metrics": {}}
    for record in wandb_records(file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, name=r.display_name, group=r.run_group, tags=list(r.tags))
            run["config"].update({u.key: json.loads(u.value_json) for u in r.config.update})
        elif kind == "config":
            run["config"].update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            run["history"].append(
                {"/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            for u in record.summary.update:
                run["summary"]["/".join(u.nested_key) or u.key] = json.loads(u.value_json)
        elif kind == "metric" and record.metric.name:
            m = record.metric
            run["metrics"][m.name] = {"step_metric": m.step_metric, "min": m.summary.min}
        elif kind == "artifact":
            a = record.artifact
            files = [c.path for c in a.manifest.contents]
            run["artifacts"].append(
                {
                    "name": a.name,
                    "aliases": list(a.aliases),
                    "metadata": json.loads(a.metadata),
                    "files": files,
                }
            )
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run


def wandb_env(tmp_path: Path) -> dict[str, str]:
    """W&B's own folders (staged artifacts, logs, settings) inside the test's folder."""
    return {
        k: str(tmp_path / "wandb_home" / k.lower())
        for k in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")
    }


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    for key, value in wandb_env(tmp_path).items():
        monkeypatch.setenv(key, value)


def test_fid_summary_is_its_minimum_and_score_rows_carry_kimg(tmp_path: Path, offline: None) -> None:
    logger = LabWandbLogger(name="fid", project="gan_lab", save_dir=str(tmp_path), offline=True)
    quality = QualityCallback(dirpath=str(tmp_path))
    quality.evaluator = SimpleNamespace(feature_name="domain", floor_value=1.5)  # no extractor needed
    trainer = SimpleNamespace(loggers=[logger])
    for iteration, fid in ((2, 9.0), (4, 5.0), (6, 7.0)):  # down, then up
        record = {
            "iteration": iteration,
            "kimg": iteration * 0.016,
            "fid_domain": fid,
            "kid_domain": fid / 100,
            "kid_domain_std": 0.001,
            "num_fake": 32,
            "seconds": 0.1,
        }
        quality.history.append(record)
        quality.best, quality.best_iteration = min((r["fid_domain"], r["iteration"]) for r in quality.history)
        quality.report(trainer, record)  # type: ignore[arg-type]
    finish_runs([logger], None, 0)

    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    run = read_run(folder)
    assert run["summary"]["val/fid_domain"] == {"min": 5.0}  # not the last value, 7.0
    assert run["summary"]["val/kid_domain"] == {"min": 0.05}
    assert run["metrics"]["val/fid_domain"] == {"step_metric": "progress/kimg", "min": True}
    scores = [row for row in run["history"] if "val/fid_domain" in row]
    assert [row["trainer/global_step"] for row in scores] == [2, 4, 6]
    assert [row["progress/kimg"] for row in scores] == pytest.approx([0.032, 0.064, 0.096])
    assert all(row["val/kid_domain_std"] == 0.001 for row in scores)
    assert run["exit_code"] == 0


def test_a_refused_job_finishes_its_run(
    tmp_path: Path, compose_cfg: ComposeFn, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job refused during training (here: a refusal raised by fit) still finishes its W&B run,
    so the next job of the same process gets a run of its own."""
    from gan_lab.training import run

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConfigError("refused for the test")

    monkeypatch.setattr("lightning.pytorch.Trainer.fit", refuse)
    cfg = compose_cfg("logger=wandb", "trainer.max_steps=1", run_dir=tmp_path / "refused")
    with pytest.raises(ConfigError):
        run(cfg)
    import wandb

    assert wandb.run is None  # finished: a next job would not reuse it
    (folder,) = (tmp_path / "refused" / "wandb").glob("offline-run-*")
    assert read_run(folder)["exit_code"] == 2


def test_job_overrides_are_the_swept_keys(tmp_path: Path) -> None:
    task = ["loss=hinge", "trainer.max_steps=2", "model.optimizer_d.lr=1e-4", "model.optimizer_g.lr=0.0003"]
    assert job_overrides(task, tmp_path) == task  # nothing known about the sweep: all of them
    # Optuna: the parameters of its search space (it writes no multirun.yaml)
    assert job_overrides(task, tmp_path, ["model.optimizer_g.lr", "loss"]) == [
        "loss=hinge",
        "model.optimizer_g.lr=0.0003",
    ]
    (tmp_path / "multirun.yaml").write_text(  # as Hydra's basic sweeper writes it
        "hydra:\n  overrides:\n    task:\n    - loss=hinge,lsgan\n    - trainer.max_steps=2\n"
        "    - model.optimizer_d.lr=1e-4,2e-4\n    - model.optimizer_g.lr=0.0003\n"
    )
    assert job_overrides(task, tmp_path) == ["loss=hinge", "model.optimizer_d.lr=1e-4"]


@pytest.mark.slow
def test_multirun_gives_one_finished_run_per_job_and_offline_resume_a_linked_one(
    tmp_path: Path, fashion_root: Path
) -> None:
    env = {"GAN_LAB_CACHE": str(tmp_path / "cache"), **wandb_env(tmp_path)}
    done = run_train(
        tmp_path,
        fashion_root,
        "-m",
        "loss=hinge,lsgan",
        "logger=wandb",
        "logger.wandb.log_model=true",
        "tags=[sweep_test]",
        "trainer.max_steps=4",
        "metrics=default",
        *TINY_METRICS,
        wandb_mode="offline",
        extra_env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "already in progress" not in done.stdout + done.stderr
    (sweep,) = tmp_path.glob("outputs/multiruns/*")
    runs = {}
    for job, loss in ((0, "hinge"), (1, "lsgan")):
        (folder,) = (sweep / str(job) / "wandb").glob("offline-run-*")
        run = runs[loss] = read_run(folder)
        assert run["name"] == f"dcgan_fashion_mnist loss={loss}"
        assert run["group"] == sweep.name and run["tags"] == ["sweep_test"]
        assert run["exit_code"] == 0
        # the resolved Hydra config, once: the job's own loss, no flattened module hparams
        assert run["config"]["loss"]["_target_"].lower().endswith(f".{loss}loss")
        assert "generator" not in run["config"] and run["config"]["model"]["generator"]["width"] == 8
        assert all(run["config"][f"model/params/{net}"] > 0 for net in ("G", "D", "G_ema"))
        assert run["config"]["model/params/G"] == run["config"]["model/params/G_ema"]
        # its checkpoints know their own W&B run
        ckpt = torch.load(
            sweep / str(job) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
        )
        assert ckpt["gan_lab"]["wandb_id"] == run["id"]
        # the FID summary is the minimum of the logged scores
        fids = [row["val/fid_domain"] for row in run["history"] if "val/fid_domain" in row]
        assert len(fids) >= 2 and run["summary"]["val/fid_domain"] == {"min": min(fids)}
        # best.ckpt and last.ckpt as artifacts, the best with its score and protocol
        # (W&B moves the alias `latest` to each new version: the last one logged, last.ckpt, keeps it)
        by_file = {a["files"][0]: a for a in run["artifacts"]}
        assert set(by_file) == {"best.ckpt", "last.ckpt"}
        best, last = by_file["best.ckpt"], by_file["last.ckpt"]
        assert "best" in best["aliases"] and last["aliases"] == ["latest"]
        assert best["name"] == last["name"] == f"model-{run['id']}"
        assert best["metadata"]["score"] == min(fids) and best["metadata"]["metric"] == "fid_domain"
        assert best["metadata"]["num_fake"] == 32 and "iteration" in best["metadata"]
        assert last["metadata"]["iteration"] == 4
    assert runs["hinge"]["id"] != runs["lsgan"]["id"]

    # offline resume: a new run in the same group, named after the iteration it resumes from
    resumed_dir = tmp_path / "resumed"
    again = run_train(
        tmp_path,
        fashion_root,
        f"ckpt_path={sweep / '0' / 'checkpoints' / 'last.ckpt'}",
        "logger=wandb",  # the tests' debug=tiny picks logger=csv and metrics=none
        "metrics=default",
        "trainer.max_steps=6",
        f"hydra.run.dir={resumed_dir}",
        wandb_mode="offline",
        extra_env=env,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    (folder,) = (resumed_dir / "wandb").glob("offline-run-*")
    resumed = read_run(folder)
    assert resumed["name"] == "dcgan_fashion_mnist loss=hinge (resumed from iteration 4)"
    assert resumed["group"] == sweep.name and resumed["id"] != runs["hinge"]["id"]
    steps = [row["trainer/global_step"] for row in resumed["history"] if "trainer/global_step" in row]
    assert steps and min(steps) > 4  # the step axis continues from the checkpoint


def test_lab_logger_is_lightnings() -> None:
    """Code that dispatches on Lightning's WandbLogger (image logging) treats the lab's the same."""
    assert issubclass(LabWandbLogger, WandbLogger)

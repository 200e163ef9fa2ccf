"""Weights & Biases wiring, in one place: one run per job, its name and group, summaries, artifacts.

* **One run per job.** Hydra's basic launcher runs a sweep's jobs one after another in one process,
  and Lightning's ``WandbLogger`` reuses any run still open there; so every job's run is finished
  when its ``train()`` ends, whatever the end (completed, refused, diverged, crashed, signalled:
  ``finish_runs``), and a run a previous job left open is finished before the next one starts.
* **Name and group** (``identify_run``): in a multirun, ``group`` is the sweep (its folder's name,
  or ``logger.wandb.group`` when set) and ``name`` is ``run_name`` followed by the job's own
  overrides (the swept keys of the multirun, or the parameters an Optuna trial sampled), e.g.
  ``dcgan_fashion_mnist loss=hinge model.optimizer_d.lr=0.0001``. They are written into the config, so the
  checkpoint, ``.hydra/config.yaml`` and the W&B config all say them.
* **Summaries and axes** (``LabWandbLogger.log_metrics``): ``val/fid_*`` and ``val/kid_*`` are
  summarised by their minimum (what sweeps rank) and charted against ``progress/kimg``; every row
  also carries ``trainer/global_step`` (the iteration), Lightning's default x-axis.
* **Checkpoints as artifacts** (``logger.wandb.log_model=true``, offline too): when the job ends,
  ``best.ckpt`` (alias ``best``, its score and protocol in the metadata) and ``last.ckpt`` (alias
  ``latest``) become versions of the artifact ``model-<run id>``.
* **Resume** (``resume_identity``): online, a resumed run continues the same W&B run (same id,
  ``resume="allow"``) and its step axis (``trainer/global_step`` is the restored iteration).
  Offline, ``wandb sync`` cannot merge two folders with one id, so the resumed run is a new run
  in the same group, named ``<name> (resumed from iteration N)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

# scores summarised by their minimum and charted against kimg
MIN_SUMMARY_PREFIXES = ("val/fid_", "val/kid_")
KIMG = "progress/kimg"
ARTIFACT_TYPE = "model"


def is_wandb(node: Any) -> bool:
    """Whether a logger config node builds Lightning's ``WandbLogger``."""
    target = node.get("_target_", "") if isinstance(node, (dict, DictConfig)) else ""
    return str(target).rsplit(".", 1)[-1] == "WandbLogger"


def is_offline(node: Any) -> bool:
    """Whether the W&B logger of ``node`` writes an offline run (its flag, or ``WANDB_MODE``)."""
    return bool(node.get("offline")) or os.environ.get("WANDB_MODE") in ("offline", "dryrun")


class LabWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` with the lab's summaries and axes and its own checkpoint artifacts.

    ``log_model`` is handled here rather than by Lightning (which refuses it offline and never sees
    ``best.ckpt``, written by the FID callback): see ``log_checkpoints``.
    """

    def __init__(self, *, log_model: bool | str = False, **kwargs: Any) -> None:
        super().__init__(log_model=False, **kwargs)
        self.log_checkpoints = bool(log_model)
        self._defined: set[str] = set()

    @rank_zero_only
    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        """Log one row; scores seen for the first time get their summary (min) and x-axis (kimg)."""
        new = [k for k in metrics if k.startswith(MIN_SUMMARY_PREFIXES) and k not in self._defined]
        if new:
            run = self.experiment
            if KIMG not in self._defined:
                run.define_metric(KIMG)
                self._defined.add(KIMG)
            for key in new:
                # the floor and the std are context, not scores to rank by
                summary = None if key.endswith(("_floor", "_std")) else "min"
                run.define_metric(key, step_metric=KIMG, summary=summary)
                self._defined.add(key)
        super().log_metrics(metrics, step)

    @rank_zero_only
    def log_checkpoint_artifacts(self, trainer: pl.Trainer) -> None:
        """``best.ckpt`` (alias ``best``) and ``last.ckpt`` (alias ``latest``) as versions of the
        artifact ``model-<run id>``, with what they hold (iteration, kimg, score and its protocol)."""
        import wandb

        best, last = _best_checkpoint(trainer), _last_checkpoint(trainer)
        for path, metadata, alias in (
            (best[0], best[1], "best"),
            (last, {"iteration": trainer.global_step, "kimg": _kimg(trainer)}, "latest"),
        ):
            if path is None or not path.is_file():
                continue
            artifact = wandb.Artifact(
                name=f"model-{self.experiment.id}", type=ARTIFACT_TYPE, metadata=metadata
            )
            artifact.add_file(str(path), name=path.name, policy="mutable")  # a copy: last.ckpt changes
            self.experiment.log_artifact(artifact, aliases=[alias])

    def finish(self, trainer: pl.Trainer | None, exit_code: int) -> None:
        """Log the checkpoint artifacts (``log_model``) and finish this job's run, if it started."""
        run = self._experiment
        if run is None or not hasattr(run, "finish"):
            return
        try:
            if self.log_checkpoints and trainer is not None and exit_code == 0:
                self.log_checkpoint_artifacts(trainer)
        finally:
            run.finish(exit_code=exit_code)


def _kimg(trainer: pl.Trainer) -> float:
    return float(getattr(trainer.lightning_module, "kimg", 0.0)) if trainer.lightning_module else 0.0


def _last_checkpoint(trainer: pl.Trainer) -> Path | None:
    callback = trainer.checkpoint_callback
    if callback is None or not getattr(callback, "dirpath", None):
        return None
    return Path(callback.dirpath) / "last.ckpt"


def _best_checkpoint(trainer: pl.Trainer) -> tuple[Path | None, dict[str, Any]]:
    """``best.ckpt`` of the FID callback and the record of its score (None without metrics)."""
    from gan_lab.callbacks.quality import QualityCallback

    quality = next((c for c in trainer.callbacks if isinstance(c, QualityCallback)), None)
    if quality is None or quality.best is None:
        return None, {}
    record = next((r for r in quality.history if r["iteration"] == quality.best_iteration), {})
    metadata = {
        "metric": quality.metric_name,
        "score": quality.best,
        **{k: v for k, v in record.items() if isinstance(v, (str, int, float, bool)) or v is None},
    }
    return quality.best_path(trainer), metadata


def build_wandb_logger(node: DictConfig) -> LabWandbLogger:
    """The W&B logger of ``node`` (``logger.wandb``), after finishing any run a previous job left open."""
    import wandb

    if wandb.run is not None:
        log.warning("finishing the W&B run %s a previous job left open", wandb.run.id)
        wandb.finish()
    options = OmegaConf.to_container(node, resolve=True)
    assert isinstance(options, dict)
    options.pop("_target_", None)
    return LabWandbLogger(**options)


def finish_runs(loggers: list[pl.loggers.Logger], trainer: pl.Trainer | None, exit_code: int) -> None:
    """Finish the W&B run of each of ``loggers`` (with the artifacts when the job completed)."""
    for logger in loggers:
        if isinstance(logger, LabWandbLogger):
            try:
                logger.finish(trainer, exit_code)
            except Exception as e:  # never hide the job's own end behind a logging failure
                log.warning("could not finish the W&B run: %s", e)


# ---------------------------------------------------------------------------- name and group
def identify_run(cfg: DictConfig) -> None:
    """Set ``logger.wandb.group`` and ``logger.wandb.name`` of a multirun job (see module docstring)."""
    node = OmegaConf.select(cfg, "logger.wandb")
    if node is None or not _in_multirun() or cfg.get("ckpt_path"):
        return
    hydra_cfg = HydraConfig.get()
    searched = OmegaConf.select(hydra_cfg.sweeper, "params") or {}  # Optuna's search space
    own = job_overrides(list(hydra_cfg.overrides.task), Path(hydra_cfg.sweep.dir), list(searched))
    with open_dict(cfg):
        if not node.get("group"):
            node.group = Path(hydra_cfg.sweep.dir).name
        node.name = " ".join([str(node.get("name") or cfg.run_name), *own])


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_overrides(task: list[str], sweep_dir: Path, searched: Iterable[str] = ()) -> list[str]:
    """The overrides of ``task`` that this job of a multirun does not share with the others: the
    keys swept on the command line (``multirun.yaml``, which Hydra's basic sweeper writes in
    ``sweep_dir``) and the ``searched`` keys (the sweeper's ``params``: Optuna's search space).
    All of ``task`` when neither is known."""
    parser = OverridesParser.create()
    swept = {str(k) for k in searched}
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        sweep_cfg = OmegaConf.load(multirun)
        raw = list(OmegaConf.select(sweep_cfg, "hydra.overrides.task") or [])
        swept |= {o.get_key_element() for o in parser.parse_overrides(raw) if o.is_sweep_override()}
    elif not swept:
        return list(task)
    return [o for o in task if parser.parse_override(o).get_key_element() in swept]


def resume_identity(
    resumed: DictConfig, stored: dict[str, Any], wandb_id: str | None, iteration: int, explicit: set[str]
) -> None:
    """The W&B identity of a resumed run: online, the same run (id, ``resume="allow"``); offline,
    a new run in the original group named ``<name> (resumed from iteration N)``."""
    node = OmegaConf.select(resumed, "logger.wandb")
    if node is None:
        return
    before = (stored.get("logger") or {}).get("wandb") or {}
    with open_dict(resumed):
        for key in ("group", "name"):
            if f"logger.wandb.{key}" not in explicit and isinstance(before.get(key), str):
                node[key] = before[key]
        if not wandb_id:
            return
        if not is_offline(node):
            if "logger.wandb.id" not in explicit:
                node.id = wandb_id
            node.resume = "allow"
        elif "logger.wandb.name" not in explicit:
            base = str(node.get("name") or resumed.run_name).split(" (resumed from iteration")[0]
            node.name = f"{base} (resumed from iteration {iteration})"


def build_logger(node: DictConfig) -> pl.loggers.Logger:
    """One logger of ``cfg.logger``: W&B through ``build_wandb_logger``, others as configured."""
    return build_wandb_logger(node) if is_wandb(node) else instantiate(node)

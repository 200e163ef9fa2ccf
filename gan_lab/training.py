"""One training run, from a composed config: ``run(cfg)`` (``gan_lab.train.main`` calls it).

Flow: compose the config (for a resume: the checkpoint's own overrides, then the command line's)
-> validate it -> build datamodule, module, callbacks, loggers, trainer -> fit. Every mistake a
user can make in the config, the dataset or the checkpoint is reported as one line before
training starts. The command line itself (Hydra's main, the config folder) is ``gan_lab.train``,
which imports this module only when a run starts, so ``python train.py --help`` stays quick.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from gan_lab.allowlist import check_stored_config, check_targets
from gan_lab.builders import build_callbacks, build_loggers, build_module, build_quality, parameter_counts
from gan_lab.callbacks.signals import StopOnSignal, signal_name
from gan_lab.checkpoints import (
    RunMetadata,
    check_module,
    check_state_matches,
    load_checkpoint,
    load_network_weights,
    merge_overrides,
    stored_overrides,
    stored_wandb_id,
    weights_only_start,
)
from gan_lab.config import validate
from gan_lab.config.guards import one_line_build_errors
from gan_lab.errors import CheckpointError, ConfigError, GanLabError
from gan_lab.loggers.wandb import finish_runs, identify_run, resume_identity
from gan_lab.resolvers import register as register_resolvers
from gan_lab.utils.checkpoint_io import AtomicCheckpointIO, remove_stale_temporaries
from gan_lab.utils.sweep import DIVERGED_FILE

log = logging.getLogger("gan_lab.train")  # the command line's logger (gan_lab.train)
register_resolvers()  # runs composed outside the command line (tests, benchmarks) resolve too


def command_line_overrides() -> list[str]:
    """The task overrides of the current Hydra job (empty outside a Hydra app)."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def resume_config(cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, list[str]]:
    """The config of a resumed run: the checkpoint's overrides with this command line's on top.

    ``python train.py ckpt_path=RUN/checkpoints/last.ckpt`` thus resumes the run as it was
    configured (model, data, loss, ...), and ``trainer.max_steps=N`` given with it extends it.
    What comes from the checkpoint is data: it is checked (``gan_lab.allowlist``) before the
    config it composes is used, so only the lab's own classes can be built from it.

    A weights-only checkpoint (an imported model, ``scripts/import_stylegan2.py``) starts a new
    run instead (``fine_tune_config``): its networks' settings with this command line's data.
    """
    checkpoint = load_checkpoint(cfg.ckpt_path)
    meta = checkpoint["gan_lab"]
    source = f"ckpt_path={cfg.ckpt_path}"
    start = weights_only_start(meta, cfg.ckpt_path)
    if any(o.split("=", 1)[0].lstrip("+~") == "model" for o in overrides):
        # model=... given with ckpt_path: refuse a mismatch before mixing the two runs' settings
        check_module(meta, get_class(cfg.model._target_), cfg.ckpt_path)
    stored = meta.get("config") or {}
    check_stored_config(stored, source)
    merged = merge_overrides(stored_overrides(meta, cfg.ckpt_path), overrides)
    config_name = HydraConfig.get().job.config_name if HydraConfig.initialized() else "train"
    try:
        resumed = hydra.compose(config_name=config_name, overrides=merged)
    except (HydraException, OmegaConfBaseException) as e:
        reason = str(e).splitlines()[0]
        raise CheckpointError(f"{source}: its stored overrides do not compose ({reason})") from e
    check_targets(resumed, source)  # what the stored overrides composed, resolved
    explicit = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if start is not None:
        check_module(meta, get_class(resumed.model._target_), cfg.ckpt_path)
        return fine_tune_config(resumed, merged, explicit, start, cfg.ckpt_path, config_name)
    wandb_id = stored_wandb_id(meta, cfg.ckpt_path)
    with open_dict(resumed):
        if "run_name" not in explicit and isinstance(stored.get("run_name"), str):
            resumed.run_name = stored["run_name"]
    resume_identity(resumed, stored, wandb_id, int(checkpoint.get("global_step", 0)), explicit)
    check_module(meta, get_class(resumed.model._target_), cfg.ckpt_path)
    return resumed, merged


def fine_tune_config(
    cfg: DictConfig, merged: list[str], explicit: set[str], start: dict[str, Any], path: str, config_name: str
) -> tuple[DictConfig, list[str]]:
    """The config of a run that starts from a weights-only checkpoint (StyleGAN2-ADA's transfer
    learning, ``--resume``): a new run (own name and W&B run), iteration 0, fresh optimizers, the
    data of the command line, which must have the networks' resolution and channels. As ADA's
    ``--resume``, the adaptive augmentation adjusts its probability faster (``augment.kimg=100``)
    unless the command line sets it; the stored overrides already turn the EMA ramp-up off."""
    want = (start["resolution"], start["channels"])
    have = (OmegaConf.select(cfg, "data.resolution"), OmegaConf.select(cfg, "data.channels"))
    if have != want:
        choice = next((o for o in reversed(merged) if o.split("=", 1)[0] == "data"), "the default data")
        raise ConfigError(
            f"ckpt_path={path} holds networks of {want[0]}x{want[0]} images with {want[1]} channel(s), but "
            f"the data ({choice}) gives {have[0]}x{have[0]} with {have[1]}: fine-tune them on data of "
            f"their size (data.resolution={want[0]} data.channels={want[1]})"
        )
    if OmegaConf.select(cfg, "augment.adaptive") is True and "augment.kimg" not in explicit:
        merged = [*merged, "augment.kimg=100"]
        cfg = hydra.compose(config_name=config_name, overrides=merged)
        check_targets(cfg, f"ckpt_path={path}")
    if "run_name" not in explicit:  # as conf/train.yaml names runs: model_data (the model is the file's)
        with open_dict(cfg):
            cfg.run_name = f"{_choice(merged, 'model')}_{_choice(merged, 'data')}"
    log.info(
        "ckpt_path=%s holds networks only (%s): fine-tuning them as a new run from iteration 0",
        path,
        start.get("source", "imported"),
    )
    return cfg, merged


def _choice(overrides: list[str], group: str) -> str:
    """The option of config group ``group`` in ``overrides`` (else this job's, as Hydra chose it)."""
    chosen = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+~") == group]
    if chosen:
        return chosen[-1]
    return str(HydraConfig.get().runtime.choices.get(group)) if HydraConfig.initialized() else group


def check_not_finished(checkpoint: dict[str, Any], cfg: DictConfig, path: str) -> None:
    """Refuse to resume a run that already reached its iteration budget (it would end at once)."""
    done, budget = int(checkpoint.get("global_step", 0)), OmegaConf.select(cfg, "trainer.max_steps")
    if isinstance(budget, int) and 0 <= budget <= done:
        raise ConfigError(
            f"ckpt_path={path} is at iteration {done}, which already reaches trainer.max_steps={budget}: "
            f"nothing to train; to extend the run, add trainer.max_steps=N with N > {done}"
        )


def prepare_config(cfg: DictConfig) -> tuple[DictConfig, list[str]]:
    """Compose (resume) and validate; returns the config and the overrides that produced it."""
    overrides = command_line_overrides()
    if (requeued := requeued_checkpoint(cfg)) and (not cfg.get("ckpt_path") or fine_tunes(cfg.ckpt_path)):
        # a requeued job resumes from its own folder; a fine-tuning job too, not from the import again
        log.info(
            "requeued job (SLURM restart %s): resuming from %s", os.environ["SLURM_RESTART_COUNT"], requeued
        )
        if cfg.get("ckpt_path"):  # the command line's ckpt_path= (the import) gives way
            kept = [o for o in overrides if o.split("=", 1)[0] != "ckpt_path"]
            overrides = [*kept, f"ckpt_path={requeued}"]
        with open_dict(cfg):
            cfg.ckpt_path = requeued
    if cfg.get("ckpt_path"):
        cfg, overrides = resume_config(cfg, overrides)
    validate(cfg)
    identify_run(cfg)  # a multirun job's W&B name and group
    return cfg, overrides


def write_run_config(cfg: DictConfig, overrides: list[str]) -> None:
    """Make the run folder's ``.hydra/`` describe what actually runs (a resume recomposes the config)."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if not hydra_cfg.output_subdir:
        return
    folder = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir  # .hydra, or .hydra_rank<N>
    if folder.is_dir():
        OmegaConf.save(cfg, folder / "config.yaml")
        OmegaConf.save(OmegaConf.create(overrides), folder / "overrides.yaml")


def silence_known_noise() -> None:
    """Hide Lightning messages that do not apply to the lab's loop (each one checked by hand)."""
    # G_ema is kept in eval mode on purpose (GANModule.train)
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    # checkpoints are taken between iterations, after both updates, which is what resuming needs
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # KID keeps the fakes' features of one evaluation (num_fake x feature size): bounded by design
    warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance` will save all extracted")
    # a resumed run writes to its own folder, so the previous folder's snapshot list is not reloaded
    warnings.filterwarnings("ignore", message="The dirpath has changed from")
    # an advertisement for a hosted logger
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvert) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdvert())


class _DropAdvert(logging.Filter):
    """Drops an advertisement and a note about the model summary we configure ourselves."""

    NOISE = ("litlogger", "Trainer already configured with model summary callbacks")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.NOISE)


def train(cfg: DictConfig, overrides: list[str] | None = None) -> dict[str, float]:
    """Train the configured GAN; returns the last logged metrics and, with metrics on, the best
    value of the monitored one as ``best``."""
    silence_known_noise()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()  # a missing dataset fails here, with how to get it
    with open_dict(cfg):  # the networks' classes, from the dataset (stored resolved in checkpoints)
        cfg.data.num_classes = datamodule.class_count()
    model = build_module(cfg)
    resume = cfg.get("ckpt_path")
    if cfg.get("ckpt_path"):
        checkpoint = load_checkpoint(cfg.ckpt_path)
        model_config = OmegaConf.to_container(cfg.model, resolve=True)
        start = weights_only_start(checkpoint["gan_lab"], cfg.ckpt_path)
        if start is not None:  # fine-tuning: the networks' weights, nothing else (fine_tune_config)
            check_classes(start, cfg)
            load_network_weights(model, checkpoint, cfg.ckpt_path, model_config)
            resume = None
        else:
            check_state_matches(model, checkpoint, cfg.ckpt_path, model_config=model_config)
            check_not_finished(checkpoint, cfg, cfg.ckpt_path)
    quality = build_quality(cfg, datamodule)
    stopper = StopOnSignal()
    # metrics first: a checkpoint written at the same iteration then holds the new scores
    callbacks = [
        *([quality] if quality else []),
        *build_callbacks(cfg),
        RunMetadata(cfg, overrides or []),
        stopper,
    ]
    loggers = build_loggers(cfg)
    trainer: pl.Trainer | None = None
    exit_code = 1  # a crash, unless the job ends otherwise
    try:
        trainer = instantiate(
            cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
        )
        results = fit(cfg, trainer, model, datamodule, quality, stopper, resume)
        exit_code = 0
        return results
    except SystemExit as e:  # stopped by a signal: 128 + signal
        exit_code = e.code if isinstance(e.code, int) else 1
        raise
    except GanLabError:
        exit_code = 2
        raise
    finally:  # one W&B run per job: finished whatever the end (lightning-hydra-template does too)
        finish_runs(loggers, trainer, exit_code)


def fit(
    cfg: DictConfig,
    trainer: pl.Trainer,
    model: Any,
    datamodule: Any,
    quality: Any,
    stopper: StopOnSignal,
    resume: str | None = None,
) -> dict[str, float]:
    """Log the config, fit (resuming from the checkpoint ``resume``), and report how the run ended
    (``train``'s body, inside its W&B run)."""
    # the resolved Hydra config is the run's config (the module does not log its hparams again)
    config = {**OmegaConf.to_container(cfg, resolve=True), **parameter_counts(model)}
    for logger in trainer.loggers:
        logger.log_hyperparams(config)
    if resume:
        log.info("resuming from %s", resume)
        for tmp in remove_stale_temporaries(Path(resume).expanduser().parent):
            log.info("removed %s, left by a checkpoint write that was killed", tmp)
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    results = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if quality is not None and quality.best is not None:
        results["best"] = quality.best
    if model.diverged:
        results["best"] = math.inf  # a bad objective for sweepers, not a crash
        if trainer.is_global_zero:  # the reason, for the sweep summary
            (Path(cfg.paths.output_dir) / DIVERGED_FILE).write_text(f"training diverged ({model.diverged})\n")
    if stopper.received is not None:
        exit_on_signal(trainer, model, stopper.received)
    if trainer.is_global_zero:
        log.info(
            "finished at iteration %d (%.1f kimg); run folder: %s",
            trainer.global_step,
            model.kimg,
            cfg.paths.output_dir,
        )
        if quality is not None and quality.best is not None:
            log.info(
                "best %s: %.4f at iteration %d", quality.metric_name, quality.best, quality.best_iteration
            )
    return results


def check_classes(start: dict[str, Any], cfg: DictConfig) -> None:
    """Refuse to fine-tune networks on data with another number of classes (0: unconditional)."""
    want, have = start["num_classes"], int(cfg.data.num_classes or 0)
    if want != have:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} holds networks {_classes(want)}, but the data is {_classes(have)} "
            f"(data.conditional={str(bool(have)).lower()}): fine-tune them on data with "
            + (f"{want} classes (data.conditional=true)" if want else "no labels (data.conditional=false)")
        )


def _classes(n: int) -> str:
    return f"conditional on {n} classes" if n else "unconditional"


def exit_on_signal(trainer: pl.Trainer, model: Any, signum: int) -> None:
    """A run stopped by a signal: say where its state is and how to resume; exit 128 + signal."""
    if trainer.is_global_zero:
        callback = trainer.checkpoint_callback
        last = getattr(callback, "last_path", None)
        saved = (
            f"last.ckpt holds it; resume with: python train.py ckpt_path={last}"
            if last is not None and last.is_file()
            else "no checkpoint callback, so nothing was saved"
        )
        log.error(
            "stopped by %s at iteration %d (%.1f kimg): %s",
            signal_name(signum),
            trainer.global_step,
            model.kimg,
            saved,
        )
    sys.exit(128 + signum)


def fine_tunes(path: str) -> bool:
    """Whether ``ckpt_path=path`` starts a new run from networks only (an imported model)."""
    return weights_only_start(load_checkpoint(path)["gan_lab"], path) is not None


def requeued_checkpoint(cfg: DictConfig) -> str | None:
    """The folder's own ``last.ckpt`` when SLURM restarts a requeued job (preempted, timed out).

    A requeued job runs the same command in the same run folder (``hydra/launcher=submitit_slurm``,
    or a fixed ``hydra.run.dir``); ``SLURM_RESTART_COUNT`` counts its restarts.
    """
    if not os.environ.get("SLURM_RESTART_COUNT", "0").strip("0"):
        return None
    folder = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath")
    last = Path(folder) / "last.ckpt" if folder else None
    return str(last) if last is not None and last.is_file() else None


def run(cfg: DictConfig) -> dict[str, Any]:
    cfg, overrides = prepare_config(cfg)
    if cfg.get("ckpt_path"):
        write_run_config(cfg, overrides)
    with one_line_build_errors():  # a refusal inside instantiate: one line naming the node
        return train(cfg, overrides)

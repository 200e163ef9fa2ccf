"""FID and KID of the EMA generator during training (``metrics=`` group).

Every ``every_n_iters`` iterations and when training ends, ``num_fake`` images from ``G_ema``
(fixed seeded latents, so evaluations are comparable) are scored against the cached features
of ``num_real`` real images (``gan_lab/metrics/quality.py``). Each score is

* logged as ``val/fid_<features>`` and ``val/kid_<features>`` (the feature extractor in the name:
  ``domain`` or ``inception``), with the floor as ``val/fid_<features>_floor``, KID's standard
  deviation over its subsets as ``val/kid_<features>_std`` and ``progress/kimg`` in the same row;
* appended with its protocol (feature extractor and weights hash, num_real, num_fake, split,
  resolution, resize mode, iteration, kimg) to ``metrics/scores.jsonl`` in the run folder;
* drawn in ``metrics/<metric>.png`` against kimg (also sent, as ``metrics/<metric>``, to every
  logger that takes images: W&B, TensorBoard).

A conditional model (``num_classes > 0``) is scored with fakes whose labels follow the real
labels' histogram (``gan_lab/metrics/evaluator.py``); its records say so in their protocol
(``conditional``, ``fake_labels``, ``per_class``) and add

* ``val/class_acc`` (domain features only: the fraction of fakes the dataset's classifier puts
  in the class they were asked for; not logged with Inception features, which have no
  classifier of the dataset's classes), with ``real_class_acc``, the classifier's accuracy on
  the reals, in the record;
* with ``metrics.per_class=true``, ``val/fid_<features>_intra``: the mean over classes of the
  intra-class FID, the per-class values as ``fid_<features>_class`` in the record.

``metrics.extra`` adds ``val/is`` (and ``val/is_std``), ``val/precision`` and ``val/recall``,
``val/ppl`` (``is``, ``pr``, ``ppl``), each recorded with its protocol (``is_splits``,
``is_logits``; ``pr_k``, ``pr_features``; ``ppl_num_samples``, ``ppl_space``, ``ppl_sampling``,
``ppl_epsilon``, ``ppl_crop``, ``ppl_distance``); see ``gan_lab/metrics/evaluator.py``.

The checkpoint with the best score of ``monitor`` is kept as ``checkpoints/best.ckpt``; the best
value, its iteration and the history are part of this callback's checkpoint state, so a resumed
run keeps comparing against them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from PIL import Image

from gan_lab.callbacks.signals import stopped_by_signal
from gan_lab.config import check_arguments
from gan_lab.config.schema import MONITORS as MONITORS
from gan_lab.config.schema import QualityConfig
from gan_lab.loggers import log_image
from gan_lab.metrics.evaluator import Evaluator
from gan_lab.utils.plot import line_plot

log = logging.getLogger("gan_lab.train")
EXTRA_LOGGED = ("is", "is_std", "precision", "recall", "ppl")  # logged as val/<key> when scored


class QualityCallback(pl.Callback):
    """See the module docstring; the scoring itself is ``gan_lab.metrics.evaluator.Evaluator``'s."""

    def __init__(
        self,
        every_n_iters: int = 1000,
        monitor: str = "fid",
        dirpath: str = ".",
        **evaluator: Any,
    ) -> None:
        check_arguments(QualityConfig, "metrics.", monitor=monitor, every_n_iters=every_n_iters)
        self.evaluator = Evaluator(**evaluator)
        self.every_n_iters, self.monitor, self.dirpath = int(every_n_iters), monitor, Path(dirpath)
        self.best: float | None = None
        self.best_iteration: int | None = None
        self.history: list[dict[str, Any]] = []
        self._last_evaluated: int | None = None

    @property
    def metric_name(self) -> str:
        return f"{self.monitor}_{self.evaluator.feature_name}"

    def prepare(self, datamodule: Any) -> None:
        """Build the feature extractor (fails here, before training, without weights or data)."""
        self.evaluator.prepare(datamodule)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.evaluator.check_module(pl_module)  # before the real features: a refusal costs nothing
            self.evaluator.setup(trainer.datamodule, pl_module.device)

    def evaluate(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, Any]:
        record = {
            "iteration": trainer.global_step,
            "kimg": getattr(pl_module, "kimg", 0.0),
            **self.evaluator.score(pl_module, trainer.global_rank, trainer.world_size),
        }
        self.history.append(record)
        self._last_evaluated = record["iteration"]
        monitored = record[self.metric_name]
        improved = self.best is None or monitored < self.best
        if improved:
            self.best, self.best_iteration = monitored, record["iteration"]
        if trainer.is_global_zero:
            self.report(trainer, record)
        if improved:  # every rank: saving may be a collective operation
            trainer.save_checkpoint(str(self.best_path(trainer)), weights_only=False)
        return record

    def best_path(self, trainer: pl.Trainer) -> Path:
        callback = trainer.checkpoint_callback
        folder = Path(callback.dirpath) if callback is not None and callback.dirpath else self.dirpath
        return folder / "best.ckpt"

    def report(self, trainer: pl.Trainer, record: dict[str, Any]) -> None:
        name, features = self.metric_name, self.evaluator.feature_name
        out = self.dirpath / "metrics"
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "scores.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        floor = self.evaluator.floor_value
        plot = line_plot(
            [r["kimg"] for r in self.history],
            [r[name] for r in self.history],
            out / f"{name}.png",
            f"{name} (best {self.best:.4g} at iteration {self.best_iteration})",
            floor=floor if self.monitor == "fid" else None,
        )
        values = {
            f"val/fid_{features}": record[f"fid_{features}"],
            f"val/kid_{features}": record[f"kid_{features}"],
            f"val/kid_{features}_std": record[f"kid_{features}_std"],
            "progress/kimg": record["kimg"],  # scores charted against kimg, the iteration is the step
        }
        if floor is not None:
            values[f"val/fid_{features}_floor"] = floor
        if record.get("class_acc") is not None:
            values["val/class_acc"] = record["class_acc"]
        intra = record.get(f"fid_{features}_intra")
        if intra is not None:
            values[f"val/fid_{features}_intra"] = intra
        for key in EXTRA_LOGGED:
            if record.get(key) is not None:
                values[f"val/{key}"] = record[key]
        for logger in trainer.loggers:
            logger.log_metrics(values, step=record["iteration"])
        with Image.open(plot) as picture:
            drawn = np.asarray(picture.convert("RGB"))
        log_image(trainer, f"metrics/{name}", drawn, step=record["iteration"])
        floor_text = f" (floor {floor:.4f})" if floor is not None else ""
        if intra is not None:
            floor_text += f"  intra-FID {intra:.4f}"
        if record.get("class_acc") is not None:
            floor_text += f"  class acc {record['class_acc']:.4f}"
        if record.get("is") is not None:
            floor_text += f"  IS {record['is']:.3f}"
        if record.get("precision") is not None:
            floor_text += f"  P {record['precision']:.3f} R {record['recall']:.3f}"
        if record.get("ppl") is not None:
            floor_text += f"  PPL {record['ppl']:.4g}"
        log.info(
            "iter %d  kimg %.1f  FID %.4f  KID %.5f%s  [%s, %d fakes, %.1f s]",
            record["iteration"],
            record["kimg"],
            record[f"fid_{features}"],
            record[f"kid_{features}"],
            floor_text,
            features,
            record["num_fake"],
            record["seconds"],
        )

    # ------------------------------------------------------------------ hooks
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if trainer.global_step % self.every_n_iters == 0:
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(pl_module, "diverged", None):
            return  # nothing to score
        if stopped_by_signal(trainer):
            return  # a stopped run saves and exits; a scoring pass could outlast the grace period
        if self._last_evaluated != trainer.global_step:
            self.evaluate(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_iteration": self.best_iteration, "history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
        self.best_iteration = state.get("best_iteration")
        self.history = list(state.get("history", []))
        if self.history:
            self._last_evaluated = self.history[-1]["iteration"]

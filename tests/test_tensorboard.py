"""logger=tensorboard, and images to every logger: a short run read back with TensorBoard's own
event reader, and a run with W&B (offline) and TensorBoard at once."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator

from gan_lab.training import run

from .conftest import TINY_METRICS

# 4 iterations; losses logged at 2 and 4, sample grids at 0, 2, 4, FID at 2 and 4
SHORT = (
    "trainer.max_steps=4",
    "trainer.log_every_n_steps=2",
    "callbacks.samples.every_n_iters=2",
    "metrics=default",
    *TINY_METRICS,
)


def events(folder: Path) -> EventAccumulator:
    """Everything TensorBoard shows of the event files in ``folder`` (nothing sampled away)."""
    assert list(folder.glob("events.out.tfevents.*")), f"no event file in {folder}"
    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0, IMAGES: 0})
    accumulator.Reload()
    return accumulator


def decoded(event: Any) -> np.ndarray:
    """The pixels of an ImageEvent of TensorBoard's reader."""
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))


def test_tensorboard_gets_the_scalars_the_sample_grids_and_the_fid_plot(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(compose_cfg("logger=tensorboard", *SHORT, f"paths.cache_dir={tmp_path / 'cache'}", run_dir=out))
    tb = events(out / "tensorboard")
    for key in ("loss/d", "loss/g"):
        assert [e.step for e in tb.Scalars(key)] == [2, 4], key
        assert all(np.isfinite(e.value) for e in tb.Scalars(key)), key
    assert [e.step for e in tb.Scalars("val/fid_domain")] == [2, 4]
    assert set(tb.Tags()["images"]) >= {"samples", "metrics/fid_domain"}
    grids = tb.Images("samples")
    assert [e.step for e in grids] == [0, 2, 4]
    # the grid TensorBoard shows is the PNG written to the run folder
    on_disk = np.asarray(Image.open(out / "samples" / "iter_0000004.png").convert("RGB"))
    assert np.array_equal(decoded(grids[-1]).reshape(on_disk.shape), on_disk)
    plots = tb.Images("metrics/fid_domain")
    assert [e.step for e in plots] == [2, 4]
    assert (plots[-1].width, plots[-1].height) == Image.open(out / "metrics" / "fid_domain.png").size


def test_wandb_and_tensorboard_at_once(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    out = tmp_path / "run"
    cfg = compose_cfg(
        "logger=[wandb,tensorboard]", *SHORT, f"paths.cache_dir={tmp_path / 'cache'}", run_dir=out
    )
    assert list(cfg.logger) == ["wandb", "tensorboard"]
    try:
        run(cfg)
    finally:
        wandb.finish()
    tb = events(out / "tensorboard")
    assert [e.step for e in tb.Scalars("loss/d")] == [2, 4]
    assert [e.step for e in tb.Images("samples")] == [0, 2, 4]
    assert [e.step for e in tb.Images("metrics/fid_domain")] == [2, 4]
    (wandb_run,) = (out / "wandb").glob("offline-run-*")
    assert list(wandb_run.glob("run-*.wandb")), "no W&B run file"
    images = wandb_run / "files" / "media" / "images"
    assert len(list(images.glob("samples_*.png"))) == 3
    assert len(list((images / "metrics").glob("fid_domain_*.png"))) == 2


def test_each_logger_that_takes_images_gets_one_and_csv_is_skipped(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from gan_lab.loggers import log_image

    class OwnLogger(CSVLogger):  # a user's logger with W&B's log_image signature
        def log_image(self, key: str, images: list[Any], step: int | None = None, **kwargs: Any) -> None:
            self.got = (key, images[0].shape, step, kwargs)

    csv, own = CSVLogger(tmp_path), OwnLogger(tmp_path)
    tb = TensorBoardLogger(tmp_path, name="tb", version="")
    gray = np.full((6, 8), 200, dtype=np.uint8)
    got = log_image(SimpleNamespace(loggers=[csv, tb, own]), "x", gray, step=3, caption="c")
    assert got == [tb, own]
    assert own.got == ("x", (6, 8, 1), 3, {"caption": ["c"]})
    tb.finalize("success")
    (image,) = events(tmp_path / "tb").Images("x")
    assert (image.step, image.width, image.height) == (3, 8, 6)
    with pytest.raises(TypeError, match="uint8"):
        log_image(SimpleNamespace(loggers=[tb]), "x", gray.astype(np.float32), step=4)

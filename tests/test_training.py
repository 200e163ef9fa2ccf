"""The adversarial loop through the real entry point (Hydra config -> gan_lab.training.run)."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch

from gan_lab.callbacks.progress import GANProgressBar, format_speed
from gan_lab.checkpoints import load_checkpoint
from gan_lab.errors import CheckpointError
from gan_lab.modules import GANModule
from gan_lab.training import build_module, run
from gan_lab.utils.checkpoint_io import atomic_torch_save


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    assert a["images_seen"] == b["images_seen"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pa, pb in zip(opt_a["state"].values(), opt_b["state"].values(), strict=True):
            for name in pa:
                assert torch.equal(torch.as_tensor(pa[name]), torch.as_tensor(pb[name])), name


def test_one_iteration_changes_both_networks_and_the_ema(compose_cfg) -> None:
    cfg = compose_cfg()
    torch.manual_seed(0)
    model: GANModule = build_module(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        use_distributed_sampler=False,
    )
    from hydra.utils import instantiate

    trainer.fit(model, datamodule=instantiate(cfg.data))
    after = model.state_dict()
    for prefix in ("G.", "D.", "G_ema."):
        changed = [k for k in after if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f"no parameter of {prefix[:-1]} changed"
    assert trainer.global_step == 1
    assert model.images_seen == 16
    assert torch.equal(before["sample_z"], after["sample_z"])  # the fixed latents stay fixed


def test_max_steps_counts_iterations(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = compose_cfg(
        "trainer.max_steps=7",
        "callbacks.checkpoint.every_n_train_steps=3",
        "callbacks.samples.every_n_iters=3",
        run_dir=out,
    )
    run(cfg)
    last = state(out / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 7
    assert last["images_seen"] == 7 * 16
    # each optimizer stepped once per iteration
    assert [float(s["state"][0]["step"]) for s in last["optimizer_states"]] == [7.0, 7.0]
    # intervals, file names and the loggers' x-axis count iterations
    assert sorted(p.name for p in (out / "checkpoints").glob("iter_*.ckpt")) == [
        "iter_0000003.ckpt",
        "iter_0000006.ckpt",
    ]
    assert state(out / "checkpoints" / "iter_0000006.ckpt")["global_step"] == 6
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == [
        "iter_0000000.png",
        "iter_0000003.png",
        "iter_0000006.png",
        "iter_0000007.png",
    ]


def test_logged_step_axis_is_the_iteration(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(compose_cfg("trainer.max_steps=6", "trainer.log_every_n_steps=2", run_dir=out))
    with open(out / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert [float(r["progress/kimg"]) for r in rows] == pytest.approx([0.032, 0.064, 0.096])
    for key in ("loss/d", "loss/g", "logits/real", "logits/fake"):
        assert all(torch.isfinite(torch.tensor(float(r[key]))) for r in rows), key


def test_run_folder(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(compose_cfg("trainer.max_steps=4", "trainer.log_every_n_steps=2", run_dir=out))
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "samples" / "iter_0000000.png").is_file()
    assert (out / "samples" / "iter_0000004.png").is_file()
    assert (out / "csv" / "metrics.csv").is_file()
    meta = load_checkpoint(out / "checkpoints" / "last.ckpt")["gan_lab"]
    assert meta["module"] == "GANModule"
    assert meta["config"]["model"]["generator"]["width"] == 8
    assert "debug=tiny" in meta["overrides"]  # the tests run debug=tiny: width-8 DCGAN


def test_same_seed_same_weights_other_seed_other_weights(compose_cfg, tmp_path: Path) -> None:
    finals = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / name
        run(compose_cfg("trainer.max_steps=5", f"seed={seed}", run_dir=out))
        finals[name] = state(out / "checkpoints" / "last.ckpt")
    assert_same_training_state(finals["a"], finals["b"])
    assert not torch.equal(
        finals["a"]["state_dict"]["G.net.0.weight"], finals["c"]["state_dict"]["G.net.0.weight"]
    )


def test_resume_is_exact(compose_cfg, tmp_path: Path) -> None:
    """2N iterations straight == N iterations, then resumed to 2N: bit for bit on the CPU.

    N = 10 with 16 images per batch and 256 images crosses an epoch boundary (16 batches/epoch)
    after the resume, so the data order's continuation is covered too.
    """
    straight, first, resumed = tmp_path / "straight", tmp_path / "first", tmp_path / "resumed"
    common = ("callbacks.checkpoint.every_n_train_steps=10", "model.ema_kimg=0.1")
    run(compose_cfg("trainer.max_steps=20", *common, run_dir=straight))
    run(compose_cfg("trainer.max_steps=10", *common, run_dir=first))
    ckpt = first / "checkpoints" / "last.ckpt"
    assert state(ckpt)["global_step"] == 10
    run(compose_cfg("trainer.max_steps=20", f"ckpt_path={ckpt}", run_dir=resumed))
    assert_same_training_state(
        state(straight / "checkpoints" / "last.ckpt"), state(resumed / "checkpoints" / "last.ckpt")
    )
    # the samples of iteration 20 are the same picture
    a = (straight / "samples" / "iter_0000020.png").read_bytes()
    assert a == (resumed / "samples" / "iter_0000020.png").read_bytes()


def test_resume_reuses_the_runs_config(compose_cfg, tmp_path: Path) -> None:
    first, resumed = tmp_path / "first", tmp_path / "resumed"
    run(
        compose_cfg(
            "trainer.max_steps=3", "model.generator.width=4", "model.generator.z_dim=12", run_dir=first
        )
    )
    ckpt = first / "checkpoints" / "last.ckpt"
    # only ckpt_path (and the budget) given: networks of width 4 and z_dim 12 are rebuilt from it
    run(compose_cfg("trainer.max_steps=5", f"ckpt_path={ckpt}", run_dir=resumed, bare=True))
    final = state(resumed / "checkpoints" / "last.ckpt")
    assert final["global_step"] == 5
    assert final["state_dict"]["sample_z"].shape == (16, 12)
    assert final["gan_lab"]["config"]["model"]["generator"]["width"] == 4
    assert final["gan_lab"]["config"]["logger"].keys() == {"csv"}  # logger=csv came from the run too
    # an explicit architecture change on resume is refused with the setting that changed
    with pytest.raises(CheckpointError, match=r"changed: model.generator.width: 4 -> 8"):
        run(compose_cfg(f"ckpt_path={ckpt}", "model.generator.width=8", run_dir=tmp_path / "x", bare=True))


def test_bad_checkpoints_are_refused_before_training(compose_cfg, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        run(compose_cfg(f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    with pytest.raises(CheckpointError, match="is not a file"):
        run(compose_cfg(f"ckpt_path={tmp_path}"))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="is not a checkpoint: not a PyTorch checkpoint"):
        run(compose_cfg(f"ckpt_path={garbage}"))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a gan_lab checkpoint"):
        run(compose_cfg(f"ckpt_path={foreign}"))


def test_checkpoint_of_another_model_is_refused(compose_cfg, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(compose_cfg("trainer.max_steps=1", run_dir=out))
    other = state(out / "checkpoints" / "last.ckpt")
    other["gan_lab"]["module"] = "StyleGAN"
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(
        CheckpointError, match="holds a StyleGAN checkpoint, but this run's model is GANModule"
    ):
        run(compose_cfg(f"ckpt_path={tmp_path / 'other.ckpt'}", run_dir=tmp_path / "again"))
    assert not (tmp_path / "again").exists()  # refused before anything was written


def test_interrupted_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"step": 1}, path)

    def dies_mid_write(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_speed_reads_as_seconds_per_iteration_for_slow_models() -> None:
    # a GPU-sized StyleGAN on a CPU makes ~0.01 it/s: "0.00 it/s" would say nothing
    assert format_speed(7.0) == "7.00 it/s"
    assert format_speed(0.0094) == "106.4 s/it"


def test_progress_bar_redraws_every_n_iterations_and_at_the_end() -> None:
    bar = GANProgressBar(refresh_rate=10)
    bar.train_progress_bar_id = 0
    redrawn: list[int] = []
    bar._update = lambda task, step, *a, **k: redrawn.append(step)
    bar._update_metrics = bar.refresh = lambda *a, **k: None
    trainer = SimpleNamespace(global_step=0, max_steps=25)
    for step in range(1, 26):
        trainer.global_step = step
        bar.on_train_batch_end(trainer, None)
    assert redrawn == [10, 20, 25]
    assert GANProgressBar(refresh_rate=0).is_disabled
    with pytest.raises(ValueError, match=r"callbacks\.progress\.refresh_rate=-1 is invalid: expected an int"):
        GANProgressBar(refresh_rate=-1)

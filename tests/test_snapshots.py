"""Periodic snapshots are named, and pruned, by the iteration they hold."""

from __future__ import annotations

from pathlib import Path

import torch

from gan_lab.training import run


def test_snapshot_names_and_pruning_follow_the_iteration(compose_cfg, tmp_path: Path) -> None:
    # intervals that are not multiples of each other: checkpoints 5, logging 4, samples 7, 37 iterations
    out = tmp_path / "run"
    run(
        compose_cfg(
            "trainer.max_steps=37",
            "trainer.log_every_n_steps=4",
            "callbacks.checkpoint.every_n_train_steps=5",
            "callbacks.checkpoint.save_top_k=2",
            "callbacks.samples.every_n_iters=7",
            run_dir=out,
        )
    )
    files = sorted(p.name for p in (out / "checkpoints").glob("*.ckpt"))
    assert files == ["iter_0000030.ckpt", "iter_0000035.ckpt", "last.ckpt"]
    for name in files[:2]:
        held = torch.load(out / "checkpoints" / name, map_location="cpu", weights_only=True)["global_step"]
        assert name == f"iter_{held:07d}.ckpt"
    assert sorted(p.name for p in (out / "samples").glob("*.png"))[-2:] == [
        "iter_0000035.png",
        "iter_0000037.png",
    ]

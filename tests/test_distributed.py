"""Right on many GPUs and many nodes (issue 11, item 7): settings that scale with the batch use
the global batch (per-device batch x devices x nodes), and work done once per dataset happens
once per job, not once per rank."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from gan_lab import resolvers
from gan_lab.utils.once import compute_once

from .conftest import REPO, TINY_METRICS, small_overrides
from .datasets_on_disk import face_like
from .test_cli import env_for

SG = "model=stylegan"


def test_stylegan_auto_values_use_the_global_batch_over_nodes(compose_cfg) -> None:
    # StyleGAN2-ADA's train.py: B = batch over all GPUs of the job; 8 per device x 4 devices x 2 nodes,
    # typed as the README's SLURM command types it (trainer.num_nodes without a '+')
    cfg = compose_cfg(
        SG, "data.resolution=64", "data.batch_size=8", "trainer.devices=4", "trainer.num_nodes=2", bare=True
    )
    assert cfg.model.r1_gamma == pytest.approx(0.0002 * 64**2 / 64)
    assert cfg.model.ema_kimg == pytest.approx(64 * 10 / 32)
    assert cfg.model.discriminator.mbstd_group == 4  # groups stay within a device's batch


def test_stylegan_auto_values_without_num_nodes(compose_cfg) -> None:
    # a config without trainer.num_nodes (stored by an older run) counts one node
    cfg = compose_cfg(SG, "data.resolution=64", "data.batch_size=8", "trainer.devices=4", bare=True)
    with open_dict(cfg):
        del cfg.trainer["num_nodes"]
    assert cfg.model.r1_gamma == pytest.approx(0.0002 * 64**2 / 32)
    assert cfg.model.ema_kimg == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("devices", "accelerator", "gpus", "expected"),
    [
        (4, "gpu", 8, 4),
        ("4", "gpu", 8, 4),
        ([0, 2], "gpu", 8, 2),
        ("0,2,3", "gpu", 8, 3),
        ("auto", "cpu", 8, 1),  # Lightning: one CPU process
        ("auto", "gpu", 8, 8),  # every visible GPU
        (-1, "cuda", 8, 8),
        ("-1", "auto", 8, 8),
        ("auto", "auto", 0, 1),  # no GPU: accelerator auto is one CPU process
        (-1, "auto", 0, 1),
    ],
)
def test_device_count_of_trainer_devices(monkeypatch, devices, accelerator, gpus, expected) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    assert resolvers.device_count(devices, accelerator) == expected


def test_global_batch_resolver() -> None:
    assert resolvers.global_batch(8, 4, 2, "gpu") == 64
    assert resolvers.sg2_r1_gamma(64, 8, 4, 2, "gpu") == pytest.approx(0.0002 * 64**2 / 64)
    assert resolvers.sg2_ema_kimg(8, 4, 2, "gpu") == pytest.approx(20.0)
    # the three-argument form of configs stored before num_nodes counted
    assert resolvers.sg2_r1_gamma(64, 8, 4) == pytest.approx(0.0002 * 64**2 / 32)


# ---------------------------------------------------------------------------- metrics over ranks
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _synced_real_states(rank: int, world_size: int, port: int, reals: torch.Tensor, out: str) -> None:
    """One rank of a gloo group: feed the reals as training does, sync the metric states the way
    torchmetrics does at compute, and save what rank 0 would compute on."""
    import torch.distributed as dist
    from torchmetrics.utilities import dim_zero_cat

    from gan_lab.metrics.features import FeatureExtractor
    from gan_lab.metrics.quality import QualityMetrics

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        extractor = FeatureExtractor()
        extractor.num_features = reals.shape[1]
        metrics = QualityMetrics(extractor, reals, kid_subsets=2, kid_subset_size=4, num_fake=8).to("cpu")
        metrics.kid.sync()
        metrics.fid.sync()
        if rank == 0:
            torch.save(
                {
                    "kid_reals": dim_zero_cat(metrics.kid.real_features),
                    "fid_n": metrics.fid.real_features_num_samples.clone(),
                    "fid_sum": metrics.fid.real_features_sum.clone(),
                },
                out,
            )
        metrics.kid.unsync()
        metrics.fid.unsync()
    finally:
        dist.destroy_process_group()


def test_real_features_count_once_over_ranks(tmp_path) -> None:
    """torchmetrics concatenates KID's real features and sums FID's over ranks at compute: two
    ranks (a real gloo group) must hold the reals between them once, so that the synced state is
    a single process's (an odd count: the ranks' shares differ)."""
    num_real = 11
    reals = torch.randn(num_real, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()
    out = tmp_path / "synced.pt"
    torch.multiprocessing.spawn(
        _synced_real_states, args=(2, free_port(), reals, str(out)), nprocs=2, join=True
    )
    synced = torch.load(out, weights_only=True)
    assert synced["kid_reals"].shape[0] == num_real  # not 2 x num_real
    assert torch.equal(synced["kid_reals"], reals)  # the same set, in the same order
    assert int(synced["fid_n"]) == num_real
    assert torch.allclose(synced["fid_sum"], reals.double().sum(0))


# ---------------------------------------------------------------------------- once per job
@pytest.mark.parametrize(
    ("env", "suffix"),
    [
        ({}, ""),
        ({"RANK": "0"}, ""),
        ({"RANK": "1"}, "_rank1"),  # torchrun
        ({"SLURM_PROCID": "3"}, "_rank3"),  # srun / submitit tasks
        ({"SLURM_PROCID": "0", "LOCAL_RANK": "1"}, ""),  # the SLURM rank decides
        ({"LOCAL_RANK": "1"}, "_rank1"),  # Lightning's launcher's child process
        ({"LOCAL_RANK": "1", "NODE_RANK": "2"}, "_node2_rank1"),
    ],
)
def test_rank_suffix_keeps_other_ranks_files_apart(monkeypatch, env: dict, suffix: str) -> None:
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert resolvers.rank_suffix() == suffix


def test_compute_once_produces_only_what_is_missing(tmp_path: Path) -> None:
    cache = tmp_path / "stats" / "x.pt"
    calls: list[int] = []

    def produce() -> None:
        calls.append(1)
        cache.write_text("done")

    assert compute_once(cache, produce, "x") is True
    assert compute_once(cache, produce, "x") is False  # there already: not redone
    assert calls == [1]

    def failing() -> None:
        raise RuntimeError("disk full")

    other = tmp_path / "stats" / "y.pt"
    with pytest.raises(RuntimeError, match="disk full"):
        compute_once(other, failing, "y")
    assert compute_once(other, lambda: other.write_text("ok"), "y") is True  # the lock was released


def torchrun(tmp_path: Path, data_root: Path, *overrides: str, cache: Path) -> tuple[str, float]:
    """``torchrun --standalone --nproc_per_node 2 train.py ...`` on CPU (both ranks start at once, as
    under torchrun or SLURM); returns both ranks' output and the wall time."""
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "train.py"),
        *small_overrides(overrides),
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        *overrides,
        f"hydra.run.dir={run_dir}",
    ]
    env = {**env_for(data_root, extra={"GAN_LAB_CACHE": str(cache)}), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output, time.monotonic() - start


@pytest.mark.slow
def test_torchrun_ranks_share_the_once_per_dataset_work(tmp_path: Path, fashion_root: Path) -> None:
    """Two ranks started together build the domain classifier and the real statistics (train
    split, and the test split for the floor) once between them; the other rank waits and loads."""
    cache = tmp_path / "cache"
    output, seconds = torchrun(
        tmp_path,
        fashion_root,
        "trainer.max_steps=2",
        "metrics=default",
        *TINY_METRICS,
        "callbacks.samples.every_n_iters=2",
        cache=cache,
    )
    print(f"torchrun, 2 CPU ranks, fresh cache: {seconds:.1f} s")
    assert output.count("training the fashion_mnist domain classifier") == 1, output[-4000:]
    assert output.count("real domain features of 64 fashion_mnist/train images") == 1, output[-4000:]
    assert output.count("real domain features of 64 fashion_mnist/test images") == 1, output[-4000:]
    # each rank ran Hydra into the one run folder: rank 1 keeps its config and log apart
    run = tmp_path / "run"
    assert (run / ".hydra" / "config.yaml").is_file() and (run / ".hydra_rank1" / "config.yaml").is_file()
    assert (run / "train.log").read_text().count("FID/KID on domain features") == 1
    assert (run / "train_rank1.log").read_text().count("FID/KID on domain features") == 1


NUM_IMAGES = 200


@pytest.mark.slow
def test_torchrun_ranks_decode_an_image_folder_once(tmp_path: Path) -> None:
    """Two ranks started together decode a folder of images into the cache once between them
    (1024 px images, ~5 s of decoding: without the lock both ranks would be decoding at once)."""
    images = tmp_path / "images"
    images.mkdir()
    face_like(0, (1024, 1024)).save(images / "000.png")
    for i in range(1, NUM_IMAGES):
        shutil.copyfile(images / "000.png", images / f"{i:03d}.png")
    output, seconds = torchrun(
        tmp_path,
        tmp_path,
        "data=image_folder",
        f"data.root={images}",
        "data.resolution=32",
        "data.batch_size=4",
        "trainer.max_steps=1",
        cache=tmp_path / "cache",
    )
    print(f"torchrun image folder, 2 CPU ranks, fresh cache: {seconds:.1f} s")
    assert output.count(f"image_folder/train: decoding {NUM_IMAGES} files") == 1, output[-4000:]

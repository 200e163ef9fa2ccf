"""MNIST, CIFAR-10, CelebA and image folders, read from files in their real formats."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_lab.data import CelebADataModule, CIFAR10DataModule, ImageFolderDataModule, MNISTDataModule
from gan_lab.data import files as files_module
from gan_lab.errors import ConfigError, DatasetFormatError, DatasetNotFoundError
from gan_lab.training import build_module, run

from .datasets_on_disk import face_like, write_celeba, write_cifar10, write_image_folder, write_mnist


def ready(dm):
    dm.prepare_data()
    dm.setup("fit")
    return dm


def first_batch(dm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(uint8 batch, the device-side float batch, labels) of the first training batch."""
    raw, labels = next(iter(dm.train_dataloader()))
    images, _ = dm.on_after_batch_transfer((raw, labels), 0)
    return raw, images, labels


def assert_training_images(images: torch.Tensor, n: int, channels: int, resolution: int) -> None:
    assert images.dtype == torch.float32
    assert images.shape == (n, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1


# ---------------------------------------------------------------- MNIST
def test_mnist_splits_and_framing(tmp_path: Path) -> None:
    root = write_mnist(tmp_path)
    dm = ready(MNISTDataModule(str(root), resolution=64, batch_size=8, download=False))
    assert len(dm.dataset) == 64
    assert len(ready(MNISTDataModule(str(root), split="test", batch_size=8, download=False)).dataset) == 32
    _, images, labels = first_batch(dm)
    assert_training_images(images, 8, 1, 64)
    assert labels.dtype == torch.int64


def test_mnist_missing_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"MNIST not found.*data.download=true.*data.root=DIR"):
        MNISTDataModule(str(tmp_path), download=False).prepare_data()


# ---------------------------------------------------------------- CIFAR-10
def test_cifar_batches_are_read_as_stored(tmp_path: Path) -> None:
    root = write_cifar10(tmp_path)
    dm = ready(CIFAR10DataModule(str(root), batch_size=10, download=False, shuffle=False))
    assert len(dm.dataset) == 100  # 5 batches of 20
    assert len(ready(CIFAR10DataModule(str(root), split="test", batch_size=10, download=False)).dataset) == 20
    # pixel (c, y, x) of image 0 is data[0][c * 1024 + y * 32 + x] of data_batch_1
    import pickle

    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        data = pickle.load(f)["data"]
    raw, images, _ = first_batch(dm)
    assert raw.shape == (10, 3, 32, 32)
    assert raw[0, 1, 5, 7].item() == data[0][1 * 1024 + 5 * 32 + 7]
    assert_training_images(images, 10, 3, 32)
    bigger = ready(CIFAR10DataModule(str(root), resolution=64, channels=1, batch_size=10, download=False))
    assert_training_images(first_batch(bigger)[1], 10, 1, 64)


def test_cifar_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR-10 not found.*data_batch_1"):
        CIFAR10DataModule(str(tmp_path), download=False).prepare_data()
    root = write_cifar10(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match="data_batch_3 is not a readable CIFAR batch"):
        ready(CIFAR10DataModule(str(root), download=False))


# ---------------------------------------------------------------- CelebA
def celeba(root: Path, cache: Path, **kwargs) -> CelebADataModule:
    kwargs = {"download": False, "cache_dir": str(cache), "num_workers": 0, "batch_size": 4, **kwargs}
    return CelebADataModule(str(root), **kwargs)


def test_celeba_splits_crop_and_resolution(tmp_path: Path) -> None:
    root = write_celeba(tmp_path / "data")
    sizes = {
        s: len(ready(celeba(root, tmp_path / "cache", split=s)).dataset)
        for s in ("train", "valid", "test", "all")
    }
    assert sizes == {"train": 12, "valid": 4, "test": 4, "all": 20}
    dm = ready(celeba(root, tmp_path / "cache", resolution=32, crop=108))
    raw, images, _ = first_batch(dm)
    assert raw.shape == (4, 3, 32, 32)
    assert_training_images(images, 4, 3, 32)
    # a 108 crop of the 178x218 picture is inside the "face" ellipse (uniform colour) at the centre
    centre = raw[:, 1, 14:18, 14:18].float()
    assert ((centre - 200).abs() <= 3).all()


def test_celeba_missing_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"img_align_celeba.*list_eval_partition.txt.*mmlab"):
        ready(celeba(tmp_path, tmp_path / "cache"))


# ---------------------------------------------------------------- image folders
def folder_dm(root: Path, cache: Path, **kwargs) -> ImageFolderDataModule:
    kwargs = {"cache_dir": str(cache), "num_workers": 0, "batch_size": 2, "resolution": 32, **kwargs}
    return ImageFolderDataModule(str(root), **kwargs)


def test_image_folder_decodes_every_kind_and_reports_the_corrupt_file(tmp_path: Path, caplog) -> None:
    paths = write_image_folder(tmp_path / "imgs")
    with caplog.at_level(logging.WARNING):
        dm = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache", shuffle=False))
    assert len(dm.dataset) == 7  # 8 image files, one corrupt; the text file is ignored
    reports = [r.getMessage() for r in caplog.records if "could not be decoded" in r.getMessage()]
    assert len(reports) == 1 and "1 of 8 files" in reports[0] and str(paths["corrupt"]) in reports[0]
    images = dm.dataset.images
    assert images.shape == (7, 3, 32, 32) and images.dtype == torch.uint8
    order = sorted(str(p) for k, p in paths.items() if k not in ("corrupt", "text"))
    by_name = {Path(p).name: images[i] for i, p in enumerate(order)}
    assert (by_name["rgba.png"] == 255).all()  # transparent pixels over white
    gray = by_name["gray.png"]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # gray -> RGB
    wide = by_name["wide.png"][0].float()  # 300x100: shorter side to 32, centre crop = the white band
    assert wide[:, 4:28].mean() > 250
    assert (by_name["sixteen_bit.png"] == 255).all()  # 16-bit white stays white
    # labels: one class per top-level subfolder, files at the top form their own
    labels = dict(zip([Path(p).name for p in order], dm.dataset.labels.tolist(), strict=True))
    assert labels["top_level.bmp"] == 0 and labels["rgb.jpg"] == 1 and labels["wide.png"] == 2


def test_image_folder_gray_and_batches(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    dm = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache", channels=1, resolution=64))
    raw, images, _ = first_batch(dm)
    assert raw.shape == (2, 1, 64, 64)
    assert_training_images(images, 2, 1, 64)


def test_empty_and_unreadable_folders_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetFormatError, match=rf"no image files in {tmp_path / 'empty'}"):
        ready(folder_dm(tmp_path / "empty", tmp_path / "cache"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DatasetFormatError, match="none of the 1 image files"):
        ready(folder_dm(tmp_path / "bad", tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        ready(folder_dm(tmp_path / "nowhere", tmp_path / "cache"))


def test_second_run_reuses_the_decoded_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image_folder(tmp_path / "imgs")
    first = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache"))
    assert len(list((tmp_path / "cache").glob("image_folder-train-images-*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(files_module, "decode_image", no_decoding)
    second = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache"))
    assert torch.equal(first.dataset.images, second.dataset.images)
    monkeypatch.undo()
    # another resolution or a changed folder is another cache entry
    ready(folder_dm(tmp_path / "imgs", tmp_path / "cache", resolution=64))
    (tmp_path / "imgs" / "cats" / "new.png").write_bytes(
        (tmp_path / "imgs" / "cats" / "gray.png").read_bytes()
    )
    ready(folder_dm(tmp_path / "imgs", tmp_path / "cache"))
    assert len(list((tmp_path / "cache").glob("image_folder-train-images-*.pt"))) == 3


def test_streaming_serves_the_same_images(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    memory = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache", in_memory=True, shuffle=False))
    stream = ready(
        folder_dm(tmp_path / "imgs", tmp_path / "cache", in_memory=False, shuffle=False, num_workers=2)
    )
    assert not memory.streaming and memory.loader_workers == 0
    assert stream.streaming and stream.loader_workers == 2
    a = torch.cat([b[0] for b in memory.train_dataloader()])
    b = torch.cat([b[0] for b in stream.train_dataloader()])
    assert torch.equal(a, b)
    auto = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache", memory_budget_gb=1e-6))
    assert auto.streaming  # 7 x 3 x 32 x 32 bytes exceed the budget: streamed


def test_hflip_adds_mirrored_copies(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "imgs")
    plain = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache"))
    mirrored = ready(folder_dm(tmp_path / "imgs", tmp_path / "cache", hflip=True))
    assert len(mirrored.dataset) == 2 * len(plain.dataset)
    images, _ = mirrored.dataset.__getitems__([0, 7])
    assert torch.equal(images[1], images[0].flip(-1))


def test_symlinked_folders_add_each_real_file_once(tmp_path: Path, caplog) -> None:
    root = tmp_path / "imgs"
    write_image_folder(root)  # 8 image files, one of them corrupt: 7 images
    (root / "d").mkdir()
    (root / "d" / "loop").symlink_to("..")  # a loop back to the root
    (root / "cats" / "alias.jpg").symlink_to(root / "cats" / "rgb.jpg")  # the same file again
    with caplog.at_level(logging.WARNING):
        dm = ready(folder_dm(root, tmp_path / "cache"))
    assert len(dm.dataset) == 7
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert str(root / "d" / "loop") in warned and str(root / "cats" / "alias.jpg") in warned
    # folders outside the root, linked in, are followed; a folder linked twice counts once
    outside = tmp_path / "more_faces"
    outside.mkdir()
    for i in range(3):
        face_like(10 + i, (40, 40)).save(outside / f"face{i}.png")
    (root / "extra").symlink_to(outside)
    (root / "extra_again").symlink_to(outside)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        dm = ready(folder_dm(root, tmp_path / "cache"))
    assert len(dm.dataset) == 10
    assert str(root / "extra_again") in " ".join(r.getMessage() for r in caplog.records)
    # the linked folder is a class of its own, as a real subfolder would be
    assert len(set(dm.dataset.labels.tolist())) == 4  # top level, cats, dogs, extra


@pytest.mark.parametrize("how", ["overwritten", "replaced"])
def test_same_size_file_with_restored_mtime_is_decoded_again(tmp_path: Path, how: str) -> None:
    root = tmp_path / "imgs"
    paths = write_image_folder(root)
    before = ready(folder_dm(root, tmp_path / "cache", shuffle=False)).dataset.images.clone()
    bmp = paths["top"]  # an 80x80 BMP: another 80x80 BMP has the same size in bytes
    old = bmp.stat()
    if how == "overwritten":
        face_like(7, (80, 80)).save(bmp, format="BMP")
    else:
        face_like(7, (80, 80)).save(root / "new.tmp", format="BMP")
        (root / "new.tmp").replace(bmp)
    assert bmp.stat().st_size == old.st_size
    os.utime(bmp, ns=(old.st_atime_ns, old.st_mtime_ns))
    after = ready(folder_dm(root, tmp_path / "cache", shuffle=False)).dataset.images
    fresh = ready(folder_dm(root, tmp_path / "fresh_cache", shuffle=False)).dataset.images
    assert not torch.equal(after, before)
    assert torch.equal(after, fresh)


def test_cache_verify_hash_reads_the_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "imgs"
    paths = write_image_folder(root)
    # the file-system key sees nothing change (as on a file system without inode or ctime)
    monkeypatch.setattr(files_module, "stat_key", lambda path: path)
    for verify in ("stat", "hash"):
        ready(folder_dm(root, tmp_path / "cache", shuffle=False, cache_verify=verify))
    face_like(7, (80, 80)).save(paths["top"], format="BMP")  # same size, other pixels
    by_stat = ready(folder_dm(root, tmp_path / "cache", shuffle=False, cache_verify="stat"))
    by_hash = ready(folder_dm(root, tmp_path / "cache", shuffle=False, cache_verify="hash"))
    fresh = ready(folder_dm(root, tmp_path / "fresh_cache", shuffle=False))
    assert not torch.equal(by_stat.dataset.images, fresh.dataset.images)  # stale: the key was blind
    assert torch.equal(by_hash.dataset.images, fresh.dataset.images)


def test_bad_cache_verify_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.cache_verify='md5'.*stat, hash"):
        folder_dm(tmp_path, tmp_path / "cache", cache_verify="md5")
    with pytest.raises(ConfigError, match=r"data.cache_verify='sha'"):
        celeba(tmp_path, tmp_path / "cache", cache_verify="sha")


def test_cache_verify_composes_from_the_command_line(compose_cfg, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from gan_lab.config import validate

    write_image_folder(tmp_path / "imgs")
    cfg = compose_cfg("data=image_folder", f"data.root={tmp_path / 'imgs'}", "data.cache_verify=hash")
    validate(cfg)
    assert instantiate(cfg.data).cache_verify == "hash"
    assert compose_cfg("data=celeba").data.cache_verify == "stat"


# ---------------------------------------------------------------- through the training entry point
@pytest.fixture
def all_datasets(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_mnist(root)
    write_cifar10(root)
    write_celeba(root)
    write_image_folder(root / "folder")
    return root


@pytest.mark.parametrize("data", ["mnist", "cifar10", "celeba", "image_folder"])
def test_short_training_run_on_each_dataset(
    compose_cfg, all_datasets: Path, tmp_path: Path, data: str
) -> None:
    out = tmp_path / "run"
    root = all_datasets / "folder" if data == "image_folder" else all_datasets
    cfg = compose_cfg(
        f"data={data}",
        f"data.root={root}",
        "data.resolution=32",
        "data.batch_size=4",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "trainer.max_steps=2",
        run_dir=out,
    )
    run(cfg)
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert (out / "samples" / "iter_0000002.png").is_file()


def test_celeba_resolution_builds_matching_networks(compose_cfg) -> None:
    cfg = compose_cfg("data=celeba", "data.resolution=128", "model=stylegan")
    model = build_module(cfg)
    assert model.G.resolution == 128 and model.G.channels == 3 and model.D.resolution == 128
    assert np.isclose(cfg.model.r1_gamma, 0.0002 * 128**2 / 16)

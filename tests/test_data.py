from pathlib import Path

import numpy as np
import pytest
import torch

from gan_lab.data.datamodule import ResumableDataLoader
from gan_lab.data.idx import read_idx, write_idx
from gan_lab.data.mnist import FashionMNISTDataModule
from gan_lab.data.sampler import SeededBatchSampler
from gan_lab.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

from .conftest import write_fashion_mnist


# ---------------------------------------------------------------- IDX files
@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path: Path, name: str) -> None:
    array = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    out = read_idx(write_idx(tmp_path / name, array))
    assert out.dtype == torch.uint8 and out.shape == (5, 28, 28)
    assert np.array_equal(out.numpy(), array)


def test_idx_header_bytes_follow_the_format(tmp_path: Path) -> None:
    raw = (write_idx(tmp_path / "f", np.zeros((3, 2), np.uint8))).read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 2])  # magic: unsigned byte, 2 dimensions
    assert raw[4:12] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big")


def test_idx_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DatasetFormatError, match=r"bad-idx3-ubyte.*magic"):
        read_idx(bad)
    good = write_idx(tmp_path / "cut-idx3-ubyte", np.zeros((10, 28, 28), np.uint8))
    good.write_bytes(good.read_bytes()[:-100])  # a truncated download
    with pytest.raises(DatasetFormatError, match=r"cut-idx3-ubyte.*shape"):
        read_idx(good)


# ---------------------------------------------------------------- sampler
def take(sampler: SeededBatchSampler, n: int) -> list[list[int]]:
    out: list[list[int]] = []
    while len(out) < n:
        out += list(iter(sampler))
    return out[:n]


def test_each_epoch_is_a_permutation_of_whole_batches() -> None:
    sampler = SeededBatchSampler(num_samples=103, batch_size=10, seed=3)
    epoch = list(iter(sampler))
    assert len(epoch) == len(sampler) == 10  # the 3 leftover images are dropped
    flat = [i for batch in epoch for i in batch]
    assert len(set(flat)) == 100 and all(0 <= i < 103 for i in flat)
    assert list(iter(sampler)) != epoch  # the next epoch has another order


def test_order_depends_only_on_seed_and_position() -> None:
    straight = take(SeededBatchSampler(50, 4, seed=1), 30)
    assert take(SeededBatchSampler(50, 4, seed=1), 30) == straight
    assert take(SeededBatchSampler(50, 4, seed=2), 30) != straight
    # a run resumed at batch 17 (into the second epoch) sees exactly what the straight run saw
    assert take(SeededBatchSampler(50, 4, seed=1, start_batch=17), 13) == straight[17:]


def test_ranks_take_disjoint_slices_of_each_global_batch() -> None:
    ranks = [take(SeededBatchSampler(64, 4, seed=0, rank=r, world_size=2), 8) for r in range(2)]
    single = take(SeededBatchSampler(64, 8, seed=0), 8)
    for step in range(8):
        assert ranks[0][step] + ranks[1][step] == single[step]


def test_dataset_smaller_than_a_batch_is_an_error() -> None:
    with pytest.raises(ValueError, match="fewer than one batch"):
        SeededBatchSampler(num_samples=10, batch_size=8, world_size=2)


# ---------------------------------------------------------------- Fashion-MNIST datamodule
def make_dm(root: Path, **kwargs) -> FashionMNISTDataModule:
    kwargs = {"search_dirs": [], "download": False, "batch_size": 16, **kwargs}
    dm = FashionMNISTDataModule(str(root), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.mark.parametrize(("resolution", "channels"), [(32, 1), (64, 1), (32, 3), (128, 3)])
def test_batches_are_float_in_range_at_the_resolution(
    fashion_root: Path, resolution: int, channels: int
) -> None:
    dm = make_dm(fashion_root, resolution=resolution, channels=channels)
    images_u8, labels = next(iter(dm.train_dataloader()))
    assert images_u8.dtype == torch.uint8 and images_u8.shape == (16, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.shape == (16,)
    images, _ = dm.on_after_batch_transfer((images_u8, labels), 0)
    assert images.dtype == torch.float32
    assert images.shape == (16, channels, resolution, resolution)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.min() == -1.0  # the black background maps to -1
    # framing: 28/32 of the side is image, the border is background
    border = resolution // 16
    assert (images[..., :border, :] == -1).all() and (images[..., -border:, :] == -1).all()


def test_values_are_exact_at_native_size(fashion_root: Path) -> None:
    dm = make_dm(fashion_root, resolution=32)
    images_u8, labels = next(iter(dm.train_dataloader()))
    images, _ = dm.on_after_batch_transfer((images_u8, labels), 0)
    # 32x32 = the 28x28 digits padded by 2, values x / 127.5 - 1 without resampling
    assert torch.allclose(images[:, :, 2:30, 2:30], images_u8.float() / 127.5 - 1)


def test_splits_and_labels(fashion_root: Path) -> None:
    assert len(make_dm(fashion_root, split="train").dataset) == 256
    test = make_dm(fashion_root, split="test").dataset
    assert len(test) == 64
    assert test.labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_loader_declares_itself_resumable(fashion_root: Path) -> None:
    loader = make_dm(fashion_root).train_dataloader()
    assert isinstance(loader, ResumableDataLoader)
    state = loader.state_dict()
    assert state["batch_size"] == 16 and state["num_samples"] == 256
    with pytest.warns(UserWarning, match="batch_size: 32 -> 16"):
        loader.load_state_dict({**state, "batch_size": 32})


def test_debian_folder_is_found(tmp_path: Path) -> None:
    debian = write_fashion_mnist(tmp_path / "usr-share-datasets-fashion-mnist")
    dm = FashionMNISTDataModule(str(tmp_path / "empty-root"), search_dirs=[str(debian)], download=False)
    dm.prepare_data()
    assert dm.files is not None and dm.files[0].parent == debian


def test_uncompressed_files_are_read(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((20, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(20, np.uint8))
    assert len(make_dm(tmp_path).dataset) == 20


def test_missing_dataset_says_both_ways_to_get_it(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(str(tmp_path), search_dirs=[str(tmp_path / "nowhere")], download=False)
    with pytest.raises(DatasetNotFoundError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "make data" in message
    assert str(tmp_path / "FashionMNIST" / "raw") in message


def test_images_and_labels_that_disagree_are_reported(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((20, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(DatasetFormatError, match="19 labels for 20 images"):
        make_dm(tmp_path)


def test_batch_larger_than_the_dataset_names_the_setting(fashion_root: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.batch_size=512 is larger than the train split .*256 images"):
        make_dm(fashion_root, batch_size=512)

"""Digits and MNIST data modules: shapes, ranges, splits, IDX reading, missing-file errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from audiorep.data.images import MNIST_FILES, DigitsDataModule, MNISTDataModule, read_idx


def test_digits_batches_and_splits() -> None:
    dm = DigitsDataModule(batch_size=32, seed=0)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (32, 1, 8, 8) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64
    images = dm.train_set.images
    assert images.min() >= 0 and images.max() == 1.0
    sizes = [len(dm.train_set), len(dm.val_set), len(dm.test_set)]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == 180
    again = DigitsDataModule(seed=0)
    again.setup()
    assert torch.equal(again.val_set.labels, dm.val_set.labels)
    assert dm.input_key == "image" and dm.image_shape == (1, 8, 8)
    assert dm.describe()["split_sizes"]["train"] == sizes[0]


def test_mnist_missing_files_error_says_what_to_do(tmp_path: Path) -> None:
    dm = MNISTDataModule(root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "data.root" in message
    for name in MNIST_FILES.values():
        assert name in message


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.fixture
def fake_mnist(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (30, 28, 28)),
        "train_labels": rng.integers(0, 10, 30),
        "test_images": rng.integers(0, 256, (7, 28, 28)),
        "test_labels": rng.integers(0, 10, 7),
    }
    for key, name in MNIST_FILES.items():
        # One file gzipped: both spellings must be found.
        _write_idx(tmp_path / (name + ".gz" if key == "train_images" else name), arrays[key])
    return tmp_path, arrays


def test_mnist_reads_idx_files(fake_mnist: tuple[Path, dict[str, np.ndarray]]) -> None:
    root, arrays = fake_mnist
    dm = MNISTDataModule(root=root, val_fraction=0.2, batch_size=4)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (24, 6, 7)
    np.testing.assert_allclose(
        dm.test_set.images[:, 0].numpy(), arrays["test_images"] / 255.0, rtol=1e-6
    )
    assert dm.test_set.labels.tolist() == arrays["test_labels"].tolist()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 28, 28) and batch["label"].dtype == torch.int64
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    # Train and val partition the training file.
    all_train = torch.cat([dm.train_set.images, dm.val_set.images]).flatten(1)
    assert len({tuple(row.tolist()) for row in all_train}) == 30


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="10"):
        read_idx(short)

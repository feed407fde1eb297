"""Image datasets the seed checked its models on: scikit-learn's 8x8 digits and MNIST.

Batches: dict(image (B, 1, H, W) float32 in [0, 1], label (B,) int64).
Nothing is downloaded: digits ship with scikit-learn, MNIST is read from the IDX files
the user puts under ``data.root``.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from audiorep.data.loading import make_dataloader

__all__ = ["ImageDataset", "DigitsDataModule", "MNISTDataModule", "read_idx", "MNIST_FILES"]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX type codes (third header byte) -> numpy big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class ImageDataset(Dataset):
    """In-memory images (N, H, W) float32 in [0, 1] and labels (N,) as dict items."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = torch.as_tensor(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "label": self.labels[i]}


def _split(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Seeded permutation of range(n) cut into parts of the given fractions (first takes the rest)."""
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    rest = [int(round(n * f)) for f in fractions[1:]]
    bounds = np.cumsum([n - sum(rest), *rest])[:-1]
    return np.split(np.random.default_rng(seed).permutation(n), bounds)


class _ImageDataModule(L.LightningDataModule):
    """Shared loaders for the image modules; subclasses fill train/val/test sets in setup."""

    input_key = "image"
    name = "images"

    def __init__(self, batch_size: int, num_workers: int, pin_memory: bool, seed: int):
        super().__init__()
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.seed = int(seed)
        self.train_set: ImageDataset | None = None
        self.val_set: ImageDataset | None = None
        self.test_set: ImageDataset | None = None
        self.image_shape: tuple[int, int, int] = (1, 0, 0)
        self.num_classes = 10

    def _loader(self, dataset: ImageDataset | None, shuffle: bool) -> DataLoader:
        return make_dataloader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the data, stored in checkpoints."""
        sizes = {
            k: (len(v) if v is not None else None)
            for k, v in (("train", self.train_set), ("val", self.val_set), ("test", self.test_set))
        }
        return {
            "name": self.name,
            "input_key": self.input_key,
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "split_sizes": sizes,
            "seed": self.seed,
        }


class DigitsDataModule(_ImageDataModule):
    """scikit-learn's bundled 1,797 8x8 digits (pixel values 0..16 scaled to [0, 1])."""

    name = "digits"

    def __init__(
        self,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__(batch_size, num_workers, pin_memory, seed)
        if len(splits) != 3:
            raise ValueError(
                f"data.splits must be three fractions (train, val, test), got {list(splits)}"
            )
        self.splits = list(splits)
        self.image_shape = (1, 8, 8)

    def setup(self, stage: str | None = None) -> None:
        """Load the digits and split them train/val/test with a permutation seeded by ``seed``."""
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = digits.images.astype(np.float32) / 16.0
        parts = _split(len(images), self.splits, self.seed)
        self.train_set, self.val_set, self.test_set = (
            ImageDataset(images[p], digits.target[p]) for p in parts
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "splits": self.splits}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), as used by MNIST -> array of its stored shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes), file holds {len(body)}"
        )
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


class MNISTDataModule(_ImageDataModule):
    """MNIST from the four standard IDX files under ``root`` (plain or .gz).

    Train is split train/val by ``val_fraction`` (seeded); test is the t10k set.
    """

    name = "mnist"

    def __init__(
        self,
        root: str | Path = "data/mnist",
        val_fraction: float = 0.1,
        seed: int = 0,
        batch_size: int = 100,
        num_workers: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__(batch_size, num_workers, pin_memory, seed)
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.root = Path(root)
        self.val_fraction = float(val_fraction)
        self.image_shape = (1, 28, 28)

    def _find(self, name: str) -> Path | None:
        # torchvision keeps the raw files under MNIST/raw; accept that layout too.
        for folder in (self.root, self.root / "MNIST" / "raw"):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        return None

    def files(self) -> dict[str, Path]:
        """Paths of the four IDX files; FileNotFoundError saying what to put where if any is missing."""
        found = {key: self._find(name) for key, name in MNIST_FILES.items()}
        missing = [MNIST_FILES[k] for k, p in found.items() if p is None]
        if missing:
            raise FileNotFoundError(
                f"MNIST files not found under {self.root} (config key data.root): missing "
                f"{', '.join(missing)} (plain or .gz). Put the four standard IDX files "
                f"{', '.join(MNIST_FILES.values())} there (from http://yann.lecun.com/exdb/mnist/ "
                "or a mirror such as https://ossci-datasets.s3.amazonaws.com/mnist/), or set "
                "data.root=/path/to/mnist. Nothing is downloaded at run time."
            )
        return found  # type: ignore[return-value]

    def prepare_data(self) -> None:
        """Check the files are there (nothing is downloaded)."""
        self.files()

    def setup(self, stage: str | None = None) -> None:
        """Read the IDX files and split train/val with a permutation seeded by ``seed``."""
        files = self.files()
        arrays = {key: read_idx(path) for key, path in files.items()}
        for split in ("train", "test"):
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            if images.ndim != 3 or len(images) != len(labels):
                raise ValueError(
                    f"{files[f'{split}_images']} and {files[f'{split}_labels']} disagree: "
                    f"images {images.shape}, labels {labels.shape}"
                )
        train_images = arrays["train_images"].astype(np.float32) / 255.0
        train_labels = arrays["train_labels"]
        self.image_shape = (1, *train_images.shape[1:])
        train_idx, val_idx = _split(
            len(train_images), [1 - self.val_fraction, self.val_fraction], self.seed
        )
        self.train_set = ImageDataset(train_images[train_idx], train_labels[train_idx])
        self.val_set = ImageDataset(train_images[val_idx], train_labels[val_idx])
        self.test_set = ImageDataset(
            arrays["test_images"].astype(np.float32) / 255.0, arrays["test_labels"]
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": str(self.root), "val_fraction": self.val_fraction}

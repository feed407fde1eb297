"""Any folder of audio as a LightningDataModule: ``data=audio_folder data.root=<folder>``.

The clips come from a folder scanned at any depth (label = parent folder name) or from a
metadata CSV (``data.metadata``, ``data.path_column``, ``data.label_columns``, and
optionally ``data.fold_column`` / ``data.group_column``). ``prepare_data`` runs the
resumable preprocessing pass (``audiorep.data.preprocess``) into
``<data_dir>/audio_cache/<hash of the config>/``; ``setup`` memory-maps its packed audio.

Splits: predefined folds when the data has them (``data.test_fold``, ``data.val_fold``;
without a validation fold, validation clips are drawn from the training folds), otherwise
seeded ``data.splits``; both keep each group (``data.group_column``: a speaker, a session)
inside one split.

Batches: dict(audio (B, num_samples) float32, clip_index (B,) int64 into the kept clips,
label (B,) int64: the first label column, classes sorted). Training crops are random,
validation and test crops centred; short clips are zero-padded at the end. With
``data.sampler`` the sampler's dataset serves the batches instead.

Ready-made layouts: ``FMADataModule`` (``data=fma``), ESC-50 through the CSV options
(``data=esc50``) and ``DCASE2018Task5DataModule`` (``data=dcase2018_task5``). Datasets
that render their own files subclass this and override ``_source``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from audiorep.data.cache import config_hash, read_manifest, verify_manifest
from audiorep.data.clips import (
    ClipTable,
    check_root,
    fold_splits,
    read_dcase2018_task5,
    read_fma_tracks,
    read_metadata,
    scan_folder,
    split_indices,
)
from audiorep.data.loading import already_batched, make_dataloader
from audiorep.data.preprocess import PACKED_FILE, REPORT_FILE, load_index, preprocess_clips

log = logging.getLogger(__name__)

__all__ = ["AudioFolderDataModule", "ClipDataset", "DCASE2018Task5DataModule", "FMADataModule"]

SPLITS = ("train", "val", "test")


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _natural_key(name: str) -> tuple[int, int | str]:
    """Sort fold names 2 before 10, and numbers before words."""
    return (0, int(name)) if name.isdigit() else (1, name)


class ClipDataset(Dataset):
    """Fixed-length crops of packed clips, served a whole batch at a time.

    ``indices`` are the kept clips of one split. ``random_crop``: a uniformly drawn start
    (torch's RNG, which Lightning seeds in every DataLoader worker) instead of the centre.
    """

    def __init__(
        self,
        packed_path: str | Path,
        offsets: np.ndarray,
        indices: np.ndarray,
        labels: np.ndarray,
        num_samples: int,
        random_crop: bool,
    ):
        self.packed_path = Path(packed_path)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_samples = int(num_samples)
        self.random_crop = random_crop
        self._audio: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _array(self) -> np.ndarray:
        if self._audio is None:
            self._audio = np.load(self.packed_path, mmap_mode="r")
        return self._audio

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        clips = self.indices[np.asarray(positions, dtype=np.int64)]
        starts, ends = self.offsets[clips], self.offsets[clips + 1]
        spare = np.maximum(ends - starts - self.num_samples, 0)
        if self.random_crop:
            shift = (torch.rand(len(clips), dtype=torch.float64).numpy() * (spare + 1)).astype(
                np.int64
            )
        else:
            shift = spare // 2
        packed = self._array()
        audio = np.zeros((len(clips), self.num_samples), dtype=np.float32)
        for row, (start, end) in enumerate(zip(starts + shift, ends)):
            segment = packed[start : min(end, start + self.num_samples)]
            audio[row, : len(segment)] = segment
        return {
            "audio": torch.from_numpy(audio),
            "clip_index": torch.from_numpy(clips.copy()),
            "label": torch.from_numpy(self.labels[clips]),
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}

    def __getstate__(self) -> dict[str, Any]:
        # Workers reopen the memmap instead of receiving a pickled copy of it.
        state = self.__dict__.copy()
        state["_audio"] = None
        return state


class AudioFolderDataModule(L.LightningDataModule):
    """Clips of audio files under ``root``; see the module docstring."""

    input_key = "audio"
    name = "audio_folder"

    def __init__(
        self,
        root: str | Path | None,
        metadata: str | Path | None = None,
        path_column: str = "path",
        label_columns: Sequence[str] | str | None = None,
        fold_column: str | None = None,
        group_column: str | None = None,
        sample_rate: int = 16000,
        min_seconds: float = 0.1,
        max_seconds: float | None = None,
        clip_seconds: float = 4.0,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        val_fold: str | int | None = None,
        test_fold: str | int | None = None,
        seed: int = 0,
        sampler: Any = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        data_dir: str | Path = "data",
        preprocess_workers: int = 2,
        silence_db: float = -60.0,
        audio_dir: str = "",
        progress: bool = True,
    ):
        super().__init__()
        if int(sample_rate) <= 0:
            raise ValueError(
                f"data.sample_rate must be a positive number of Hz (got {sample_rate})"
            )
        if not clip_seconds or clip_seconds <= 0:
            raise ValueError(
                f"data.clip_seconds must be > 0 (got {clip_seconds}): the batch length"
            )
        if int(batch_size) <= 0:
            raise ValueError(f"data.batch_size must be > 0 (got {batch_size})")
        self.root = None if root is None else Path(root).expanduser()
        self.metadata_path = None if metadata is None else str(metadata)
        self.path_column = str(path_column)
        self.label_columns = _as_list(label_columns) or ["label"]
        self._label_column_arg = _as_list(label_columns)
        self.fold_column = fold_column
        self.group_column = group_column
        self.audio_dir = str(audio_dir or "")
        self.sample_rate = int(sample_rate)
        self.min_seconds = float(min_seconds)
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        self.silence_db = float(silence_db)
        self.clip_seconds = float(clip_seconds)
        self.num_samples = int(round(self.clip_seconds * self.sample_rate))
        self.splits = [float(s) for s in splits]
        self.val_fold = val_fold
        self.test_fold = test_fold
        self.seed = int(seed)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.data_dir = Path(data_dir)
        self.preprocess_workers = int(preprocess_workers)
        self.progress = progress
        # A subclass that renders its own files checks them in its _source instead.
        if type(self)._source is AudioFolderDataModule._source:
            self.root = check_root(self.root)
            if self.metadata_path is None and (fold_column or group_column):
                raise ValueError(
                    "data.fold_column and data.group_column are columns of data.metadata: "
                    "give a metadata CSV, or set them to null"
                )
        self._index: dict[str, Any] | None = None
        self._packed: np.ndarray | None = None
        self._splits: dict[str, np.ndarray] = {}
        self._datasets: dict[str, ClipDataset] = {}
        self.metadata: dict[str, np.ndarray] = {}
        self.classes: dict[str, list[str]] = {}
        self.folds: np.ndarray | None = None
        self.lengths = np.zeros(0, dtype=np.int64)
        self.offsets = np.zeros(1, dtype=np.int64)

    # -- where the clips come from ----------------------------------------------------
    def _source(self) -> tuple[Path, ClipTable]:
        """The root folder and its clip table; subclasses render or parse their own."""
        root = check_root(self.root)
        if self.metadata_path is None:
            return root, scan_folder(root)
        table = read_metadata(
            root,
            self.metadata_path,
            self.path_column,
            self._label_column_arg,
            self.fold_column,
            self.group_column,
            audio_dir=self.audio_dir,
        )
        return root, table

    def _cache_config(self) -> dict[str, Any]:
        """What determines the cache's contents; its hash names the cache directory.

        Subclasses add their own parameters (a changed file list is detected anyway, by
        the preprocessing manifest)."""
        return {
            "name": self.name,
            "root": None if self.root is None else str(self.root.resolve()),
            "metadata": self.metadata_path,
            "path_column": self.path_column,
            "label_columns": self._label_column_arg,
            "fold_column": self.fold_column,
            "group_column": self.group_column,
            "audio_dir": self.audio_dir,
            "sample_rate": self.sample_rate,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "silence_db": self.silence_db,
        }

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "audio_cache" / config_hash(self._cache_config())

    # -- Lightning hooks --------------------------------------------------------------
    def prepare_data(self) -> None:
        """Decode and cache every clip (resumable; a finished cache is reused)."""
        root, table = self._source()
        preprocess_clips(
            table,
            root,
            self.cache_dir,
            self.sample_rate,
            min_seconds=self.min_seconds,
            max_seconds=self.max_seconds,
            silence_db=self.silence_db,
            num_workers=self.preprocess_workers,
            progress=self.progress,
        )

    def _cache_is_complete(self) -> bool:
        manifest = read_manifest(self.cache_dir)
        # Sizes only: prepare_data checked the checksums, and setup runs on every rank.
        return manifest is not None and (
            verify_manifest(self.cache_dir, manifest.get("config", {}), checksums=False) is None
        )

    def setup(self, stage: str | None = None) -> None:
        """Read the cache's index, memory-map its packed audio and draw the splits."""
        if self._index is not None:
            return
        if not self._cache_is_complete():
            log.info("no finished audio cache in %s yet: preprocessing now", self.cache_dir)
            self.prepare_data()
        index = load_index(self.cache_dir)
        if index["num_clips"] == 0:
            raise ValueError(
                f"no usable audio: all {index['num_skipped']} files were skipped; the reasons "
                f"are in {self.cache_dir / REPORT_FILE}"
            )
        self._index = index
        self._packed = np.load(self.cache_dir / PACKED_FILE, mmap_mode="r")
        self.lengths = np.asarray(index["lengths"], dtype=np.int64)
        self.offsets = np.asarray(index["offsets"], dtype=np.int64)
        self.label_columns = list(index["labels"])
        self.metadata = {"path": np.asarray(index["paths"], dtype=str)}
        for column, values in index["labels"].items():
            self.metadata[column] = np.asarray(values, dtype=str)
            self.classes[column] = sorted(set(values))
        self.folds = None if index["folds"] is None else np.asarray(index["folds"], dtype=str)
        if self.folds is not None:
            self.metadata["fold"] = self.folds
        groups = None if index["groups"] is None else np.asarray(index["groups"], dtype=str)
        if groups is not None:
            self.metadata["group"] = groups
        self._splits = self._draw_splits(groups)
        first = self.label_columns[0]
        codes = np.searchsorted(np.asarray(self.classes[first], dtype=str), self.metadata[first])
        self._datasets = {
            split: ClipDataset(
                self.cache_dir / PACKED_FILE,
                self.offsets,
                self._splits[split],
                codes,
                self.num_samples,
                random_crop=split == "train",
            )
            for split in SPLITS
        }

    def _draw_splits(self, groups: np.ndarray | None) -> dict[str, np.ndarray]:
        n = len(self.lengths)
        if self.folds is None:
            if self.test_fold is not None or self.val_fold is not None:
                raise ValueError(
                    "data.test_fold / data.val_fold need folds: set data.fold_column to the "
                    "metadata column that holds them, or set both to null for seeded splits"
                )
            return split_indices(n, self.splits, self.seed, groups)
        test_fold = self.test_fold
        if test_fold is None:
            test_fold = sorted(set(self.folds.tolist()), key=_natural_key)[-1]
            log.info("data.test_fold not set: testing on the last fold, %s", test_fold)
        parts = fold_splits(self.folds, test_fold, self.val_fold)
        if self.val_fold is None:
            # Validation clips from the training folds, group-aware, in the proportion
            # data.splits gives validation against training.
            train = parts["train"]
            val_share = self.splits[1] / max(self.splits[0] + self.splits[1], 1e-12)
            sub = split_indices(
                len(train),
                (1 - val_share, val_share),
                self.seed,
                None if groups is None else groups[train],
            )
            parts = {"train": train[sub["train"]], "val": train[sub["val"]], "test": parts["test"]}
        return parts

    # -- the clips --------------------------------------------------------------------
    def _require_setup(self) -> dict[str, Any]:
        if self._index is None:
            raise RuntimeError("call prepare_data() and setup() before reading clips")
        return self._index

    @property
    def num_clips(self) -> int:
        """Number of kept (usable) clips."""
        return int(self._require_setup()["num_clips"])

    def split_indices(self, split: str) -> np.ndarray:
        """Indices into the kept clips of ``split`` ("train", "val" or "test")."""
        self._require_setup()
        if split not in self._splits:
            raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        return self._splits[split]

    @property
    def packed_audio(self) -> tuple[np.ndarray, np.ndarray]:
        """(1-D float32 memmap of every kept clip end to end, offsets (num_clips + 1,) int64)."""
        self._require_setup()
        return self._packed, self.offsets

    def clip_audio(self, i: int) -> np.ndarray:
        """The whole of kept clip ``i`` (a read-only view of the memmap)."""
        self._require_setup()
        return self._packed[self.offsets[i] : self.offsets[i + 1]]

    def source_path(self, i: int) -> Path:
        """The original audio file of kept clip ``i``."""
        index = self._require_setup()
        return Path(index["root"]) / index["paths"][i]

    # -- loaders ----------------------------------------------------------------------
    def _loader(self, split: str) -> DataLoader:
        if self._index is None:
            dataset = None  # make_dataloader says to call setup()
        elif self.sampler is not None:
            dataset = self.sampler.dataset(self, split, self.seed)
        else:
            dataset = self._datasets[split]
        return make_dataloader(
            dataset,
            batch_size=self.batch_size,
            shuffle=split == "train",
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            # Batches come whole from the datasets' __getitems__.
            collate_fn=already_batched,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def describe(self) -> dict[str, Any]:
        """JSON-able description for checkpoints; counts once the cache is built."""
        description: dict[str, Any] = {
            "name": self.name,
            "input_key": self.input_key,
            "root": None if self.root is None else str(self.root),
            "cache_dir": str(self.cache_dir),
            "config": self._cache_config(),
            "label_columns": list(self.label_columns),
            "sample_rate": self.sample_rate,
            "clip_seconds": self.clip_seconds,
            "num_samples": self.num_samples,
            "splits": self.splits,
            "val_fold": self.val_fold,
            "test_fold": self.test_fold,
            "seed": self.seed,
        }
        if self.sampler is not None and hasattr(self.sampler, "describe"):
            description["sampler"] = self.sampler.describe()
        index = self._index
        if index is None and self._cache_is_complete():
            index = load_index(self.cache_dir)
        if index is not None:
            description.update(
                num_clips=index["num_clips"],
                num_skipped=index["num_skipped"],
                num_truncated=index["num_truncated"],
                report=str(self.cache_dir / REPORT_FILE),
                classes={k: sorted(set(v)) for k, v in index["labels"].items()},
            )
        if self._splits:
            description["split_sizes"] = {k: len(v) for k, v in self._splits.items()}
        return description


class FMADataModule(AudioFolderDataModule):
    """The Free Music Archive: ``data.root`` holds ``fma_metadata/`` and ``fma_<subset>/``.

    Labels: ``genre_top`` (from ``track/genre_top``); folds: FMA's own
    training/validation/test split; groups: artists.
    """

    name = "fma"
    #: FMA's folds are its fixed training/validation/test split, not folds to rotate.
    folds_are_cross_validation = False

    def __init__(
        self,
        root: str | Path | None,
        subset: str = "small",
        metadata: str = "fma_metadata/tracks.csv",
        label_columns: Sequence[str] | str = ("track/genre_top",),
        fold_column: str | None = "set/split",
        group_column: str | None = "artist/id",
        test_fold: str | None = "test",
        val_fold: str | None = "validation",
        **kwargs: Any,
    ):
        self.subset = str(subset)
        super().__init__(
            root,
            metadata=metadata,
            label_columns=label_columns,
            fold_column=fold_column,
            group_column=group_column,
            test_fold=test_fold,
            val_fold=val_fold,
            **kwargs,
        )
        self.root = check_root(self.root)
        self.label_columns = [c.rsplit("/", 1)[-1] for c in self._label_column_arg or []]

    def _source(self) -> tuple[Path, ClipTable]:
        root = check_root(self.root)
        table = read_fma_tracks(
            root,
            self.subset,
            self.metadata_path or "fma_metadata/tracks.csv",
            audio_dir=self.audio_dir or None,
            label_columns=self._label_column_arg or ("track/genre_top",),
            fold_column=self.fold_column,
            group_column=self.group_column,
        )
        return root, table

    def _cache_config(self) -> dict[str, Any]:
        return {**super()._cache_config(), "subset": self.subset}


class DCASE2018Task5DataModule(AudioFolderDataModule):
    """DCASE 2018 task 5 development set: ``data.root`` holds ``meta.txt``, ``audio/`` and
    ``evaluation_setup/``. Labels ``activity`` and ``node``; the 4 folds of the dataset;
    sessions as groups."""

    name = "dcase2018_task5"

    def __init__(
        self,
        root: str | Path | None,
        metadata: str = "meta.txt",
        test_fold: str | int | None = 1,
        **kwargs: Any,
    ):
        super().__init__(root, metadata=metadata, test_fold=test_fold, **kwargs)
        self.root = check_root(self.root)
        self.label_columns = ["activity", "node"]

    def _source(self) -> tuple[Path, ClipTable]:
        root = check_root(self.root)
        return root, read_dcase2018_task5(root, self.metadata_path or "meta.txt")

"""Clip tables, splits and the audio-folder data module, with its ready-made layouts."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hydra.utils import instantiate
from omegaconf.errors import MissingMandatoryValue

from audiorep.audio.io import read_audio
from audiorep.data.audio_folder import AudioFolderDataModule, FMADataModule
from audiorep.data.clips import (
    fold_splits,
    read_csv_table,
    read_dcase2018_task5,
    read_fma_tracks,
    read_metadata,
    scan_folder,
    split_indices,
)

SR = 8000


def write_tone(path: Path, seconds: float, freq: float, sample_rate: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate)


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """3 classes x 4 clips, nested, lengths 0.3-0.75 s, plus a file that is not audio."""
    root = tmp_path / "sounds"
    for c, name in enumerate(["bird", "car", "dog"]):
        for k in range(4):
            sub = "deep/er" if k == 3 else ""
            write_tone(root / name / sub / f"{name}{k}.wav", 0.3 + 0.15 * k, 200.0 * (c + 1))
    (root / "notes.txt").write_text("not listed: wrong extension")
    (root / "dog" / "broken.wav").write_text("not audio")
    return root


def make_dm(root: Path, tmp_path: Path, **kwargs) -> AudioFolderDataModule:
    kw = dict(
        sample_rate=SR,
        clip_seconds=0.5,
        batch_size=4,
        data_dir=tmp_path / "data",
        preprocess_workers=0,
        progress=False,
    )
    kw.update(kwargs)
    return AudioFolderDataModule(root, **kw)


# -- clip tables --------------------------------------------------------------------


def test_scan_folder_is_recursive_sorted_and_labels_by_parent_folder(folder: Path) -> None:
    table = scan_folder(folder)
    assert table.paths == sorted(table.paths) and len(table) == 13
    assert "dog/deep/er/dog3.wav" in table.paths and "notes.txt" not in table.paths
    labels = dict(zip(table.paths, table.labels["label"]))
    assert labels["bird/bird0.wav"] == "bird" and labels["dog/deep/er/dog3.wav"] == "er"
    assert table.folds is None and table.groups is None
    # A flat folder: every file is labelled with the folder's own name.
    flat = scan_folder(folder / "car")
    assert set(flat.labels["label"]) == {"car", "er"}


def test_scan_folder_errors_name_data_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data.root=.*does not exist"):
        scan_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no audio files"):
        scan_folder(tmp_path / "empty")


def test_read_metadata_columns_missing_rows_and_errors(folder: Path) -> None:
    write_csv(
        folder / "meta" / "m.csv",
        [
            ["file", "species", "fold", "who"],
            ["bird0.wav", "b", "1", "x"],
            ["gone.wav", "g", "2", "y"],
        ],
    )
    table = read_metadata(
        folder, "meta/m.csv", "file", ["species"], "fold", "who", audio_dir="bird"
    )
    # A row naming a missing file stays: preprocessing reports it as "missing file".
    assert table.paths == ["bird/bird0.wav", "bird/gone.wav"]
    assert table.labels == {"species": ["b", "g"]}
    assert table.folds == ["1", "2"] and table.groups == ["x", "y"]
    with pytest.raises(
        ValueError,
        match=r"m\.csv has no column 'label' \(data.label_columns=label\).*file, species, fold, who",
    ):
        read_metadata(folder, "meta/m.csv", "file", ["label"])
    with pytest.raises(ValueError, match="data.path_column"):
        read_metadata(folder, "meta/m.csv", "path", None)
    with pytest.raises(FileNotFoundError, match="data.metadata=nope.csv"):
        read_metadata(folder, "nope.csv", "file", None)
    write_csv(folder / "bad.csv", [["file"], ["/etc/passwd"]])
    with pytest.raises(ValueError, match="outside data.root"):
        read_metadata(folder, "bad.csv", "file", None)


def test_multi_row_header_and_fma_tracks(tmp_path: Path) -> None:
    rows = [
        ["", "artist", "set", "set", "track", "track"],
        ["", "id", "split", "subset", "genre_top", "title"],
        ["track_id", "", "", "", "", ""],
        ["2", "1", "training", "small", "Hip-Hop", "a"],
        ["140", "7", "test", "small", "Folk", "b"],
        ["1002", "7", "validation", "medium", "Rock", "c"],
        ["3000", "9", "training", "large", "", "d"],
        ["123456", "9", "training", "large", "Pop", "e"],
    ]
    write_csv(tmp_path / "fma_metadata" / "tracks.csv", rows)
    columns = read_csv_table(tmp_path / "fma_metadata" / "tracks.csv")
    assert list(columns)[:4] == ["track_id", "artist/id", "set/split", "set/subset"]
    assert columns["track/genre_top"] == ["Hip-Hop", "Folk", "Rock", "", "Pop"]
    small = read_fma_tracks(tmp_path, "small")
    assert small.paths == ["fma_small/000/000002.mp3", "fma_small/000/000140.mp3"]
    assert small.labels == {"genre_top": ["Hip-Hop", "Folk"]}
    assert small.folds == ["training", "test"] and small.groups == ["1", "7"]
    medium = read_fma_tracks(tmp_path, "medium")
    assert medium.paths[-1] == "fma_medium/001/001002.mp3"
    # large: every subset; the track without a top genre is left out.
    large = read_fma_tracks(tmp_path, "large")
    assert large.paths[-1] == "fma_large/123/123456.mp3" and len(large) == 4
    with pytest.raises(ValueError, match="data.subset"):
        read_fma_tracks(tmp_path, "tiny")


def make_dcase(root: Path) -> None:
    meta, folds = [], {1: [], 2: []}
    for s, (activity, fold) in enumerate(
        [("cooking", 1), ("absence", 1), ("cooking", 2), ("eating", 2)]
    ):
        for node in (1, 2):
            for seg in (1, 2):
                name = f"audio/DevNode{node}_ex{s}_{seg}.wav"
                write_tone(root / name, 0.3, 100.0 * (s + 1), 16000)
                meta.append([name, activity, f"{activity}_{s}"])
                folds[fold].append([name, activity])
    (root / "meta.txt").write_text("".join("\t".join(r) + "\n" for r in meta))
    for k, rows in folds.items():
        path = root / "evaluation_setup" / f"fold{k}_evaluate.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join("\t".join(r) + "\n" for r in rows))


def test_dcase2018_task5_layout(tmp_path: Path) -> None:
    make_dcase(tmp_path)
    table = read_dcase2018_task5(tmp_path)
    assert len(table) == 16 and table.paths[0] == "audio/DevNode1_ex0_1.wav"
    assert table.labels["activity"][:4] == ["cooking"] * 4
    assert table.labels["node"][:4] == ["1", "1", "2", "2"]
    assert table.folds == ["1"] * 8 + ["2"] * 8
    assert table.groups[:4] == ["cooking_0"] * 4
    with pytest.raises(FileNotFoundError, match="meta.txt"):
        read_dcase2018_task5(tmp_path / "audio")


# -- splits -------------------------------------------------------------------------


def test_split_indices_are_seeded_disjoint_and_cover_everything() -> None:
    parts = split_indices(103, (0.8, 0.1, 0.1), seed=3)
    sizes = [len(parts[k]) for k in ("train", "val", "test")]
    assert sizes == [83, 10, 10]
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(103))
    again = split_indices(103, (0.8, 0.1, 0.1), seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    other = split_indices(103, (0.8, 0.1, 0.1), seed=4)
    assert not np.array_equal(parts["test"], other["test"])
    assert len(split_indices(10, (0.7, 0.3))["test"]) == 0
    with pytest.raises(ValueError, match="data.splits"):
        split_indices(10, (0.5, 0.6))


def test_grouped_splits_never_share_a_group_and_follow_the_fractions() -> None:
    rng = np.random.default_rng(0)
    groups = [f"speaker{s}" for s in rng.integers(0, 30, 600)]
    parts = split_indices(600, (0.8, 0.1, 0.1), seed=1, groups=groups)
    names = {k: {groups[i] for i in v} for k, v in parts.items()}
    assert not names["train"] & names["val"] and not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    assert sum(len(v) for v in parts.values()) == 600
    assert abs(len(parts["train"]) - 480) < 40 and 30 < len(parts["test"]) < 90
    # Few groups: each split still gets one.
    few = split_indices(30, (0.8, 0.1, 0.1), groups=["a"] * 10 + ["b"] * 10 + ["c"] * 10)
    assert [len(few[k]) for k in ("train", "val", "test")] == [10, 10, 10]


def test_fold_splits() -> None:
    folds = ["1", "2", "3", "1", "2", "3"]
    parts = fold_splits(folds, test_fold=3, val_fold="2")
    assert parts["test"].tolist() == [2, 5] and parts["val"].tolist() == [1, 4]
    assert parts["train"].tolist() == [0, 3]
    assert fold_splits(folds, 1, None)["val"].tolist() == []
    with pytest.raises(
        ValueError, match=r"data.test_fold=7 is not one of the data's folds: 1, 2, 3"
    ):
        fold_splits(folds, 7, None)
    with pytest.raises(ValueError, match="both 2"):
        fold_splits(folds, 2, 2)


# -- the data module ----------------------------------------------------------------


def test_datamodule_batches_crops_and_clip_access(folder: Path, tmp_path: Path) -> None:
    dm = make_dm(folder, tmp_path, splits=(0.5, 0.25, 0.25))
    assert dm.num_samples == 4000 and dm.input_key == "audio"
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_clips == 12  # broken.wav skipped
    assert (dm.cache_dir / "report.csv").read_text().count("broken.wav") == 1
    assert dm.label_columns == ["label"] and dm.classes["label"] == ["bird", "car", "dog", "er"]
    assert dm.metadata["path"][0] == "bird/bird0.wav" and dm.folds is None
    packed, offsets = dm.packed_audio
    assert packed.dtype == np.float32 and offsets.shape == (13,) and offsets[-1] == len(packed)
    assert np.array_equal(np.diff(offsets), dm.lengths)
    np.testing.assert_allclose(dm.clip_audio(1), read_audio(dm.source_path(1))[0], atol=1e-6)
    assert dm.source_path(1) == folder / "bird" / "bird1.wav"

    splits = {k: dm.split_indices(k) for k in ("train", "val", "test")}
    assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(12))
    batch = next(iter(dm.val_dataloader()))
    assert batch["audio"].shape == (3, 4000) and batch["audio"].dtype == torch.float32
    assert batch["clip_index"].tolist() == splits["val"].tolist()
    names = np.asarray(dm.classes["label"])[batch["label"].numpy()]
    assert names.tolist() == dm.metadata["label"][splits["val"]].tolist()
    # Centred crops for val/test: the same every time, equal to the clip's middle.
    for row, i in enumerate(batch["clip_index"].tolist()):
        clip, n = dm.clip_audio(i), len(dm.clip_audio(i))
        if n >= 4000:
            start = (n - 4000) // 2
            np.testing.assert_array_equal(batch["audio"][row].numpy(), clip[start : start + 4000])
        else:  # short clips are zero-padded at the end
            np.testing.assert_array_equal(batch["audio"][row, :n].numpy(), clip)
            assert not batch["audio"][row, n:].any()
    # Random crops for training: different draws, each a true window of its clip.
    train = dm.train_dataloader().dataset
    position = int(np.flatnonzero(dm.lengths[train.indices] > 5000)[0])
    clip = dm.clip_audio(int(train.indices[position]))
    starts = set()
    for _ in range(8):
        crop = train[position]["audio"].numpy()
        windows = np.lib.stride_tricks.sliding_window_view(clip, 4000)
        starts.add(int(np.flatnonzero((windows == crop).all(axis=1))[0]))
    assert len(starts) > 1
    json.dumps(dm.describe())
    assert dm.describe()["num_clips"] == 12 and dm.describe()["num_skipped"] == 1


def test_datamodule_folds_groups_and_metadata_labels(folder: Path, tmp_path: Path) -> None:
    table = scan_folder(folder)
    rows = [["path", "animal", "fold", "speaker"]]
    for k, path in enumerate(table.paths):
        rows.append([path, path.split("/")[0], str(k % 3 + 1), f"s{k // 2}"])
    write_csv(folder / "meta.csv", rows)
    dm = make_dm(
        folder,
        tmp_path,
        metadata="meta.csv",
        label_columns=["animal"],
        fold_column="fold",
        group_column="speaker",
        test_fold=3,
    )
    dm.setup()  # preprocesses on its own when prepare_data was not called
    assert dm.label_columns == ["animal"] and set(dm.metadata) == {
        "path",
        "animal",
        "fold",
        "group",
    }
    test, val, train = (dm.split_indices(k) for k in ("test", "val", "train"))
    assert set(dm.folds[test]) == {"3"} and "3" not in set(dm.folds[train]) | set(dm.folds[val])
    assert len(val) > 0 and not set(dm.metadata["group"][val]) & set(dm.metadata["group"][train])
    with pytest.raises(ValueError, match="data.test_fold=9"):
        make_dm(folder, tmp_path, metadata="meta.csv", fold_column="fold", test_fold=9).setup()
    with pytest.raises(ValueError, match="data.fold_column"):
        make_dm(folder, tmp_path, fold_column="fold")


class PairSampler:
    """A stand-in training sampler: batches of (first sample of the clip) per position."""

    class Data(torch.utils.data.Dataset):
        def __init__(self, dm: AudioFolderDataModule, split: str):
            self.packed, self.offsets = dm.packed_audio
            self.clips = dm.split_indices(split)

        def __len__(self) -> int:
            return len(self.clips)

        def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
            clips = self.clips[positions]
            return {"first": torch.from_numpy(np.asarray(self.packed[self.offsets[clips]]))}

    def dataset(self, dm: AudioFolderDataModule, split: str, seed: int) -> Data:
        return self.Data(dm, split)


def test_a_sampler_serves_the_batches(folder: Path, tmp_path: Path) -> None:
    dm = make_dm(folder, tmp_path, sampler=PairSampler())
    with pytest.raises(RuntimeError, match="setup"):
        dm.train_dataloader()
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"first"} and batch["first"].shape == (len(dm.split_indices("val")),)


def test_hydra_configs_name_data_root(compose_train: Callable, tmp_path: Path) -> None:
    with pytest.raises(MissingMandatoryValue, match="data.root"):
        instantiate(compose_train("data=audio_folder").data)
    with pytest.raises(Exception, match=r"data.root=.*does not exist.*set data.root"):
        instantiate(compose_train("data=audio_folder", f"data.root={tmp_path / 'missing'}").data)


def test_esc50_config_reads_the_esc50_layout(compose_train: Callable, tmp_path: Path) -> None:
    root = tmp_path / "ESC-50-master"
    rows = [["filename", "fold", "target", "category", "esc10", "src_file", "take"]]
    for fold in range(1, 6):
        for k, (target, category) in enumerate([(0, "dog"), (1, "rooster")]):
            name = f"{fold}-{100 + k}-A-{target}.wav"
            write_tone(root / "audio" / name, 0.5, 300.0 + 100 * k, 44100)
            rows.append([name, str(fold), str(target), category, "True", f"{100 + k}", "A"])
    write_csv(root / "meta" / "esc50.csv", rows)
    cfg = compose_train("data=esc50", f"data.root={root}", "data.preprocess_workers=0")
    dm = instantiate(cfg.data, progress=False)
    dm.setup()
    assert dm.num_clips == 10 and dm.label_columns == ["category"]
    assert set(dm.folds[dm.split_indices("test")]) == {"5"}
    assert dm.source_path(0).parent == root / "audio"


def test_fma_and_dcase_configs(compose_train: Callable, tmp_path: Path) -> None:
    fma = tmp_path / "fma"
    write_csv(
        fma / "fma_metadata" / "tracks.csv",
        [
            ["", "artist", "set", "set", "track"],
            ["", "id", "split", "subset", "genre_top"],
            ["track_id", "", "", "", ""],
            *[
                [str(t), str(t), s, "small", g]
                for t, s, g in [
                    (2, "training", "Rock"),
                    (3, "validation", "Folk"),
                    (5, "test", "Rock"),
                    (1999, "training", "Folk"),
                ]
            ],
        ],
    )
    for t in (2, 3, 5, 1999):
        write_tone(fma / "fma_small" / f"{t // 1000:03d}" / f"{t:06d}.wav", 0.3, 440.0)
        (fma / "fma_small" / f"{t // 1000:03d}" / f"{t:06d}.wav").rename(
            fma / "fma_small" / f"{t // 1000:03d}" / f"{t:06d}.mp3"
        )
    dm = instantiate(
        compose_train("data=fma", f"data.root={fma}", "data.preprocess_workers=0").data,
        progress=False,
    )
    assert isinstance(dm, FMADataModule) and dm.label_columns == ["genre_top"]
    dm.setup()
    assert dm.num_clips == 4 and dm.metadata["genre_top"].tolist() == [
        "Rock",
        "Folk",
        "Rock",
        "Folk",
    ]
    assert dm.split_indices("test").tolist() == [2] and dm.split_indices("val").tolist() == [1]

    dcase = tmp_path / "dcase"
    make_dcase(dcase)
    dm = instantiate(
        compose_train(
            "data=dcase2018_task5", f"data.root={dcase}", "data.preprocess_workers=0"
        ).data,
        progress=False,
    )
    dm.setup()
    assert dm.label_columns == ["activity", "node"] and dm.num_clips == 16
    test = dm.split_indices("test")
    assert set(dm.folds[test]) == {"1"} and len(test) == 8
    groups = dm.metadata["group"]
    assert not set(groups[dm.split_indices("val")]) & set(groups[dm.split_indices("train")])

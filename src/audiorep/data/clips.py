"""Clip tables: which audio files a dataset holds, their labels, folds and groups.

Pure metadata: nothing here decodes audio. A ``ClipTable`` comes from scanning a folder
(label = parent folder name), from a metadata CSV, or from the index files of a known
dataset layout (FMA's ``tracks.csv``, DCASE 2018 task 5's ``meta.txt`` and
``evaluation_setup/``). Rows naming files that do not exist are kept: preprocessing
reports them as "missing file", next to the other files it could not use.

Splits: ``split_indices`` draws seeded train/val/test splits, keeping every clip of a
group (a speaker, a recording session) in one split; ``fold_splits`` honours a dataset's
predefined folds.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from audiorep.audio.io import AUDIO_EXTENSIONS

__all__ = [
    "ClipTable",
    "check_root",
    "fold_splits",
    "read_csv_table",
    "read_dcase2018_task5",
    "read_fma_tracks",
    "read_metadata",
    "scan_folder",
    "split_indices",
    "split_sizes",
]

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class ClipTable:
    """The clips of a dataset: one entry per clip in every list.

    ``paths`` are relative to the dataset root, with ``/`` separators. ``labels`` maps a
    label column to its value for each clip; ``folds`` holds predefined fold names and
    ``groups`` the value that must not straddle splits (speaker, session), when known.
    """

    paths: list[str]
    labels: dict[str, list[str]]
    folds: list[str] | None = None
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.paths)
        columns = {f"labels[{k!r}]": v for k, v in self.labels.items()}
        columns.update(folds=self.folds, groups=self.groups)
        for name, values in columns.items():
            if values is not None and len(values) != n:
                raise ValueError(f"ClipTable.{name} has {len(values)} entries for {n} paths")

    def __len__(self) -> int:
        return len(self.paths)


def check_root(root: str | os.PathLike | None) -> Path:
    """``root`` as a Path; an error naming data.root and what to put there if it is no folder."""
    if root is None:
        raise ValueError(
            "data.root is required: the folder that holds the audio files "
            "(data.root=/path/to/folder on the command line)"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(
            f"data.root={root} {what}: set data.root to the folder that holds the audio "
            f"files ({', '.join(AUDIO_EXTENSIONS)}, searched at any depth), or to the "
            "unpacked dataset for the ready-made configs (fma, esc50, dcase2018_task5)"
        )
    return root


def scan_folder(root: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> ClipTable:
    """Every audio file under ``root`` at any depth, sorted, labelled by its parent folder.

    Files directly in ``root`` get ``root``'s own name as their label.
    """
    root = check_root(root)
    suffixes = tuple(e.lower() for e in extensions)
    paths = sorted(
        PurePosixPath(Path(dirpath, name).relative_to(root).as_posix()).as_posix()
        for dirpath, _, names in os.walk(root)
        for name in names
        if name.lower().endswith(suffixes)
    )
    if not paths:
        raise FileNotFoundError(
            f"no audio files ({', '.join(suffixes)}) under data.root={root}: point data.root "
            "at the folder holding them"
        )
    root_name = root.resolve().name
    labels = [PurePosixPath(p).parent.name or root_name for p in paths]
    return ClipTable(paths=paths, labels={"label": labels})


def read_csv_table(path: str | os.PathLike, delimiter: str = ",") -> dict[str, list[str]]:
    """Columns of a CSV file with a header -> {column name: values}.

    The header may be a pandas multi-row header (as in FMA's ``tracks.csv``): rows whose
    first cell is empty, then a row holding only the index column's name. Those column
    names are joined with ``/`` (``track/genre_top``, ``set/subset``).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read metadata file {path}: {err}") from err
    if not rows:
        raise ValueError(f"metadata file {path} is empty: it needs a header row")
    # Multi-row header: rows with an empty first cell, then one holding only the index name.
    r = 0
    while r < len(rows) and rows[r][:1] == [""]:
        r += 1
    multi = 0 < r < len(rows) and rows[r][:1] != [""] and not any(c.strip() for c in rows[r][1:])
    header_rows = r + 1 if multi else 1
    if header_rows == 1:
        names = [name.strip() for name in rows[0]]
    else:
        # pandas multi-row header: the parts of each column's name, then the index name.
        width = max(len(r) for r in rows[:header_rows])
        names = [
            "/".join(r[j].strip() for r in rows[: header_rows - 1] if j < len(r) and r[j].strip())
            for j in range(width)
        ]
        names[0] = rows[header_rows - 1][0].strip()
    data = rows[header_rows:]
    table: dict[str, list[str]] = {}
    for j, name in enumerate(names):
        if name and name not in table:
            table[name] = [row[j].strip() if j < len(row) else "" for row in data]
    return table


def _column(table: dict[str, list[str]], name: str, key: str, source: Path) -> list[str]:
    if name not in table:
        raise ValueError(
            f"{source} has no column {name!r} ({key}={name}); its columns are: "
            f"{', '.join(table) or '(none)'}. Set {key} to one of them."
        )
    return table[name]


def _folds_and_groups(
    table: dict[str, list[str]], fold_column: str | None, group_column: str | None, source: Path
) -> tuple[list[str] | None, list[str] | None]:
    """The fold and group columns when configured (None where not)."""
    folds = _column(table, fold_column, "data.fold_column", source) if fold_column else None
    groups = _column(table, group_column, "data.group_column", source) if group_column else None
    return folds, groups


def _relative_path(root: Path, value: str, source: Path) -> str:
    """A clip path from metadata, made relative to ``root``; paths escaping it are an error."""
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute():
        try:
            path = PurePosixPath(Path(path).resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            raise ValueError(
                f"{source}: {value} is outside data.root={root}; metadata paths must lie "
                "under data.root (relative paths are read from data.root)"
            ) from None
    if ".." in path.parts or not path.parts:
        raise ValueError(f"{source}: clip path {value!r} must name a file under data.root={root}")
    return path.as_posix()


def read_metadata(
    root: str | os.PathLike,
    metadata_csv: str | os.PathLike,
    path_column: str,
    label_columns: Sequence[str] | None,
    fold_column: str | None = None,
    group_column: str | None = None,
    *,
    audio_dir: str = "",
) -> ClipTable:
    """The clips listed in a metadata CSV, one row each.

    ``metadata_csv`` is read from ``root`` when relative. Paths in ``path_column`` are
    relative to ``root/audio_dir`` (ESC-50's ``meta/esc50.csv`` names files in ``audio/``).
    Without ``label_columns`` the label is the parent folder name, as for a scanned
    folder. A missing column is an error naming the config key and the columns there are.
    """
    root = check_root(root)
    source = Path(metadata_csv).expanduser()
    if not source.is_absolute():
        source = root / source
    if not source.is_file():
        raise FileNotFoundError(
            f"data.metadata={metadata_csv}: {source} does not exist; give a CSV path "
            "(absolute, or relative to data.root) or metadata=null to label clips by folder"
        )
    table = read_csv_table(source)
    prefix = PurePosixPath(audio_dir.replace("\\", "/")) if audio_dir else PurePosixPath()
    paths = [
        _relative_path(root, (prefix / v).as_posix(), source)
        for v in _column(table, path_column, "data.path_column", source)
    ]
    if label_columns:
        labels = {c: _column(table, c, "data.label_columns", source) for c in label_columns}
    else:
        labels = {"label": [PurePosixPath(p).parent.name or root.resolve().name for p in paths]}
    folds, groups = _folds_and_groups(table, fold_column, group_column, source)
    return ClipTable(paths=paths, labels=labels, folds=folds, groups=groups)


# FMA subsets are nested: fma_small is inside fma_medium, which is inside fma_large/full.
_FMA_SUBSETS = {"small": {"small"}, "medium": {"small", "medium"}}


def read_fma_tracks(
    root: str | os.PathLike,
    subset: str = "small",
    tracks_csv: str = "fma_metadata/tracks.csv",
    audio_dir: str | None = None,
    label_columns: Sequence[str] = ("track/genre_top",),
    fold_column: str | None = "set/split",
    group_column: str | None = "artist/id",
) -> ClipTable:
    """The tracks of one FMA subset (small, medium, large or full) from ``tracks.csv``.

    Audio paths follow FMA's layout, ``fma_<subset>/<id // 1000:03d>/<id:06d>.mp3``.
    Label columns are named after the part after the last ``/`` (``genre_top``); tracks
    with an empty first label (no top genre, common outside small/medium) are left out.
    The default fold column is FMA's own training/validation/test split.
    """
    root = check_root(root)
    if subset not in ("small", "medium", "large", "full"):
        raise ValueError(f"data.subset={subset!r}: FMA subsets are small, medium, large, full")
    source = root / tracks_csv
    if not source.is_file():
        raise FileNotFoundError(
            f"data.metadata={tracks_csv}: {source} does not exist; data.root must hold "
            "fma_metadata/ (from fma_metadata.zip) and fma_<subset>/ (the audio)"
        )
    table = read_csv_table(source)
    ids = _column(table, "track_id", "the FMA index column", source)
    subsets = _column(table, "set/subset", "the FMA subset column", source)
    columns = {
        c.rsplit("/", 1)[-1]: _column(table, c, "data.label_columns", source) for c in label_columns
    }
    folds, groups = _folds_and_groups(table, fold_column, group_column, source)
    wanted = _FMA_SUBSETS.get(subset)
    first = next(iter(columns.values()), None)
    rows = [
        i
        for i in range(len(ids))
        if (wanted is None or subsets[i] in wanted) and (first is None or first[i])
    ]
    folder = audio_dir or f"fma_{subset}"
    paths = [f"{folder}/{int(ids[i]) // 1000:03d}/{int(ids[i]):06d}.mp3" for i in rows]
    return ClipTable(
        paths=paths,
        labels={name: [values[i] for i in rows] for name, values in columns.items()},
        folds=None if folds is None else [folds[i] for i in rows],
        groups=None if groups is None else [groups[i] for i in rows],
    )


def _read_tsv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [[c.strip() for c in row] for row in csv.reader(f, delimiter="\t") if row]


def read_dcase2018_task5(root: str | os.PathLike, meta: str = "meta.txt") -> ClipTable:
    """DCASE 2018 task 5 (development set): ``meta.txt`` rows of (path, activity, session).

    Labels: ``activity`` and ``node`` (the sensor node, from ``DevNode<N>_...``). Groups are
    sessions, so one activity session heard by several nodes never straddles splits.
    Folds: a clip's fold is the ``k`` whose ``evaluation_setup/fold<k>_evaluate.txt``
    (or ``fold<k>_test.txt``) lists it, the dataset's own 4-fold cross-validation.
    """
    root = check_root(root)
    source = root / meta
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} does not exist: data.root must be the unpacked DCASE 2018 task 5 "
            "development set (meta.txt, audio/, evaluation_setup/)"
        )
    rows = _read_tsv(source)
    if not rows or any(len(r) < 2 for r in rows):
        raise ValueError(f"{source}: expected tab-separated rows of path, activity, session")
    paths = [_relative_path(root, r[0], source) for r in rows]
    nodes = [m.group(1) if (m := re.search(r"Node(\d+)", p)) else "" for p in paths]
    sessions = [r[2] if len(r) > 2 else "" for r in rows]
    fold_of: dict[str, str] = {}
    setup = root / "evaluation_setup"
    for k in range(1, 5):
        for name in (f"fold{k}_evaluate.txt", f"fold{k}_test.txt"):
            if (setup / name).is_file():
                for r in _read_tsv(setup / name):
                    fold_of.setdefault(_relative_path(root, r[0], setup / name), str(k))
                break
    return ClipTable(
        paths=paths,
        labels={"activity": [r[1] for r in rows], "node": nodes},
        folds=[fold_of.get(p, "") for p in paths] if fold_of else None,
        groups=sessions if any(sessions) else None,
    )


def split_sizes(n: int, splits: Sequence[float]) -> list[int]:
    """Sizes of train/val[/test] for fractions ``splits`` summing to 1; train takes the rounding."""
    splits = [float(s) for s in splits]
    if len(splits) not in (2, 3) or any(s < 0 for s in splits) or abs(sum(splits) - 1) > 1e-6:
        raise ValueError(
            f"data.splits must be 2 or 3 non-negative fractions summing to 1, got {splits}"
        )
    rest = [int(round(n * s)) for s in splits[1:]]
    return [n - sum(rest), *rest]


def split_indices(
    n: int,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded train/val/test indices (sorted int64) of ``n`` clips.

    Without groups, a seeded permutation cut at ``split_sizes``. With ``groups`` (one
    value per clip), whole groups are dealt out in a seeded order: first one group to
    each split with a non-zero fraction, then each group to the split furthest below its
    target clip count, so sizes follow ``splits`` approximately and no group is in two
    splits.
    """
    sizes = split_sizes(n, splits)
    sizes += [0] * (3 - len(sizes))
    rng = np.random.default_rng(seed)
    if groups is None:
        perm = rng.permutation(n)
        bounds = np.cumsum(sizes)[:-1]
        parts = np.split(perm, bounds)
    else:
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} clips")
        names, inverse, counts = np.unique(
            np.asarray(groups, dtype=str), return_inverse=True, return_counts=True
        )
        order = rng.permutation(len(names))
        targets = np.asarray(sizes, dtype=np.float64)
        filled = np.zeros(3)
        assign = np.empty(len(names), dtype=np.int64)
        wanted = [k for k in range(3) if targets[k] > 0]
        for rank, g in enumerate(order):
            k = wanted[rank] if rank < len(wanted) else int(np.argmax(targets - filled))
            assign[g] = k
            filled[k] += counts[g]
        parts = [np.flatnonzero(assign[inverse] == k) for k in range(3)]
    return {name: np.sort(p).astype(np.int64) for name, p in zip(SPLIT_NAMES, parts)}


def fold_splits(
    folds: Sequence[str], test_fold: str | int | None, val_fold: str | int | None
) -> dict[str, np.ndarray]:
    """Train/val/test indices from predefined folds: ``test_fold`` is the test set,
    ``val_fold`` (None: no validation clips) the validation set, the rest train.

    Fold names are compared as strings, so ``test_fold=5`` matches ESC-50's fold ``5``.
    """
    folds = np.asarray([str(f) for f in folds])
    names = sorted(set(folds.tolist()))
    out: dict[str, np.ndarray] = {}
    for split, key, fold in (
        ("test", "data.test_fold", test_fold),
        ("val", "data.val_fold", val_fold),
    ):
        if fold is None:
            out[split] = np.zeros(0, dtype=np.int64)
            continue
        if str(fold) not in names:
            raise ValueError(f"{key}={fold} is not one of the data's folds: {', '.join(names)}")
        out[split] = np.flatnonzero(folds == str(fold)).astype(np.int64)
    if test_fold is not None and val_fold is not None and str(test_fold) == str(val_fold):
        raise ValueError(f"data.val_fold and data.test_fold are both {test_fold}: pick two folds")
    held_out = np.zeros(len(folds), dtype=bool)
    held_out[out["test"]] = True
    held_out[out["val"]] = True
    return {
        "train": np.flatnonzero(~held_out).astype(np.int64),
        "val": out["val"],
        "test": out["test"],
    }

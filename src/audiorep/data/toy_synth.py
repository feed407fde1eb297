"""The ATIAM toy dataset: every combination of a grid of additive-synthesis factors.

Factors, in flat-index order: ``f0`` (Hz), ``slope``, ``inharmonicity``, ``decay``
(1/s), then the optional ``harmonics`` (categorical: all / odd / even) and ``snr_db``.
Each numeric factor is a grid ``{start, stop, step}`` (stop inclusive) or an explicit
list; ``harmonics`` is a list of names; ``null`` disables an optional factor.

The audio is rendered once (``prepare_data``) into
``<data_dir>/toy_synth/<config hash>/audio.npy``, a float32 (N, T) array in [-1, 1]
(read through a memmap), plus ``manifest.json`` with the generating config and the
array's size and blake2b checksum. Sound ``i`` has the factor indices
``np.unravel_index(i, factor_sizes)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from audiorep.audio.synthesis import HARMONICS, SYNTH_VERSION, partial_amplitudes, render_additive
from audiorep.data.cache import atomic_path, config_hash, verify_manifest, write_manifest
from audiorep.data.clips import split_sizes
from audiorep.data.loading import already_batched, make_dataloader
from audiorep.data.workers import progress_bar

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FACTORS",
    "FactorGrid",
    "ToySynthDataset",
    "ToySynthDataModule",
    "count_items",
    "ensure_toy_synth_cache",
]

NUMERIC_FACTORS = ("f0", "slope", "inharmonicity", "decay", "snr_db")
FACTOR_ORDER = ("f0", "slope", "inharmonicity", "decay", "harmonics", "snr_db")
OPTIONAL_FACTORS = ("harmonics", "snr_db")
ARRAY_FILE = "audio.npy"
KEY_PREFIX = "data.factors"

# The seed README's grid: 19 x 9 x 11 x 11 = 20,691 sounds.
DEFAULT_FACTORS: dict[str, Any] = {
    "f0": {"start": 100.0, "stop": 1000.0, "step": 50.0},
    "slope": {"start": -0.1, "stop": -0.9, "step": -0.1},
    "inharmonicity": {"start": 0.0, "stop": 1.0, "step": 0.1},
    "decay": {"start": 0.0, "stop": 10.0, "step": 1.0},
    "harmonics": None,
    "snr_db": None,
}


def _plain(obj: Any) -> Any:
    """Recursively turn Mappings/Sequences (e.g. OmegaConf containers) into dicts/lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str):
        return [_plain(v) for v in obj]
    return obj


def grid_axis(spec: Any, key: str) -> np.ndarray:
    """Values of one numeric factor from ``{start, stop, step}`` (stop inclusive), a list or a scalar.

    The count is ``floor((stop - start) / step + 1e-6) + 1``: the tolerance keeps float
    endpoints such as -0.9 = -0.1 + 8 * -0.1, and flooring (not rounding) never steps
    past ``stop`` when the step does not divide the range. Values are rounded to 12
    decimals so 0.1 * 3 is stored as 0.3.
    """
    if isinstance(spec, Mapping):
        missing = {"start", "stop", "step"} - set(spec)
        if missing:
            raise ValueError(f"{key}: grid needs start, stop and step (missing {sorted(missing)})")
        start, stop, step = (float(spec[k]) for k in ("start", "stop", "step"))
        ratio = (stop - start) / step if step != 0 else -1.0
        if not all(map(math.isfinite, (start, stop, step))) or step == 0 or ratio < -1e-6:
            raise ValueError(
                f"{key}: empty grid (start={start}, stop={stop}, step={step}); the step must be "
                "non-zero and go from start towards stop (negative step for a decreasing grid)"
            )
        values = start + step * np.arange(math.floor(ratio + 1e-6) + 1)
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) == 0:
            raise ValueError(f"{key}: empty list of values")
        values = np.asarray([float(v) for v in spec])
    elif isinstance(spec, int | float):
        values = np.asarray([float(spec)])
    else:
        raise ValueError(f"{key}: expected {{start, stop, step}}, a list or a number, got {spec!r}")
    values = np.round(values.astype(np.float64), 12) + 0.0  # + 0.0 turns -0.0 into 0.0
    if len(np.unique(values)) != len(values):
        raise ValueError(f"{key}: repeated values {values.tolist()}")
    return values


@dataclass(frozen=True)
class FactorGrid:
    """The factors of a toy dataset: names, per-factor numeric values, category labels."""

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]  # numeric values; categorical factors: 0..n-1
    labels: dict[str, list[str]] = field(default_factory=dict)  # categorical factor -> names

    @classmethod
    def from_config(cls, factors: Mapping[str, Any] | None = None) -> FactorGrid:
        """Build from the ``data.factors`` config (None: the default 20,691-sound grid)."""
        factors = _plain(DEFAULT_FACTORS if factors is None else factors)
        unknown = set(factors) - set(FACTOR_ORDER)
        if unknown:
            raise ValueError(
                f"{KEY_PREFIX}: unknown factors {sorted(unknown)}; known: {list(FACTOR_ORDER)}"
            )
        names: list[str] = []
        values: list[np.ndarray] = []
        labels: dict[str, list[str]] = {}
        for name in FACTOR_ORDER:
            spec = factors.get(name)
            key = f"{KEY_PREFIX}.{name}"
            if spec is None:
                if name not in OPTIONAL_FACTORS:
                    raise ValueError(f"{key} is required (a {{start, stop, step}} grid or a list)")
                continue
            if name == "harmonics":
                spec = [spec] if isinstance(spec, str) else list(spec)
                bad = [v for v in spec if v not in HARMONICS]
                if bad or not spec or len(set(spec)) != len(spec):
                    raise ValueError(
                        f"{key}: unknown, repeated or no values {spec}; use a list drawn from "
                        f"{list(HARMONICS)}, or null to disable the factor"
                    )
                labels[name] = [str(v) for v in spec]
                axis = np.arange(len(spec), dtype=np.float64)
            else:
                axis = grid_axis(spec, key)
            names.append(name)
            values.append(axis)
        return cls(tuple(names), tuple(values), labels)

    @property
    def sizes(self) -> list[int]:
        """Number of values of each factor."""
        return [len(v) for v in self.values]

    @property
    def num_items(self) -> int:
        """Number of sounds: the product of the factor sizes."""
        return int(np.prod(self.sizes))

    def to_config(self) -> dict[str, list]:
        """JSON-able values of each factor (labels for categoricals), for hashing and manifests."""
        return {
            name: self.labels[name] if name in self.labels else vals.tolist()
            for name, vals in zip(self.names, self.values)
        }

    def factor_index(self, flat: np.ndarray) -> np.ndarray:
        """Per-factor indices of flat item indices: (N,) -> (N, F) int64."""
        return np.stack(np.unravel_index(np.asarray(flat), self.sizes), axis=-1).astype(np.int64)

    def flat_index(self, factor_index: np.ndarray) -> np.ndarray:
        """Flat item indices of per-factor indices: (N, F) -> (N,) int64."""
        factor_index = np.asarray(factor_index, dtype=np.int64)
        if factor_index.ndim != 2 or factor_index.shape[1] != len(self.names):
            raise ValueError(
                f"factor_index must have shape (n, {len(self.names)}), got {factor_index.shape}"
            )
        return np.ravel_multi_index(tuple(factor_index.T), self.sizes).astype(np.int64)

    def factor_values_at(self, factor_index: np.ndarray) -> np.ndarray:
        """Factor values (categoricals as their index) of per-factor indices: (N, F) -> (N, F)."""
        return np.stack(
            [self.values[j][factor_index[:, j]] for j in range(len(self.names))], axis=-1
        )

    def synth_params(self, flat: np.ndarray) -> dict[str, Any]:
        """Keyword arguments of ``render_additive`` for flat item indices (N,)."""
        values = self.factor_values_at(self.factor_index(flat))
        col = {name: values[:, j] for j, name in enumerate(self.names)}
        params: dict[str, Any] = {k: col[k] for k in ("f0", "slope", "inharmonicity", "decay")}
        if "harmonics" in col:
            labels = np.asarray(self.labels["harmonics"])
            params["harmonics"] = labels[col["harmonics"].astype(np.int64)]
        params["snr_db"] = col.get("snr_db")
        return params

    def validate(self, sample_rate: int, n_partials: int) -> None:
        """Raise ValueError naming the config key for factor values that cannot be rendered."""
        vals = dict(zip(self.names, self.values))
        nyquist = sample_rate / 2
        if np.any(vals["f0"] <= 0):
            raise ValueError(
                f"{KEY_PREFIX}.f0: frequencies must be > 0 Hz (got {vals['f0'].min()})"
            )
        if np.any(vals["f0"] >= nyquist):
            raise ValueError(
                f"{KEY_PREFIX}.f0: {vals['f0'].max()} Hz is at or above Nyquist ({nyquist} Hz for "
                f"data.sample_rate={sample_rate}), so all its partials would be dropped; lower the "
                "f0 grid's stop or raise data.sample_rate"
            )
        for name in ("inharmonicity", "decay"):
            if np.any(vals[name] < 0):
                raise ValueError(
                    f"{KEY_PREFIX}.{name}: values must be >= 0 (got {vals[name].min()})"
                )
        # Every (f0, slope, inharmonicity, harmonics) combination must keep an audible
        # partial, or peak normalisation would divide by zero.
        harm = self.labels.get("harmonics", ["all"])
        grids = np.meshgrid(vals["f0"], vals["slope"], vals["inharmonicity"], np.arange(len(harm)))
        f0, slope, inh, h = (g.ravel() for g in grids)
        amps = partial_amplitudes(
            f0, slope, inh, h.astype(np.int64), n_partials=n_partials, sample_rate=sample_rate
        )
        silent = ~np.any(amps > 0, axis=1)
        if np.any(silent):
            i = int(np.flatnonzero(silent)[0])
            raise ValueError(
                f"{KEY_PREFIX}: f0={f0[i]}, slope={slope[i]}, inharmonicity={inh[i]}, "
                f"harmonics={harm[h[i]]!r} leaves no partial below Nyquist with non-zero amplitude "
                f"(data.sample_rate={sample_rate}, data.n_partials={n_partials}); narrow "
                f"{KEY_PREFIX}.f0 / .slope / .inharmonicity or raise data.sample_rate"
            )


def count_items(factors: Mapping[str, Any] | None = None) -> int:
    """Number of sounds a ``data.factors`` config generates, without rendering anything."""
    return FactorGrid.from_config(factors).num_items


def generation_config(
    grid: FactorGrid,
    sample_rate: int,
    duration: float,
    n_partials: int,
    peak: float,
    noise_seed: int,
) -> dict[str, Any]:
    """Everything that determines the rendered audio; its hash names the cache directory."""
    config: dict[str, Any] = {
        "name": "toy_synth",
        "synth_version": SYNTH_VERSION,
        "factors": grid.to_config(),
        "sample_rate": int(sample_rate),
        "duration": float(duration),
        "n_partials": int(n_partials),
        "peak": float(peak),
        "dtype": "float32",
    }
    # The noise seed only matters when there is noise; leaving it out otherwise avoids
    # re-rendering identical noiseless datasets.
    if "snr_db" in grid.names:
        config["noise_seed"] = int(noise_seed)
    return config


def _array_problem(path: Path, shape: tuple[int, int]) -> str | None:
    """Why the .npy at ``path`` is not a float32 array of ``shape``, or None."""
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        return f"{path} is unreadable ({err})"
    if arr.shape != shape or arr.dtype != np.float32:
        return f"{path} holds {arr.dtype} {arr.shape}, expected float32 {shape}"
    return None


def ensure_toy_synth_cache(
    root: str | Path,
    config: Mapping[str, Any],
    grid: FactorGrid,
    *,
    checksums: bool = True,
    progress: bool = True,
    chunk_size: int = 1024,
) -> Path:
    """Make sure ``<root>/<hash of config>/`` holds a valid rendering of ``config``; return it.

    A missing, partial, corrupted (size, shape or checksum) or stale cache is logged and
    regenerated: the array goes to a temp file that replaces ``audio.npy`` atomically,
    and the manifest is written last.
    """
    cache_dir = Path(root) / config_hash(config)
    shape = (grid.num_items, int(round(config["duration"] * config["sample_rate"])))
    problem = verify_manifest(cache_dir, config, checksums=checksums) or _array_problem(
        cache_dir / ARRAY_FILE, shape
    )
    if problem is None:
        return cache_dir
    if cache_dir.exists():
        log.warning("toy_synth cache unusable, regenerating: %s", problem)
    else:
        log.info("rendering toy_synth dataset (%d sounds) into %s", shape[0], cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Drop the manifest first: if rendering is interrupted, the directory must not look valid.
    (cache_dir / "manifest.json").unlink(missing_ok=True)
    _render_to_npy(cache_dir / ARRAY_FILE, config, grid, shape, progress, chunk_size)
    write_manifest(
        cache_dir,
        config,
        [ARRAY_FILE],
        extra={
            "num_items": shape[0],
            "shape": list(shape),
            "factor_names": list(grid.names),
            "factor_sizes": grid.sizes,
            "checksum_method": "blake2b (16-byte digest) over the whole file",
            "audio_scale": "float32 samples in [-peak, peak], no integer scaling",
        },
    )
    return cache_dir


def _render_to_npy(
    path: Path,
    config: Mapping[str, Any],
    grid: FactorGrid,
    shape: tuple[int, int],
    progress: bool,
    chunk_size: int,
) -> None:
    """Render every sound of ``grid`` into a new .npy at ``path``, atomically."""
    with atomic_path(path) as tmp, progress_bar(progress, "toy_synth") as bar:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        task = bar.add_task("render", total=shape[0])
        for start in range(0, shape[0], chunk_size):
            flat = np.arange(start, min(start + chunk_size, shape[0]))
            render_toy_sounds(config, grid, flat, out=out[flat[0] : flat[-1] + 1])
            bar.advance(task, len(flat))
        out.flush()
        del out


def render_toy_sounds(
    config: Mapping[str, Any], grid: FactorGrid, flat: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Render the sounds with flat indices ``flat`` (N,) of a toy dataset -> (N, T) float32.

    Noise (when ``snr_db`` is a factor) is keyed by the flat index, so re-rendering one
    sound gives the same audio as the cached dataset.
    """
    return render_additive(
        **grid.synth_params(flat),
        sample_rate=config["sample_rate"],
        duration=config["duration"],
        n_partials=config["n_partials"],
        peak=config["peak"],
        seed=config.get("noise_seed", 0),
        noise_ids=np.asarray(flat),
        out=out,
    )


class ToySynthDataset(Dataset):
    """Items of a rendered toy dataset: dict(audio (T,) float32, factors (F,) float32,
    factor_index (F,) int64, clip_index () int64: the flat grid index). ``indices`` selects a subset of the flat items.

    The memmap is opened lazily in the process that reads, so DataLoader workers each
    open their own.
    """

    def __init__(self, audio_path: str | Path, grid: FactorGrid, indices: np.ndarray | None = None):
        self.audio_path = Path(audio_path)
        self.grid = grid
        self.indices = (
            np.arange(grid.num_items) if indices is None else np.asarray(indices, np.int64)
        )
        self._audio: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _array(self) -> np.ndarray:
        if self._audio is None:
            self._audio = np.load(self.audio_path, mmap_mode="r")
        return self._audio

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        flat = int(self.indices[i])
        index = self.grid.factor_index(np.array([flat]))
        return {
            "audio": torch.from_numpy(np.array(self._array()[flat], dtype=np.float32)),
            "factors": torch.from_numpy(self.grid.factor_values_at(index)[0].astype(np.float32)),
            "factor_index": torch.from_numpy(index[0]),
            "clip_index": torch.tensor(flat, dtype=torch.int64),
        }

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        """A whole batch at once (DataLoader calls this when it exists): one fancy-index
        read of the memmap instead of a Python call per clip."""
        flat = self.indices[np.asarray(positions, dtype=np.int64)]
        index = self.grid.factor_index(flat)
        return {
            "audio": torch.from_numpy(np.asarray(self._array()[flat], dtype=np.float32)),
            "factors": torch.from_numpy(self.grid.factor_values_at(index).astype(np.float32)),
            "factor_index": torch.from_numpy(index),
            "clip_index": torch.from_numpy(flat.astype(np.int64)),
        }

    def __getstate__(self) -> dict[str, Any]:
        # A memmap should not be pickled into worker processes; they reopen the file.
        state = self.__dict__.copy()
        state["_audio"] = None
        return state


class ToySynthDataModule(L.LightningDataModule):
    """LightningDataModule of the toy dataset, with the ground-truth interface of DESIGN.md.

    Batches: dict(audio (B, T) float32, factors (B, F) float32, factor_index (B, F) int64).
    """

    input_key = "audio"

    def __init__(
        self,
        data_dir: str | Path = "data",
        factors: Mapping[str, Any] | None = None,
        sample_rate: int = 16000,
        duration: float = 1.0,
        n_partials: int = 10,
        peak: float = 0.9,
        noise_seed: int = 0,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        progress: bool = True,
    ):
        super().__init__()
        self.data_dir = Path(data_dir)
        self.grid = FactorGrid.from_config(factors)
        self.grid.validate(sample_rate, n_partials)
        if duration <= 0:
            raise ValueError(f"data.duration must be > 0 seconds (got {duration})")
        self.sample_rate = int(sample_rate)
        self.duration = float(duration)
        self.num_samples = int(round(self.duration * self.sample_rate))
        self.splits = list(splits)
        self.split_sizes = split_sizes(self.grid.num_items, self.splits)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.progress = progress
        self.config = generation_config(
            self.grid, sample_rate, duration, n_partials, peak, noise_seed
        )
        self.cache_dir = self.data_dir / "toy_synth" / config_hash(self.config)
        self._audio: np.ndarray | None = None
        self.train_set = self.val_set = self.test_set = None

    # -- ground-truth interface -------------------------------------------------------
    @property
    def factor_names(self) -> list[str]:
        """Names of the factors, in the order of the factor axes."""
        return list(self.grid.names)

    @property
    def factor_sizes(self) -> list[int]:
        """Number of values of each factor."""
        return self.grid.sizes

    @property
    def factor_values(self) -> list[np.ndarray]:
        """Values of each factor (categoricals: their index; names in ``factor_labels``)."""
        return [v.copy() for v in self.grid.values]

    @property
    def factor_labels(self) -> dict[str, list[str]]:
        """Category names of categorical factors (``harmonics``)."""
        return {k: list(v) for k, v in self.grid.labels.items()}

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniformly drawn factor indices -> (n, F) int64."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1).astype(
            np.int64
        )

    def observations_from_factors(self, factor_index: np.ndarray) -> np.ndarray:
        """Audio of the sounds with these factor indices: (n, F) int64 -> (n, T) float32."""
        flat = self.grid.flat_index(factor_index)
        # Sorted reads walk the memmap forwards; the inverse puts them back in order.
        order = np.argsort(flat, kind="stable")
        out = np.empty((len(flat), self.num_samples), dtype=np.float32)
        out[order] = self._audio_array()[flat[order]]
        return out

    # -- Lightning hooks --------------------------------------------------------------
    def prepare_data(self) -> None:
        """Render the dataset into the cache unless a verified one is already there."""
        ensure_toy_synth_cache(
            self.data_dir / "toy_synth", self.config, self.grid, progress=self.progress
        )

    def _audio_array(self) -> np.ndarray:
        if self._audio is None:
            # Size and shape checks only: full checksums ran in prepare_data, and setup
            # runs on every rank.
            ensure_toy_synth_cache(
                self.data_dir / "toy_synth",
                self.config,
                self.grid,
                checksums=False,
                progress=self.progress,
            )
            self._audio = np.load(self.cache_dir / ARRAY_FILE, mmap_mode="r")
        return self._audio

    def setup(self, stage: str | None = None) -> None:
        """Build the train/val/test subsets from a permutation seeded by ``seed``."""
        self._audio_array()
        perm = np.random.default_rng(self.seed).permutation(self.grid.num_items)
        n_train, n_val = self.split_sizes[:2]
        parts = [perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]]
        path = self.cache_dir / ARRAY_FILE
        self.train_set, self.val_set, self.test_set = (
            ToySynthDataset(path, self.grid, p) for p in parts
        )

    def _loader(self, dataset: ToySynthDataset | None, shuffle: bool) -> DataLoader:
        return make_dataloader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            # Batches come whole from ToySynthDataset.__getitems__.
            collate_fn=already_batched,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the data, stored in checkpoints."""
        return {
            "name": "toy_synth",
            "input_key": self.input_key,
            "grid": self.grid.to_config(),
            "factor_names": self.factor_names,
            "factor_sizes": self.factor_sizes,
            "factor_labels": self.factor_labels,
            "num_items": self.grid.num_items,
            "sample_rate": self.sample_rate,
            "duration": self.duration,
            "num_samples": self.num_samples,
            "n_partials": self.config["n_partials"],
            "peak": self.config["peak"],
            "synth_version": SYNTH_VERSION,
            "splits": self.splits,
            "seed": self.seed,
            "cache_dir": str(self.cache_dir),
        }

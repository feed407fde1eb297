"""Build the static embedding viewer: one folder that opens from disk with no server.

The folder holds ``index.html``, ``viewer.js`` and ``viewer.css`` (copied from the
package), ``data.js`` (the data, assigned to a global because ``fetch()`` of a local
JSON file is refused on ``file://``) and ``audio/`` (at most ``max_audio`` clips, copied
when the browser plays their format, transcoded to WAV otherwise).

The input is the evaluation's ``eval/embeddings.npz`` (or the same arrays in a dict):

- ``embeddings`` (N, D) float: one vector per clip;
- ``clip_id`` (N,) str: the file name shown (a path relative to the data root);
- ``audio_path`` (N,) str, optional: absolute path of each clip's audio file;
- ``meta:<column>`` (N,) str, any number: metadata (label, split, fold, speaker...);
- ``projection:<method>`` (N, 2), optional: a precomputed 2-D map, used instead of
  computing ``method`` again.

Distances in the page are cosine distances in the FULL embedding space (as the seed's
``distance_to_selected``), computed in the browser from the unit-normalised embeddings
shipped as float16: 20,000 x 128 is 5 MB and one click costs a few milliseconds.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiorep.audio.io import read_wav, write_wav
from audiorep.data.cache import atomic_write_text
from audiorep.evaluation.projections import PROJECTIONS, project_2d

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = ("index.html", "viewer.js", "viewer.css")
DATA_FILE = "data.js"
DATA_GLOBAL = "AUDIOREP_VIEWER_DATA"
EMBEDDINGS_FILE = Path("eval") / "embeddings.npz"
META_PREFIX = "meta:"
PROJECTION_PREFIX = "projection:"
PROJECTION_TITLES = {"umap": "UMAP", "tsne": "t-SNE"}
CLUSTER_COLUMN = "kmeans_cluster"
# t-SNE's perplexity must stay below the number of clips (project_2d uses at least 2).
MIN_CLIPS_TO_PROJECT = 4
# The seed's sphere_kmeans.py default (--centers 8).
DEFAULT_CLUSTERS = 8
# Formats chromium plays as they are; anything else soundfile reads becomes WAV.
WEB_AUDIO_SUFFIXES = frozenset({".wav", ".ogg", ".oga", ".opus", ".mp3", ".webm"})

# Why a clip has no audio in the folder; the page explains each to the user.
AUDIO_COPIED, AUDIO_NOT_SAMPLED, AUDIO_NOT_FOUND, AUDIO_UNREADABLE, AUDIO_NONE = range(5)


@dataclass
class ViewerInput:
    """The arrays the viewer shows, checked for shape and length."""

    embeddings: np.ndarray  # (N, D) float32
    clip_id: np.ndarray  # (N,) str
    audio_path: np.ndarray  # (N,) str; "" where a clip has no audio file
    metadata: dict[str, np.ndarray] = field(default_factory=dict)  # column -> (N,) str
    projections: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (N, 2)

    @property
    def num_clips(self) -> int:
        return len(self.embeddings)


def resolve_embeddings_path(source: str | os.PathLike) -> Path:
    """A run directory (its ``eval/embeddings.npz``) or an ``.npz`` file -> the file."""
    path = Path(source)
    if path.is_dir():
        path = path / EMBEDDINGS_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: evaluate the run first "
                f"(python evaluate.py run={source}) or pass an embeddings .npz file"
            )
    elif not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a run directory or an .npz file")
    return path


def load_viewer_input(source: str | os.PathLike | Mapping[str, np.ndarray]) -> ViewerInput:
    """Read and check the viewer's arrays from a run directory, an .npz file or a dict."""
    if isinstance(source, Mapping):
        where, arrays = "the arrays given", dict(source)
    else:
        path = resolve_embeddings_path(source)
        where = str(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except ValueError as err:
            raise ValueError(
                f"{path}: {err}. Store strings as unicode arrays (np.asarray(x, dtype=str)), "
                "not object arrays"
            ) from err

    for key in ("embeddings", "clip_id"):
        if key not in arrays:
            raise KeyError(f"{where} has no {key!r} array (keys: {sorted(arrays)})")
    embeddings = np.asarray(arrays["embeddings"], dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError(f"{where}: 'embeddings' must be (N, D) with N > 0, got {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise ValueError(f"{where}: 'embeddings' holds NaN or infinite values")
    n = len(embeddings)

    def strings(key: str) -> np.ndarray:
        values = np.asarray(arrays[key])
        if values.shape != (n,):
            raise ValueError(f"{where}: {key!r} has shape {values.shape}, expected ({n},)")
        return values.astype(str)

    audio_path = strings("audio_path") if "audio_path" in arrays else np.full(n, "")
    metadata = {
        key[len(META_PREFIX) :]: strings(key) for key in arrays if key.startswith(META_PREFIX)
    }
    projections = {}
    for key in arrays:
        if key.startswith(PROJECTION_PREFIX):
            points = np.asarray(arrays[key], dtype=np.float32)
            if points.shape != (n, 2) or not np.isfinite(points).all():
                raise ValueError(f"{where}: {key!r} must be finite (N, 2) = ({n}, 2)")
            projections[key[len(PROJECTION_PREFIX) :]] = points
    return ViewerInput(embeddings, strings("clip_id"), audio_path, metadata, projections)


def label_column(metadata: Mapping[str, np.ndarray]) -> str | None:
    """The column audio is balanced over and the tooltip shows: ``label``, else the first."""
    if "label" in metadata:
        return "label"
    return next(iter(metadata), None)


def sample_evenly(
    groups: np.ndarray, candidates: np.ndarray, limit: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of at most ``limit`` candidates, taken from each group in turn.

    Each group gives its (randomly ordered) first member, then every group its second,
    and so on, so small groups are kept whole and large ones are cut. Sorted indices.
    """
    candidates = np.flatnonzero(candidates)
    if limit <= 0 or len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    candidates = rng.permutation(candidates)
    _, group_of = np.unique(groups[candidates], return_inverse=True)
    # Rank of each candidate within its group, in the shuffled order.
    order = np.argsort(group_of, kind="stable")
    rank = np.empty(len(candidates), dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(group_of[order])) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    # Round by round; within a round, the shuffled order decides which groups come first.
    chosen = np.lexsort((np.arange(len(candidates)), rank))[:limit]
    return np.sort(candidates[chosen])


def copy_audio(
    audio_path: np.ndarray, chosen: np.ndarray, out_dir: Path
) -> tuple[list[str | None], np.ndarray]:
    """Copy (or transcode to WAV) the ``chosen`` clips into ``out_dir/audio``.

    Returns each clip's path relative to ``out_dir`` (None when not copied) and its
    AUDIO_* status. Files are named by clip index, so no file name from the data ever
    becomes part of a path or URL in the page.
    """
    n = len(audio_path)
    status = np.full(n, AUDIO_NOT_SAMPLED, dtype=np.uint8)
    status[audio_path == ""] = AUDIO_NONE
    relative: list[str | None] = [None] * n
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    done: dict[str, str] = {}  # source -> copy, for clips that share one file
    for i in chosen.tolist():
        source = audio_path[i]
        if source in done:
            relative[i], status[i] = done[source], AUDIO_COPIED
            continue
        suffix = Path(source).suffix.lower()
        if suffix in WEB_AUDIO_SUFFIXES:
            target = f"audio/{i:06d}{suffix}"
            shutil.copyfile(source, out_dir / target)
        else:
            target = f"audio/{i:06d}.wav"
            try:
                audio, sample_rate = read_wav(source, mono=False)
            except Exception as err:  # soundfile raises LibsndfileError, RuntimeError...
                log.warning(
                    "viewer: cannot read %s (%s); the page shows it without audio", source, err
                )
                status[i] = AUDIO_UNREADABLE
                continue
            write_wav(out_dir / target, audio, sample_rate)
        relative[i], status[i] = target, AUDIO_COPIED
        done[source] = target
    return relative, status


def kmeans_labels(embeddings: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """Cluster of each clip: k-means on unit-normalised vectors (the seed's spherical k-means)."""
    from sklearn.cluster import KMeans

    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return KMeans(clusters, n_init=3, random_state=seed).fit_predict(unit)


def _natural_order(values: np.ndarray) -> np.ndarray:
    """Unique values sorted as numbers when all are numbers ("2" before "10"), else as text."""
    try:
        numbers = values.astype(np.float64)
    except ValueError:
        return values
    return values[np.argsort(numbers, kind="stable")]


def _is_numeric(values: np.ndarray) -> bool:
    try:
        return bool(np.isfinite(values.astype(np.float64)).all())
    except ValueError:
        return False


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def encode_column(name: str, values: np.ndarray) -> dict:
    """One metadata column as its distinct values and a base64 little-endian code per clip."""
    unique = _natural_order(np.unique(values))
    index = {value: k for k, value in enumerate(unique.tolist())}
    codes = np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=len(values))
    dtype = "<u2" if len(unique) < 1 << 16 else "<u4"
    return {
        "name": name,
        "values": unique.tolist(),
        "numeric": _is_numeric(unique),
        "codeBytes": np.dtype(dtype).itemsize,
        "codes": _b64(codes.astype(dtype)),
    }


def json_for_script(obj: object) -> str:
    """JSON that is safe inside a <script>: no ``<``, ``>``, ``&``, U+2028 or U+2029.

    ``ensure_ascii`` escapes every non-ASCII character (U+2028/2029 included); the three
    HTML-significant ASCII characters only occur inside strings, where ``\\u003c`` etc.
    decode to the same text. So a ``</script>`` or ``<img onerror=...>`` in a file name
    stays text.
    """
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _prepare_out_dir(out_dir: Path) -> None:
    # Refuse to write into a folder that holds anything but an earlier viewer, so a
    # mistyped --out never mixes the viewer's files (or its audio/ clean-up) with others.
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / DATA_FILE).is_file() or not (out_dir / "index.html").is_file():
            raise FileExistsError(
                f"{out_dir} exists and is not a viewer folder: pass --out a new or empty folder"
            )
        shutil.rmtree(out_dir / "audio", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def build_viewer(
    source: str | os.PathLike | Mapping[str, np.ndarray] | ViewerInput,
    out_dir: str | os.PathLike,
    *,
    max_audio: int = 500,
    projections: Sequence[str] = PROJECTIONS,
    seed: int = 0,
    kmeans_clusters: int | None = None,
    title: str | None = None,
) -> Path:
    """Write the viewer folder for ``source`` into ``out_dir``; returns its ``index.html``.

    source: a run directory, an embeddings .npz, or a dict of the same arrays (see the
    module docstring). ``projections`` are computed on cosine distance unless the input
    holds them already. ``kmeans_clusters``: None for the seed's 8 (at most N - 1),
    0 for no cluster column. ``max_audio`` clips are copied, sampled evenly by label.
    """
    data = source if isinstance(source, ViewerInput) else load_viewer_input(source)
    if not projections:
        raise ValueError("viewer: projections is empty; pass ('umap', 'tsne') or one of them")
    for method in projections:
        if method not in PROJECTIONS:
            raise ValueError(f"viewer: projection {method!r} is not one of {list(PROJECTIONS)}")
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    n = data.num_clips
    missing = [m for m in projections if m not in data.projections]
    if missing and n < MIN_CLIPS_TO_PROJECT:
        raise ValueError(
            f"viewer: {n} clips are too few to compute {missing}; "
            f"it needs at least {MIN_CLIPS_TO_PROJECT}"
        )
    rng = np.random.default_rng(seed)

    maps = {}
    for method in projections:
        if method in data.projections:
            maps[method] = data.projections[method]
        else:
            log.info("viewer: %s of %d clips (cosine)", method, n)
            maps[method] = np.asarray(
                project_2d(data.embeddings, method, seed, metric="cosine"), dtype=np.float32
            )

    metadata = dict(data.metadata)
    clusters = DEFAULT_CLUSTERS if kmeans_clusters is None else int(kmeans_clusters)
    clusters = min(clusters, n - 1)
    if clusters >= 2:
        name = CLUSTER_COLUMN if CLUSTER_COLUMN not in metadata else f"{CLUSTER_COLUMN}_{clusters}"
        metadata[name] = kmeans_labels(data.embeddings, clusters, seed).astype(str)

    label = label_column(metadata)
    groups = metadata[label] if label else np.zeros(n, dtype=str)
    has_file = np.array([p != "" and os.path.isfile(p) for p in data.audio_path.tolist()])
    chosen = sample_evenly(groups, has_file, max_audio, rng)
    audio, status = copy_audio(data.audio_path, chosen, out_dir)
    status[(data.audio_path != "") & ~has_file] = AUDIO_NOT_FOUND

    norms = np.linalg.norm(data.embeddings, axis=1, keepdims=True)
    unit = np.where(norms > 0, data.embeddings / np.maximum(norms, 1e-12), 0.0)
    payload = {
        "title": title or "",
        "count": n,
        "dim": int(data.embeddings.shape[1]),
        "clipIds": data.clip_id.tolist(),
        "labelColumn": label,
        "columns": [encode_column(name, values) for name, values in metadata.items()],
        "projections": [
            {"key": m, "title": PROJECTION_TITLES.get(m, m), "points": _b64(p.astype("<f4"))}
            for m, p in maps.items()
        ],
        "embeddings": _b64(unit.astype("<f2")),
        "audio": audio,
        "audioStatus": _b64(status),
        "maxAudio": int(max_audio),
    }
    for name in STATIC_FILES:
        shutil.copyfile(STATIC_DIR / name, out_dir / name)
    atomic_write_text(out_dir / DATA_FILE, f"window.{DATA_GLOBAL} = {json_for_script(payload)};\n")
    log.info("viewer: %d clips, %d with audio -> %s", n, len(chosen), out_dir / "index.html")
    return out_dir / "index.html"

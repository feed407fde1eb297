"""Deep embedded Music's embedding-space analyses, for any clip embeddings.

- **k-NN label consistency** (the seed's cKDTree 30-NN): the mean share of each clip's
  k nearest neighbours (itself excluded) that carry its label.
- **k-means elbow**: k-means inertia against k, plotted, with the elbow picked as the
  point farthest below the chord joining the curve's ends.
- **Centroid walk**: points evenly spaced on the straight path from one class centroid
  to another; the clip nearest each point (repeats dropped), concatenated as audio. The
  seed walked between genre centroids and listened; whole clips stand in for its tiles,
  since clip embeddings are what every model has.

The numeric functions take numpy arrays; `embedding_space_analyses` runs them all and
writes the elbow plot and the walk's wav.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from audiorep.audio.io import write_wav
from audiorep.evaluation.figures import plt, save_figure


def knn_label_consistency(embeddings: np.ndarray, labels: np.ndarray, k: int = 30) -> float:
    """Mean over clips of the share of their ``k`` nearest neighbours with the same label.

    ``k`` is capped at n - 1. Chance level is the sum of squared class shares.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        raise ValueError(f"k-NN label consistency needs >= 2 clips, got {n}")
    k = min(int(k), n - 1)
    # kneighbors() without a query excludes each point from its own neighbours.
    index = NearestNeighbors(n_neighbors=k).fit(embeddings).kneighbors(return_distance=False)
    return float((labels[index] == labels[:, None]).mean())


def kmeans_inertia(embeddings: np.ndarray, ks: Sequence[int], seed: int = 0) -> dict[int, float]:
    """k-means inertia (within-cluster sum of squares) for each k (capped at n clips)."""
    n = len(embeddings)
    return {
        int(k): float(KMeans(int(k), n_init=3, random_state=seed).fit(embeddings).inertia_)
        for k in ks
        if 1 <= k <= n
    }


def elbow_k(inertia: Mapping[int, float]) -> int:
    """The elbow: the k whose (k, inertia), both scaled to [0, 1], lies farthest below the
    chord from the first point to the last."""
    ks = np.array(sorted(inertia), dtype=float)
    values = np.array([inertia[int(k)] for k in ks])
    if len(ks) < 3:
        return int(ks[0])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    span = values[0] - values[-1]
    y = (values - values[-1]) / span if span > 0 else np.zeros_like(values)
    # The chord runs from (0, 1) to (1, 0): y = 1 - x; below it means y < 1 - x.
    return int(ks[np.argmax((1 - x) - y)])


def class_centroids(embeddings: np.ndarray, labels: np.ndarray) -> dict[Any, np.ndarray]:
    labels = np.asarray(labels)
    return {c: embeddings[labels == c].mean(axis=0) for c in sorted(set(labels.tolist()))}


def farthest_classes(embeddings: np.ndarray, labels: np.ndarray) -> tuple[Any, Any]:
    """The two classes whose centroids are farthest apart (the most audible walk)."""
    centroids = class_centroids(embeddings, labels)
    names = list(centroids)
    if len(names) < 2:
        raise ValueError("a centroid walk needs at least two classes")
    points = np.stack([centroids[c] for c in names])
    distance = ((points[:, None] - points[None]) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmax(distance), distance.shape)
    return names[min(i, j)], names[max(i, j)]


def centroid_walk(
    embeddings: np.ndarray, labels: np.ndarray, start: Any, end: Any, steps: int = 8
) -> list[int]:
    """Clips nearest to ``steps`` points evenly spaced from centroid ``start`` to ``end``
    (both included), consecutive repeats dropped."""
    centroids = class_centroids(embeddings, labels)
    for name in (start, end):
        if name not in centroids:
            raise ValueError(f"walk class {name!r} is not a label; labels: {sorted(centroids)}")
    t = np.linspace(0.0, 1.0, max(int(steps), 2))[:, None]
    path = (1 - t) * centroids[start] + t * centroids[end]
    nearest = NearestNeighbors(n_neighbors=1).fit(embeddings).kneighbors(path)[1][:, 0]
    walk = [int(nearest[0])]
    for i in nearest[1:]:
        if int(i) != walk[-1]:
            walk.append(int(i))
    return walk


def concatenate_clips(
    clips: Sequence[np.ndarray], sample_rate: int, seconds: float = 1.0, fade: float = 0.01
) -> np.ndarray:
    """The first ``seconds`` of each clip, each peak-normalised with short fades, end to end."""
    pieces = []
    fade_len = max(1, int(fade * sample_rate))
    for clip in clips:
        piece = np.array(clip[: int(seconds * sample_rate)], dtype=np.float32)
        peak = float(np.abs(piece).max()) if len(piece) else 0.0
        if peak > 0:
            piece *= 0.9 / peak
        ramp = np.linspace(0.0, 1.0, min(fade_len, len(piece) // 2), dtype=np.float32)
        if len(ramp):
            piece[: len(ramp)] *= ramp
            piece[len(piece) - len(ramp) :] *= ramp[::-1]
        pieces.append(piece)
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def plot_elbow(inertia: Mapping[int, float], chosen: int, path: Path) -> Path:
    ks = sorted(inertia)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ks, [inertia[k] for k in ks], "o-")
    ax.axvline(chosen, color="tab:red", linestyle="--", label=f"elbow k = {chosen}")
    ax.set_xlabel("k (k-means clusters)")
    ax.set_ylabel("inertia")
    ax.legend()
    return save_figure(fig, path)


def embedding_space_analyses(
    embeddings: np.ndarray,
    labels: Mapping[str, np.ndarray],
    clip_audio: Callable[[int], np.ndarray],
    sample_rate: int,
    out_dir: Path,
    seed: int = 0,
    neighbours: int = 30,
    elbow_max_k: int = 16,
    walk_steps: int = 8,
    walk_seconds: float = 1.0,
    walk_classes: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The seed's analyses of one embedding of all clips: metrics and written files.

    Metrics: ``{column}/knn{k}_consistency`` (and its chance level) per label column;
    ``kmeans_elbow/k`` and ``kmeans_elbow/inertia``; ``{first column}/walk`` (the two
    classes, the clip indices and the wav under ``out_dir/audio``). The walk goes between
    ``walk_classes`` or else the two classes of the first column farthest apart.
    """
    metrics: dict[str, Any] = {}
    for column, values in labels.items():
        values = np.asarray(values)
        metrics[f"{column}/knn{neighbours}_consistency"] = knn_label_consistency(
            embeddings, values, neighbours
        )
        shares = np.unique(values, return_counts=True)[1] / len(values)
        metrics[f"{column}/knn{neighbours}_chance"] = float((shares**2).sum())
    inertia = kmeans_inertia(embeddings, range(1, int(elbow_max_k) + 1), seed)
    chosen = elbow_k(inertia)
    metrics["kmeans_elbow/k"] = chosen
    metrics["kmeans_elbow/inertia"] = {str(k): v for k, v in inertia.items()}
    figures = {"kmeans_elbow": str(plot_elbow(inertia, chosen, out_dir / "kmeans_elbow.png"))}

    column = next(iter(labels))
    values = np.asarray(labels[column]).astype(str)
    if len(set(values.tolist())) >= 2:
        start, end = (
            tuple(str(c) for c in walk_classes)
            if walk_classes
            else farthest_classes(embeddings, values)
        )
        walk = centroid_walk(embeddings, values, start, end, walk_steps)
        audio = concatenate_clips([clip_audio(i) for i in walk], sample_rate, walk_seconds)
        wav = out_dir / "audio" / f"walk_{column}_{start}_to_{end}.wav".replace("/", "-")
        write_wav(wav, audio, sample_rate)
        metrics[f"{column}/walk"] = {"from": start, "to": end, "clips": walk, "wav": str(wav)}
    return metrics, figures

"""Figures of the clip-embedding protocol (``protocol.evaluate_embeddings``), one PNG each.

Labels per cluster as stacked bars (the sound-eval seed's spherical k-means plot), the
class-centroid cosine distances as a heat map, and UMAP / t-SNE maps coloured by label.
``protocol_figures`` draws all of them for every label column, from the same clusters
and distances the protocol scores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.colors
import numpy as np

from audiorep.evaluation.figures import annotate_heatmap, plt, save_figure
from audiorep.evaluation.projections import PROJECTIONS, project_2d
from audiorep.evaluation.protocol import (
    class_centroid_distances,
    cluster_assignments,
    encode_labels,
)

__all__ = [
    "MAX_LEGEND_CLASSES",
    "plot_centroid_distances",
    "plot_cluster_label_counts",
    "plot_label_scatter",
    "protocol_figures",
]

# More classes than this get one colour ramp (bars: the rarest pooled as "other"), since
# a legend of 100 instrument programs helps no one.
MAX_LEGEND_CLASSES = 20
MAX_POINTS = 3000
MISSING_COLOUR = "0.75"


def _class_colours(n: int) -> np.ndarray:
    cmap = plt.get_cmap("tab20" if n <= 20 else "viridis")
    return cmap(np.arange(n) if n <= 20 else np.linspace(0, 1, n))


def plot_cluster_label_counts(
    clusters: np.ndarray,
    codes: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """Stacked bars: for each cluster, how many clips of each class it holds.

    clusters, codes: (N,) cluster ids and class codes (-1 = no label, left out). Clusters
    are ordered by their most common class, so a clustering that matches the labels reads
    as a staircase.
    """
    keep = codes >= 0
    clusters, codes = clusters[keep], codes[keep]
    n_clusters, n_classes = int(clusters.max()) + 1, len(class_names)
    counts = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(counts, (clusters, codes), 1)
    order = np.lexsort((-counts.max(axis=1), counts.argmax(axis=1)))
    counts = counts[order]
    names = list(class_names)
    if n_classes > MAX_LEGEND_CLASSES:
        top = np.sort(np.argsort(-counts.sum(axis=0), kind="stable")[: MAX_LEGEND_CLASSES - 1])
        rest = np.setdiff1d(np.arange(n_classes), top)
        counts = np.concatenate(
            [counts[:, top], counts[:, rest].sum(axis=1, keepdims=True)], axis=1
        )
        names = [names[i] for i in top] + [f"other ({len(rest)} classes)"]
    colours = _class_colours(len(names))
    if n_classes > MAX_LEGEND_CLASSES:
        colours[-1] = matplotlib.colors.to_rgba(MISSING_COLOUR)  # "other" in neutral grey
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * n_clusters + 2.5), 3.8))
    bottom = np.zeros(n_clusters)
    for j, name in enumerate(names):
        ax.bar(
            np.arange(n_clusters),
            counts[:, j],
            bottom=bottom,
            color=colours[j],
            label=name,
            width=0.85,
        )
        bottom += counts[:, j]
    ax.set_xticks(np.arange(n_clusters), [str(c) for c in order], fontsize=7)
    ax.set_xlabel("cluster")
    ax.set_ylabel("clips")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1.0), loc="upper left", frameon=False)
    ax.set_title(title or "labels per cluster", fontsize=9)
    return save_figure(fig, path)


def plot_centroid_distances(
    distances: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Heat map of the (classes, classes) cosine distances between class centroids."""
    n = len(class_names)
    size = min(12.0, 2.0 + 0.3 * n)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(distances, cmap="magma_r", vmin=0.0)
    if n <= 40:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), class_names, fontsize=7)
    if n <= 12:
        annotate_heatmap(ax, distances, fontsize=6, dark_values="high")
    fig.colorbar(image, ax=ax, fraction=0.046, label="cosine distance")
    ax.set_title(title or "class-centroid cosine distances", fontsize=9)
    return save_figure(fig, path)


def plot_label_scatter(
    points: np.ndarray,
    codes: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    title: str = "",
) -> Path:
    """2-D map (N, 2) coloured by class code (N,); clips without a label in grey."""
    n_classes = len(class_names)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    missing = codes < 0
    if missing.any():
        ax.scatter(*points[missing].T, s=3, c=MISSING_COLOUR, label="no label")
    labelled = ~missing
    if n_classes <= MAX_LEGEND_CLASSES:
        colours = _class_colours(n_classes)
        for c, name in enumerate(class_names):
            members = codes == c
            ax.scatter(*points[members].T, s=4, color=colours[c], label=name)
        ax.legend(
            fontsize=7, markerscale=2.5, bbox_to_anchor=(1.01, 1.0), loc="upper left", frameon=False
        )
    else:
        scatter = ax.scatter(
            *points[labelled].T, s=4, c=codes[labelled], cmap="viridis", vmin=0, vmax=n_classes - 1
        )
        bar = fig.colorbar(scatter, ax=ax, fraction=0.046)
        ticks = np.linspace(0, n_classes - 1, min(n_classes, 8)).round().astype(int)
        bar.set_ticks(ticks, labels=[class_names[t] for t in ticks])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def _file_stem(column: str) -> str:
    return re.sub(r"[^\w.-]+", "_", column).strip("_") or "labels"


def protocol_figures(
    embeddings: np.ndarray,
    labels: Mapping[str, np.ndarray],
    out_dir: str | Path,
    seed: int = 0,
    *,
    max_points: int = MAX_POINTS,
    projections: Sequence[str] = PROJECTIONS,
) -> dict[str, Path]:
    """Every protocol figure for every label column: {"{column}/{figure}": path to its PNG}.

    Figures: ``kmeans_clusters``, ``spherical_kmeans_clusters``, ``centroid_distances``
    and one map per projection (``umap``, ``tsne``; cosine metric). The clusters and the
    distances use every labelled clip, with the protocol's own functions and seed, so
    they are the ones it scores. Each projection is fitted once, on at most
    ``max_points`` clips (a seeded sample), and coloured by each column in turn.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    sample = np.arange(len(x))
    if len(sample) > max_points:
        sample = np.sort(rng.choice(len(x), max_points, replace=False))
    maps = {
        method: project_2d(x[sample], method, seed=seed, metric="cosine") for method in projections
    }

    paths: dict[str, Path] = {}
    for column, values in labels.items():
        codes, names = encode_labels(values)
        stem = _file_stem(column)
        labelled = np.flatnonzero(codes >= 0)
        if len(names) >= 2:
            clusters = cluster_assignments(x[labelled], len(names), seed)
            for method, assign in clusters.items():
                paths[f"{column}/{method}_clusters"] = plot_cluster_label_counts(
                    assign,
                    codes[labelled],
                    names,
                    out_dir / f"{stem}_{method}_clusters.png",
                    f"{column}: labels per {method.replace('_', ' ')} cluster (k = {len(names)})",
                )
            paths[f"{column}/centroid_distances"] = plot_centroid_distances(
                class_centroid_distances(x, codes, len(names)),
                names,
                out_dir / f"{stem}_centroid_distances.png",
                f"{column}: class-centroid cosine distances",
            )
        for method, points in maps.items():
            paths[f"{column}/{method}"] = plot_label_scatter(
                points,
                codes[sample],
                names,
                out_dir / f"{stem}_{method}.png",
                f"{method} (cosine) of {len(sample)} clips, coloured by {column}",
            )
    return paths

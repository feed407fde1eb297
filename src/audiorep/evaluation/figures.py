"""Figures of the evaluation protocol. Each takes numpy arrays and writes a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def annotate_heatmap(ax: plt.Axes, values: np.ndarray, fontsize: int, dark_values: str) -> None:
    """Write each cell's value on a heat map, in white where the colour map is dark
    (``dark_values``: "low" or "high" half of the range) and black elsewhere."""
    half = values.max() / 2
    for (i, j), value in np.ndenumerate(values):
        dark = value < half if dark_values == "low" else value > half
        ax.text(
            j,
            i,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=fontsize,
            color="w" if dark else "k",
        )


def _show_map(ax: plt.Axes, image: np.ndarray) -> None:
    if image.ndim == 3:  # (channels, height, width): show the first channel
        image = image[0]
    ax.imshow(
        image, origin="lower" if image.shape[0] > 16 else "upper", aspect="auto", cmap="magma"
    )
    ax.set_xticks([])
    ax.set_yticks([])


def plot_latent_traversals(maps: np.ndarray, values: Sequence[float], path: str | Path) -> Path:
    """Grid of decoded maps: rows are latent dimensions, columns the traversed values.

    maps: (latent, steps, F, N) or (latent, steps, C, H, W).
    """
    rows, cols = maps.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 0.9 * rows), squeeze=False)
    for i in range(rows):
        for j in range(cols):
            _show_map(axes[i, j], maps[i, j])
            if j == 0:
                axes[i, j].set_ylabel(f"z{i}", rotation=0, labelpad=12)
            if i == rows - 1:
                axes[i, j].set_xlabel(f"{values[j]:+.1f}")
    fig.suptitle("latent traversals (one dimension moves, the rest stay at the reference code)")
    return save_figure(fig, path)


def plot_reconstructions(inputs: np.ndarray, outputs: np.ndarray, path: str | Path) -> Path:
    """Inputs (top row) above their reconstructions (bottom row); (n, F, N) each."""
    n = len(inputs)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.2), squeeze=False)
    for j in range(n):
        _show_map(axes[0, j], inputs[j])
        _show_map(axes[1, j], outputs[j])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("decoded")
    return save_figure(fig, path)


def plot_projections(
    points: dict[str, np.ndarray],
    colours: np.ndarray,
    colour_names: Sequence[str],
    path: str | Path,
) -> Path:
    """One panel per (projection, colouring): points {method: (n, 2)}, colours (n, k)."""
    methods = list(points)
    k = len(colour_names)
    fig, axes = plt.subplots(len(methods), k, figsize=(3.2 * k, 3.0 * len(methods)), squeeze=False)
    for i, method in enumerate(methods):
        for j, name in enumerate(colour_names):
            ax = axes[i, j]
            scatter = ax.scatter(*points[method].T, c=colours[:, j], s=3, cmap="viridis")
            ax.set_title(f"{method}: {name}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(scatter, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def plot_mutual_information(mi: np.ndarray, factor_names: Sequence[str], path: str | Path) -> Path:
    """Heat map of mutual information (latent, factor), in nats."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * mi.shape[1], 0.8 + 0.35 * mi.shape[0]))
    image = ax.imshow(mi, aspect="auto", cmap="viridis")
    ax.set_xticks(range(mi.shape[1]), factor_names, rotation=30)
    ax.set_yticks(range(mi.shape[0]), [f"z{i}" for i in range(mi.shape[0])])
    annotate_heatmap(ax, mi, fontsize=7, dark_values="low")
    fig.colorbar(image, ax=ax, label="mutual information (nats)")
    ax.set_title("mutual information between latents and factors")
    return save_figure(fig, path)

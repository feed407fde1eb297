"""2-D maps of embeddings for plots and the viewer."""

from __future__ import annotations

import numpy as np

PROJECTIONS = ("umap", "tsne")


def project_2d(
    embeddings: np.ndarray, method: str, seed: int = 0, metric: str = "euclidean"
) -> np.ndarray:
    """(n, d) -> (n, 2) with UMAP or t-SNE."""
    n = len(embeddings)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (n - 1) // 3)))
        init = "pca" if metric == "euclidean" else "random"
        return TSNE(
            2, perplexity=perplexity, metric=metric, init=init, random_state=seed
        ).fit_transform(embeddings)
    if method == "umap":
        import umap

        neighbours = int(min(15, max(2, n - 1)))
        reducer = umap.UMAP(
            n_components=2, n_neighbors=neighbours, metric=metric, random_state=seed, n_jobs=1
        )
        return reducer.fit_transform(embeddings)
    raise ValueError(f"projection {method!r} is not one of {list(PROJECTIONS)}")

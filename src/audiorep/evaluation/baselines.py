"""Linear baselines scored with the same metrics on the same features as the models."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.decomposition import PCA, FastICA

BASELINES = ("pca", "ica")


def fit_linear_baseline(
    method: str, features: np.ndarray, n_components: int, seed: int = 0
) -> Callable[[np.ndarray], np.ndarray]:
    """Fit PCA or FastICA on flattened features (n, d); returns features -> codes (n, n_components)."""
    flat = features.reshape(len(features), -1)
    if method == "pca":
        model = PCA(n_components=n_components, random_state=seed)
    elif method == "ica":
        # unit-variance whitening is what FastICA's default will become; fixing it keeps
        # the numbers stable across scikit-learn versions.
        model = FastICA(
            n_components=n_components,
            whiten="unit-variance",
            random_state=seed,
            max_iter=1000,
            tol=1e-3,
        )
    else:
        raise ValueError(f"eval.baselines has {method!r}; choose from {list(BASELINES)}")
    model.fit(flat)
    return lambda x: model.transform(x.reshape(len(x), -1))

"""The evaluation protocol for clip embeddings: linear probes, k-NN, clustering, geometry.

``evaluate_embeddings`` scores one (N, D) array of clip vectors against one or more label
columns and returns a flat, JSON-ready dict keyed ``"{column}/{metric}"``. It is the same
for every model and for the baselines, so their numbers can be compared.

Choices (and why):

- Probes (logistic regression, linear SVM) see embeddings standardised with statistics of
  the clips they are fitted on. C is chosen on validation macro-F1 (ties go to the smaller
  C, the stronger regularisation; the search up the grid stops early, see ``C_PATIENCE``);
  the probe is then refitted on train + val with that C and scored once on test.
  Refitting on train + val uses every labelled clip outside the test set, as a grid
  search with refit does; val has already done its one job.
- Validation: the ``val`` split; in fold mode the fold after the test fold (cyclic order
  of the sorted fold ids), because predefined folds keep related clips (the same source
  recording, the same speaker) together and a random part of the training folds would
  leak them into validation. With two folds, or an empty validation set, a stratified 20%
  of the training clips is held out instead. ``"{c}/probe/validation"`` says which.
- k-NN uses cosine distance over the raw embeddings, with train + val as the reference
  set (there is nothing to tune, so val is only more neighbours).
- k-means (Euclidean, scikit-learn) and spherical k-means (cosine, ``spherical_kmeans``)
  run on every labelled clip with k = the number of classes; NMI and ARI compare the
  clusters with the labels.
- Silhouette uses cosine distance on at most ``SILHOUETTE_MAX_CLIPS`` clips (a seeded
  subsample), since it is quadratic in the clip count.
- Clips whose label is missing (None, NaN, "") are left out of that column. Classes with
  fewer than ``MIN_TRAIN_PER_CLASS`` training clips are left out of the probes and k-NN
  (train, val and test alike) and listed under ``"{c}/probe/dropped_classes"``; a column
  with a single class is skipped with ``"{c}/skipped"``; parts that cannot run for other
  reasons get ``"{c}/probe/skipped"`` or ``"{c}/silhouette_skipped"``. Nothing here raises
  on degenerate labels; malformed inputs (shapes, indices) raise ``ValueError``.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    classification_report,
    f1_score,
    normalized_mutual_info_score,
    silhouette_score,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

__all__ = [
    "PROBES",
    "class_centroid_distances",
    "cluster_assignments",
    "encode_labels",
    "evaluate_embeddings",
    "scalar_metrics",
    "spherical_kmeans",
]

PROBES = ("logreg", "svm")
SPLITS = ("train", "val", "test")
MIN_TRAIN_PER_CLASS = 2
VALIDATION_FRACTION = 0.2
SILHOUETTE_MAX_CLIPS = 5000
KMEANS_RESTARTS = 10
# The C search walks up the grid and stops once this many values in a row score below the
# best so far: validation curves in C rise then fall, and the largest C are by far the
# slowest fits (LinearSVC, 2800 x 128, 128 classes: 4 s at C=0.01, 150 s at C=100).
C_PATIENCE = 2
# Scores of one train/val/test round; in fold mode they get a mean and a "_std".
ROUND_METRICS = (
    "probe/logreg/accuracy",
    "probe/logreg/macro_f1",
    "probe/svm/accuracy",
    "probe/svm/macro_f1",
    "knn/accuracy",
)


# ---- labels ----------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, numbers.Real):
        return bool(np.isnan(value))
    return False


def _class_name(value: Any) -> str:
    # 3.0 from a float column (pandas turns int columns with gaps into floats) reads "3".
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value)


def encode_labels(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Labels (N,) -> (codes (N,) int with -1 for a missing label, class names).

    Missing labels are None, NaN and empty strings. Numeric labels keep their numeric
    order (pitch 9 before 10); anything else is compared as text.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"labels must be one value per clip, got shape {array.shape}")
    items = array.tolist()
    missing = np.array([_is_missing(v) for v in items], dtype=bool)
    present = [v for v, m in zip(items, missing) if not m]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present)
    keys = np.array(present, dtype=np.float64) if numeric else np.array([str(v) for v in present])
    classes, inverse = np.unique(keys, return_inverse=True)
    codes = np.full(len(items), -1, dtype=np.int64)
    codes[~missing] = inverse.reshape(-1)
    return codes, [_class_name(c) for c in classes.tolist()]


# ---- geometry and clustering -----------------------------------------------------------------


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def class_centroid_distances(
    embeddings: np.ndarray, codes: np.ndarray, n_classes: int
) -> np.ndarray:
    """Cosine distance between class centroids: (N, D), (N,) -> (n_classes, n_classes).

    A centroid is the mean of its clips' unit vectors, so each clip counts for its
    direction alone and a few loud clips do not pull the class. Clips with code -1 are
    ignored; a class with no clips gets distance 1 to every other class.
    """
    unit = _unit_rows(np.asarray(embeddings, dtype=np.float64))
    keep = codes >= 0
    membership = np.zeros((n_classes, len(unit)))
    membership[codes[keep], np.flatnonzero(keep)] = 1.0
    centroids = _unit_rows(membership @ unit)
    distances = np.clip(1.0 - centroids @ centroids.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    return distances


def _kmeanspp_on_sphere(unit: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with weights 1 - cos, which is |x - c|^2 / 2 for unit vectors."""
    n = len(unit)
    chosen = [int(rng.integers(n))]
    gap = 1.0 - unit @ unit[chosen[0]]
    for _ in range(1, k):
        weights = np.clip(gap, 0.0, None)
        total = weights.sum()
        pick = int(rng.choice(n, p=weights / total)) if total > 0 else int(rng.integers(n))
        chosen.append(pick)
        gap = np.minimum(gap, 1.0 - unit @ unit[pick])
    return unit[chosen].copy()


def _lloyd_on_sphere(
    unit: np.ndarray, centroids: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical Lloyd iterations from ``centroids``: (assignments, centroids, total cosine)."""
    k = len(centroids)
    assign = np.full(len(unit), -1)
    for _ in range(max_iter):
        similarity = unit @ centroids.T
        new_assign = similarity.argmax(axis=1)
        # An empty cluster takes the clips that fit their own cluster worst, one each, so
        # k clusters stay k (what scikit-learn's KMeans does as well).
        empty = np.setdiff1d(np.arange(k), new_assign)
        if len(empty):
            fit = similarity[np.arange(len(unit)), new_assign]
            for cluster, clip in zip(empty, np.argsort(fit)[: len(empty)]):
                new_assign[clip] = cluster
        if np.array_equal(new_assign, assign):
            break
        assign = new_assign
        membership = np.zeros((k, len(unit)))
        membership[assign, np.arange(len(unit))] = 1.0
        sums = membership @ unit
        # Members that cancel out (sum ~ 0) leave the old direction in place.
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 1e-12, sums / np.where(norms > 0, norms, 1.0), centroids)
    score = float((unit * centroids[assign]).sum())
    return assign, centroids, score


def spherical_kmeans(
    embeddings: np.ndarray,
    n_clusters: int,
    seed: int = 0,
    n_init: int = KMEANS_RESTARTS,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-means on unit-normalised rows: (N, D) -> (assignments (N,), centroids (k, D)).

    k-means++ seeding, ``n_init`` seeded restarts, and the restart with the largest total
    cosine similarity between clips and their centroids wins.
    """
    unit = _unit_rows(np.asarray(embeddings, dtype=np.float64))
    if not 1 <= n_clusters <= len(unit):
        raise ValueError(f"spherical_kmeans: n_clusters={n_clusters} with {len(unit)} clips")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(n_init):
        start = _kmeanspp_on_sphere(unit, n_clusters, rng)
        result = _lloyd_on_sphere(unit, start, max_iter)
        if best is None or result[2] > best[2]:
            best = result
    assert best is not None
    return best[0], best[1]


def cluster_assignments(
    embeddings: np.ndarray, n_clusters: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """k-means and spherical k-means cluster ids of each row: {"kmeans": (N,), "spherical_kmeans": (N,)}.

    The protocol scores these and the figures draw them, so both see the same clusters.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    with warnings.catch_warnings():
        # Fewer distinct points than clusters is a property of the data, reported by NMI.
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters, n_init=KMEANS_RESTARTS, random_state=seed).fit_predict(x)
    return {"kmeans": kmeans, "spherical_kmeans": spherical_kmeans(x, n_clusters, seed)[0]}


# ---- probes -----------------------------------------------------------------------------------


def _make_probe(name: str, C: float, max_iter: int, seed: int):
    if name == "logreg":
        # lbfgs fits one multinomial (softmax) model over all classes.
        return LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    return LinearSVC(C=C, max_iter=max_iter, random_state=seed)


def _fit(model, x: np.ndarray, y: np.ndarray) -> bool:
    """Fit; False when the solver stopped at max_iter before converging."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    return not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _stratified_holdout(
    train: np.ndarray, codes: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split train indices into (fit, val): ``fraction`` of each class, at least one clip,
    to val, and at least one to fit (every class here has two or more clips)."""
    fit_parts, val_parts = [], []
    for cls in np.unique(codes[train]):
        members = rng.permutation(train[codes[train] == cls])
        n_val = min(len(members) - 1, max(1, round(fraction * len(members))))
        val_parts.append(members[:n_val])
        fit_parts.append(members[n_val:])
    return np.sort(np.concatenate(fit_parts)), np.sort(np.concatenate(val_parts))


def _probe_round(
    x: np.ndarray,
    codes: np.ndarray,
    train: np.ndarray,
    val: np.ndarray | None,
    test: np.ndarray,
    *,
    seed: int,
    probe_C: Sequence[float],
    knn_k: int,
    max_iter: int,
) -> dict[str, Any]:
    """One train/val/test round of both probes and k-NN, on clips with a label.

    Returns {"skipped": reason} or metrics, chosen C, test predictions and notes.
    """
    train, test = train[codes[train] >= 0], test[codes[test] >= 0]
    val = val[codes[val] >= 0] if val is not None else None
    counts = np.bincount(codes[train], minlength=codes.max() + 1)
    seen = np.unique(
        np.concatenate([codes[train], codes[test]] + ([codes[val]] if val is not None else []))
    )
    dropped = [int(c) for c in seen if counts[c] < MIN_TRAIN_PER_CLASS]
    if dropped:
        train, test = train[~np.isin(codes[train], dropped)], test[~np.isin(codes[test], dropped)]
        val = val[~np.isin(codes[val], dropped)] if val is not None else None
    kept = np.unique(codes[train])
    if len(kept) < 2:
        return {
            "skipped": f"{len(kept)} class(es) with >= {MIN_TRAIN_PER_CLASS} training clips",
            "dropped": dropped,
        }
    if len(test) == 0:
        return {
            "skipped": "no test clips of a class the probes were trained on",
            "dropped": dropped,
        }

    rng = np.random.default_rng(seed)
    if val is None or len(val) == 0:
        fit, val = _stratified_holdout(train, codes, VALIDATION_FRACTION, rng)
        validation = f"stratified {VALIDATION_FRACTION:.0%} of the training clips"
    else:
        fit, validation = train, None
    refit = np.concatenate([fit, val])
    result: dict[str, Any] = {"dropped": dropped, "holdout": validation, "notes": [], "C": {}}
    result["y_true"] = codes[test]

    fit_scaler = StandardScaler().fit(x[fit])
    x_fit, x_val = fit_scaler.transform(x[fit]), fit_scaler.transform(x[val])
    refit_scaler = StandardScaler().fit(x[refit])
    x_refit, x_test = refit_scaler.transform(x[refit]), refit_scaler.transform(x[test])
    val_labels = np.unique(codes[val])  # classes absent from val don't enter its macro-F1
    for name in PROBES:
        scores: list[float] = []
        for C in probe_C:
            model = _make_probe(name, C, max_iter, seed)
            _fit(model, x_fit, codes[fit])
            predicted = model.predict(x_val)
            scores.append(
                f1_score(codes[val], predicted, labels=val_labels, average="macro", zero_division=0)
            )
            if len(scores) - 1 - int(np.argmax(scores)) >= C_PATIENCE:
                break
        best_C = float(probe_C[int(np.argmax(scores))])  # first maximum: the smallest C
        model = _make_probe(name, best_C, max_iter, seed)
        if not _fit(model, x_refit, codes[refit]):
            result["notes"].append(
                f"{name} probe stopped at max_iter={max_iter} (C={best_C:g}) before converging"
            )
        predicted = model.predict(x_test)
        result["C"][name] = best_C
        result[f"probe/{name}/accuracy"] = accuracy_score(codes[test], predicted)
        result[f"probe/{name}/macro_f1"] = f1_score(
            codes[test], predicted, average="macro", zero_division=0
        )
        if name == "logreg":
            result["y_pred"] = predicted

    knn = KNeighborsClassifier(
        n_neighbors=min(knn_k, len(refit)), metric="cosine", algorithm="brute"
    )
    knn.fit(x[refit], codes[refit])
    result["knn/accuracy"] = accuracy_score(codes[test], knn.predict(x[test]))
    return result


# ---- inputs -----------------------------------------------------------------------------------


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(
            f"embeddings must be (clips, dims) with at least one clip, got shape {x.shape}"
        )
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise ValueError(
            f"embeddings has NaN or inf in {int(bad.sum())} clips (first: clip {int(np.flatnonzero(bad)[0])}); "
            "the model produced non-finite vectors for them"
        )
    return x


def _check_splits(splits: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"splits has keys {sorted(unknown)}; use {list(SPLITS)}")
    checked: dict[str, np.ndarray] = {}
    for name, indices in splits.items():
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise ValueError(
                    f"splits[{name!r}] is a mask of shape {idx.shape}; expected ({n},)"
                )
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(
                f"splits[{name!r}] has clip indices outside [0, {n}): the splits and the embeddings disagree"
            )
        checked[name] = np.unique(idx)
    for name in ("train", "test"):
        if len(checked.get(name, ())) == 0:
            raise ValueError(
                f"splits[{name!r}] is missing or empty; the probes need train and test clips"
            )
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if a in checked and b in checked and np.intersect1d(checked[a], checked[b]).size:
            raise ValueError(f"splits {a!r} and {b!r} share clips; they must be disjoint")
    return checked


# ---- the protocol -----------------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    # Population std (ddof=0) over folds, as numpy computes it.
    return float(np.mean(values)), float(np.std(values))


def _probes(
    x: np.ndarray,
    codes: np.ndarray,
    names: list[str],
    splits: dict[str, np.ndarray] | None,
    folds: np.ndarray | None,
    seed: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Probe and k-NN keys (without the column prefix) for split or fold mode."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    if folds is None:
        assert splits is not None
        rounds = [
            (
                None,
                _probe_round(
                    x,
                    codes,
                    splits["train"],
                    splits.get("val"),
                    splits["test"],
                    seed=seed,
                    **options,
                ),
            )
        ]
    else:
        fold_ids = np.unique(folds)
        rounds = []
        for i, fold in enumerate(fold_ids):
            test = np.flatnonzero(folds == fold)
            if len(fold_ids) >= 3:
                val_fold = fold_ids[(i + 1) % len(fold_ids)]
                val = np.flatnonzero(folds == val_fold)
                train = np.flatnonzero((folds != fold) & (folds != val_fold))
            else:
                val, train = None, np.flatnonzero(folds != fold)
            rounds.append(
                (fold, _probe_round(x, codes, train, val, test, seed=seed + i, **options))
            )

    dropped = sorted({c for _, r in rounds for c in r["dropped"]})
    if dropped:
        out["probe/dropped_classes"] = [names[c] for c in dropped]
        notes.append(
            f"classes with fewer than {MIN_TRAIN_PER_CLASS} training clips left out of probes and k-NN: "
            + ", ".join(names[c] for c in dropped)
        )
    done = [(fold, r) for fold, r in rounds if "skipped" not in r]
    for fold, r in rounds:
        if "skipped" in r and folds is not None:
            notes.append(f"fold {_class_name(fold)} skipped: {r['skipped']}")
    if not done:
        out["probe/skipped"] = (
            rounds[0][1]["skipped"] if folds is None else "every fold was skipped"
        )
        return {**out, "notes": notes}
    for _, r in done:
        notes.extend(r["notes"])
    holdouts = {r["holdout"] for _, r in done}
    if folds is None:
        out["probe/validation"] = done[0][1]["holdout"] or "the val split"
    elif holdouts == {None}:
        out["probe/validation"] = "the fold after the test fold (cyclic)"
    else:
        out["probe/validation"] = next(h for h in holdouts if h) + " of the other folds"
    out["probe/refit"] = "train+val"

    if folds is None:
        r = done[0][1]
        for key in ROUND_METRICS:
            out[key] = float(r[key])
        for name in PROBES:
            out[f"probe/{name}/C"] = r["C"][name]
    else:
        out["probe/n_folds"] = len(done)
        out["probe/folds"] = [_class_name(f) for f, _ in done]
        for key in ROUND_METRICS:
            out[key], out[f"{key}_std"] = _mean_std([r[key] for _, r in done])
        for name in PROBES:
            out[f"probe/{name}/C_per_fold"] = [r["C"][name] for _, r in done]
    # Each test clip is predicted once (once per fold it is in, i.e. once), so pooling the
    # folds' predictions gives one per-class report over every scored clip.
    y_true = np.concatenate([r["y_true"] for _, r in done])
    y_pred = np.concatenate([r["y_pred"] for _, r in done])
    present = np.unique(np.concatenate([y_true, y_pred]))
    out["probe/logreg/report"] = classification_report(
        y_true,
        y_pred,
        labels=present,
        target_names=[names[c] for c in present],
        output_dict=True,
        zero_division=0,
    )
    return {**out, "notes": notes}


def _evaluate_column(
    x: np.ndarray,
    values: Any,
    splits: dict[str, np.ndarray] | None,
    folds: np.ndarray | None,
    seed: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Every key of one label column, without the column prefix."""
    codes, names = encode_labels(values)
    labelled = np.flatnonzero(codes >= 0)
    out: dict[str, Any] = {
        "classes": names,
        "class_counts": np.bincount(codes[labelled], minlength=len(names)).tolist(),
        "n_clips": len(labelled),
    }
    notes: list[str] = []
    if len(labelled) < len(codes):
        notes.append(f"{len(codes) - len(labelled)} clips without a label left out")
    if len(names) < 2:
        out["skipped"] = (
            f"{len(names)} class(es) among the labelled clips; the protocol needs two or more"
        )
        return {**out, "notes": notes} if notes else out

    probe_keys = _probes(x, codes, names, splits, folds, seed, options)
    notes.extend(probe_keys.pop("notes"))
    out.update(probe_keys)

    x_l, codes_l = x[labelled], codes[labelled]
    clusters = cluster_assignments(x_l, len(names), seed)
    for method, assign in clusters.items():
        out[f"{method}/nmi"] = float(normalized_mutual_info_score(codes_l, assign))
        out[f"{method}/ari"] = float(adjusted_rand_score(codes_l, assign))

    rng = np.random.default_rng(seed)
    sample = np.arange(len(labelled))
    if len(sample) > SILHOUETTE_MAX_CLIPS:
        sample = np.sort(rng.choice(len(sample), SILHOUETTE_MAX_CLIPS, replace=False))
    n_sampled_classes = len(np.unique(codes_l[sample]))
    if 2 <= n_sampled_classes < len(sample):
        out["silhouette"] = float(silhouette_score(x_l[sample], codes_l[sample], metric="cosine"))
    else:
        out["silhouette_skipped"] = f"{n_sampled_classes} classes among {len(sample)} clips"

    out["centroid_distances"] = class_centroid_distances(x, codes, len(names)).tolist()
    if notes:
        out["notes"] = notes
    return out


def _builtin(value: Any) -> Any:
    """numpy scalars and arrays inside dicts/lists -> Python floats, ints and lists."""
    if isinstance(value, Mapping):
        return {str(k): _builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_builtin(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def evaluate_embeddings(
    embeddings: np.ndarray,
    labels: Mapping[str, np.ndarray],
    splits: Mapping[str, np.ndarray] | None,
    folds: np.ndarray | None = None,
    seed: int = 0,
    *,
    probe_C: Sequence[float] = (1e-3, 1e-2, 1e-1, 1, 10, 100),
    knn_k: int = 10,
    max_iter: int = 2000,
) -> dict[str, Any]:
    """Score clip embeddings (N, D) against each label column (N,); see the module docstring.

    ``splits`` maps "train"/"test" (and optionally "val") to clip indices or boolean masks;
    it is used when ``folds`` (N,) is None. With ``folds``, each fold in turn is the test
    set and the metrics are averaged, with ``"..._std"`` keys for their spread. Keys are
    ``"{column}/probe/logreg/accuracy"`` and so on; every value is a Python scalar, string,
    list or dict, so the result goes straight to ``json.dumps``.
    """
    x = _check_embeddings(embeddings)
    n = len(x)
    checked_splits, checked_folds = None, None
    if folds is not None:
        checked_folds = np.asarray(folds)
        if checked_folds.shape != (n,):
            raise ValueError(
                f"folds has shape {checked_folds.shape}; expected ({n},), one fold id per clip"
            )
        if len(np.unique(checked_folds)) < 2:
            raise ValueError("folds has a single fold id; cross-validation needs two or more folds")
    elif splits is not None:
        checked_splits = _check_splits(splits, n)
    else:
        raise ValueError(
            "evaluate_embeddings needs splits (train/val/test clip indices) or folds (one fold id per clip)"
        )
    if not probe_C:
        raise ValueError("probe_C is empty; give the regularisation values to choose from")
    if knn_k < 1:
        raise ValueError(f"knn_k={knn_k}; it must be at least 1")
    options = {
        "probe_C": sorted(float(c) for c in probe_C),
        "knn_k": int(knn_k),
        "max_iter": int(max_iter),
    }

    result: dict[str, Any] = {}
    for column, values in labels.items():
        column_values = np.asarray(values)
        if column_values.shape != (n,):
            raise ValueError(
                f"labels[{column!r}] has shape {column_values.shape}; expected ({n},), one label per clip"
            )
        keys = _evaluate_column(x, column_values, checked_splits, checked_folds, seed, options)
        result.update({f"{column}/{key}": value for key, value in keys.items()})
    return _builtin(result)


def scalar_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The numeric entries of an ``evaluate_embeddings`` result (for loggers such as W&B)."""
    return {
        key: float(value)
        for key, value in result.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }

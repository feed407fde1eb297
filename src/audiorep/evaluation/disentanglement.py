"""Disentanglement metrics against ground-truth factors of variation.

Each metric follows the definition and the default sample sizes of disentanglement_lib
(Locatello et al. 2019, its gin configs) and is a pure function of a ground-truth data
object, a representation function, a random generator and sample counts, returning a
dict. The array-level pieces (discretisation, mutual information, importance -> DCI, ...)
are exposed too, so they can be unit-tested and reused by the figures.

Ground-truth data (duck-typed, see ``GroundTruthData``): ``factor_names``,
``factor_sizes``, ``sample_factors(n, rng) -> (n, F) int64`` factor indices and
``observations_from_factors(factors) -> (n, ...)`` observations. A representation is a
callable ``represent(observations) -> (n, D)`` codes.

Scores shift with library versions (e.g. scikit-learn's estimators), so ``evaluate``
records numpy / scikit-learn / scipy versions next to the numbers.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import label_binarize
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

Represent = Callable[[np.ndarray], np.ndarray]
Booster = Literal["hist", "sklearn_gb"]

# Keys of the flat dict `evaluate` returns, besides `versions` and `seconds`.
SCORE_KEYS = (
    "mig",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "sap",
    "factor_vae_score",
    "beta_vae_score",
    "modularity",
    "explicitness",
)


class GroundTruthData(Protocol):
    """What the metrics need from a dataset with known factors of variation."""

    factor_names: list[str]
    factor_sizes: list[int]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def observations_from_factors(self, factor_indices: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- sampling


def represent_factors(
    data: GroundTruthData, represent: Represent, factors: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Codes (n, D) float64 for factor indices (n, F), rendered and encoded in batches."""
    codes = []
    for start in range(0, len(factors), batch_size):
        observations = data.observations_from_factors(factors[start : start + batch_size])
        codes.append(np.asarray(represent(observations), dtype=np.float64))
    return np.concatenate(codes, axis=0)


def sample_codes_and_factors(
    data: GroundTruthData,
    represent: Represent,
    n: int,
    rng: np.random.Generator,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n factor settings and their codes: codes (n, D) float64, factors (n, F) int64."""
    factors = np.asarray(data.sample_factors(n, rng), dtype=np.int64)
    return represent_factors(data, represent, factors, batch_size), factors


# ------------------------------------------------------------------ array-level helpers


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin each code dim into num_bins equal-width bins over its range: (n, D) -> (n, D) int."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        # Same as disentanglement_lib: the bin edges less the last one, so values are 1..num_bins.
        edges = np.histogram(codes[:, d], num_bins)[1][:-1]
        out[:, d] = np.digitize(codes[:, d], edges)
    return out


def _mutual_information_1d(a: np.ndarray, b: np.ndarray) -> float:
    """MI in nats between two discrete label vectors (n,), as sklearn's mutual_info_score."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    na, nb = a.max() + 1, b.max() + 1
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) / len(a)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    mi = float(np.sum(joint[nz] * np.log(joint[nz] / outer[nz])))
    return max(mi, 0.0)  # rounding can give -1e-16 for independent variables


def discrete_mutual_information(codes_discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """MI in nats between every discrete code dim and every factor: (n, D), (n, F) -> (D, F)."""
    num_codes, num_factors = codes_discrete.shape[1], factors.shape[1]
    mi = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        for j in range(num_factors):
            mi[i, j] = _mutual_information_1d(codes_discrete[:, i], factors[:, j])
    return mi


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy in nats of each discrete column: (n, F) -> (F,)."""
    return np.array([_mutual_information_1d(col, col) for col in np.asarray(factors).T])


def mutual_information_matrix(
    codes: np.ndarray, factors: np.ndarray, num_bins: int = 20
) -> np.ndarray:
    """MI (D, F) in nats between histogram-discretised codes (n, D) and factors (n, F)."""
    return discrete_mutual_information(histogram_discretize(codes, num_bins), factors)


def mig_from_mutual_information(mutual_information: np.ndarray, entropy: np.ndarray) -> float:
    """Mean over factors of (top MI - second MI) / H(factor); MI (D, F), entropy (F,).

    Factors with zero entropy (constant in the sample) carry no information and are left
    out of the mean rather than dividing by zero.
    """
    sorted_mi = np.sort(mutual_information, axis=0)[::-1]
    second = sorted_mi[1] if len(sorted_mi) > 1 else np.zeros_like(sorted_mi[0])
    keep = entropy > 0
    if not keep.any():
        return 0.0
    return float(np.mean((sorted_mi[0] - second)[keep] / entropy[keep]))


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """1 - entropy (base F) of each code's importance over factors: (D, F) -> (D,)."""
    # The 1e-11 keeps all-zero rows defined, as in disentanglement_lib.
    return 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """1 - entropy (base D) of each factor's importance over codes: (D, F) -> (F,)."""
    return 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])


def dci_from_importance(importance: np.ndarray) -> dict[str, float]:
    """DCI disentanglement and completeness of an importance matrix (D, F) >= 0.

    Identity importance gives 1 for both; uniform importance gives 0 for both.
    """
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_weight = weights.sum(axis=1) / weights.sum()
    factor_weight = weights.sum(axis=0) / weights.sum()
    return {
        "disentanglement": float(np.sum(disentanglement_per_code(importance) * code_weight)),
        "completeness": float(np.sum(completeness_per_factor(importance) * factor_weight)),
    }


def hist_gradient_boosting_importance(model: HistGradientBoostingClassifier) -> np.ndarray:
    """Split-gain importances (n_features,) of a fitted HistGradientBoostingClassifier, sum 1.

    scikit-learn's HistGB has no `feature_importances_`; this sums each split's loss
    reduction (node `gain`) per feature over all trees, the boosting analogue of the
    impurity decrease GradientBoostingClassifier averages, and normalises to sum 1 like it.
    Leaves also carry a gain when a split was evaluated but not taken, so only internal
    nodes count.
    """
    n_features = model.n_features_in_
    total = np.zeros(n_features)
    for trees in model._predictors:  # one list per boosting iteration, one tree per class
        for tree in trees:
            split = tree.nodes["is_leaf"] == 0
            total += np.bincount(
                tree.nodes["feature_idx"][split],
                weights=tree.nodes["gain"][split],
                minlength=n_features,
            )
    return total / total.sum() if total.sum() > 0 else total


def _fit_boosted_factor(
    booster: Booster,
    codes_train: np.ndarray,
    y_train: np.ndarray,
    codes_test: np.ndarray,
    y_test: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, float, float]:
    """Fit one factor's classifier; return (importance (D,), train acc, test acc)."""
    if booster == "sklearn_gb":
        # disentanglement_lib: GradientBoostingClassifier() with its defaults.
        model = GradientBoostingClassifier(random_state=seed).fit(codes_train, y_train)
        importance = np.abs(model.feature_importances_)
    elif booster == "hist":
        # The same boosting settings as GradientBoostingClassifier's defaults (100 rounds,
        # rate 0.1, depth-3 trees, one tree per class per round), on 255-bin histograms,
        # which is what makes it an order of magnitude faster. No early stopping, so the
        # model does not depend on a held-out split.
        # One OpenMP thread: on these small problems HistGB's threads spend more time
        # synchronising than computing, and slow down 5-10x when other processes share the
        # cores; parallelism comes from fitting factors side by side (n_jobs) instead.
        with threadpool_limits(limits=1, user_api="openmp"):
            model = HistGradientBoostingClassifier(
                learning_rate=0.1,
                max_iter=100,
                max_depth=3,
                max_leaf_nodes=None,
                min_samples_leaf=1,
                l2_regularization=0.0,
                early_stopping=False,
                random_state=seed,
            ).fit(codes_train, y_train)
            importance = hist_gradient_boosting_importance(model)
            train_acc = float(np.mean(model.predict(codes_train) == y_train))
            test_acc = float(np.mean(model.predict(codes_test) == y_test))
        return importance, train_acc, test_acc
    else:
        raise ValueError(f"booster={booster!r}: use 'hist' (fast) or 'sklearn_gb' (reference)")
    train_acc = float(np.mean(model.predict(codes_train) == y_train))
    test_acc = float(np.mean(model.predict(codes_test) == y_test))
    return importance, train_acc, test_acc


def gradient_boosting_importance(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    booster: Booster = "hist",
    n_jobs: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-factor gradient-boosted classifiers on the codes.

    codes (n, D), factors (n, F) -> importance (D, F) (each column sums to 1),
    train accuracy (F,), test accuracy (F,). Each factor's model runs on one core;
    n_jobs > 1 fits factors in parallel processes (joblib).
    """
    num_factors = factors_train.shape[1]
    args = [
        (booster, codes_train, factors_train[:, j], codes_test, factors_test[:, j], seed)
        for j in range(num_factors)
    ]
    if n_jobs == 1:
        results = [_fit_boosted_factor(*a) for a in args]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(_fit_boosted_factor)(*a) for a in args)
    importance = np.stack([r[0] for r in results], axis=1)
    return importance, np.array([r[1] for r in results]), np.array([r[2] for r in results])


def sap_score_matrix(
    codes: np.ndarray,
    factors: np.ndarray,
    codes_test: np.ndarray | None = None,
    factors_test: np.ndarray | None = None,
    continuous: bool = True,
) -> np.ndarray:
    """SAP score of every (code dim, factor) pair: (D, F).

    continuous=True: R^2 of a 1-D linear regression of the factor on the code (squared
    correlation; 0 for a constant code). continuous=False: test accuracy of a 1-D
    LinearSVC(C=0.01, class_weight="balanced") per pair, which needs the test arrays.
    """
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    if continuous:
        c = codes - codes.mean(axis=0)
        f = factors - factors.mean(axis=0)
        var_c = np.sum(c**2, axis=0)
        var_f = np.sum(f**2, axis=0)
        cov = c.T @ f
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = cov**2 / (var_c[:, None] * var_f[None, :])
        # disentanglement_lib's threshold on the code variance (ddof=1) is 1e-12.
        r2[var_c / max(len(codes) - 1, 1) <= 1e-12, :] = 0.0
        return np.nan_to_num(r2)
    if codes_test is None or factors_test is None:
        raise ValueError("sap_score_matrix(continuous=False) needs codes_test and factors_test")
    matrix = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            clf = LinearSVC(C=0.01, class_weight="balanced")
            clf.fit(codes[:, i : i + 1], factors[:, j])
            matrix[i, j] = np.mean(clf.predict(codes_test[:, i : i + 1]) == factors_test[:, j])
    return matrix


def sap_from_score_matrix(matrix: np.ndarray) -> float:
    """Mean over factors of the gap between the two best code dims' scores: (D, F) -> float."""
    sorted_matrix = np.sort(matrix, axis=0)
    second = sorted_matrix[-2] if len(sorted_matrix) > 1 else np.zeros(matrix.shape[1])
    return float(np.mean(sorted_matrix[-1] - second))


def modularity_from_mutual_information(mutual_information: np.ndarray) -> float:
    """Ridgeway & Zemel modularity of an MI matrix (D, F): 1 when each code has one factor.

    Codes with no information about any factor score 0, as in disentanglement_lib.
    """
    squared = np.square(mutual_information)
    max_sq = squared.max(axis=1)
    num_factors = squared.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - max_sq) / (max_sq * (num_factors - 1.0))
    score = 1.0 - delta
    score[max_sq == 0.0] = 0.0
    return float(np.mean(score))


def explicitness_per_factor(
    codes_train: np.ndarray, y_train: np.ndarray, codes_test: np.ndarray, y_test: np.ndarray
) -> tuple[float, float]:
    """Macro one-vs-rest ROC AUC of a logistic regression from codes (n, D) to one factor (n,).

    Returns (train AUC, test AUC).
    """
    with warnings.catch_warnings():
        # disentanglement_lib uses LogisticRegression's defaults; not converging in 100
        # lbfgs steps is common and only slightly changes the AUC.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression().fit(codes_train, y_train)

    def auc(codes: np.ndarray, y: np.ndarray) -> float:
        proba = clf.predict_proba(codes)
        if len(clf.classes_) == 2:
            return float(roc_auc_score(y == clf.classes_[1], proba[:, 1]))
        labels = label_binarize(y, classes=clf.classes_)
        present = labels.any(axis=0) & ~labels.all(axis=0)  # AUC needs both labels present
        return float(roc_auc_score(labels[:, present], proba[:, present], average="macro"))

    return auc(codes_train, y_train), auc(codes_test, y_test)


def _standardise(
    codes: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-mean unit-variance codes (n, D) with the training statistics; constant dims stay 0."""
    mean = codes.mean(axis=0) if mean is None else mean
    std = codes.std(axis=0) if std is None else std
    return (codes - mean) / np.where(std > 0, std, 1.0), mean, std


# ------------------------------------------------------------------------------ metrics


def mutual_information_gap(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_train: int = 10000,
    num_bins: int = 20,
    batch_size: int = 256,
) -> dict[str, Any]:
    """MIG (Chen et al. 2018): normalised gap in MI between the two most informative codes.

    Returns {"mig", "mutual_information" (D, F)}.
    """
    codes, factors = sample_codes_and_factors(data, represent, num_train, rng, batch_size)
    mi = mutual_information_matrix(codes, factors, num_bins)
    return {
        "mig": mig_from_mutual_information(mi, discrete_entropy(factors)),
        "mutual_information": mi,
    }


def dci(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_train: int = 10000,
    num_test: int = 5000,
    booster: Booster = "hist",
    n_jobs: int = 1,
    batch_size: int = 256,
) -> dict[str, Any]:
    """DCI (Eastwood & Williams 2018) with gradient-boosted trees, per disentanglement_lib.

    Importances (D, F) come from one gradient-boosted classifier per factor; informativeness
    is the classifiers' accuracy, mean over factors (test; train reported too). booster:
    "hist" (HistGradientBoosting with the same boosting settings and split-gain
    importances) or "sklearn_gb" (GradientBoostingClassifier, disentanglement_lib's
    reference, ~30x slower on 10,000 samples); bench/metrics.py measures how closely they
    agree. n_jobs fits the factors in parallel processes.
    Returns {"dci_disentanglement", "dci_completeness", "dci_informativeness",
    "dci_informativeness_train", "importance" (D, F)}.
    """
    codes_train, factors_train = sample_codes_and_factors(
        data, represent, num_train, rng, batch_size
    )
    codes_test, factors_test = sample_codes_and_factors(data, represent, num_test, rng, batch_size)
    seed = int(rng.integers(2**31 - 1))
    importance, train_acc, test_acc = gradient_boosting_importance(
        codes_train, factors_train, codes_test, factors_test, booster, n_jobs, seed
    )
    scores = dci_from_importance(importance)
    return {
        "dci_disentanglement": scores["disentanglement"],
        "dci_completeness": scores["completeness"],
        "dci_informativeness": float(np.mean(test_acc)),
        "dci_informativeness_train": float(np.mean(train_acc)),
        "importance": importance,
    }


def sap_score(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_train: int = 10000,
    num_test: int = 5000,
    continuous: bool = True,
    batch_size: int = 256,
) -> dict[str, Any]:
    """SAP (Kumar et al. 2018): mean gap between the two code dims that best predict a factor.

    continuous=True (default) scores a pair by the R^2 of a 1-D linear regression; False
    by the test accuracy of a 1-D linear classifier (disentanglement_lib's default). A 1-D
    linear classifier can only put one threshold on the code, so it cannot separate more
    than two ordered classes: for factors with many ordered values (pitch, loudness, ...)
    even a perfect code scores near chance and the gap collapses. The regression form
    measures the ordered relation directly.
    Returns {"sap", "score_matrix" (D, F)}.
    """
    codes, factors = sample_codes_and_factors(data, represent, num_train, rng, batch_size)
    if continuous:
        matrix = sap_score_matrix(codes, factors, continuous=True)
    else:
        codes_test, factors_test = sample_codes_and_factors(
            data, represent, num_test, rng, batch_size
        )
        matrix = sap_score_matrix(codes, factors, codes_test, factors_test, continuous=False)
    return {"sap": sap_from_score_matrix(matrix), "score_matrix": matrix}


def _fixed_factor_groups(
    data: GroundTruthData, num_groups: int, group_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Groups of factor settings sharing one random factor: (G,) fixed factor, (G, S, F)."""
    num_factors = len(data.factor_sizes)
    fixed = rng.integers(num_factors, size=num_groups)
    factors = np.asarray(data.sample_factors(num_groups * group_size, rng), dtype=np.int64)
    factors = factors.reshape(num_groups, group_size, num_factors)
    rows = np.arange(num_groups)
    factors[rows, :, fixed] = factors[rows, 0, fixed][:, None]
    return fixed, factors


def _factor_vae_votes(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_points: int,
    group_size: int,
    global_var: np.ndarray,
    active: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Vote counts (F, D): for each group, its fixed factor votes for the least-varying dim."""
    num_factors = len(data.factor_sizes)
    votes = np.zeros((num_factors, len(global_var)), dtype=np.int64)
    active_idx = np.flatnonzero(active)
    # Several groups per representation call: same result, fewer Python round trips.
    groups_per_call = max(1, batch_size // group_size)
    for start in range(0, num_points, groups_per_call):
        g = min(groups_per_call, num_points - start)
        fixed, factors = _fixed_factor_groups(data, g, group_size, rng)
        codes = represent_factors(data, represent, factors.reshape(g * group_size, -1), batch_size)
        local_var = codes.reshape(g, group_size, -1).var(axis=1, ddof=1)
        dims = active_idx[np.argmin(local_var[:, active] / global_var[active], axis=1)]
        np.add.at(votes, (fixed, dims), 1)
    return votes


def factor_vae_score(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    group_size: int = 64,
    prune_threshold: float = 0.05,
    batch_size: int = 256,
) -> dict[str, Any]:
    """FactorVAE metric (Kim & Mnih 2018): majority-vote accuracy of "which factor was fixed".

    Each vote fixes one factor over a group of group_size samples (disentanglement_lib's
    batch_size=64) and votes for the code dim with the smallest variance relative to its
    global variance. Dims whose global std is <= prune_threshold (disentanglement_lib's
    gin: 0.05) are collapsed and ignored; chance level is 1 / F.
    Returns {"factor_vae_score" (eval accuracy), "factor_vae_train_accuracy",
    "num_active_dims"}.
    """
    codes, _ = sample_codes_and_factors(data, represent, num_variance_estimate, rng, batch_size)
    global_var = codes.var(axis=0, ddof=1)
    active = np.sqrt(global_var) > prune_threshold
    if not active.any():
        return {"factor_vae_score": 0.0, "factor_vae_train_accuracy": 0.0, "num_active_dims": 0}
    args = (global_var, active, batch_size)
    train_votes = _factor_vae_votes(data, represent, rng, num_train, group_size, *args)
    classifier = np.argmax(train_votes, axis=0)  # code dim -> factor
    dims = np.arange(train_votes.shape[1])
    train_acc = train_votes[classifier, dims].sum() / train_votes.sum()
    eval_votes = _factor_vae_votes(data, represent, rng, num_eval, group_size, *args)
    eval_acc = eval_votes[classifier, dims].sum() / eval_votes.sum()
    return {
        "factor_vae_score": float(eval_acc),
        "factor_vae_train_accuracy": float(train_acc),
        "num_active_dims": int(active.sum()),
    }


def _beta_vae_points(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_points: int,
    group_size: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, D) = mean |z1 - z2| over pairs sharing one factor, labels (N,) that factor."""
    features, labels = [], []
    groups_per_call = max(1, batch_size // (2 * group_size))
    for start in range(0, num_points, groups_per_call):
        g = min(groups_per_call, num_points - start)
        fixed, first = _fixed_factor_groups(data, g, group_size, rng)
        second = np.asarray(data.sample_factors(g * group_size, rng), dtype=np.int64)
        second = second.reshape(first.shape)
        rows = np.arange(g)
        second[rows, :, fixed] = first[rows, :, fixed]
        both = np.concatenate([first, second], axis=0).reshape(2 * g * group_size, -1)
        codes = represent_factors(data, represent, both, batch_size).reshape(2, g, group_size, -1)
        features.append(np.abs(codes[0] - codes[1]).mean(axis=1))
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_train: int = 10000,
    num_eval: int = 5000,
    group_size: int = 64,
    batch_size: int = 256,
) -> dict[str, Any]:
    """BetaVAE metric (Higgins et al. 2017): accuracy of predicting the shared factor.

    Each point is the mean |z1 - z2| over group_size pairs (disentanglement_lib's
    batch_size=64) that share one random factor; a logistic regression predicts which.
    Chance level is 1 / F.
    Returns {"beta_vae_score" (eval accuracy), "beta_vae_train_accuracy"}.
    """
    x_train, y_train = _beta_vae_points(data, represent, rng, num_train, group_size, batch_size)
    x_eval, y_eval = _beta_vae_points(data, represent, rng, num_eval, group_size, batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # defaults, as disentanglement_lib
        model = LogisticRegression(random_state=int(rng.integers(2**31 - 1)))
        model.fit(x_train, y_train)
    return {
        "beta_vae_score": float(model.score(x_eval, y_eval)),
        "beta_vae_train_accuracy": float(model.score(x_train, y_train)),
    }


def modularity_explicitness(
    data: GroundTruthData,
    represent: Represent,
    rng: np.random.Generator,
    num_train: int = 10000,
    num_test: int = 5000,
    num_bins: int = 20,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Modularity and explicitness (Ridgeway & Zemel 2018).

    Modularity: how much each code dim's MI concentrates on one factor (discretised codes).
    Explicitness: macro ROC AUC of a logistic regression from standardised codes to each
    factor, mean over factors (test; train reported too).
    Returns {"modularity", "explicitness", "explicitness_train"}.
    """
    codes_train, factors_train = sample_codes_and_factors(
        data, represent, num_train, rng, batch_size
    )
    codes_test, factors_test = sample_codes_and_factors(data, represent, num_test, rng, batch_size)
    mi = mutual_information_matrix(codes_train, factors_train, num_bins)
    train_norm, mean, std = _standardise(codes_train)
    test_norm, _, _ = _standardise(codes_test, mean, std)
    aucs = np.array(
        [
            explicitness_per_factor(train_norm, factors_train[:, j], test_norm, factors_test[:, j])
            for j in range(factors_train.shape[1])
        ]
    )
    return {
        "modularity": modularity_from_mutual_information(mi),
        "explicitness": float(aucs[:, 1].mean()),
        "explicitness_train": float(aucs[:, 0].mean()),
    }


# ----------------------------------------------------------------------------- the suite

METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "mutual_information_gap": mutual_information_gap,
    "dci": dci,
    "sap_score": sap_score,
    "factor_vae_score": factor_vae_score,
    "beta_vae_score": beta_vae_score,
    "modularity_explicitness": modularity_explicitness,
}


def library_versions() -> dict[str, str]:
    """Versions of the libraries the scores depend on."""
    return {
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__,
    }


def evaluate(
    data: GroundTruthData, represent: Represent, seed: int = 0, **overrides: Any
) -> dict[str, Any]:
    """Run every metric; return one flat dict of the scores in SCORE_KEYS plus versions, seconds.

    overrides: a keyword a metric accepts (num_train=2000, batch_size=512, ...) goes to
    every metric that accepts it; a metric's name with a dict (dci={"booster":
    "sklearn_gb"}) goes to that metric only, and wins. Each metric draws from its own
    child of `seed`, so one metric's sample counts do not change another's samples.
    """
    per_metric = {name: overrides.pop(name) for name in list(overrides) if name in METRICS}
    accepted = {p for fn in METRICS.values() for p in inspect.signature(fn).parameters}
    unknown = set(overrides) - accepted
    for name, kwargs in per_metric.items():
        unknown |= {
            f"{name}.{k}" for k in kwargs if k not in inspect.signature(METRICS[name]).parameters
        }
    if unknown:
        raise TypeError(
            f"evaluate: unknown overrides {sorted(unknown)}; accepted: {sorted(accepted)}"
        )

    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(METRICS))]
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for (name, fn), rng in zip(METRICS.items(), rngs):
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in overrides.items() if k in params}
        kwargs.update(per_metric.get(name, {}))
        start = time.perf_counter()
        results.update(fn(data, represent, rng, **kwargs))
        seconds[name] = time.perf_counter() - start
    out: dict[str, Any] = {key: float(results[key]) for key in SCORE_KEYS}
    out["versions"] = library_versions()
    out["seconds"] = seconds
    return out


__all__: Sequence[str] = [
    "GroundTruthData",
    "SCORE_KEYS",
    "beta_vae_score",
    "completeness_per_factor",
    "dci",
    "dci_from_importance",
    "disentanglement_per_code",
    "discrete_entropy",
    "discrete_mutual_information",
    "evaluate",
    "explicitness_per_factor",
    "factor_vae_score",
    "gradient_boosting_importance",
    "hist_gradient_boosting_importance",
    "histogram_discretize",
    "library_versions",
    "mig_from_mutual_information",
    "modularity_explicitness",
    "modularity_from_mutual_information",
    "mutual_information_gap",
    "mutual_information_matrix",
    "represent_factors",
    "sample_codes_and_factors",
    "sap_from_score_matrix",
    "sap_score",
    "sap_score_matrix",
]

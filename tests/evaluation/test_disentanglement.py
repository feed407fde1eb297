"""Known-answer tests of the disentanglement metrics (audiorep.evaluation.disentanglement)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import mutual_info_score

from audiorep.evaluation import disentanglement as dis

SIZES = [6, 7, 8, 10]
NUM_FACTORS = len(SIZES)
CHANCE = 1.0 / NUM_FACTORS

# Small counts keep the file fast; the metric definitions don't change with them.
COUNTS = dict(
    num_train=2000,
    num_test=1000,
    factor_vae_score={"num_train": 400, "num_eval": 300, "num_variance_estimate": 2000},
    beta_vae_score={"num_train": 400, "num_eval": 300},
)


class GridData:
    """Four independent uniform factors; the observations are the factor indices."""

    factor_names = ["a", "b", "c", "d"]
    factor_sizes = SIZES

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(s, size=n) for s in self.factor_sizes], axis=1)

    def observations_from_factors(self, factor_indices: np.ndarray) -> np.ndarray:
        return factor_indices.astype(np.float64)


def normalised(observations: np.ndarray) -> np.ndarray:
    """The factors themselves, each scaled to zero mean and unit variance."""
    sizes = np.asarray(SIZES, dtype=np.float64)
    mean, std = (sizes - 1) / 2, np.sqrt((sizes**2 - 1) / 12)
    return (observations - mean) / std


def rotated(observations: np.ndarray) -> np.ndarray:
    """Factor pairs (a, b) and (c, d) mixed by a 45 degree rotation."""
    z = normalised(observations)
    c = np.sqrt(0.5)
    return np.stack(
        [
            c * (z[:, 0] + z[:, 1]),
            c * (z[:, 0] - z[:, 1]),
            c * (z[:, 2] + z[:, 3]),
            c * (z[:, 2] - z[:, 3]),
        ],
        axis=1,
    )


def make_random_codes(seed: int = 123):
    rng = np.random.default_rng(seed)

    def represent(observations: np.ndarray) -> np.ndarray:
        return rng.standard_normal((len(observations), NUM_FACTORS))

    return represent


@pytest.fixture(scope="module")
def perfect() -> dict:
    return dis.evaluate(GridData(), normalised, seed=0, **COUNTS)


@pytest.fixture(scope="module")
def random_codes() -> dict:
    return dis.evaluate(GridData(), make_random_codes(), seed=0, **COUNTS)


@pytest.fixture(scope="module")
def rotation() -> dict:
    return dis.evaluate(GridData(), rotated, seed=0, **COUNTS)


# ------------------------------------------------------------------- array-level helpers


def test_mutual_information_of_identical_variables_is_entropy() -> None:
    x = np.repeat(np.arange(4), 25)  # uniform over 4 values: H = log 4
    mi = dis.discrete_mutual_information(x[:, None], x[:, None])
    assert mi.shape == (1, 1)
    assert mi[0, 0] == pytest.approx(np.log(4))
    assert dis.discrete_entropy(x[:, None])[0] == pytest.approx(np.log(4))


def test_mutual_information_of_independent_grid_is_zero() -> None:
    a, b = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)  # exact product distribution
    assert dis.discrete_mutual_information(a[:, None], b[:, None])[0, 0] == pytest.approx(
        0.0, abs=1e-12
    )


def test_mutual_information_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(5, size=(300, 3))
    factors = (codes[:, :2] + rng.integers(2, size=(300, 2))) % 4
    mi = dis.discrete_mutual_information(codes, factors)
    expected = [[mutual_info_score(codes[:, i], factors[:, j]) for j in range(2)] for i in range(3)]
    np.testing.assert_allclose(mi, expected, atol=1e-12)


def test_histogram_discretize_bins() -> None:
    codes = np.stack([np.linspace(0, 1, 20), np.full(20, 3.0)], axis=1)
    binned = dis.histogram_discretize(codes, num_bins=20)
    assert binned[:, 0].tolist() == list(range(1, 21))  # one value per equal-width bin
    assert len(np.unique(binned[:, 1])) == 1  # a constant dim is one bin
    assert dis.histogram_discretize(codes, num_bins=2)[:, 0].tolist() == [1] * 10 + [2] * 10


def test_mutual_information_matrix_shape() -> None:
    rng = np.random.default_rng(0)
    assert dis.mutual_information_matrix(
        rng.normal(size=(50, 5)), rng.integers(3, size=(50, 2))
    ).shape == (5, 2)


def test_mig_from_mutual_information_hand_case() -> None:
    mi = np.array([[1.0, 0.2], [0.5, 0.2]])
    # gaps 0.5 / 2 and 0 / 1
    assert dis.mig_from_mutual_information(mi, np.array([2.0, 1.0])) == pytest.approx(0.125)


def test_dci_from_importance_identity_and_uniform() -> None:
    identity = dis.dci_from_importance(np.eye(3))
    assert identity["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert identity["completeness"] == pytest.approx(1.0, abs=1e-6)
    uniform = dis.dci_from_importance(np.ones((3, 3)))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert uniform["completeness"] == pytest.approx(0.0, abs=1e-6)


def test_dci_from_importance_one_code_for_everything() -> None:
    # Code 0 serves both factors, code 1 nothing: not disentangled, but complete.
    scores = dis.dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert scores["disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert scores["completeness"] == pytest.approx(1.0, abs=1e-6)
    # An unused extra code dim does not lower disentanglement (it has no weight).
    padded = dis.dci_from_importance(np.vstack([np.eye(2), np.zeros((1, 2))]))
    assert padded["disentanglement"] == pytest.approx(1.0, abs=1e-6)


def test_sap_helpers() -> None:
    factors = np.tile(np.arange(5), 20)[:, None]
    codes = np.stack([2.0 * factors[:, 0] + 1.0, np.full(100, 4.0)], axis=1)
    matrix = dis.sap_score_matrix(codes, factors)
    np.testing.assert_allclose(matrix[:, 0], [1.0, 0.0], atol=1e-12)  # R^2 = 1; constant -> 0
    assert dis.sap_from_score_matrix(
        np.array([[0.9, 0.3], [0.2, 0.4], [0.1, 0.1]])
    ) == pytest.approx((0.7 + 0.1) / 2)


def test_modularity_hand_cases() -> None:
    assert dis.modularity_from_mutual_information(np.eye(3)) == pytest.approx(1.0)
    # Equal MI with every factor: delta = 1, modularity 0; an uninformative code also counts 0.
    assert dis.modularity_from_mutual_information(np.array([[0.5, 0.5, 0.5], [0, 0, 0]])) == 0.0


def test_hist_gradient_boosting_importance_finds_the_used_feature() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 1] > 0).astype(int) + (x[:, 1] > 1).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, max_depth=3, early_stopping=False).fit(x, y)
    importance = dis.hist_gradient_boosting_importance(model)
    assert importance.sum() == pytest.approx(1.0)
    assert importance[1] > 0.9


# ------------------------------------------------------------------- metrics, known cases


def test_evaluate_returns_the_flat_contract(perfect: dict) -> None:
    assert set(perfect) == set(dis.SCORE_KEYS) | {"versions", "seconds"}
    assert set(perfect["versions"]) == {"numpy", "scikit-learn", "scipy"}
    assert set(perfect["seconds"]) == set(dis.METRICS)
    assert all(isinstance(perfect[k], float) for k in dis.SCORE_KEYS)


def test_perfect_codes_score_near_one(perfect: dict) -> None:
    # Theory gives 1 for all of these when codes are the factors; finite-sample MI bias and
    # classifier error keep them a little below.
    for key in dis.SCORE_KEYS:
        assert perfect[key] > 0.9, (key, perfect[key])
    assert perfect["factor_vae_score"] == 1.0  # the fixed factor's dim has zero variance


def test_random_codes_score_near_zero_or_chance(random_codes: dict) -> None:
    assert random_codes["mig"] < 0.05
    assert random_codes["dci_disentanglement"] < 0.15
    assert random_codes["dci_completeness"] < 0.15
    assert random_codes["sap"] < 0.05
    assert random_codes["factor_vae_score"] < CHANCE + 0.15
    assert random_codes["beta_vae_score"] < CHANCE + 0.15
    assert random_codes["explicitness"] < 0.6  # AUC 0.5 is chance


def test_rotated_factors_are_informative_but_not_disentangled(
    rotation: dict, perfect: dict
) -> None:
    # Each factor is spread evenly over two code dims: the MI gap vanishes and each code's
    # importance splits over two of four factors (DCI D about 1 - log_4 2 = 0.5).
    assert rotation["mig"] < 0.2
    assert rotation["dci_disentanglement"] < 0.7
    assert rotation["sap"] < 0.2
    assert rotation["dci_disentanglement"] < perfect["dci_disentanglement"] - 0.3
    # ... yet everything about the factors is still there.
    assert rotation["dci_informativeness"] > 0.8
    assert rotation["explicitness"] > 0.9


def test_sap_discrete_form_fails_ordered_factors() -> None:
    # Why continuous=True is the default: a 1-D linear classifier on a perfect code of a
    # 10-valued ordered factor cannot beat a couple of classes' worth of accuracy.
    rng = np.random.default_rng(0)
    counts = dict(num_train=1000, num_test=500)
    discrete = dis.sap_score(GridData(), normalised, rng, continuous=False, **counts)
    continuous = dis.sap_score(GridData(), normalised, rng, continuous=True, **counts)
    assert discrete["score_matrix"][3, 3] < 0.5
    assert continuous["sap"] > 0.9


def test_dci_sklearn_gb_booster_agrees_on_perfect_codes() -> None:
    rng = np.random.default_rng(0)
    data = GridData()
    x, y = dis.sample_codes_and_factors(data, normalised, 300, rng)
    fast, _, _ = dis.gradient_boosting_importance(x, y, x, y, booster="hist")
    ref, _, _ = dis.gradient_boosting_importance(x, y, x, y, booster="sklearn_gb")
    np.testing.assert_allclose(fast, np.eye(NUM_FACTORS), atol=0.05)
    np.testing.assert_allclose(ref, np.eye(NUM_FACTORS), atol=0.05)


def test_evaluate_is_seeded_and_rejects_unknown_overrides() -> None:
    small = dict(
        num_train=300,
        num_test=200,
        num_eval=50,
        num_variance_estimate=300,
        dci={"num_train": 200, "num_test": 100},
    )
    a = dis.evaluate(GridData(), normalised, seed=3, **small)
    b = dis.evaluate(GridData(), normalised, seed=3, **small)
    assert {k: a[k] for k in dis.SCORE_KEYS} == {k: b[k] for k in dis.SCORE_KEYS}
    with pytest.raises(TypeError, match="num_trian"):
        dis.evaluate(GridData(), normalised, num_trian=10)
    with pytest.raises(TypeError, match="dci.booster_name"):
        dis.evaluate(GridData(), normalised, dci={"booster_name": "hist"})


def test_dci_penalises_codes_for_factors_nothing_encodes() -> None:
    # The ceiling the README's ATIAM results cite. Codes that are exactly two of the four
    # factors, with constant columns for the rest: the classifiers for the two unencoded
    # factors fit noise, spread their importance over the only informative codes, and each
    # of those codes' importance is split over three factors. So DCI disentanglement stays
    # far below 1 although both codes are perfect; MIG is the mean of 1, 1, 0, 0.
    def two_factors(observations: np.ndarray) -> np.ndarray:
        z = normalised(observations)
        return np.concatenate([z[:, :2], np.zeros((len(z), 2))], axis=1)

    rng = np.random.default_rng(0)
    scores = dis.dci(GridData(), two_factors, rng, num_train=2000, num_test=1000)
    assert 0.15 < scores["dci_disentanglement"] < 0.45
    mig = dis.mutual_information_gap(GridData(), two_factors, rng, num_train=2000)["mig"]
    assert 0.4 < mig < 0.55

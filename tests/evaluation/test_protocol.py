"""Known-answer tests of the clip-embedding protocol (audiorep.evaluation.protocol) and its figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from audiorep.evaluation import protocol_figures as pf
from audiorep.evaluation.protocol import (
    class_centroid_distances,
    cluster_assignments,
    encode_labels,
    evaluate_embeddings,
    scalar_metrics,
    spherical_kmeans,
)

SCORE_KEYS = (
    "probe/logreg/accuracy",
    "probe/logreg/macro_f1",
    "probe/svm/accuracy",
    "probe/svm/macro_f1",
    "knn/accuracy",
    "kmeans/nmi",
    "kmeans/ari",
    "spherical_kmeans/nmi",
    "spherical_kmeans/ari",
    "silhouette",
)
FOLD_KEYS = (
    "probe/logreg/accuracy",
    "probe/logreg/macro_f1",
    "probe/svm/accuracy",
    "probe/svm/macro_f1",
    "knn/accuracy",
)


@pytest.fixture(autouse=True)
def one_blas_thread():
    # These fits are tiny; BLAS threads only spin against each other on a busy machine
    # (measured 10x slower with 2 threads on 2 shared cores).
    with threadpool_limits(1):
        yield


def gaussian_clusters(rng, n_classes=4, per_class=40, dims=16, separation=6.0):
    """Tight Gaussian blobs around random centres: (N, dims) and their class ids (N,)."""
    labels = np.repeat(np.arange(n_classes), per_class)
    centres = rng.normal(size=(n_classes, dims)) * separation
    return centres[labels] + rng.normal(size=(len(labels), dims)), labels


def random_splits(rng, n, fractions=(0.6, 0.2)):
    order = rng.permutation(n)
    a, b = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}


def test_separated_clusters_score_near_one():
    rng = np.random.default_rng(0)
    x, y = gaussian_clusters(rng)
    result = evaluate_embeddings(x, {"cls": y}, random_splits(rng, len(y)), seed=0)
    for key in SCORE_KEYS:
        assert f"cls/{key}" in result, key
    for key in SCORE_KEYS[:-1]:
        assert result[f"cls/{key}"] > 0.97, (key, result[f"cls/{key}"])
    assert result["cls/silhouette"] > 0.7
    assert result["cls/classes"] == ["0", "1", "2", "3"]
    assert result["cls/probe/validation"] == "the val split"
    report = result["cls/probe/logreg/report"]
    assert report["accuracy"] == pytest.approx(result["cls/probe/logreg/accuracy"])
    assert sum(report[c]["support"] for c in result["cls/classes"]) == 32  # the test split
    distances = np.array(result["cls/centroid_distances"])
    assert distances.shape == (4, 4) and np.allclose(np.diag(distances), 0.0)
    assert distances[~np.eye(4, dtype=bool)].min() > 0.2
    assert "cls/skipped" not in result and "cls/notes" not in result
    json.dumps(result, allow_nan=False)
    assert set(scalar_metrics(result)) >= {f"cls/{key}" for key in SCORE_KEYS}


def test_random_labels_score_chance():
    rng = np.random.default_rng(1)
    n, n_classes = 400, 4
    x = rng.normal(size=(n, 8))
    y = rng.integers(n_classes, size=n)
    splits = random_splits(rng, n)
    result = evaluate_embeddings(x, {"noise": y}, splits, seed=0)
    chance = 1.0 / n_classes
    n_test = len(splits["test"])
    # Five binomial standard deviations of the test accuracy under "no information".
    tolerance = 5 * math.sqrt(chance * (1 - chance) / n_test)
    for key in ("probe/logreg/accuracy", "probe/svm/accuracy", "knn/accuracy"):
        assert abs(result[f"noise/{key}"] - chance) < tolerance, (key, result[f"noise/{key}"])
    for method in ("kmeans", "spherical_kmeans"):
        assert result[f"noise/{method}/nmi"] < 0.05
        assert abs(result[f"noise/{method}/ari"]) < 0.05
    assert abs(result["noise/silhouette"]) < 0.1


def test_spherical_kmeans_finds_directions_that_kmeans_misses():
    rng = np.random.default_rng(2)
    n_classes, per_class, dims = 3, 40, 8
    directions = np.linalg.qr(rng.normal(size=(dims, dims)))[0][:n_classes]
    y = np.repeat(np.arange(n_classes), per_class)
    unit = directions[y] + 0.15 * rng.normal(size=(len(y), dims))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    # Norms spread over two decades: Euclidean k-means splits by length, not direction.
    x = unit * np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=len(y)))[:, None]
    clusters = cluster_assignments(x, n_classes, seed=0)
    assert adjusted_rand_score(y, clusters["spherical_kmeans"]) > 0.95
    assert adjusted_rand_score(y, clusters["kmeans"]) < 0.5
    again, centroids = spherical_kmeans(x, n_classes, seed=0)
    assert np.array_equal(again, clusters["spherical_kmeans"])  # seeded
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0)


def test_spherical_kmeans_keeps_k_clusters_on_duplicates():
    x = np.repeat(np.eye(3), 5, axis=0)  # three distinct directions, four clusters asked
    assign, _ = spherical_kmeans(x, 4, seed=0)
    assert set(assign.tolist()) <= {0, 1, 2, 3} and len(assign) == 15
    with pytest.raises(ValueError, match="n_clusters"):
        spherical_kmeans(x, 16)


def test_fold_mode_reports_mean_and_std():
    rng = np.random.default_rng(3)
    x, y = gaussian_clusters(rng, n_classes=3, per_class=30, separation=1.5)
    folds = rng.permutation(np.arange(len(y)) % 4)
    result = evaluate_embeddings(x, {"cls": y}, None, folds=folds, seed=0)
    for key in FOLD_KEYS:
        assert 0.0 <= result[f"cls/{key}_std"] <= 0.5
        assert result[f"cls/{key}"] > 0.6
    assert result["cls/probe/n_folds"] == 4
    assert len(result["cls/probe/logreg/C_per_fold"]) == 4
    assert "fold after the test fold" in result["cls/probe/validation"]
    report = result["cls/probe/logreg/report"]
    assert sum(report[c]["support"] for c in result["cls/classes"]) == len(y)  # each clip once
    assert "cls/kmeans/nmi" in result and "cls/kmeans/nmi_std" not in result

    two = evaluate_embeddings(x, {"cls": y}, None, folds=np.arange(len(y)) % 2, seed=0)
    assert "of the training clips" in two["cls/probe/validation"]
    assert two["cls/probe/n_folds"] == 2


def test_degenerate_label_columns_are_reported_not_raised():
    rng = np.random.default_rng(4)
    x, y = gaussian_clusters(rng, n_classes=3, per_class=20)
    n = len(y)
    order = rng.permutation(n)
    splits = {"train": order[:36], "val": order[36:48], "test": order[48:]}
    one_train_clip = y.copy()
    lone = splits["train"][0]
    one_train_clip[lone] = 7  # class 7: a single clip, in train
    no_val_class = y.copy()
    no_val_class[splits["val"]] = 0  # classes 1 and 2 are absent from val
    gappy = np.array([str(v) for v in y], dtype=object)
    gappy[::5] = None
    gappy[1::5] = ""
    train_pairs = np.zeros(n, dtype=np.int64)
    train_pairs[splits["test"]] = 1  # class 1 never in train
    labels = {
        "single": np.full(n, "dog"),
        "all_missing": np.full(n, np.nan),
        "lone": one_train_clip,
        "no_val_class": no_val_class,
        "gappy": gappy,
        "train_single_class": train_pairs,
    }
    result = evaluate_embeddings(x, labels, splits, seed=0)
    json.dumps(result, allow_nan=False)

    assert "two or more" in result["single/skipped"]
    assert "single/probe/logreg/accuracy" not in result
    assert "all_missing/skipped" in result and result["all_missing/n_clips"] == 0

    assert result["lone/probe/dropped_classes"] == ["7"]
    assert any("fewer than 2 training clips" in note for note in result["lone/notes"])
    assert result["lone/probe/logreg/accuracy"] > 0.9
    assert len(result["lone/centroid_distances"]) == 4  # the class is still in the geometry

    assert result["no_val_class/probe/logreg/accuracy"] > 0.5

    assert result["gappy/n_clips"] == n - 2 * n // 5
    assert any("without a label" in note for note in result["gappy/notes"])
    assert result["gappy/probe/logreg/accuracy"] > 0.9

    assert "training clips" in result["train_single_class/probe/skipped"]
    assert "train_single_class/kmeans/nmi" in result  # clustering still runs

    no_val = evaluate_embeddings(
        x, {"cls": y}, {"train": order[:40], "val": [], "test": order[40:]}, seed=0
    )
    assert "of the training clips" in no_val["cls/probe/validation"]


def test_bad_inputs_raise_with_the_culprit_named():
    rng = np.random.default_rng(5)
    x, y = gaussian_clusters(rng, per_class=5)
    splits = random_splits(rng, len(y))
    with pytest.raises(ValueError, match="share clips"):
        evaluate_embeddings(x, {"c": y}, {**splits, "val": splits["test"][:2]})
    with pytest.raises(ValueError, match=r"labels\['c'\]"):
        evaluate_embeddings(x, {"c": y[:-1]}, splits)
    with pytest.raises(ValueError, match=r"splits\['test'\]"):
        evaluate_embeddings(x, {"c": y}, {"train": splits["train"], "test": [len(y)]})
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="clip 3"):
        evaluate_embeddings(bad, {"c": y}, splits)
    with pytest.raises(ValueError, match="splits .* or folds"):
        evaluate_embeddings(x, {"c": y}, None)
    with pytest.raises(ValueError, match="folds has shape"):
        evaluate_embeddings(x, {"c": y}, None, folds=np.zeros(3))


def test_encode_labels_orders_numbers_and_marks_missing():
    codes, names = encode_labels([10, 9, 10.0, None, float("nan")])
    assert names == ["9", "10"]
    assert codes.tolist() == [1, 0, 1, -1, -1]
    codes, names = encode_labels(np.array(["b", "a", "", "b"]))
    assert names == ["a", "b"] and codes.tolist() == [1, 0, -1, 1]


def test_centroid_distances_are_cosine_distances_of_directions():
    x = np.array([[1.0, 0.0], [5.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    codes = np.array([0, 0, 1, 2, -1])
    distances = class_centroid_distances(x, codes, 3)
    expected = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    np.testing.assert_allclose(distances, expected, atol=1e-12)


def test_protocol_figures_write_every_png(tmp_path):
    rng = np.random.default_rng(6)
    x, y = gaussian_clusters(rng, n_classes=3, per_class=20, dims=8)
    many = rng.integers(25, size=len(y))  # more classes than the legend shows
    gappy = np.where(np.arange(len(y)) % 4 == 0, "", y.astype(str))
    labels = {"cls": y, "many/ids": many, "gappy": gappy, "single": np.zeros(len(y))}
    paths = pf.protocol_figures(x, labels, tmp_path, seed=0, max_points=40, projections=("tsne",))
    for column, stem in (("cls", "cls"), ("many/ids", "many_ids"), ("gappy", "gappy")):
        for figure in (
            "kmeans_clusters",
            "spherical_kmeans_clusters",
            "centroid_distances",
            "tsne",
        ):
            path = paths[f"{column}/{figure}"]
            assert path == tmp_path / f"{stem}_{figure}.png"
            assert path.read_bytes()[:4] == b"\x89PNG"
    # A one-class column has no clusters or distances, but still its map.
    assert set(k for k in paths if k.startswith("single/")) == {"single/tsne"}


@pytest.mark.slow
def test_protocol_figures_umap(tmp_path):
    rng = np.random.default_rng(7)
    x, y = gaussian_clusters(rng, n_classes=3, per_class=20, dims=8)
    paths = pf.protocol_figures(x, {"cls": y}, tmp_path, projections=("umap",))
    assert paths["cls/umap"].read_bytes()[:4] == b"\x89PNG"

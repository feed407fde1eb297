"""Embedding-space analyses on known answers: k-NN consistency, the elbow, the walk."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from audiorep.evaluation.neighbours import (
    centroid_walk,
    concatenate_clips,
    elbow_k,
    embedding_space_analyses,
    farthest_classes,
    kmeans_inertia,
    knn_label_consistency,
)


def _blobs(centres, per_class=20, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    points = np.concatenate([c + spread * rng.standard_normal((per_class, 2)) for c in centres])
    labels = np.repeat(np.arange(len(centres)), per_class).astype(str)
    return points, labels


def test_knn_consistency_on_separated_and_on_mixed_labels():
    points, labels = _blobs([(0, 0), (10, 0), (0, 10)])
    assert knn_label_consistency(points, labels, k=5) == 1.0
    # A line of points labelled a, a, b, b, a, a, ...: with k = 1 each point's nearest
    # neighbour is its pair partner, which shares its label.
    line = np.arange(8, dtype=float)[:, None] * np.array([[1.0, 0.0]])
    line[1::2, 0] -= 0.9  # pairs (0, 0.1), (2, 2.1), ...
    assert knn_label_consistency(line, np.array(list("aabbaabb")), k=1) == 1.0
    # k = 7 on 8 points: each point sees all others; 3 of 7 share its label.
    assert np.isclose(knn_label_consistency(line, np.array(list("aabbaabb")), k=30), 3 / 7)


def test_elbow_is_found_at_the_number_of_blobs():
    points, _ = _blobs([(0, 0), (10, 0), (0, 10), (10, 10)], spread=0.3)
    inertia = kmeans_inertia(points, range(1, 11), seed=0)
    assert list(inertia) == list(range(1, 11))
    assert all(inertia[k] >= inertia[k + 1] - 1e-9 for k in range(1, 10))
    assert elbow_k(inertia) == 4
    assert elbow_k({1: 10.0, 2: 2.0, 3: 1.5, 4: 1.0, 5: 0.8}) == 2


def test_walk_runs_from_one_centroid_to_the_other():
    points, labels = _blobs([(0, 0), (10, 0), (0, 10)], per_class=10)
    # Clips between the centroids of class 0 and class 1.
    bridge = np.array([[2.5, 0.0], [5.0, 0.0], [7.5, 0.0]])
    points = np.concatenate([points, bridge])
    labels = np.concatenate([labels, ["0", "1", "1"]])
    assert farthest_classes(points, labels) in {("1", "2")}
    walk = centroid_walk(points, labels, "0", "1", steps=5)
    assert walk[1:4] == [30, 31, 32]
    assert labels[walk[0]] == "0" and labels[walk[-1]] == "1"
    assert all(a != b for a, b in zip(walk, walk[1:]))


def test_concatenate_and_the_whole_analysis_writes_files(tmp_path):
    clips = [np.full(300, 0.1 * (i + 1), np.float32) for i in range(3)]
    audio = concatenate_clips(clips, sample_rate=100, seconds=2.0, fade=0.05)
    assert audio.shape == (600,) and np.isclose(audio[150], 0.9) and audio[0] == 0.0
    points, labels = _blobs([(0, 0), (10, 0), (0, 10)], per_class=20)
    rng = np.random.default_rng(0)
    sounds = [rng.uniform(-0.5, 0.5, 400).astype(np.float32) for _ in points]
    metrics, figures = embedding_space_analyses(
        points,
        {"family": labels, "other": np.arange(len(points)) % 2},
        lambda i: sounds[i],
        sample_rate=200,
        out_dir=tmp_path,
        neighbours=30,
        elbow_max_k=6,
        walk_steps=4,
    )
    assert metrics["family/knn30_consistency"] > metrics["family/knn30_chance"]
    assert np.isclose(metrics["family/knn30_chance"], 1 / 3)
    assert "other/knn30_consistency" in metrics and metrics["kmeans_elbow/k"] == 3
    walk = metrics["family/walk"]
    audio, rate = sf.read(walk["wav"])
    assert rate == 200 and len(audio) == 200 * len(walk["clips"])
    assert (tmp_path / "kmeans_elbow.png").stat().st_size > 1000 and "kmeans_elbow" in figures

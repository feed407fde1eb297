"""Tests of the MFCC / log-mel clip baselines (audiorep.evaluation.clip_baselines)."""

from __future__ import annotations

import numpy as np
import pytest

from audiorep.evaluation.clip_baselines import default_fft_size, logmel_mean, mfcc_stats
from audiorep.features.spectral import hz_to_mel

SR = 16000


def tone(rng, freq, seconds=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (
        rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    ).astype(np.float32)


def test_shapes_with_variable_lengths_and_clips_shorter_than_a_frame():
    rng = np.random.default_rng(0)
    n_fft = default_fft_size(SR)
    assert n_fft == 512
    lengths = [SR, 3000, n_fft - 1, 100, 1, SR // 2]
    clips = [0.1 * rng.normal(size=n).astype(np.float32) for n in lengths]
    stats = mfcc_stats(clips, SR)
    assert stats.shape == (len(clips), 40) and stats.dtype == np.float32
    assert np.isfinite(stats).all()
    assert np.allclose(stats[4, 20:], 0.0)  # one sample is one centred frame: no spread
    assert logmel_mean(clips, SR, n_mels=32).shape == (len(clips), 32)
    assert mfcc_stats(clips, SR, n_mfcc=13, n_mels=40).shape == (len(clips), 26)


def test_batching_clips_of_different_lengths_changes_nothing():
    rng = np.random.default_rng(1)
    clips = [0.1 * rng.normal(size=n).astype(np.float32) for n in (8000, 2500, 300, 8000)]
    together = mfcc_stats(clips, SR)
    alone = np.concatenate([mfcc_stats([clip], SR) for clip in clips])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-3)
    together = logmel_mean(clips, SR)
    alone = np.concatenate([logmel_mean([clip], SR) for clip in clips])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)


def test_mfcc_stats_separate_a_low_tone_from_noise():
    rng = np.random.default_rng(2)
    tones = [tone(rng, rng.uniform(100, 140)) for _ in range(6)]
    noises = [
        rng.uniform(0.05, 0.5) * rng.normal(size=SR // 2).astype(np.float32) for _ in range(6)
    ]
    stats = mfcc_stats(tones + noises, SR)
    z = (stats - stats.mean(0)) / (stats.std(0) + 1e-9)
    kind = np.repeat([0, 1], 6)
    distances = np.linalg.norm(z[:, None] - z[None], axis=-1)
    same = kind[:, None] == kind[None]
    # Every tone is nearer every other tone than any noise clip, and the other way round.
    assert distances[same].max() < distances[~same].min()


def test_logmel_mean_peaks_at_the_tone():
    rng = np.random.default_rng(3)
    mean = logmel_mean([tone(rng, 1000.0)], SR, n_mels=64)[0]
    edges = np.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), 66)
    band = int(np.searchsorted(edges, hz_to_mel(1000.0))) - 1
    assert abs(int(mean.argmax()) - band) <= 1


def test_bad_clips_are_named():
    with pytest.raises(ValueError, match="clip 1 has shape"):
        mfcc_stats([np.zeros(100), np.zeros((2, 100))], SR)
    with pytest.raises(ValueError, match="clip 0 has no samples"):
        logmel_mean([np.zeros(0)], SR)

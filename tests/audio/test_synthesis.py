"""The additive synthesis engine renders what its parameters say, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from audiorep.audio.synthesis import (
    partial_amplitudes,
    partial_frequencies,
    render_additive,
    render_additive_reference,
)

SR = 16000


def spectrum(x: np.ndarray) -> np.ndarray:
    """Power spectrum of a Hann-windowed signal, one bin per SR / len(x) Hz."""
    return np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2


@pytest.mark.parametrize("f0", [110.0, 440.0, 1234.0, 3100.0])
def test_pitch_is_f0(f0: float) -> None:
    x = render_additive(f0, -0.5, 0.0, 0.0, sample_rate=SR, duration=1.0)[0]
    assert abs(np.argmax(spectrum(x)) - f0) <= 1  # 1 Hz bins


@pytest.mark.parametrize("decay", [1.0, 4.0, 10.0])
def test_envelope_follows_decay(decay: float) -> None:
    x = render_additive(300.0, -0.3, 0.1, decay, sample_rate=SR, duration=1.0)[0].astype(np.float64)
    frames = x[: 16000 // 400 * 400].reshape(-1, 400)  # 25 ms frames, many periods each
    rms = np.sqrt((frames**2).mean(axis=1))
    t = (np.arange(len(rms)) + 0.5) * 400 / SR
    slope = np.polyfit(t, np.log(rms), 1)[0]
    assert slope == pytest.approx(-decay, rel=0.02)


def test_no_energy_outside_the_kept_partials() -> None:
    # f0 just under Nyquist/2 with 30 partials: only k=1, 2 are below 8 kHz. Any aliased
    # partial (e.g. 3*3900 = 11700 -> 4300 Hz) would show up outside the expected bins.
    for f0, inh in [(3900.0, 0.0), (2500.0, 0.0), (1500.0, 0.02)]:
        x = render_additive(f0, -0.01, inh, 0.0, sample_rate=SR, duration=1.0, n_partials=30)[0]
        power = spectrum(x.astype(np.float64))
        freqs = partial_frequencies(f0, inh, 30)[0]
        kept = freqs[freqs < SR / 2]
        mask = np.ones_like(power, dtype=bool)
        for f in kept:
            mask[max(0, int(round(f)) - 30) : int(round(f)) + 31] = False  # window leakage
        assert power[mask].sum() < 1e-6 * power.sum()


def test_partial_count_drops_with_frequency() -> None:
    amps = partial_amplitudes(
        [100.0, 1000.0, 3000.0, 7000.0], -0.01, 0.0, n_partials=30, sample_rate=SR
    )
    assert (amps > 0).sum(axis=1).tolist() == [30, 7, 2, 1]
    amps = partial_amplitudes(1000.0, -0.01, 0.5, n_partials=30, sample_rate=SR)
    assert (amps > 0).sum() == 3  # 1000*k*sqrt(1 + 0.5 k^2) < 8000 for k = 1..3 only


def test_amplitudes_follow_the_seed_formula() -> None:
    amps = partial_amplitudes(100.0, -2.0, 0.0, n_partials=10, sample_rate=SR)[0]
    k = np.arange(1, 11)
    np.testing.assert_allclose(amps, np.maximum(0, ((k - 1) * -2.0 + 10) / 10))
    assert np.all(amps[5:] == 0.0) and amps[0] == 1.0


def test_inharmonic_partial_positions() -> None:
    f0, inh = 200.0, 0.05
    x = render_additive(f0, -0.1, inh, 0.0, sample_rate=SR, duration=1.0, n_partials=5)[0]
    power = spectrum(x.astype(np.float64))
    peaks = [
        i for i in range(1, len(power) - 1) if power[i] >= power[i - 1] and power[i] > power[i + 1]
    ]
    top = sorted(sorted(peaks, key=lambda i: -power[i])[:5])
    expected = f0 * np.arange(1, 6) * np.sqrt(1 + inh * np.arange(1, 6) ** 2)
    np.testing.assert_allclose(top, expected, atol=1.0)


def test_odd_and_even_harmonics() -> None:
    x_odd, x_even, x_all = render_additive(250.0, -0.1, 0.0, 0.0, harmonics=["odd", "even", "all"])
    p_odd, p_even, p_all = (spectrum(x.astype(np.float64)) for x in (x_odd, x_even, x_all))
    for k in range(1, 9):
        b = 250 * k
        if k % 2:
            assert p_even[b] < 1e-8 * p_even.max() and p_odd[b] > 1e-2 * p_odd.max()
        else:
            assert p_odd[b] < 1e-8 * p_odd.max() and p_even[b] > 1e-2 * p_even.max()
        assert p_all[b] > 1e-2 * p_all.max()


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_snr_matches_request(snr_db: float) -> None:
    clean = render_additive(330.0, -0.4, 0.1, 2.0)[0].astype(np.float64)
    noisy = render_additive(330.0, -0.4, 0.1, 2.0, snr_db=snr_db, seed=3)[0].astype(np.float64)
    gain = noisy @ clean / (clean @ clean)  # noisy = gain * clean + noise after re-normalising
    noise = noisy - gain * clean
    measured = 10 * np.log10(((gain * clean) ** 2).mean() / (noise**2).mean())
    assert measured == pytest.approx(snr_db, abs=0.2)
    assert np.abs(noisy).max() == pytest.approx(0.9, abs=1e-6)


def test_output_range_dtype_and_peak() -> None:
    x = render_additive([100.0, 990.0], [-0.1, -0.9], [0.0, 1.0], [0.0, 10.0], snr_db=[5.0, 40.0])
    assert x.dtype == np.float32 and x.shape == (2, SR)
    np.testing.assert_allclose(np.abs(x).max(axis=1), 0.9, atol=1e-6)


def test_deterministic_and_chunk_independent() -> None:
    args = dict(
        f0=[100.0, 420.0, 777.0], slope=-0.3, inharmonicity=[0.0, 0.3, 1.0], decay=[0.0, 3.0, 9.0]
    )
    a = render_additive(**args, snr_db=15.0, seed=7)
    b = render_additive(**args, snr_db=15.0, seed=7)
    assert np.array_equal(a, b)
    c = render_additive(**args, snr_db=15.0, seed=7, chunk_size=1)
    np.testing.assert_allclose(a, c, atol=1e-6)
    assert not np.allclose(a, render_additive(**args, snr_db=15.0, seed=8), atol=1e-3)


def test_matches_float64_reference_at_large_phase() -> None:
    # 10 s at 16 kHz: f*t reaches ~8e4 cycles, where float32 phases would be off by ~1e-2.
    for f0, slope, inh, decay in [
        (7000.0, -0.1, 0.0, 0.0),
        (440.0, -0.3, 0.2, 0.5),
        (99.0, -0.9, 1.0, 0.0),
    ]:
        x = render_additive(f0, slope, inh, decay, duration=10.0)[0]
        ref = render_additive_reference(f0, slope, inh, decay, duration=10.0)
        assert np.abs(x - ref).max() < 1e-4


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(f0=100.0, slope=-0.1, decay=-1.0), "decay"),
        (dict(f0=8000.0, slope=-0.1), "f0"),
        (dict(f0=100.0, slope=-0.1, harmonics="triangle"), "harmonics"),
        (dict(f0=5000.0, slope=-0.1, harmonics="even"), "no audible partial"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        render_additive(**kwargs)

"""Feature layer: shapes, normalisation, statistics, inversion, and parity with librosa."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiorep.features import (
    CQT,
    MFCC,
    STFT,
    Feature,
    LogMel,
    Mel,
    Waveform,
    griffin_lim,
    spectral_convergence,
)

librosa = pytest.importorskip("librosa")

SR = 16000
CONF = Path(__file__).resolve().parents[2] / "conf" / "feature"


def _signal(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    rng = np.random.default_rng(seed)
    chirp = np.sin(2 * np.pi * (50 * t + (6000 - 50) / (2 * seconds) * t**2))
    sines = sum(a * np.sin(2 * np.pi * f * t) for a, f in [(0.2, 440), (0.1, 1234), (0.05, 60)])
    return (0.3 * chirp + sines + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return _signal()


def _rel_max(ours: np.ndarray, ref: np.ndarray) -> float:
    """Max absolute error relative to the reference's max magnitude."""
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def _all_features() -> list[Feature]:
    return [
        Waveform(SR),
        STFT(SR),
        STFT(SR, n_fft=512, hop_length=160, win_length=400, center=False, power=2.0),
        Mel(SR),
        LogMel(SR, n_mels=40, htk=True),
        MFCC(SR, n_mfcc=13),
        CQT(SR),
        CQT(SR, hop_length=100, fmin=55.0, n_bins=60),
    ]


# ---- librosa parity -----------------------------------------------------------------------


def test_stft_matches_librosa(signal: np.ndarray) -> None:
    """|STFT| within 1e-4 of librosa's, relative to its max (measured ~2e-7)."""
    ours = STFT(SR)(torch.from_numpy(signal)[None])[0].numpy()
    ref = np.abs(librosa.stft(signal, n_fft=1024, hop_length=256, center=True, pad_mode="constant"))
    assert ours.shape == ref.shape
    assert _rel_max(ours, ref) < 1e-4


@pytest.mark.parametrize("htk", [False, True])
def test_mel_matches_librosa(signal: np.ndarray, htk: bool) -> None:
    """Mel power within 1e-4 of librosa's, relative to its max (measured ~3e-7)."""
    feature = Mel(SR, n_mels=64, fmin=20.0, fmax=7000.0, htk=htk)
    ours = feature(torch.from_numpy(signal)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=signal, sr=SR, n_fft=1024, hop_length=256, n_mels=64, fmin=20.0, fmax=7000.0,
        htk=htk, norm="slaney", center=True, pad_mode="constant", power=2.0,
    )  # fmt: skip
    assert _rel_max(ours, ref) < 1e-4


@pytest.mark.parametrize("n_clips, seconds", [(9, 1.0), (2, 10.0)])
def test_mel_of_a_batch_matches_librosa_per_clip(n_clips: int, seconds: float) -> None:
    """Mel computes in cache-sized blocks: of whole clips (9 x 63 frames, the last block
    partial) or of frames inside a clip (626 frames); every clip must match librosa's."""
    batch = np.stack([_signal(seconds, seed) for seed in range(n_clips)])
    ours = Mel(SR)(torch.from_numpy(batch)).numpy()
    for clip, mel in zip(batch, ours, strict=True):
        ref = librosa.feature.melspectrogram(
            y=clip, sr=SR, n_fft=1024, hop_length=256, n_mels=64, pad_mode="constant"
        )
        assert mel.shape == ref.shape
        assert _rel_max(mel, ref) < 1e-4


def test_mfcc_matches_librosa(signal: np.ndarray) -> None:
    """MFCC within 1e-4 of librosa's, relative to its max |coefficient| (measured ~3e-7).

    Like with like: librosa's ``mfcc`` applies ``power_to_db`` with top_db=80 over the whole
    array; we pass it the dB mel computed with top_db=None (our default), amin 1e-10, and
    both use DCT-II ortho, no liftering. Any float32 log/DCT differences stay far below 1e-4.
    """
    ours = MFCC(SR, n_mfcc=20, n_mels=64)(torch.from_numpy(signal)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(
        y=signal, sr=SR, n_fft=1024, hop_length=256, n_mels=64, pad_mode="constant"
    )
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=20)
    assert _rel_max(ours, ref) < 1e-4
    # top_db clipping per example equals librosa's on a single clip.
    ours80 = MFCC(SR, top_db=80.0)(torch.from_numpy(signal)[None])[0].numpy()
    ref80 = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=80.0), n_mfcc=20)
    assert _rel_max(ours80, ref80) < 1e-4


def test_cqt_matches_librosa(signal: np.ndarray) -> None:
    """CQT magnitude within 1e-2 of librosa's ``cqt``, both divided by their max (~4e-3 measured).

    Same algorithm (octave-wise FFT kernels, librosa's Q, window, lengths and scaling), so
    the two differ only where librosa approximates: it zeroes the smallest 1% of each
    kernel's frequency response (sparsity=0.01) and resamples with soxr_hq, where we use
    dense kernels and an ideal FFT low-pass. Normalising by the max makes the bound
    independent of the overall level.
    """
    ours = CQT(SR)(torch.from_numpy(signal)[None])[0].numpy()
    ref = np.abs(librosa.cqt(signal, sr=SR, hop_length=256, fmin=32.70, n_bins=84))
    assert ours.shape == ref.shape
    assert np.abs(ours / ours.max() - ref / ref.max()).max() < 1e-2
    # Not normalised either: the scale matches too.
    assert _rel_max(ours, ref) < 1e-2


# ---- Griffin-Lim and inversion -------------------------------------------------------------


def test_griffin_lim_converges(signal: np.ndarray) -> None:
    """Spectral convergence falls with iterations and is < 0.1 after 64 (~0.06 measured)."""
    stft = STFT(SR)
    target = stft(torch.from_numpy(signal)[None])
    errors = []
    for n_iter in (4, 16, 64):
        audio = griffin_lim(target, 1024, 256, n_iter=n_iter, length=len(signal))
        assert audio.shape == (1, len(signal))
        errors.append(float(spectral_convergence(target, stft(audio))))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1


@pytest.mark.parametrize("feature", _all_features(), ids=lambda f: repr(f).split("(")[0])
def test_invert_gives_audio(feature: Feature, signal: np.ndarray) -> None:
    audio = torch.from_numpy(signal[:8000])[None]
    rebuilt = feature.invert(feature(audio), n_iter=4, length=8000)
    assert rebuilt.shape == (1, 8000)
    assert torch.isfinite(rebuilt).all()
    if isinstance(feature, Waveform):
        torch.testing.assert_close(rebuilt, audio)


def test_mel_inversion_is_close(signal: np.ndarray) -> None:
    """LogMel -> linear magnitude (NNLS) -> Griffin-Lim keeps most of the spectrum (SC ~0.4)."""
    audio = torch.from_numpy(signal)[None]
    feature, stft = LogMel(SR), STFT(SR)
    rebuilt = feature.invert(feature(audio), n_iter=32, length=audio.shape[-1])
    assert float(spectral_convergence(stft(audio), stft(rebuilt))) < 0.5


# ---- shapes, rates, normalisation, statistics, state ---------------------------------------


@pytest.mark.parametrize("feature", _all_features(), ids=lambda f: repr(f).split("(")[0])
def test_output_shape_and_frame_rate(feature: Feature) -> None:
    for num_samples in (4000, 8001, 16123):
        out = feature(torch.randn(2, num_samples))
        assert out.dtype == torch.float32
        assert tuple(out.shape) == (2, *feature.output_shape(num_samples))
    hop = getattr(feature, "hop_length", 1)
    assert feature.frame_rate == pytest.approx(SR / hop)


@pytest.mark.parametrize("cls", [Waveform, STFT, Mel, MFCC, CQT])
def test_max_normalization(cls: type[Feature]) -> None:
    out = cls(SR, normalization="max")(torch.randn(3, 4000) * torch.tensor([[0.1], [1.0], [5.0]]))
    peaks = out.abs().amax(dim=(1, 2))
    torch.testing.assert_close(peaks, torch.ones(3))


@pytest.mark.parametrize("cls", [LogMel, MFCC, CQT])
def test_standardize_statistics_and_state_dict(cls: type[Feature]) -> None:
    kwargs = {"compression": "log"} if cls is CQT else {}
    feature = cls(SR, normalization="standardize", **kwargs)
    assert feature.needs_statistics
    with pytest.raises(RuntimeError, match="feature.normalization"):
        feature(torch.randn(1, 4000))

    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 4000, generator=gen) * (i + 1) * 0.1 for i in range(3)]
    feature.fit_statistics(batches)
    assert not feature.needs_statistics
    out = torch.cat([feature(b) for b in batches])  # (B, F, N)
    mean = out.mean(dim=(0, 2))
    std = out.std(dim=(0, 2), unbiased=False)
    assert mean.abs().max() < 1e-3
    # Bins that are constant (std floored) stay at 0; all others have unit std.
    assert ((std - 1).abs() < 1e-3).all()

    fresh = cls(SR, normalization="standardize", **kwargs)
    fresh.load_state_dict(feature.state_dict())
    assert not fresh.needs_statistics
    torch.testing.assert_close(fresh(batches[0]), feature(batches[0]))


def test_log_compression_round_trip() -> None:
    feature = Mel(SR, compression="log", eps=1e-6)
    raw = feature.transform(torch.randn(1, 4000))
    torch.testing.assert_close(feature.decompress(feature.compress(raw)), raw, rtol=1e-4, atol=1e-6)


def test_bad_options_name_the_config_key() -> None:
    with pytest.raises(ValueError, match="feature.normalization"):
        Mel(SR, normalization="minmax")
    with pytest.raises(ValueError, match="feature.compression"):
        MFCC(SR, compression="log")
    with pytest.raises(ValueError, match="feature.n_bins"):
        CQT(SR, n_bins=96)
    with pytest.raises(ValueError, match="batch, time"):
        Mel(SR)(torch.randn(4000))


@pytest.mark.parametrize("name", ["waveform", "stft", "mel", "logmel", "mfcc", "cqt"])
def test_hydra_configs_instantiate(name: str) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(
        OmegaConf.create({"data": {"sample_rate": SR}}),
        {"feature": OmegaConf.load(CONF / f"{name}.yaml")},
    )
    feature = instantiate(cfg.feature)
    assert isinstance(feature, Feature)
    assert tuple(feature(torch.randn(1, SR)).shape[1:]) == feature.output_shape(SR)


def test_global_standardisation_gives_zero_mean_unit_std_over_all_bins():
    from audiorep.features import LogMel

    torch.manual_seed(0)
    # Brown noise: louder low bins, so per-bin and global statistics differ.
    audio = torch.randn(6, 8000).cumsum(dim=1) * torch.linspace(0.01, 1.0, 6)[:, None] / 100
    feature = LogMel(
        16000, n_fft=512, hop_length=256, n_mels=16, normalization="standardize_global"
    )
    feature.fit_statistics([audio[:3], audio[3:]])
    out = feature(audio)
    assert abs(out.mean().item()) < 1e-3 and abs(out.std().item() - 1) < 1e-2
    # One statistic for every bin, so the bins keep their relative levels.
    assert torch.allclose(feature.stats_mean, feature.stats_mean[0].expand_as(feature.stats_mean))
    per_bin_mean = out.mean(dim=(0, 2))
    assert per_bin_mean.std() > 0.1


def test_cqt_with_a_hop_as_long_as_the_fft_can_still_be_inverted():
    from audiorep.features import CQT

    feature = CQT(16000, hop_length=2048, n_bins=28, bins_per_octave=4, compression="log")
    t = torch.arange(16000) / 16000
    audio = torch.sin(2 * torch.pi * 440 * t).unsqueeze(0)
    out = feature.invert(feature(audio), n_iter=8)
    assert out.shape[0] == 1 and torch.isfinite(out).all() and out.abs().max() > 0
